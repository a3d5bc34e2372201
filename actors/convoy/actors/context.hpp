#pragma once

#include "convoy/actors/journal.hpp"
#include "convoy/actors/json.hpp"

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace convoy {

class context;

/// Thrown inside orchestration code (never across an actor or a resume) when an awaited
/// activity failed; an orchestration may catch it, or let it fail the instance.
class activity_error : public std::runtime_error {
public:
  activity_error(std::string activity, uint32_t step, std::string message);
  const std::string& activity() const noexcept { return activity_; }
  uint32_t step() const noexcept { return step_; }

private:
  std::string activity_;
  uint32_t step_;
};

/// An activity the orchestration asked for at its last persistence point.
struct activity_command {
  uint32_t step = 0;
  std::string activity;
  std::string args; ///< JSON text.
  /// `instance-id/step`: the same for every attempt, so receivers can drop duplicates.
  std::string idempotency_key;
};

/// A durable timer the orchestration started at its last persistence point.
struct timer_command {
  uint32_t step = 0;
  int64_t due_ms = 0; ///< Wall-clock milliseconds since the epoch.
};

/// The outcome of an operation, as delivered to the context.
struct outcome {
  bool ok = true;
  std::string payload; ///< JSON text: the result, or an error message when not ok.
};

/// Base of every awaitable the context hands out. One operation = one step.
/// Not an aggregate on purpose: g++ 12 destroys braced aggregate temporaries twice when
/// they are `co_await`ed (see CAF-0.17-NOTES.md).
class step_awaiter {
public:
  step_awaiter(context& ctx, uint32_t step) noexcept : ctx_(&ctx), step_(step) {}
  bool await_ready() const noexcept;
  void await_suspend(std::coroutine_handle<> waiter) noexcept;
  uint32_t step() const noexcept { return step_; }

protected:
  outcome take() const;
  context* ctx_;
  uint32_t step_;
};

/// Awaitable of `ctx.call<R>(...)`: yields the activity's result converted to `R`.
template <class R>
class call_awaiter : public step_awaiter {
public:
  call_awaiter(context& ctx, uint32_t step, std::string activity) noexcept
    : step_awaiter(ctx, step), activity_(std::move(activity)) {}

  R await_resume() {
    auto result = take();
    if (!result.ok)
      throw activity_error(activity_, step_, result.payload);
    if constexpr (std::is_void_v<R>)
      return;
    else
      return json::parse(result.payload).template get<R>();
  }

private:
  std::string activity_;
};

/// Awaitable of `ctx.sleep(d)`: completes when the durable timer fires.
class sleep_awaiter : public step_awaiter {
public:
  using step_awaiter::step_awaiter;
  void await_resume() const { (void) take(); }
};

/// The orchestration's only window on the world, and the replay engine behind it.
///
/// Every operation gets the next step number. If the journal already holds the step, the
/// context checks that the same operation was recorded (kind, target and arguments hash) and
/// returns the recorded outcome without doing anything; otherwise it records a `scheduled`
/// entry and a command to carry out at the next persistence point.
/// @pre used only from the actor that owns the instance.
class context {
public:
  context(std::string instance_id, const std::vector<journal_entry>& history);

  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // -- orchestration API -----------------------------------------------------------------

  /// Calls an activity on a send host; the result is journaled, so it runs at most once
  /// per instance as far as the orchestration can tell (the activity itself runs at least
  /// once and receives an idempotency key to drop repeats).
  template <class R = json, class Args = json>
  call_awaiter<R> call(std::string activity, const Args& args = Args{}) {
    auto step = schedule_call(activity, json(args).dump());
    return call_awaiter<R>(*this, step, std::move(activity));
  }

  /// A durable timer: survives node crashes; the instance may be unloaded meanwhile.
  sleep_awaiter sleep(std::chrono::milliseconds duration);

  /// The id of the running instance.
  const std::string& instance_id() const noexcept { return instance_id_; }

  /// True while the orchestration re-executes recorded steps after a rehydration.
  bool replaying() const noexcept { return next_step_ <= last_recorded_step_ && has_history_; }

  // -- engine API (the hosting actor) ----------------------------------------------------

  /// Sets the wall clock used to compute timer deadlines of new steps.
  void set_clock(int64_t now_ms) noexcept { now_ms_ = now_ms; }

  /// Delivers the outcome of a scheduled step. Returns the coroutine to resume, if one is
  /// waiting for exactly that step. Ignores (returns false in `accepted`) unknown steps and
  /// steps that already have an outcome: duplicates are normal with at-least-once delivery.
  struct delivery {
    bool accepted = false;
    std::coroutine_handle<> resume;
  };
  delivery deliver(uint32_t step, outcome result);

  /// What the next persistence point must write. Moves it out of the context.
  struct output {
    std::vector<journal_entry> entries;
    std::vector<activity_command> activities;
    std::vector<timer_command> timers;
    bool empty() const noexcept { return entries.empty(); }
  };
  output take_output();

  /// Set when replay found a different operation than the journal recorded.
  const std::optional<std::string>& nondeterminism() const noexcept { return nondeterminism_; }

  /// Checks that a finished orchestration consumed the whole journal; sets the
  /// non-determinism error otherwise.
  void check_finished();

  /// Number of steps issued so far.
  uint32_t steps() const noexcept { return next_step_; }

private:
  friend class step_awaiter;

  uint32_t schedule_call(const std::string& activity, std::string args);
  struct scheduled_step {
    uint32_t step;
    bool live; ///< New (not replayed): its command must be carried out.
  };
  scheduled_step schedule(op_kind op, std::string_view target, uint64_t hash,
                          std::string scheduled_payload);
  bool ready(uint32_t step) const noexcept;
  void park(uint32_t step, std::coroutine_handle<> waiter) noexcept;
  outcome take(uint32_t step);

  struct recorded_step {
    std::optional<journal_entry> scheduled;
    std::optional<outcome> result;
  };

  std::string instance_id_;
  std::map<uint32_t, recorded_step> history_;
  bool has_history_ = false;
  uint32_t last_recorded_step_ = 0;
  uint32_t next_step_ = 0;
  int64_t now_ms_ = 0;
  std::map<uint32_t, outcome> ready_;
  std::map<uint32_t, std::coroutine_handle<>> waiting_;
  output output_;
  std::optional<std::string> nondeterminism_;
};

} // namespace convoy
