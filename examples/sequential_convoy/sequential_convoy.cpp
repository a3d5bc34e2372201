#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

using namespace std::chrono_literals;

namespace convoy::examples {

/// A sequential convoy: the first "item" message of a batch starts the instance (subscribed
/// to its batch-id); every later item of the same batch is consumed by the same instance, in
/// arrival order, until the item marked `last`. Items that arrive while the instance is busy
/// wait in its mailbox; none is lost or handed to another instance.
orchestration<json> collect_batch(context& ctx, json first) {
  auto batch = first.at("batch").get<std::string>();
  int count = 1;
  double sum = first.value("value", 0.0);
  std::vector<int> order{first.value("seq", 0)};
  bool last = first.value("last", false);
  while (!last) {
    auto item = co_await ctx.receive<json>(correlate("batch-id", batch), 5s);
    if (!item)
      co_return json{{"batch", batch}, {"count", count}, {"sum", sum}, {"complete", false}};
    ++count;
    sum += item->value("value", 0.0);
    order.push_back(item->value("seq", 0));
    last = item->value("last", false);
  }
  json args = {{"batch", batch}, {"sum", sum}};
  auto stored = co_await ctx.call<std::string>("store-batch", args);
  co_return json{{"batch", batch}, {"count", count}, {"sum", sum}, {"order", order},
                 {"complete", true}, {"stored", stored}};
}

activity_result store_batch(const activity_context& actx, const json& args) {
  return activity_result::success("batch " + args.at("batch").get<std::string>() + " stored as "
                                  + actx.idempotency_key);
}

void register_sequential_convoy(registry& reg) {
  reg.add_orchestration("batch", 1, &collect_batch);
  reg.add_activity("store-batch", &store_batch);
  reg.activate_on("item", "batch", {"batch-id"});
}

} // namespace convoy::examples
