#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace convoy::examples {

struct steps_input {
  int count = 3;
  std::string sink;  ///< File every activity execution appends its idempotency key to.
  int pause_ms = 0;  ///< Durable sleep between steps.
};

void from_json(const json& j, steps_input& in) {
  in.count = j.value("count", 3);
  in.sink = j.value("sink", std::string{});
  in.pause_ms = j.value("pause_ms", 0);
}

/// A chain of `count` recorded side effects, with a durable sleep after each: the workload
/// of the crash tests. Its result is the sum of the step numbers the activities returned.
orchestration<int> steps(context& ctx, steps_input in) {
  int sum = 0;
  for (int i = 0; i < in.count; ++i) {
    // g++ 12 cannot keep an initializer-list temporary alive across co_await
    // ("array used as initializer"): build arguments in a named variable first.
    json args = {{"sink", in.sink}, {"step", i}};
    sum += co_await ctx.call<int>("record", args);
    if (in.pause_ms > 0)
      co_await ctx.sleep(std::chrono::milliseconds(in.pause_ms));
  }
  co_return sum;
}

/// Appends "<idempotency key>\n" to the sink file: a real, countable side effect.
/// O_APPEND writes of one short line are atomic, so concurrent executions never interleave.
activity_result record(const activity_context& actx, const json& args) {
  auto sink = args.at("sink").get<std::string>();
  if (!sink.empty()) {
    auto fd = ::open(sink.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return activity_result::failure("cannot open sink " + sink + ": " + std::strerror(errno));
    auto line = actx.idempotency_key + "\n";
    auto n = ::write(fd, line.data(), line.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(line.size()))
      return activity_result::failure("short write to sink " + sink);
  }
  return activity_result::success(args.at("step").get<int>());
}

void register_steps(registry& reg) {
  reg.add_orchestration("steps", 1, &steps);
  reg.add_activity("record", &record);
}

} // namespace convoy::examples
