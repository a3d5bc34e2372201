#pragma once

#include "convoy/actors/errc.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace convoy {

/// What an orchestration awaited. New kinds are appended; numbers never change meaning.
enum class op_kind : uint8_t {
  /// `ctx.call(activity, args)`: an activity executed by a send host.
  call = 1,
  /// `ctx.sleep(d)`: a durable timer.
  sleep = 2,
  /// `ctx.receive(correlation)`: a message routed to the instance by a correlation set.
  receive = 3,
  /// `ctx.now()`: the wall clock, recorded.
  now = 4,
  /// `ctx.random()` / `ctx.uuid()`: random bits, recorded.
  random = 5,
  /// `ctx.child(type, input)`: a child orchestration, awaited or started detached.
  child = 6,
  /// `ctx.signal(name)`: an external event sent to the instance by name.
  signal = 7,
};

/// What happened to an operation. `scheduled` is written when the orchestration issues it,
/// `completed` / `failed` when its outcome arrives.
enum class entry_event : uint8_t {
  scheduled = 1,
  completed = 2,
  failed = 3,
  /// A value the orchestration read (`now`, `random`): scheduled and completed in one entry.
  recorded = 4,
  /// The operation was cancelled before it completed (instance cancellation).
  cancelled = 5,
  /// A message or signal arrived while no step waited for its channel; it waits in the
  /// instance's mailbox. Payload: `{"channel": ..., "body": ...}`; `step` is unused, or,
  /// with `"requeue": true`, names the abandoned step whose message goes back to the front.
  arrived = 6,
  /// The step took the oldest message of its channel's mailbox. Payload: the message.
  consumed = 7,
};

/// One journal entry. The journal of an instance is the ordered list of these entries;
/// replaying it against the orchestration code reproduces the instance's state.
struct journal_entry {
  /// Position of the operation in the orchestration: the n-th operation it issued.
  uint32_t step = 0;
  entry_event event = entry_event::scheduled;
  op_kind op = op_kind::call;
  /// FNV-1a hash of the operation kind, target and arguments: replay compares it to detect
  /// code that changed under a running instance.
  uint64_t op_hash = 0;
  /// JSON text: the arguments (scheduled), the result (completed) or the error (failed).
  std::string payload;

  friend bool operator==(const journal_entry&, const journal_entry&) = default;
};

/// The largest payload one journal entry may carry.
inline constexpr size_t max_journal_payload = 16 * 1024 * 1024;

/// The journal's on-disk format version. Version 1 layout, little-endian:
/// `'C' 'J' version:u8 event:u8 op:u8 step:u32 hash:u64 length:u32 payload[length]`.
/// Our own header rather than CAF serialization, whose format changed in CAF 0.18.
inline constexpr uint8_t journal_format_version = 1;

/// Encodes one entry in the current format.
std::string encode(const journal_entry& entry);

/// Decodes one entry or explains, in `error`, why the bytes are not a journal entry.
/// Never reads past `bytes` and never allocates more than `max_journal_payload`.
struct decode_error {
  errc code;
  std::string message;
};
std::variant<journal_entry, decode_error> decode_journal_entry(std::string_view bytes);

/// The largest op_kind / entry_event this version knows; decoding rejects larger values.
inline constexpr uint8_t max_op_kind = 7;
inline constexpr uint8_t max_entry_event = 7;

/// Hashes an operation's kind, target and JSON-encoded arguments (FNV-1a, 64 bit).
uint64_t operation_hash(op_kind op, std::string_view target, std::string_view args);

std::string_view to_string(op_kind x) noexcept;
std::string_view to_string(entry_event x) noexcept;

} // namespace convoy
