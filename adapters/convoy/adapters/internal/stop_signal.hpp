#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace convoy::adapters::internal {

/// Lets an adapter's thread sleep between polls and still stop at once when asked.
class stop_signal {
public:
  /// Sleeps until `deadline` or a stop; returns true when stopped.
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> deadline) {
    std::unique_lock<std::mutex> lock(mtx_);
    return cv_.wait_until(lock, deadline, [this] { return stopped_; });
  }

  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until(std::chrono::steady_clock::now() + d);
  }

  bool stopped() {
    std::lock_guard<std::mutex> lock(mtx_);
    return stopped_;
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mtx_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

} // namespace convoy::adapters::internal
