#pragma once

#include "convoy/actors/context.hpp"
#include "convoy/actors/task.hpp"

#include <string>
#include <vector>

namespace convoy {

/// What running one compensation did.
struct compensation_outcome {
  std::string activity;
  bool ok = true;
  std::string error;
};

void to_json(json& j, const compensation_outcome& x);

/// A scope with compensation (a saga). After each step that succeeded, register the activity
/// that undoes it; when a later step fails, `compensate()` runs the registered compensations
/// in reverse order. A compensation that fails is recorded (and the others still run): its
/// outcome is visible in the result, never swallowed.
///
/// ```
/// saga trip(ctx);
/// std::optional<activity_error> failure;
/// try {
///   auto flight = co_await ctx.call<std::string>("book-flight", req);
///   trip.add_compensation("cancel-flight", flight);
///   ...
/// } catch (const activity_error& e) { failure = e; } // no co_await inside a handler (C++)
/// if (failure) auto undone = co_await trip.compensate();
/// ```
class saga {
public:
  explicit saga(context& ctx) noexcept : ctx_(&ctx) {}

  /// Registers the compensation of a step that succeeded.
  void add_compensation(std::string activity, json args = nullptr);

  /// Runs the compensations, newest first, each once; clears them.
  task<std::vector<compensation_outcome>> compensate();

  size_t pending() const noexcept { return compensations_.size(); }

private:
  struct compensation {
    std::string activity;
    json args;
  };
  context* ctx_;
  std::vector<compensation> compensations_;
};

} // namespace convoy
