#pragma once

/// @file
/// `orchestration<T>`: a durable business process written as a C++20 coroutine.
///
/// ## The determinism contract
///
/// An instance's progress is its journal: every awaited outcome is recorded at a persistence
/// point. After a crash, relocation or dehydration the coroutine is started again from the
/// top and every recorded `co_await` returns its recorded outcome at once, until the journal
/// is exhausted; then it runs live. For that to reproduce the same state, orchestration code
/// must be a deterministic function of its input and of the outcomes it awaits.
///
/// Orchestration code must NOT:
/// - read clocks (`std::chrono::*::now`, `time`) — use `ctx.now()` (recorded) and durable
///   timers (`ctx.sleep`, `ctx.sleep_until`);
/// - use random numbers, UUID generators or addresses of objects as data — use
///   `ctx.random()` and `ctx.uuid()` (recorded: replay sees the same values);
/// - wait for anything but the context's awaitables (`call`, `sleep`, `receive`, `signal`,
///   `child`, `when_all`, `when_any`) or a `task<T>` that only awaits those; never block;
/// - touch files, sockets, databases, environment variables or other processes —
///   put every side effect in an activity (`ctx.call`), which runs on a send host;
/// - keep state in globals or statics that outlive the instance, or share it between threads;
/// - iterate over unordered containers when the order decides which operations are issued;
/// - capture variables in lambda coroutines (captures die before the frame): write free
///   functions taking the context first and parameters by value;
/// - (g++ 12) `co_await` inside a conditional expression, or with an initializer-list
///   temporary in the awaited expression (`json{{"a", 1}}`): the compiler destroys a
///   temporary twice. Put arguments in named variables and each `co_await` in its own
///   statement;
/// - change the sequence of operations of a registered version: register a new version
///   instead (old instances keep running the version they started with).
///
/// What the engine guarantees in exchange: every outcome is journaled before anything that
/// depends on it is sent; `when_any` picks the winner in journal order, so replay picks the
/// same one; messages for a correlation set or signal that arrive while nobody waits are kept
/// (journaled) in the instance's mailbox; cancellation raises `cancelled_error` at the
/// pending await (catch it to compensate).
///
/// What happens when the contract is broken: each journal entry carries a hash of the
/// operation's kind, target and arguments. A replay that issues a different operation stops
/// the instance as *suspended (not resumable)* with an error naming the step and both
/// operations. The instance is never silently corrupted.

#include "convoy/actors/context.hpp"
#include "convoy/actors/json.hpp"

#include <coroutine>
#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace convoy {

/// What every orchestration promise exposes to the hosting actor, whatever `T` is.
class orchestration_promise_base {
public:
  std::suspend_always initial_suspend() const noexcept { return {}; }
  /// The frame never destroys itself: its owner (the instance actor's state) does.
  std::suspend_always final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept {
    try {
      throw;
    } catch (const cancelled_error& e) {
      cancelled_ = true;
      failure_ = e.what();
    } catch (const std::exception& e) {
      failure_ = e.what();
    } catch (...) {
      failure_ = "unknown exception";
    }
  }

  /// JSON text of the returned value; set once the coroutine returned.
  const std::optional<std::string>& result() const noexcept { return result_; }
  /// Set once the coroutine exited with an exception.
  const std::optional<std::string>& failure() const noexcept { return failure_; }
  /// True when that exception was the cancellation of the instance.
  bool cancelled() const noexcept { return cancelled_; }
  /// Set when the coroutine returned `ctx.continue_as_new(input)`: the new input.
  const std::optional<std::string>& continue_input() const noexcept { return continue_input_; }

protected:
  std::optional<std::string> result_;
  std::optional<std::string> failure_;
  std::optional<std::string> continue_input_;
  bool cancelled_ = false;
};

/// A coroutine that is started, type-erased, by the instance actor.
struct orchestration_frame {
  std::coroutine_handle<> handle;
  orchestration_promise_base* promise = nullptr;
};

/// The return type of an orchestration: `orchestration<R> f(context& ctx, Input in)`.
/// `R` must be convertible to JSON (`to_json`); it may only `co_await` the context's
/// awaitables, which are journaled and deterministic.
template <class T>
class [[nodiscard]] orchestration {
public:
  class promise_type : public orchestration_promise_base {
  public:
    orchestration get_return_object() noexcept {
      return orchestration{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    void return_value(T value) { result_ = json(std::move(value)).dump(); }
    void return_value(continue_as_new_request request) {
      continue_input_ = std::move(request.input);
    }
  };

  orchestration(orchestration&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  orchestration& operator=(orchestration&&) = delete;
  ~orchestration() {
    if (handle_)
      handle_.destroy();
  }

  /// Hands the (not yet started) frame to its owner.
  orchestration_frame release() noexcept {
    auto h = std::exchange(handle_, {});
    return orchestration_frame{h, &h.promise()};
  }

private:
  explicit orchestration(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

} // namespace convoy
