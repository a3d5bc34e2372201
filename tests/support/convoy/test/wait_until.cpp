#include "convoy/test/wait_until.hpp"

#include <algorithm>
#include <thread>

namespace convoy::test {

bool wait_until(std::function<bool()> cond, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll) {
  using clock = std::chrono::steady_clock;
  const auto end = clock::now() + deadline;
  for (;;) {
    if (cond())
      return true;
    const auto now = clock::now();
    if (now >= end)
      return false;
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(end - now);
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(poll, left));
  }
}

} // namespace convoy::test
