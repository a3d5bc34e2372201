#pragma once

#include <chrono>
#include <cstdint>

namespace convoy {

/// Wall-clock milliseconds since the Unix epoch: the time base of durable timers and of
/// every timestamp stored in the MessageBox. (Engine code only: orchestrations use ctx.now().)
inline int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace convoy
