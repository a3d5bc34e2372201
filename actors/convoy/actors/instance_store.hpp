#pragma once

#include "convoy/actors/context.hpp"
#include "convoy/actors/instance.hpp"
#include "convoy/actors/journal.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace convoy {

/// How the MessageBox answered a claim or a persistence point.
enum class store_status : uint8_t {
  /// Done (or found already done: retries are idempotent).
  ok,
  /// The writer's owner epoch is stale: another node owns the instance now.
  stale_epoch,
  /// The MessageBox could not be reached or answered ambiguously: outcome unknown, retry.
  unavailable,
  /// The MessageBox refused the request for another reason (see the message).
  rejected,
  /// The MessageBox holds less of the instance than its writer saw acknowledged (a failover
  /// lost acknowledged persistence points): the instance must resume from what the store
  /// really holds, by replay.
  rolled_back,
};

/// When a persistence point of an orchestration type counts as acknowledged (see
/// persistence::durability); `node_default` leaves it to the node's configuration.
enum class durability_level : uint8_t { node_default, local, replicated };

/// One persistence point of one instance: everything it wrote since the last one, applied
/// atomically and only if `epoch` is still the instance's owner epoch.
struct checkpoint {
  std::string instance_id;
  /// The orchestration type's durability (set by the instance actor from the registry).
  durability_level durability = durability_level::node_default;
  /// The processing host whose queue holds the consumed messages and receives replies.
  std::string host;
  uint64_t epoch = 0;
  /// The persistence point's number: one more than the stored one, or equal when this is a
  /// retry of a write whose outcome was unknown (then nothing is written twice).
  uint64_t seq = 0;
  instance_status status = instance_status::waiting;
  uint32_t steps = 0;
  std::string result; ///< JSON text, with status completed.
  std::string error;  ///< With status failed or suspended.
  std::vector<journal_entry> entries;
  std::vector<activity_command> activities;
  std::vector<timer_command> timers;
  std::vector<timer_command> cancelled_timers;
  std::vector<child_command> children;
  /// Correlation sets (key, shape) that route messages to this instance from now on.
  std::vector<std::pair<std::string, std::string>> subscriptions;
  /// New queryable state (JSON text), if it changed.
  std::optional<std::string> query_state;
  /// continue_as_new: the journal is replaced by `entries`, the input by `new_input`, and
  /// `generation` is the new run's number.
  bool reset = false;
  std::string new_input;
  uint32_t generation = 0;
  /// Ids of queue messages this persistence point consumes (acknowledged atomically).
  std::vector<std::string> acks;
};

/// A claimed instance: its record (with the new owner epoch) and its journal.
struct claim_result {
  store_status status = store_status::ok;
  std::string error;
  instance_record record;
  std::vector<journal_entry> journal;
};

/// The orchestration engine's view of the MessageBox. Implemented over Redis in
/// `convoy::persistence`; `actors` knows nothing about Redis.
/// Callbacks may run on any thread: implementations in actors forward them as messages (the
/// instance actor handles a write callback that runs synchronously, inside `write` on the
/// writer's thread, in place).
class instance_store {
public:
  virtual ~instance_store() = default;

  /// Takes ownership of an instance: bumps its owner epoch and returns record and journal.
  /// Final instances are returned as they are, without a new epoch.
  virtual void claim(const std::string& instance_id, const std::string& owner,
                     std::function<void(claim_result)> done) = 0;

  /// Writes a persistence point (see `checkpoint`).
  virtual void write(checkpoint cp, std::function<void(store_status, std::string)> done) = 0;

  /// The same for a persistence point the caller keeps (the instance actor keeps it until it is
  /// acknowledged, to retry it). By default a copy goes to `write`; a store that reads the
  /// point without keeping it overrides this and saves the copy.
  virtual void write_kept(const checkpoint& cp,
                          std::function<void(store_status, std::string)> done) {
    write(cp, std::move(done));
  }

  /// Acknowledges queue messages that need no persistence point (duplicates, zombies).
  virtual void ack(const std::string& host, std::vector<std::string> message_ids) = 0;

  /// Gives queue messages back, unconsumed, so that whichever node owns the instance now gets
  /// them at once (a fenced owner must not sit on them until they count as idle).
  virtual void release(const std::string& host, std::vector<std::string> message_ids) = 0;

  /// Keeps queue messages for an instance an operator suspended (resumably) until it is
  /// resumed, acknowledging them; gives them back instead if it was resumed meanwhile.
  virtual void park(const std::string& host, const std::string& instance_id,
                    std::vector<std::string> message_ids) {
    (void) instance_id;
    release(host, std::move(message_ids));
  }
};

} // namespace convoy
