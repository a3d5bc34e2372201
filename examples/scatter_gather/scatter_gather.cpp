#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

#include <thread>

using namespace std::chrono_literals;

namespace convoy::examples {

/// Scatter-gather: ask every supplier for a quote in parallel (`when_all`), keep the best;
/// then ask two carriers and take whichever answers first (`when_any`; the loser's answer is
/// ignored).
orchestration<json> best_quote(context& ctx, json request) {
  auto item = request.at("item").get<std::string>();
  std::vector<call_awaiter<double>> quotes;
  for (const auto& supplier : request.at("suppliers")) {
    json args = {{"supplier", supplier}, {"item", item}};
    quotes.push_back(ctx.call<double>("quote", args));
  }
  auto prices = co_await when_all(quotes);
  size_t best = 0;
  for (size_t i = 1; i < prices.size(); ++i)
    if (prices[i] < prices[best])
      best = i;
  auto fast = ctx.call<std::string>("carrier-fast", item);
  auto slow = ctx.call<std::string>("carrier-slow", item);
  auto first = co_await when_any(fast, slow);
  // g++ 12 miscompiles `cond ? co_await a : co_await b` (a temporary is destroyed twice):
  // keep each co_await in its own statement.
  std::string carrier;
  if (first == 0)
    carrier = co_await fast;
  else
    carrier = co_await slow;
  co_return json{{"item", item},
                 {"supplier", request.at("suppliers")[best]},
                 {"price", prices[best]},
                 {"quotes", prices.size()},
                 {"carrier", carrier}};
}

activity_result quote(const activity_context&, const json& args) {
  // A deterministic "price" per supplier and item.
  auto text = args.at("supplier").get<std::string>() + args.at("item").get<std::string>();
  auto h = std::hash<std::string>{}(text);
  return activity_result::success(static_cast<double>(100 + h % 900) / 10.0);
}

activity_result carrier_fast(const activity_context&, const json&) {
  return activity_result::success("fast-freight");
}

activity_result carrier_slow(const activity_context&, const json&) {
  std::this_thread::sleep_for(300ms); // activities run on send-host worker threads
  return activity_result::success("slow-post");
}

void register_scatter_gather(registry& reg) {
  reg.add_orchestration("best-quote", 1, &best_quote);
  reg.add_activity("quote", &quote);
  reg.add_activity("carrier-fast", &carrier_fast);
  reg.add_activity("carrier-slow", &carrier_slow);
}

} // namespace convoy::examples
