#pragma once

#include "convoy/actors/instance_actor.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node_config.hpp"
#include "convoy/runtime/throttle.hpp"

#include <caf/actor.hpp>

#include <caf/fwd.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace convoy::runtime {

/// The node's running host actors by name. A host restarted by its supervisor is a new actor:
/// its start function records it here, and whoever needs a host (membership, the rollback
/// listener) looks it up at the time. Thread-safe.
class host_directory {
public:
  void set(const std::string& host, caf::actor actor);
  /// An invalid handle when `host` does not run here (now).
  caf::actor get(const std::string& host) const;
  void erase(const std::string& host);
  void clear();
  /// The hosts running now, by name.
  std::vector<std::string> names() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, caf::actor> hosts_;
};

/// What a node observes of itself, for its admin endpoint (`/readyz`, `/metrics`, the tree).
/// Thread-safe.
struct node_observations {
  /// Wall-clock ms of the last heartbeat the MessageBox acknowledged (0: none yet).
  std::atomic<int64_t> heartbeat_ok_ms{0};
  /// Messages this node's hosts took over from dead nodes (relocations carried out).
  std::atomic<int64_t> messages_taken_over{0};
  /// Whether this node holds the cluster supervisor's lease.
  std::atomic<bool> cluster_supervisor{false};

  void set_tree(std::string json) {
    std::lock_guard<std::mutex> guard(mtx_);
    tree_ = std::move(json);
  }
  /// The supervision tree as last described ("" before the first description).
  std::string tree() const {
    std::lock_guard<std::mutex> guard(mtx_);
    return tree_;
  }

private:
  mutable std::mutex mtx_;
  std::string tree_;
};

/// What every host instance of a node shares.
struct host_services {
  const node_config* config = nullptr;
  const registry* orchestrations = nullptr;
  persistence::message_box* box = nullptr;
  /// Instances the processing host holds in memory: the load this node reports.
  std::shared_ptr<std::atomic<size_t>> instances_in_memory = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<host_directory> directory = std::make_shared<host_directory>();
  std::shared_ptr<throttle_board> throttle = std::make_shared<throttle_board>();
  std::shared_ptr<node_observations> observed = std::make_shared<node_observations>();
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
