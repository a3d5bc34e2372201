#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

using namespace std::chrono_literals;

namespace convoy::examples {

struct order {
  std::string id;
  std::string customer;
  double amount = 0;
};

void to_json(json& j, const order& o) {
  j = json{{"id", o.id}, {"customer", o.customer}, {"amount", o.amount}};
}

void from_json(const json& j, order& o) {
  j.at("id").get_to(o.id);
  j.at("customer").get_to(o.customer);
  j.at("amount").get_to(o.amount);
}

struct receipt {
  std::string order_id;
  std::string status;
  std::string tracking;
};

void to_json(json& j, const receipt& r) {
  j = json{{"order", r.order_id}, {"status", r.status}, {"tracking", r.tracking}};
}

/// Version 1: credit check, a pause for the warehouse, then shipping. Instances started on
/// version 1 keep running it after version 2 is registered (side-by-side versions).
orchestration<receipt> process_order(context& ctx, order o) {
  auto approved = co_await ctx.call<bool>("credit-check", o);
  if (!approved)
    co_return receipt{o.id, "rejected", ""};
  co_await ctx.sleep(300ms);
  auto tracking = co_await ctx.call<std::string>("ship", o);
  co_return receipt{o.id, "shipped", tracking};
}

/// Version 2: after the credit check, wait for the order's payment — a message correlated
/// by `order-id` — for at most `payment_timeout`, then ship.
orchestration<receipt> process_order_v2(context& ctx, order o) {
  auto approved = co_await ctx.call<bool>("credit-check", o);
  if (!approved)
    co_return receipt{o.id, "rejected", ""};
  ctx.set_query_state(json{{"stage", "awaiting payment"}});
  auto payment = co_await ctx.receive<json>(correlate("order-id", o.id), 5s);
  if (!payment)
    co_return receipt{o.id, "payment-timeout", ""};
  ctx.set_query_state(json{{"stage", "shipping"}, {"paid", *payment}});
  auto tracking = co_await ctx.call<std::string>("ship", o);
  co_return receipt{o.id, "shipped", tracking};
}

activity_result credit_check(const activity_context&, const json& args) {
  auto o = args.get<order>();
  return activity_result::success(o.amount <= 1000.0);
}

activity_result ship(const activity_context& actx, const json& args) {
  auto o = args.get<order>();
  // The idempotency key makes the tracking number the same for every retry of this step.
  return activity_result::success("TRK-" + o.id + "-"
                                  + std::to_string(std::hash<std::string>{}(actx.idempotency_key)
                                                   % 100000));
}

void register_order_processing(registry& reg) {
  reg.add_orchestration("order-processing", 1, &process_order);
  reg.add_orchestration("order-processing", 2, &process_order_v2);
  // An "order" message nobody is waiting for starts an instance, subscribed at once to its
  // order-id: the "payment" that follows reaches it even if it arrives first.
  reg.activate_on("order", "order-processing", {"order-id"});
  reg.add_activity("credit-check", &credit_check);
  reg.add_activity("ship", &ship);
}

} // namespace convoy::examples
