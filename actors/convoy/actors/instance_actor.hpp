#pragma once

#include "convoy/actors/instance_store.hpp"
#include "convoy/actors/registry.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace convoy {

/// What an instance actor needs from its node. Shared, immutable once instances run.
struct instance_services {
  const registry* orchestrations = nullptr;
  instance_store* store = nullptr;
  /// Name of the node, recorded as the instance's owner.
  std::string node;
  /// Name of the processing host this actor runs in (its queue holds the instance's input).
  std::string host;
  /// An instance idle this long after a persistence point leaves memory (dehydrates); the
  /// next message for it brings it back by replay. 0 = never.
  std::chrono::milliseconds dehydrate_after{0};
  /// Durability per orchestration type from the node's configuration; it wins over the
  /// registry's (`registry::set_durability`), which wins over the node's default.
  std::map<std::string, durability_level> durability_by_type;
};

/// A message for one instance, read from its host's queue.
struct instance_message {
  enum class kind : uint8_t {
    start,   ///< the instance was created: run it
    result,  ///< an activity or child outcome for `step`
    timer,   ///< the durable timer of `step` fired
    message, ///< a correlated message for `channel`
    signal,  ///< a signal for `channel` ("signal:<name>")
    cancel,  ///< an operator asked to cancel the instance
    /// an operator suspended or terminated the instance, fencing owner epochs below the one
    /// in `payload`: an actor holding such an epoch leaves memory now
    evict,
  };
  /// Queue entry id; acknowledged by the persistence point that consumes it.
  std::string message_id;
  kind what = kind::start;
  uint32_t step = 0;
  /// Run (continue_as_new generation) the message is for; others are stale and dropped.
  uint32_t generation = 0;
  bool ok = true;
  std::string channel;
  std::string payload;
};

/// Spawns the actor that runs one orchestration instance: it claims the instance (new owner
/// epoch), replays its journal, runs it live, and writes a persistence point whenever the
/// coroutine suspends with something new to record. It quits when the instance reaches a
/// final state, when it is fenced by a newer owner, or when told to.
caf::actor spawn_instance(caf::actor_system& sys, std::shared_ptr<const instance_services> svc,
                          std::string instance_id);

/// Like the above, for an instance whose messages `host` routes. Such an actor never just
/// quits: it tells its host it is leaving (`instance_leaving_atom`, its id, whether to start
/// it again), and only quits once the host answers (`instance_left_atom`), having stopped
/// routing to it. Messages that reached it in between are given back to the queue
/// (instance_store::release), so none waits for an idle-time reclaim.
caf::actor spawn_instance(caf::actor_system& sys, std::shared_ptr<const instance_services> svc,
                          std::string instance_id, const caf::actor& host);

using instance_leaving_atom = caf::atom_constant<caf::atom("ileaving")>;
using instance_left_atom = caf::atom_constant<caf::atom("ileft")>;

/// The exit reason of an instance actor whose persistence point found the store behind it
/// (acknowledged points lost in a failover). Its host starts it again at once; replay then
/// resumes it from what the store holds. A host may also stop an actor with this reason
/// when a rollback report names its instance.
caf::error rolled_back_exit_reason();
bool is_rolled_back_exit(const caf::error& reason);

} // namespace convoy

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(convoy::instance_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(convoy::claim_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(convoy::store_status)
