#pragma once

#include "convoy/adapters/internal/stop_signal.hpp"

#include <functional>
#include <thread>

namespace convoy::adapters::internal {

/// The one thread of a polling adapter (file, schedule) with the signal that stops it.
class worker_thread {
public:
  ~worker_thread() { stop(); }

  /// Runs `body` on the thread unless it runs already. `body` returns when `stopping()` says.
  void start(std::function<void()> body) {
    if (!thread_.joinable())
      thread_ = std::thread(std::move(body));
  }

  /// Signals the thread and waits for it. Idempotent; a no-op when it never started.
  void stop() {
    if (!thread_.joinable())
      return;
    stopping_.stop();
    thread_.join();
  }

  bool running() const noexcept { return thread_.joinable(); }
  stop_signal& stopping() noexcept { return stopping_; }

private:
  stop_signal stopping_;
  std::thread thread_;
};

} // namespace convoy::adapters::internal
