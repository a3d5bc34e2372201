#pragma once

// Throttling, as BizTalk does it: a host instance that is overloaded, or whose MessageBox is,
// slows its intake instead of taking more work than it can finish. Each host instance checks,
// before every read of its queue:
//
// - in-flight instances: the processing host holds `processing.max_instances` in memory
//   (it then reads nothing until one leaves);
// - memory: the node's resident memory is over `throttling.memory_mb`;
// - persistence latency: persistence points take longer than
//   `throttling.persistence_latency_ms` (moving average), a MessageBox under strain;
// - backlog: the processing host's queue holds more than `throttling.backlog` entries (the
//   receive host stops publishing faster than processing can follow).
//
// A throttled host reads a small batch (an eighth) every `throttling.delay_ms` rather than
// stopping: work still moves, more slowly, and the state clears by itself once the cause does.
// The state and its cause are logged when they change and recorded in the node record with
// every heartbeat (`convoy node list`, `convoy host list`).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace convoy::runtime {

/// The thresholds; 0 turns a check off.
struct throttle_limits {
  size_t memory_mb = 0;
  int64_t backlog = 0;
  std::chrono::milliseconds persistence_latency{0};
  /// The pause between two (small) reads while throttled.
  std::chrono::milliseconds delay{200};
};

/// What one check sees.
struct throttle_inputs {
  size_t resident_mb = 0;
  int64_t backlog = 0;
  int64_t write_latency_us = 0;
  size_t instances = 0;     ///< in memory (processing host)
  size_t max_instances = 0; ///< 0: not checked
};

/// Why `host` must slow down, or "" when it may read at full speed. Pure: unit-tested.
std::string throttle_cause(const std::string& host, const throttle_limits& limits,
                           const throttle_inputs& now);

/// The node's resident memory in MiB (from /proc/self/statm), or 0 if unknown.
size_t resident_memory_mb();

/// The throttle state of every host of a node. Thread-safe.
class throttle_board {
public:
  struct state {
    std::string cause;
    int64_t since_ms = 0;   ///< wall clock, when this cause began
    uint64_t episodes = 0;  ///< how often the host was throttled since the node started
  };

  /// Records what the last check of `host` found ("" = not throttled); logs changes.
  void update(const std::string& host, const std::string& cause);

  /// Why `host` is throttled now, or "".
  std::string cause(const std::string& host) const;

  /// The processing queue's length, as the last heartbeat read it.
  void set_backlog(int64_t n);
  int64_t backlog() const;

  /// The resident memory, sampled at most every 200 ms (reads of /proc are not free).
  size_t resident_mb();

  /// Throttled hosts only: {"host": {"cause": ..., "since_ms": ..., "episodes": ...}}.
  std::string to_json() const;
  std::map<std::string, state> snapshot() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, state> hosts_;
  std::map<std::string, uint64_t> episodes_;
  int64_t backlog_ = 0;
  size_t resident_mb_ = 0;
  std::chrono::steady_clock::time_point sampled_{};
};

} // namespace convoy::runtime
