#pragma once

#include "convoy/actors/instance_actor.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node_config.hpp"

#include <caf/fwd.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace convoy::runtime {

/// What every host instance of a node shares.
struct host_services {
  const node_config* config = nullptr;
  const registry* orchestrations = nullptr;
  persistence::message_box* box = nullptr;
  /// Instances the processing host holds in memory: the load this node reports.
  std::shared_ptr<std::atomic<size_t>> instances_in_memory = std::make_shared<std::atomic<size_t>>(0);
};

/// The receive host: turns `submit` messages of its queue into new orchestration instances
/// (BizTalk: a receive location publishing into the MessageBox, activating an orchestration).
caf::actor spawn_receive_host(caf::actor_system& sys, std::shared_ptr<const host_services> svc);

/// The processing host: competes with the other processing host instances for its queue,
/// routes each message to the instance it is for (claiming and rehydrating it if it is not in
/// memory), fires due durable timers, and takes over messages a dead host instance left.
caf::actor spawn_processing_host(caf::actor_system& sys,
                                 std::shared_ptr<const host_services> svc);

/// Tells a processing host that a rollback hit these instances: those it runs are stopped
/// and started again, so they resume from what the MessageBox holds. Thread-safe.
void restart_instances(const caf::actor& processing_host, std::vector<std::string> instance_ids);

/// Tells a processing host to drop every instance it holds in memory (this node was declared
/// dead and its work taken over; the MessageBox has everything). Thread-safe.
void drop_instances(const caf::actor& processing_host);

/// Tells a host (any kind) to take over what the dead node `dead` left unacknowledged in its
/// queue, in batches until nothing is left. Thread-safe.
void take_over_from(const caf::actor& host, std::string dead);

/// The send host: runs activities requested by orchestrations on a bounded pool of worker
/// threads and publishes their outcomes back, once per request.
caf::actor spawn_send_host(caf::actor_system& sys, std::shared_ptr<const host_services> svc);

} // namespace convoy::runtime
