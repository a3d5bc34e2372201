// The chaos workload (tests/chaos, `convoy chaos run`): an orchestration of 5-50 steps, each
// a persistence point that calls a sink through an HTTP send port. The sink logs every raw
// arrival before dedupe, so lost, repeated and out-of-order effects are countable.

#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

#include <algorithm>

namespace convoy::examples {

namespace {

/// How many steps an instance runs: the submitted `steps`, clamped to the plan's 1..1000.
int step_count(const json& in) {
  int n = in.is_object() ? in.value("steps", 5) : 5;
  return std::clamp(n, 1, 1000);
}

} // namespace

/// `steps` calls of the sink, in order, with a durable sleep of `pause_ms` between two (so
/// instances stay in flight long enough for faults to hit them). Each call names its instance and step in the body;
/// the send port adds the call's idempotency key (`instance/step`) as a header. A sink answer
/// other than 2xx is retried by the port's policy (then the request is suspended), so the
/// instance finishes only when every step reached the sink at least once. The result is the
/// number of steps, which the chaos checkers compare with what was submitted.
orchestration<json> chaos(context& ctx, json in) {
  const int n = step_count(in);
  const auto id = ctx.instance_id();
  const int pause_ms = in.is_object() ? std::clamp(in.value("pause_ms", 0), 0, 60'000) : 0;
  for (int i = 0; i < n; ++i) {
    if (i > 0 && pause_ms > 0)
      co_await ctx.sleep(std::chrono::milliseconds(pause_ms));
    // A named variable: g++ 12 cannot keep an initializer-list temporary alive across co_await.
    json args = {{"instance", id}, {"step", i}, {"op", in.value("op", json())}};
    co_await ctx.call<json>("http-send:chaos-sink", args);
  }
  co_return json{{"steps", n}};
}

void register_chaos(registry& reg) {
  reg.add_orchestration("chaos", 1, &chaos);
  // Every "chaos-start" message (the chaos client POSTs them to the nodes' HTTP receive
  // location) starts one; its message id, derived from the client's Idempotency-Key, is the
  // instance id.
  reg.activate_on("chaos-start", "chaos");
}

} // namespace convoy::examples
