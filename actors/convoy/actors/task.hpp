#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace convoy {

/// A lazy coroutine for internal async code, awaitable from an orchestration (or another
/// task). It starts when awaited and resumes its awaiter when it finishes (symmetric
/// transfer). Inside an orchestration a task may only await the context's awaitables, so it
/// is as deterministic as the orchestration itself; its steps are journaled like any other.
///
/// Ownership: the task object owns its frame. A task awaited in an orchestration lives in the
/// orchestration's frame, so destroying that frame (instance unloaded mid-wait) destroys the
/// task's frame too.
template <class T>
class [[nodiscard]] task {
public:
  class promise_type {
  public:
    task get_return_object() noexcept {
      return task{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }

    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        auto next = h.promise().continuation_;
        return next ? next : std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }

    template <class U>
    void return_value(U&& value) {
      value_.emplace(std::forward<U>(value));
    }
    void unhandled_exception() noexcept { error_ = std::current_exception(); }

  private:
    friend class task;
    std::coroutine_handle<> continuation_;
    std::optional<T> value_;
    std::exception_ptr error_;
  };

  task(task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  task& operator=(task&&) = delete;
  ~task() {
    if (handle_)
      handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle_.promise().continuation_ = awaiter;
    return handle_;
  }
  T await_resume() {
    auto& p = handle_.promise();
    if (p.error_)
      std::rethrow_exception(p.error_);
    return std::move(*p.value_);
  }

private:
  explicit task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

} // namespace convoy
