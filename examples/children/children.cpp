#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

namespace convoy::examples {

/// A parent that awaits one child orchestration per name, and starts an audit child it does
/// not wait for (fire and forget).
orchestration<json> greet_all(context& ctx, json names) {
  std::vector<call_awaiter<std::string>> children;
  for (const auto& name : names)
    children.push_back(ctx.child<std::string>("hello", name));
  auto greetings = co_await when_all(children);
  auto audit = ctx.start_child("steps", json{{"count", 1}});
  co_return json{{"greetings", greetings}, {"audit", audit}};
}

void register_children(registry& reg) {
  reg.add_orchestration("greet-all", 1, &greet_all);
}

} // namespace convoy::examples
