#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace convoy {

/// Lifecycle of an orchestration instance as stored in the MessageBox.
enum class instance_status : uint8_t {
  /// Created by an activation; no host instance has run it yet.
  pending,
  /// Running in memory on a host instance, between two persistence points.
  running,
  /// Waiting for an activity result or a timer; its progress is persisted.
  waiting,
  /// Finished with a result.
  completed,
  /// Finished with an application failure (an unhandled error in orchestration code).
  failed,
  /// Stopped by Convoy and kept for an operator, with an error: not resumable
  /// (non-determinism, an unknown type, a payload over the limit). Final; an operator may
  /// terminate it.
  suspended,
  /// Ended by a cancellation request (distinct from a failure).
  cancelled,
  /// Ended by an operator (`convoy orch terminate`), with the reason in `error`. Final.
  terminated,
  /// Suspended by an operator (`convoy orch suspend`): takes no steps, and what arrives for
  /// it is parked in the MessageBox until `convoy orch resume` (on any node) continues it from
  /// its last persistence point. Not final. Stored as "suspended-resumable".
  suspended_resumable,
};

std::string_view to_string(instance_status x) noexcept;
std::optional<instance_status> parse_instance_status(std::string_view text) noexcept;

/// True for statuses after which the instance never runs again.
constexpr bool is_final(instance_status x) noexcept {
  return x == instance_status::completed || x == instance_status::failed
         || x == instance_status::suspended || x == instance_status::cancelled
         || x == instance_status::terminated;
}

/// The instance record: what the MessageBox knows about one instance besides its journal.
struct instance_record {
  std::string id;
  std::string type;
  uint32_t version = 0;
  /// The processing host that runs the instance.
  std::string host;
  instance_status status = instance_status::pending;
  /// Owner epoch: bumped by every claim; a persistence point with an older one is rejected.
  uint64_t epoch = 0;
  /// Number of persistence points written; makes a retried persistence point idempotent.
  uint64_t seq = 0;
  /// Node that claimed the instance last.
  std::string owner;
  /// Number of operations issued so far.
  uint32_t steps = 0;
  std::string input;  ///< JSON text.
  std::string result; ///< JSON text, once completed.
  std::string error;  ///< Why the instance failed or was suspended.
  /// What the orchestration declared with `ctx.set_query_state` (JSON text).
  std::string query_state;
  /// Number of continue_as_new restarts.
  uint32_t generation = 0;
  /// The parent instance of a child orchestration, or empty.
  std::string parent;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

} // namespace convoy
