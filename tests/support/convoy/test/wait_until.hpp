#pragma once

#include <chrono>
#include <functional>

namespace convoy::test {

/// Polls `cond` until it returns true or `deadline` has passed; returns its last answer.
///
/// The one sanctioned way for tests to wait for something: a condition with a deadline,
/// never a bare sleep. `cond` is always evaluated at least once and once more at the
/// deadline, so a condition that becomes true during the last poll interval is not missed.
bool wait_until(std::function<bool()> cond, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll = std::chrono::milliseconds{20});

} // namespace convoy::test
