#pragma once

#include "convoy/actors/journal.hpp"
#include "convoy/actors/json.hpp"
#include "convoy/actors/json_text.hpp"

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

namespace convoy {

class context;

// -- failures seen by orchestration code -----------------------------------------------------

/// Thrown inside orchestration code (never across an actor or a resume) when an awaited
/// activity or child orchestration failed; an orchestration may catch it, or let it fail the
/// instance.
class activity_error : public std::runtime_error {
public:
  activity_error(std::string activity, uint32_t step, std::string message);
  const std::string& activity() const noexcept { return activity_; }
  uint32_t step() const noexcept { return step_; }
  /// The error text the activity reported.
  const std::string& reason() const noexcept { return reason_; }

private:
  std::string activity_;
  uint32_t step_;
  std::string reason_;
};

/// Thrown at the await that was pending when the instance was cancelled. Distinct from a
/// failure: an orchestration that lets it escape ends as `cancelled`, not `failed`; one that
/// catches it may still call activities (to compensate) before it returns.
class cancelled_error : public std::runtime_error {
public:
  explicit cancelled_error(uint32_t step);
  uint32_t step() const noexcept { return step_; }

private:
  uint32_t step_;
};

// -- commands: what a persistence point carries out ------------------------------------------

/// Retry policy of an activity call, as data (it travels with the request).
struct retry_policy {
  /// Attempts in all, the first included. 1 = no retry.
  uint32_t max_attempts = 3;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  double multiplier = 2.0;
  /// Error kinds (see `activity_result::kind`) that are never retried.
  std::vector<std::string> non_retryable;

  /// The delay before attempt `next_attempt` (2 = the first retry).
  std::chrono::milliseconds delay_before(uint32_t next_attempt) const noexcept;
  /// Whether a failure of `kind` on attempt `attempt` is retried.
  bool retries(uint32_t attempt, const std::string& kind) const;

  json to_json() const;
  static retry_policy from_json(const json& j);
};

/// Options of `ctx.call`.
struct call_options {
  retry_policy retry;
  /// Longest one attempt may take; a later answer counts as a failed attempt. 0 = none.
  std::chrono::milliseconds attempt_timeout{0};
  /// Longest the whole call (all attempts) may take, enforced by a durable timer in the
  /// orchestration: when it fires first, the call fails with kind "timeout". 0 = none.
  std::chrono::milliseconds total_timeout{0};
};

/// An activity the orchestration asked for at its last persistence point.
struct activity_command {
  uint32_t step = 0;
  std::string activity;
  std::string args; ///< JSON text.
  /// `instance-id/step`: the same for every attempt, so receivers can drop duplicates.
  std::string idempotency_key;
  /// JSON of the retry policy and attempt timeout; empty = defaults.
  std::string options;
};

/// A durable timer the orchestration started (or cancelled) at its last persistence point.
struct timer_command {
  uint32_t step = 0;
  int64_t due_ms = 0; ///< Wall-clock milliseconds since the epoch; ignored for cancellation.
};

/// A child orchestration to create at the next persistence point.
struct child_command {
  uint32_t step = 0;
  std::string child_id; ///< Deterministic: `parent-id.step`.
  std::string type;
  std::string input; ///< JSON text.
  /// Awaited children report their outcome to this step of the parent; detached ones don't.
  bool awaited = true;
  /// Version to run: the newest registered on the parent's node (filled by the host actor).
  uint32_t version = 0;
};

/// The outcome of an operation, as delivered to the context.
struct outcome {
  enum class kind : uint8_t { ok, failed, cancelled };
  kind what = kind::ok;
  std::string payload; ///< JSON text: the result; or an error message.

  static outcome success(std::string payload) { return {kind::ok, std::move(payload)}; }
  static outcome failure(std::string message) { return {kind::failed, std::move(message)}; }
  bool ok() const noexcept { return what == kind::ok; }
};

/// A correlation set: message properties whose values route messages to one instance
/// (BizTalk's correlation sets). `correlate("order-id", o.id)`.
class correlation {
public:
  correlation() = default;
  correlation(std::string property, std::string value);
  correlation& and_(std::string property, std::string value);
  /// Canonical text, properties sorted: `order-id=1001&region=eu`. Names the channel.
  std::string key() const;
  /// The sorted property names: `order-id&region`.
  std::string shape() const;

private:
  std::map<std::string, std::string> properties_;
};

inline correlation correlate(std::string property, std::string value) {
  return correlation(std::move(property), std::move(value));
}

// -- awaitables ----------------------------------------------------------------------------

/// Base of every awaitable the context hands out. One operation = one step.
/// Not an aggregate on purpose: g++ 12 destroys braced aggregate temporaries twice when
/// they are `co_await`ed (see CAF-0.17-NOTES.md).
class step_awaiter {
public:
  /// @param race a timer step raced against this one (a timeout), if any.
  step_awaiter(context& ctx, uint32_t step, std::optional<uint32_t> race = std::nullopt) noexcept
    : ctx_(&ctx), step_(step), race_(race) {}
  /// Ready when the step (or the raced timer) has an outcome.
  bool await_ready() const noexcept;
  void await_suspend(std::coroutine_handle<> waiter) noexcept;
  uint32_t step() const noexcept { return step_; }
  context& ctx() const noexcept { return *ctx_; }

protected:
  /// The outcome; throws cancelled_error for a cancelled step.
  outcome take() const;
  context* ctx_;
  uint32_t step_;
  std::optional<uint32_t> race_;
};

/// Awaitable of `ctx.call<R>(...)` and `ctx.child<R>(...)`: yields the result as `R`.
template <class R>
class call_awaiter : public step_awaiter {
public:
  /// @param deadline_step the durable timer enforcing `total_timeout`, if any.
  call_awaiter(context& ctx, uint32_t step, std::string target,
               std::optional<uint32_t> deadline_step = std::nullopt) noexcept
    : step_awaiter(ctx, step, deadline_step), target_(std::move(target)) {}

  R await_resume();

private:
  std::string target_;
};

/// Awaitable of `ctx.sleep(d)`: completes when the durable timer fires.
class sleep_awaiter : public step_awaiter {
public:
  using step_awaiter::step_awaiter;
  void await_resume() const { (void) take(); }
};

/// Awaitable of `ctx.receive<M>(...)` and `ctx.signal<M>(...)`. With a timeout it yields
/// `std::optional<M>` (empty when the timer fired first), without one `M`.
template <class M, bool WithTimeout>
class message_awaiter : public step_awaiter {
public:
  message_awaiter(context& ctx, uint32_t step, std::optional<uint32_t> timer) noexcept
    : step_awaiter(ctx, step, timer) {}

  std::conditional_t<WithTimeout, std::optional<M>, M> await_resume();
};

/// Returned by `ctx.continue_as_new(input)`; `co_return` it to restart the instance with a
/// fresh journal.
struct continue_as_new_request {
  explicit continue_as_new_request(std::string input_json) : input(std::move(input_json)) {}
  std::string input;
};

/// The orchestration's only window on the world, and the replay engine behind it.
///
/// Every operation gets the next step number. If the journal already holds the step, the
/// context checks that the same operation was recorded (kind, target and arguments hash) and
/// returns the recorded outcome without doing anything; otherwise it records a `scheduled`
/// entry and a command to carry out at the next persistence point. Operations are scheduled
/// when created (not when awaited), so `when_all` / `when_any` run them in parallel.
/// @pre used only from the actor that owns the instance.
class context {
public:
  /// @param generation number of `continue_as_new` restarts so far (part of every key).
  context(std::string instance_id, const std::vector<journal_entry>& history,
          uint32_t generation = 0);

  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // -- orchestration API -----------------------------------------------------------------

  /// Calls an activity on a send host; the result is journaled. The activity runs at least
  /// once per attempt and receives an idempotency key to drop repeats; failed attempts are
  /// retried by `options.retry` with durable backoff.
  template <class R = json, class Args = json>
  call_awaiter<R> call(std::string activity, const Args& args = Args{},
                       const call_options& options = call_options{}) {
    auto [step, deadline] = schedule_call(activity, detail::to_json_text(args), options);
    return call_awaiter<R>(*this, step, std::move(activity), deadline);
  }

  /// A durable timer: survives node crashes; the instance may be unloaded meanwhile.
  sleep_awaiter sleep(std::chrono::milliseconds duration);
  /// A durable timer until a wall-clock time (use `now()` to compute it).
  sleep_awaiter sleep_until(std::chrono::system_clock::time_point when);

  /// Waits for the next message of this correlation set (a sequential convoy when called in
  /// a loop: messages are consumed in arrival order, none is lost between two receives).
  template <class M = json>
  message_awaiter<M, false> receive(const correlation& c) {
    return message_awaiter<M, false>(*this, schedule_channel(op_kind::receive, c), std::nullopt);
  }
  /// As above, giving up after `timeout` (yields an empty optional).
  template <class M = json>
  message_awaiter<M, true> receive(const correlation& c, std::chrono::milliseconds timeout) {
    auto step = schedule_channel(op_kind::receive, c);
    return message_awaiter<M, true>(*this, step, sleep(timeout).step());
  }

  /// Waits for the next signal `name` sent to this instance (`convoy orch signal`).
  template <class M = json>
  message_awaiter<M, false> signal(const std::string& name) {
    return message_awaiter<M, false>(*this, schedule_signal(name), std::nullopt);
  }
  template <class M = json>
  message_awaiter<M, true> signal(const std::string& name, std::chrono::milliseconds timeout) {
    auto step = schedule_signal(name);
    return message_awaiter<M, true>(*this, step, sleep(timeout).step());
  }

  /// Starts a child orchestration and awaits its result (failures raise activity_error).
  template <class R = json, class In = json>
  call_awaiter<R> child(std::string type, const In& input) {
    auto step = schedule_child(type, detail::to_json_text(input), true);
    return call_awaiter<R>(*this, step, "child " + type);
  }
  /// Starts a child orchestration without waiting for it (fire and forget); returns its id.
  template <class In = json>
  std::string start_child(std::string type, const In& input) {
    auto step = schedule_child(type, detail::to_json_text(input), false);
    return child_id(step);
  }

  /// The wall clock as of this point of the orchestration (recorded; same on replay).
  std::chrono::system_clock::time_point now();
  /// 64 random bits (recorded; same on replay).
  uint64_t random();
  /// A random (version 4) UUID (recorded; same on replay).
  std::string uuid();

  /// Declares the instance's queryable state (`convoy orch describe` shows it); stored at
  /// every persistence point. Read-only for the outside world.
  void set_query_state(json state);

  /// `co_return ctx.continue_as_new(input)`: ends this run and starts the same orchestration
  /// again with `input` and an empty journal (for long-lived instances).
  template <class In>
  continue_as_new_request continue_as_new(const In& input) {
    return continue_as_new_request(json(input).dump());
  }

  /// The id of the running instance.
  const std::string& instance_id() const noexcept { return instance_id_; }
  /// Number of continue_as_new restarts before this run.
  uint32_t generation() const noexcept { return generation_; }

  /// True while the orchestration re-executes recorded steps after a rehydration.
  bool replaying() const noexcept { return has_history_ && next_step_ <= last_recorded_step_; }

  // -- composition (used by when_all / when_any) -------------------------------------------

  /// True when the step has an outcome.
  bool has_outcome(uint32_t step) const noexcept;
  /// Order in which the step's outcome arrived (journal order); only with has_outcome.
  uint64_t completion_order(uint32_t step) const noexcept;
  /// Parks the coroutine until all (or any) of `steps` have an outcome.
  void park(std::vector<uint32_t> steps, bool any, std::coroutine_handle<> waiter) noexcept;
  /// The same for the `n` steps at `steps` (no vector to build per await).
  void park(const uint32_t* steps, size_t n, bool any, std::coroutine_handle<> waiter) noexcept;
  /// Gives up on an operation whose outcome is no longer wanted (a `when_any` loser):
  /// timers are cancelled, channel waits stop taking messages.
  void abandon(uint32_t step);
  /// The outcome of a step. Throws cancelled_error when it was cancelled.
  outcome take(uint32_t step);
  /// As `take`, without copying the outcome: valid until the next operation is scheduled.
  const outcome& peek(uint32_t step);

  // -- engine API (the hosting actor) ----------------------------------------------------

  /// Sets the wall clock used for timer deadlines and `now()` of new steps.
  void set_clock(int64_t now_ms) noexcept { now_ms_ = now_ms; }

  /// Delivers the outcome of a scheduled step. Returns the coroutine to resume, if the
  /// coroutine waits for it. Ignores unknown steps and steps that already have an outcome:
  /// duplicates are normal with at-least-once delivery.
  struct delivery {
    bool accepted = false;
    std::coroutine_handle<> resume;
  };
  delivery deliver(uint32_t step, outcome result);

  /// Delivers a message of a correlation channel or a signal: to the oldest step waiting on
  /// the channel, or into the mailbox (journaled) until one asks.
  delivery deliver_message(const std::string& channel, std::string payload);

  /// Cancels the instance: every step the coroutine waits for completes as cancelled.
  delivery cancel();

  /// What the next persistence point must write. Moves it out of the context.
  struct output {
    std::vector<journal_entry> entries;
    std::vector<activity_command> activities;
    std::vector<timer_command> timers;
    std::vector<timer_command> cancelled_timers;
    std::vector<child_command> children;
    /// Correlation sets to route to this instance from now on: (key, shape).
    std::vector<std::pair<std::string, std::string>> subscriptions;
    std::optional<std::string> query_state;
    bool empty() const noexcept {
      return entries.empty() && activities.empty() && timers.empty() && cancelled_timers.empty()
             && children.empty() && subscriptions.empty() && !query_state;
    }
  };
  output take_output();

  /// Set when replay found a different operation than the journal recorded.
  const std::optional<std::string>& nondeterminism() const noexcept { return nondeterminism_; }

  /// Checks that a finished orchestration consumed the whole journal; sets the
  /// non-determinism error otherwise.
  void check_finished();

  /// Number of steps issued so far.
  uint32_t steps() const noexcept { return next_step_; }

  /// Steps the coroutine currently waits for (for `orch describe`).
  std::vector<uint32_t> waiting_steps() const;

  /// The child id of step `step`.
  std::string child_id(uint32_t step) const {
    return instance_id_ + "." + std::to_string(step);
  }

private:
  template <class R>
  friend class call_awaiter;
  template <class M, bool W>
  friend class message_awaiter;

  struct scheduled_step {
    uint32_t step;
    bool live; ///< New (not replayed): its command must be carried out.
  };
  scheduled_step schedule(op_kind op, std::string_view target, uint64_t hash,
                          std::string scheduled_payload);
  /// Checks a new step against the journal: true when the journal already holds it (then it
  /// must be the same operation, else non-determinism is set); false when it is new.
  bool check_recorded(uint32_t step, op_kind op, std::string_view target, uint64_t hash);
  std::pair<uint32_t, std::optional<uint32_t>>
  schedule_call(const std::string& activity, std::string args, const call_options& options);
  uint32_t schedule_channel(op_kind op, const correlation& c);
  uint32_t schedule_signal(const std::string& name);
  scheduled_step schedule_wait(op_kind op, const std::string& channel,
                               std::string scheduled_payload);
  uint32_t schedule_child(const std::string& type, std::string input, bool awaited);
  std::string record(op_kind op, std::string_view target, const std::function<std::string()>& live);
  void complete(uint32_t step, outcome result, bool journal);
  /// Appends to the next persistence point's journal entries.
  void push_entry(journal_entry entry);
  std::string key_for(uint32_t step) const;

  struct step_info {
    bool present = false;  ///< the journal or the code has this step
    op_kind op = op_kind::call;
    bool scheduled = false;
    bool abandoned = false;
    bool requeued = false; ///< its message went back to the mailbox (journaled)
    uint64_t hash = 0;
    std::string payload;  ///< the recorded scheduled entry's payload (journal steps only)
    std::string channel;  ///< receive / signal: the channel it waits on
    std::optional<outcome> result;
    uint64_t order = 0;   ///< completion order
  };
  /// The step, or null when neither the journal nor the code has it.
  step_info* find_step(uint32_t step) noexcept;
  const step_info* find_step(uint32_t step) const noexcept;
  /// The step, made present if it was not.
  step_info& step_at(uint32_t step);

  std::string instance_id_;
  uint32_t generation_ = 0;
  /// Steps by number. Steps are numbered in the order they are issued, so a vector indexed
  /// by number holds them; numbers far beyond the others (only a damaged journal has those)
  /// go to `far_steps_` instead of growing the vector.
  std::vector<step_info> steps_;
  std::map<uint32_t, step_info> far_steps_;
  bool has_history_ = false;
  uint32_t last_recorded_step_ = 0;
  uint32_t next_step_ = 0;
  uint64_t completions_ = 0;
  int64_t now_ms_ = 0;
  /// Messages that arrived with no step waiting, per channel, in arrival order.
  std::map<std::string, std::deque<std::string>> mailbox_;
  /// Steps waiting on each channel, oldest first.
  std::map<std::string, std::deque<uint32_t>> channel_waiters_;
  struct parked {
    bool active = false;
    std::vector<uint32_t> steps; ///< kept between parks: no allocation per await
    bool any = false;
    std::coroutine_handle<> handle;
  };
  parked parked_;
  /// Whether the parked coroutine may resume now.
  bool parked_satisfied() const noexcept;
  std::set<std::string> subscribed_;
  output output_;
  std::optional<std::string> nondeterminism_;
  /// What `peek` returns for a step without an outcome.
  outcome missing_;
};

// -- when_all / when_any ----------------------------------------------------------------------

namespace detail {

template <class T>
using void_to_monostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class A>
auto resume_value(A& a) {
  if constexpr (std::is_void_v<decltype(a.await_resume())>) {
    a.await_resume();
    return std::monostate{};
  } else {
    return a.await_resume();
  }
}

/// Waits on the steps of several awaiters at once.
class group_awaiter {
public:
  group_awaiter(context& ctx, std::vector<uint32_t> steps, bool any) noexcept
    : ctx_(&ctx), steps_(std::move(steps)), any_(any) {}
  bool await_ready() const noexcept;
  void await_suspend(std::coroutine_handle<> h) noexcept {
    ctx_->park(steps_.data(), steps_.size(), any_, h);
  }

protected:
  /// Index of the awaiter whose outcome arrived first (journal order).
  size_t first() const noexcept;
  context* ctx_;
  std::vector<uint32_t> steps_;
  bool any_;
};

template <class... A>
class all_of : public group_awaiter {
public:
  explicit all_of(A&... awaiters)
    : group_awaiter(std::get<0>(std::tie(awaiters...)).ctx(), {awaiters.step()...}, false),
      awaiters_(awaiters...) {}
  std::tuple<void_to_monostate<decltype(std::declval<A&>().await_resume())>...> await_resume() {
    return std::apply([](auto&... a) { return std::make_tuple(resume_value(a)...); }, awaiters_);
  }

private:
  std::tuple<A&...> awaiters_;
};

template <class A>
class all_of_range : public group_awaiter {
public:
  explicit all_of_range(std::vector<A>& awaiters)
    : group_awaiter(awaiters.at(0).ctx(), steps_of(awaiters), false), awaiters_(&awaiters) {}
  auto await_resume() {
    std::vector<void_to_monostate<decltype(std::declval<A&>().await_resume())>> out;
    for (auto& a : *awaiters_)
      out.push_back(resume_value(a));
    return out;
  }
  static std::vector<uint32_t> steps_of(std::vector<A>& as) {
    std::vector<uint32_t> out;
    for (auto& a : as)
      out.push_back(a.step());
    return out;
  }

private:
  std::vector<A>* awaiters_;
};

/// Yields the index of the first awaiter to finish and abandons the others (their timers are
/// cancelled, their channels stop taking messages, late activity results are ignored).
class any_of : public group_awaiter {
public:
  using group_awaiter::group_awaiter;
  size_t await_resume();
};

} // namespace detail

/// Awaits every awaiter; yields a tuple of their results (std::monostate for `void`).
/// A failure of any of them is raised after all have finished.
template <class... A>
detail::all_of<A...> when_all(A&... awaiters) {
  return detail::all_of<A...>(awaiters...);
}

/// Awaits every awaiter of a vector (scatter-gather); yields a vector of results.
/// @pre `awaiters` is not empty.
template <class A>
detail::all_of_range<A> when_all(std::vector<A>& awaiters) {
  return detail::all_of_range<A>(awaiters);
}

/// Awaits the first of several awaiters (first response wins); yields its index. `co_await`
/// the winner afterwards for its result (it is ready at once).
template <class... A>
detail::any_of when_any(A&... awaiters) {
  auto& ctx = std::get<0>(std::tie(awaiters...)).ctx();
  return detail::any_of(ctx, {awaiters.step()...}, true);
}

template <class A>
detail::any_of when_any(std::vector<A>& awaiters) {
  return detail::any_of(awaiters.at(0).ctx(), detail::all_of_range<A>::steps_of(awaiters), true);
}

// -- awaiter implementations -------------------------------------------------------------------

template <class R>
R call_awaiter<R>::await_resume() {
  if (race_) {
    // A result that arrived counts even if the deadline fired too: it was paid for.
    bool timed_out = !ctx_->has_outcome(step_);
    if (timed_out) {
      ctx_->abandon(step_);
      (void) ctx_->take(*race_);
      throw activity_error(target_, step_, "timed out (total_timeout)");
    }
    ctx_->abandon(*race_);
  }
  const auto& result = ctx_->peek(step_);
  if (!result.ok())
    throw activity_error(target_, step_, result.payload);
  if constexpr (std::is_void_v<R>)
    return;
  else
    return detail::from_json_text<R>(result.payload);
}

template <class M, bool W>
std::conditional_t<W, std::optional<M>, M> message_awaiter<M, W>::await_resume() {
  if constexpr (W) {
    // A message that arrived is taken even if the timer fired too: never drop a message.
    bool timed_out = !ctx_->has_outcome(step_);
    if (timed_out) {
      ctx_->abandon(step_);
      (void) ctx_->take(*race_);
      return std::nullopt;
    }
    ctx_->abandon(*race_);
  }
  const auto& result = ctx_->peek(step_);
  if (!result.ok())
    throw std::runtime_error("message step " + std::to_string(step_) + " failed: " + result.payload);
  return detail::from_json_text<M>(result.payload);
}

} // namespace convoy
