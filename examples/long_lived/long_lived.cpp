#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

using namespace std::chrono_literals;

namespace convoy::examples {

/// A long-lived instance: adds up the numbers sent to it as "add" signals. Every 3 signals it
/// starts over with `continue_as_new`, carrying only its total, so its journal stays short
/// however long it lives. A "stop" signal (or 10 s without one) ends it with the total.
orchestration<json> counter(context& ctx, json state) {
  auto total = state.value("total", 0);
  auto runs = state.value("runs", 0) + 1;
  ctx.set_query_state(json{{"total", total}, {"run", runs}});
  for (int i = 0; i < 3; ++i) {
    auto add = co_await ctx.signal<json>("add", 10s);
    if (!add || add->is_string())
      co_return json{{"total", total}, {"runs", runs}};
    total += add->get<int>();
    ctx.set_query_state(json{{"total", total}, {"run", runs}});
  }
  co_return ctx.continue_as_new(json{{"total", total}, {"runs", runs}});
}

void register_long_lived(registry& reg) {
  reg.add_orchestration("counter", 1, &counter);
}

} // namespace convoy::examples
