#pragma once

#include "convoy/actors/instance_store.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/redis_client.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace convoy::persistence {

/// When a persistence point counts as acknowledged.
enum class durability : uint8_t {
  /// When the master applied it. A master crash before replication can lose it (Convoy then
  /// replays from what the new master holds: effects may repeat, idempotency keys dedupe).
  local,
  /// When `WAIT` confirms `replicas` replicas hold it too. A short count is "not acknowledged"
  /// (the write may still be there): the instance retries it, idempotently.
  replicated,
};

struct message_box_config {
  redis_endpoint endpoint;
  /// Prepended to every key (see keys.hpp).
  std::string prefix = "convoy:";
  durability level = durability::local;
  int replicas = 1;
  std::chrono::milliseconds wait_timeout{1000};
  /// Group commit (replicated): at most this many writes share one `WAIT`.
  size_t max_group = 512;
  /// How many recent acknowledged persistence points (commit number, instance) a node
  /// remembers, to name the instances a rollback hit.
  size_t rollback_window = 65536;
};

/// Acknowledged persistence points the store no longer holds: found when a (re)connection,
/// typically to a new master after a failover, shows fewer commits than this node saw
/// acknowledged. Redis replicates asynchronously; with `durability::local` this can happen
/// on any master crash, with `replicated` only under faults beyond one.
struct rollback_report {
  std::string server;           ///< the master found behind
  int64_t acknowledged = 0;     ///< highest commit number this node saw acknowledged
  int64_t held = 0;             ///< commits the store holds now
  std::vector<std::string> instances; ///< instances whose acknowledged points were lost
  int64_t unidentified = 0;     ///< lost points older than the remembered window
  int64_t lost() const noexcept { return acknowledged - held; }
};

/// Counters of one MessageBox client, for metrics.
struct message_box_stats {
  int64_t rollbacks_detected = 0;   ///< rollback_reports raised
  int64_t points_lost = 0;          ///< acknowledged persistence points they counted
  int64_t store_changes = 0;        ///< writes refused because the server is not our store
  int64_t group_commits = 0;        ///< WAITs sent for groups of writes (replicated)
  int64_t grouped_writes = 0;       ///< writes those WAITs covered
  int64_t largest_group = 0;
  /// Persistence points' latency, from the call to the acknowledgement (including any WAIT),
  /// as an exponentially weighted moving average (weight 1/8 for each new point).
  int64_t write_latency_us = 0;
  /// Persistence points acknowledged, and their latencies as a cumulative histogram:
  /// `latency_le[i]` counts points acknowledged within `latency_bounds_ms[i]` (the last
  /// bucket is +Inf, equal to `points_acknowledged`); `latency_sum_us` is their total.
  int64_t points_acknowledged = 0;
  std::vector<int64_t> latency_le;
  int64_t latency_sum_us = 0;
  /// Connections that found a different server than the one before (a failover followed).
  int64_t servers_changed = 0;
};

/// The upper bounds (ms) of the persistence latency histogram's buckets, before +Inf.
inline const std::vector<double> latency_bounds_ms{0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500};

/// One entry of a host queue (a Redis Stream entry).
struct queue_entry {
  std::string id;
  std::map<std::string, std::string> fields;
  /// Set (and `fields` left empty) when the entry read back was not acceptable, e.g. a field
  /// over `max_payload_bytes`: the host acknowledges it and logs this.
  std::string error;

  /// The field's value, or an empty string.
  const std::string& field(const std::string& name) const;
};

/// An instance with its journal, as read back for inspection.
struct instance_description {
  bool found = false;
  std::string error;
  instance_record record;
  std::vector<journal_entry> journal;
};

/// The MessageBox: Convoy's typed view of Redis. Instances, journals, host queues and timers.
/// Every write that changes an instance goes through a Redis Function that checks the
/// instance's owner epoch (fencing). Asynchronous calls never block; their callbacks run on
/// the Redis loop thread. Blocking calls (named as such) are for the CLI, start-up and tests.
class message_box final : public instance_store {
public:
  explicit message_box(message_box_config config);
  ~message_box() override;

  /// Blocking. Checks that Redis answers, loads (or upgrades) the function library and
  /// creates the consumer groups of `hosts`. Returns an error message, or "" when ready.
  std::string prepare(const std::vector<std::string>& hosts,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  const keys& key_schema() const noexcept { return keys_; }

  /// The store's identity (`{prefix}store` id), known after `prepare`. Every persistence
  /// point carries it; a server holding another (or none: restarted empty) refuses it.
  const std::string& store_id() const noexcept { return store_id_; }

  /// Called (on the Redis loop thread; keep it cheap) when a rollback is detected. The
  /// report is also logged at error level and appended to the `rollbacks` stream and the
  /// tracking stream of the store. Set before `prepare`.
  void on_rollback(std::function<void(const rollback_report&)> listener);

  message_box_stats stats() const;
  /// `stats().write_latency_us` alone: cheap enough for every queue read (throttling).
  int64_t write_latency_us() const noexcept;
  const redis_endpoint& endpoint() const noexcept { return config_.endpoint; }

  // -- instance_store --------------------------------------------------------------------------

  void claim(const std::string& instance_id, const std::string& owner,
             std::function<void(claim_result)> done) override;
  void write(checkpoint cp, std::function<void(store_status, std::string)> done) override;
  void write_kept(const checkpoint& cp,
                  std::function<void(store_status, std::string)> done) override;
  void ack(const std::string& host, std::vector<std::string> message_ids) override;
  void release(const std::string& host, std::vector<std::string> message_ids) override;
  void park(const std::string& host, const std::string& instance_id,
            std::vector<std::string> message_ids) override;

  // -- host queues (asynchronous) ----------------------------------------------------------------

  using entries_callback = std::function<void(std::vector<queue_entry>, std::string error)>;
  using done_callback = std::function<void(std::string error)>;

  /// Reads up to `count` entries for `consumer` of `host`'s group, waiting up to `block`.
  /// With `own_pending`, returns the consumer's unacknowledged entries instead (no wait):
  /// what a restarted host instance must finish first.
  void read_queue(const std::string& host, const std::string& consumer, size_t count,
                  std::chrono::milliseconds block, bool own_pending, entries_callback done);

  /// Takes over entries other consumers of `host` left unacknowledged for `min_idle`
  /// (XAUTOCLAIM): the work of a dead host instance.
  void reclaim_queue(const std::string& host, const std::string& consumer,
                     std::chrono::milliseconds min_idle, size_t count, entries_callback done);

  /// Creates an instance from a submitted message and starts it on `processing_host`;
  /// acknowledges the message in the same atomic step. Idempotent per instance id.
  void activate(const std::string& receive_host, const std::string& message_id,
                const std::string& instance_id, const std::string& type, uint32_t version,
                const std::string& input, const std::string& processing_host,
                done_callback done);

  /// Publishes an activity's outcome to the instance's host and acknowledges the request,
  /// atomically; a duplicate execution publishes nothing.
  void complete_activity(const std::string& send_host, const std::string& message_id,
                         const std::string& instance_id, uint32_t step, uint32_t generation,
                         bool ok, const std::string& payload, const std::string& reply_host,
                         done_callback done);

  /// Acknowledges a failed attempt and schedules `next` (the request's fields with the next
  /// attempt number) on `send_host`'s queue at `due_ms`, atomically and durably.
  void retry_activity(const std::string& send_host, const std::string& message_id,
                      int64_t due_ms, const std::map<std::string, std::string>& next,
                      done_callback done);

  /// Parks an activity request whose retries are exhausted (`fields` as it should run again)
  /// under `suspension_id` and acknowledges it, atomically and once. An operator resumes it
  /// with `resume_suspended`; until then the calling instance keeps waiting.
  void suspend_activity(const std::string& send_host, const std::string& message_id,
                        const std::string& suspension_id,
                        const std::map<std::string, std::string>& fields,
                        const std::string& reason, done_callback done);

  /// Takes or renews the lease `name` of a single-active adapter for `holder`.
  void adapter_lease(const std::string& name, const std::string& holder,
                     std::chrono::milliseconds ttl,
                     std::function<void(bool held, std::string error)> done);

  /// What became of a published message.
  struct publish_outcome {
    std::string outcome; ///< routed, activated, zombie or no-subscriber
    std::string instance;
    std::string error;
  };
  /// An activation subscription that matched a published message's type.
  struct activation {
    std::string orchestration_type;
    uint32_t version = 0;
    std::string instance_id;
    std::string correlation_key;   ///< initialising correlation of the new instance, or ""
    std::string correlation_shape;
    std::string host = "processing";
  };
  /// Routes a published message (see convoy_publish in lua/convoy.lua) and acknowledges its
  /// receive-queue entry, atomically.
  void publish(const std::string& receive_host, const std::string& message_id,
               const std::string& type, const std::string& body,
               const std::map<std::string, std::string>& properties,
               const std::optional<activation>& activate,
               std::function<void(publish_outcome)> done);

  /// Moves up to `limit` timers due at `now_ms` into their hosts' queues, each exactly once.
  void fire_timers(int64_t now_ms, size_t limit,
                   std::function<void(int64_t fired, std::string error)> done);

  // -- cluster membership and relocation (asynchronous) ---------------------------------------

  /// A take-over the cluster supervisor assigned to a node: what `dead` left on `host`.
  struct assignment {
    std::string dead, host;
  };
  /// What a heartbeat brings back besides the renewal.
  struct heartbeat_reply {
    /// 0 renewed, 1 joined, 2 rejoined after it was declared dead (what it holds in memory
    /// may run elsewhere now: drop it).
    int code = 0;
    /// Entries in the processing host's queue (read or not): the backlog receive throttles on.
    int64_t backlog = 0;
    /// The take-overs the cluster supervisor assigned to this node.
    std::vector<assignment> todo;
    /// What operators asked of this node's hosts (`convoy host start|stop`): host -> "start"
    /// or "stop", the desired state.
    std::map<std::string, std::string> host_commands;
    std::string error;
  };
  /// Renews `node`'s lease for `ttl`, recording the hosts it runs, its load, its throttle
  /// state (JSON text) and the hosts an operator stopped, in one round trip.
  void heartbeat(const std::string& node, std::chrono::milliseconds ttl,
                 const std::vector<std::string>& hosts, size_t load, const std::string& throttle,
                 std::function<void(heartbeat_reply)> done,
                 const std::vector<std::string>& stopped = {});

  /// Asks `node` to start or stop (`command`) its instance of `host` with its next
  /// heartbeat. Blocking; returns an error or "".
  std::string command_host(const std::string& node, const std::string& host,
                           const std::string& command,
                           std::chrono::milliseconds timeout = std::chrono::seconds(3));

  using lease_callback =
    std::function<void(bool held, int64_t epoch, std::string holder, std::string error)>;
  /// Takes or renews the cluster supervisor's lease for `ttl`.
  void cluster_lease(const std::string& node, std::chrono::milliseconds ttl, lease_callback done);

  /// Takes or renews the lease of the single-active host `host` for `ttl`: the holder runs it.
  void host_lease(const std::string& host, const std::string& node, std::chrono::milliseconds ttl,
                  lease_callback done);

  /// Records `node`'s supervision tree (JSON text) in its node record, for `convoy tree`.
  void publish_tree(const std::string& node, std::string tree_json);

  /// Records where `node`'s admin endpoint listens. Blocking; returns an error or "".
  std::string record_admin(const std::string& node, const std::string& address,
                           std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// One planned take-over: `target`'s instance of `host` takes what `dead` left pending.
  struct relocation {
    std::string dead, host, target;
    int64_t pending = 0;
  };
  /// The cluster supervisor's step, fenced by its lease `epoch` (see convoy_plan_relocation).
  void plan_relocation(const std::string& holder, int64_t epoch,
                       const std::vector<std::string>& hosts,
                       std::function<void(std::vector<relocation>, std::string error)> done);

  /// Moves up to `count` of `dead`'s unacknowledged entries of `host` to `consumer` and
  /// returns them (none once the assignment is done, which removes it).
  void take_over(const std::string& host, const std::string& dead, const std::string& consumer,
                 size_t count, entries_callback done);

  /// Records where `node` listens for its peers, and checks its BASP settings against the
  /// cluster's (the first node's). Blocking. Returns an error naming both values, or "".
  std::string register_link(const std::string& node, const std::string& address,
                            int64_t heartbeat_ms, int64_t connection_timeout_ms,
                            std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// Every node's link address (node -> host:port).
  void links(std::function<void(std::map<std::string, std::string>, std::string error)> done);

  /// Ends `node`'s lease now: the cluster supervisor `holder` (at lease `epoch`) saw it fail
  /// (`why`). Its next step declares it dead and hands its work over. Refused unless
  /// `holder` still holds the cluster lease at `epoch`.
  void end_lease(const std::string& node, const std::string& holder, int64_t epoch,
                 const std::string& why, done_callback done);

  /// Ends `node`'s lease now (a graceful stop): the cluster supervisor's next step hands what
  /// it left unacknowledged to the other nodes, without waiting for the lease to lapse.
  /// Blocking. Returns an error message or "".
  std::string leave_cluster(const std::string& node,
                            std::chrono::milliseconds timeout = std::chrono::seconds(2));

  struct node_info {
    std::string name, status, hosts;
    std::string throttle; ///< JSON object: host -> {cause, since_ms}, for throttled hosts
    std::string tree;     ///< JSON: the node's supervision tree as it last published it
    std::string admin;    ///< host:port of its admin endpoint ("" = none)
    std::string stopped;  ///< hosts an operator stopped on it (comma separated)
    int64_t lease_expires_ms = 0, heartbeat_ms = 0, load = 0, generation = 0;
  };
  /// The membership as the MessageBox holds it.
  struct cluster_view {
    std::vector<node_info> nodes; ///< live, lapsed, or dead with work still pending
    std::string supervisor;       ///< the cluster lease's holder ("" when none ever held it)
    int64_t supervisor_epoch = 0; ///< its fencing epoch
    int64_t supervisor_lease_expires_ms = 0;
    std::string error;
  };
  /// The members by name, and the cluster supervisor. Blocking.
  cluster_view list_nodes(std::chrono::milliseconds timeout = std::chrono::seconds(3));

  // -- blocking calls (CLI, start-up, tests) ------------------------------------------------------

  /// What `convoy box stat` shows of the server and the store.
  struct server_status {
    std::string error;
    std::string address;    ///< the server answering (the master, through Sentinel)
    std::string role;       ///< ROLE: master, slave, sentinel
    std::string version;
    int64_t connected_replicas = 0;
    /// Each replica as INFO lists it: "ip=...,port=...,state=online,offset=...,lag=..".
    std::vector<std::string> replicas;
    int64_t master_repl_offset = 0;
    int64_t used_memory = 0, maxmemory = 0;
    struct queue {
      int64_t length = 0;  ///< entries in the stream (read or not, not yet acknowledged)
      int64_t pending = 0; ///< read by a consumer, not yet acknowledged
    };
    std::map<std::string, queue> queues; ///< per host
    int64_t commits = 0;                 ///< persistence points the store applied
    int64_t rollbacks = 0;               ///< rollback reports in {p}rollbacks
    int64_t unrouted = 0, zombies = 0;
  };
  server_status status(const std::vector<std::string>& hosts,
                       std::chrono::milliseconds timeout = std::chrono::seconds(3));


  /// Puts a `publish` message (type, JSON body, properties) on the receive host's queue.
  /// `activation_id` names the instance if the message activates one (default: generated).
  std::string submit_message(const std::string& receive_host, const std::string& type,
                             const std::string& body_json,
                             const std::map<std::string, std::string>& properties,
                             const std::string& activation_id = "",
                             std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// `submit_message`, once per `dedupe_key` for `ttl`: a repeated key adds nothing and
  /// returns the id the first submission got (`activation_id`, which names the message).
  struct submitted {
    std::string id;
    bool duplicate = false;
    std::string error;
  };
  submitted submit_message_once(const std::string& receive_host, const std::string& type,
                                const std::string& body_json,
                                const std::map<std::string, std::string>& properties,
                                const std::string& activation_id, const std::string& dedupe_key,
                                std::chrono::milliseconds ttl,
                                std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// Suspended activity requests (see `suspend_activity`): id -> record (JSON text).
  struct suspended_list {
    std::map<std::string, std::string> entries;
    std::string error;
  };
  suspended_list list_suspended(std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// Puts a suspended request back on its queue, its attempts starting over. Returns an
  /// error message (naming an unknown id) or "".
  std::string resume_suspended(const std::string& suspension_id,
                               std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// Sends a signal (`kind` "signal") or a cancellation ("cancel") to a running instance.
  /// Returns an error message or "".
  std::string send_to_instance(const std::string& instance_id, const std::string& kind,
                               const std::string& name, const std::string& payload_json,
                               std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// The newest entries of the zombies or unrouted stream, as field maps (newest first).
  struct message_list {
    std::vector<queue_entry> entries;
    std::string error;
  };
  message_list list_stream(const std::string& key, size_t limit,
                           std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// Puts a `submit` message on the receive host's queue. Returns an error message or "".
  std::string submit(const std::string& receive_host, const std::string& type,
                     const std::string& input_json, const std::string& instance_id,
                     std::chrono::milliseconds timeout = std::chrono::seconds(3));

  struct instance_list {
    std::vector<instance_record> instances;
    std::string error;
  };
  /// The newest `limit` instances, newest first.
  instance_list list_instances(size_t limit,
                               std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// `limit` instances from the `skip`-th newest on, newest first: a page of a full scan.
  instance_list list_instances(size_t skip, size_t limit,
                               std::chrono::milliseconds timeout);

  // -- operator control (blocking; see lua/convoy.lua) -------------------------------------------

  /// What an operator verb did: `error` starts with its CONVOY_* code when refused
  /// (CONVOY_NO_INSTANCE, CONVOY_FINAL, CONVOY_NOT_RESUMABLE, CONVOY_NOT_SUSPENDED).
  struct control_outcome {
    std::string error;
    /// suspend: "OK" or "ALREADY"; resume: the number of parked messages delivered.
    std::string detail;
  };
  /// Suspends an unfinished instance resumably (status suspended-resumable), fencing its
  /// owner; what arrives for it is parked until `resume`. `by` names the operator.
  control_outcome suspend(const std::string& instance_id, const std::string& reason,
                          const std::string& by,
                          std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// Resumes an instance `suspend` suspended: some node rehydrates it from its last
  /// persistence point and gets its parked messages. Refuses a not-resumable suspension.
  control_outcome resume(const std::string& instance_id, const std::string& reason,
                         const std::string& by,
                         std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// Ends an unfinished (or not-resumably suspended) instance as terminated with `reason`.
  control_outcome terminate(const std::string& instance_id, const std::string& reason,
                            const std::string& by,
                            std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// Deletes a finished instance whose status is among `statuses` and that was last updated
  /// before `updated_before_ms`. Returns whether it was deleted, or an error.
  control_outcome purge(const std::string& instance_id, const std::vector<std::string>& statuses,
                        int64_t updated_before_ms,
                        std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// The operator actions recorded for an instance (JSON objects: at, action, reason, by),
  /// oldest first.
  std::vector<std::string> audit_trail(const std::string& instance_id,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(3));

  instance_description describe(const std::string& instance_id,
                                std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// The Redis server's version, or an error message prefixed with "error: ".
  std::string server_version(std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// The connection for commands (blocking helpers and diagnostics).
  redis_connection& commands() noexcept { return *commands_; }

private:
  struct group_commit;
  struct rollback_watch;

  redis_connection& reader(const std::string& host, const std::string& consumer);

  /// Sends a write whose acknowledgement is promised to someone: with `replicated`, it joins
  /// the current group and `done` runs after the group's `WAIT` (a short count turns the
  /// reply into a NOREPLICAS error: outcome unknown). With `local`, it is sent as is.
  /// Sends a persistence point's FCALL (the store id still to append) and answers `done`.
  void send_checkpoint(std::vector<std::string> argv, const std::string& instance_id,
                       durability_level level, std::function<void(store_status, std::string)> done);
  void durable(std::vector<std::string> argv, std::function<void(redis_value)> done,
               durability_level level = durability_level::node_default);
  /// Blocking `durable`, for the CLI and tests.
  redis_value run_durable(std::vector<std::string> argv, std::chrono::milliseconds timeout);
  /// Loop thread: sends the waiting writes (up to max_group) and one WAIT behind them.
  void flush_group();
  /// Loop thread: a new connection answered the store handshake.
  void on_store_seen(const std::vector<redis_value>& replies, const redis_endpoint& server);
  /// Loop thread: a persistence point of `instance` was acknowledged as commit `commit`.
  void remember_commit(int64_t commit, const std::string& instance);

  message_box_config config_;
  keys keys_;
  redis_loop loop_;
  std::unique_ptr<group_commit> group_;
  std::unique_ptr<rollback_watch> watch_;
  /// Set once by `prepare`, before any write; read without a lock on every persistence point.
  /// (The rollback watch keeps its own copy, under its mutex, for the loop thread's handshake.)
  std::string store_id_;
  std::unique_ptr<redis_connection> commands_;
  std::mutex readers_mtx_;
  /// Blocking XREADGROUP calls occupy a connection each: one per (host, consumer).
  std::map<std::string, std::unique_ptr<redis_connection>> readers_;
};

/// Parses an HGETALL reply of an instance record. Unknown fields are ignored.
instance_record parse_instance_record(const std::string& id, const redis_value& flat);

/// "" when every field of an instance record read back is within `max_payload_bytes`, else
/// what is too large.
std::string check_record_size(const std::string& id, const redis_value& flat);

} // namespace convoy::persistence
