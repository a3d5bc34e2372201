#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

#include <algorithm>
#include <cctype>

using namespace std::chrono_literals;

namespace convoy::examples {

// -- hello: the README's first orchestration ---------------------------------------------------

/// Greets `name` through two activities with a durable timer between them.
/// Kill the node during the sleep: another node finishes it without calling "greet" again.
orchestration<std::string> hello(context& ctx, std::string name) {
  auto greeting = co_await ctx.call<std::string>("greet", name); // runs on a send host
  co_await ctx.sleep(500ms);                                      // durable timer
  auto loud = co_await ctx.call<std::string>("shout", greeting);
  co_return loud;
}

activity_result greet(const activity_context&, const json& name) {
  return activity_result::success("Hello, " + name.get<std::string>() + "!");
}

activity_result shout(const activity_context&, const json& text) {
  auto s = text.get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return activity_result::success(s);
}

void register_hello(registry& reg) {
  reg.add_orchestration("hello", 1, &hello);
  reg.add_activity("greet", &greet);
  reg.add_activity("shout", &shout);
}

void register_all(registry& reg) {
  register_hello(reg);
  register_order_processing(reg);
  register_steps(reg);
  register_sequential_convoy(reg);
  register_scatter_gather(reg);
  register_saga(reg);
  register_long_lived(reg);
  register_children(reg);
  register_file_to_http(reg);
  register_chaos(reg);
}

} // namespace convoy::examples
