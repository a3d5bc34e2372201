#pragma once

#include "convoy/test/process.hpp"
#include "convoy/test/sentinel_group.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace convoy::chaos {

/// How the launched cluster is configured (HA-TEST-PLAN.md, "Topology").
struct cluster_options {
  std::string convoy_binary;
  int nodes = 3;
  int heartbeat_ms = 250;
  int lease_ttl_ms = 1500;
  int down_after_ms = 1000;
  int failover_timeout_ms = 3000;
  /// The processing queue length past which receive hosts throttle (F9 makes it engage).
  int backlog = 60;
  /// A node's resident memory past which its hosts throttle.
  int memory_mb = 512;
  /// Redis `min-replicas-to-write` on every data node (0: off, Redis' default). With 1, a
  /// master left without a replica (a stalled old master after a promotion) refuses writes.
  int min_replicas_to_write = 0;
  /// Where the sink (tests/chaos/workload.hpp) listens: the nodes' send port calls it.
  std::string sink_host = "127.0.0.1";
  std::uint16_t sink_port = 0;
  /// Where each member runs: "redis-I", "sentinel-I", "node-I" (see netns.hpp). Unset:
  /// everything on 127.0.0.1 in our own network namespace.
  std::function<test::placement(const std::string& member)> place;
};

/// One `convoy node` of the cluster: its name, ports, configuration file and log.
struct node_slot {
  std::string name;
  std::uint16_t http_port = 0;  ///< the chaos-in HTTP receive location
  std::uint16_t admin_port = 0; ///< /metrics, /readyz
  std::filesystem::path config;
  std::filesystem::path log;
  test::placement where; ///< its address (and namespace)
  test::child_process process;
  bool stopped = false; ///< SIGSTOPped by a fault
  int starts = 0;
};

/// The chaos topology on loopback (or in network namespaces, see netns.hpp), in `dir`: a Sentinel group (1 master, 2 replicas, 3
/// Sentinels, quorum 2, appendonly) and `nodes` real `convoy node` processes, each running
/// the receive, processing and send hosts with replicated durability. Every process is ours
/// and is stopped by its PID (the destructor stops everything, continuing stopped ones first).
class cluster {
public:
  cluster(std::filesystem::path dir, cluster_options opts);
  ~cluster();

  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  const cluster_options& options() const noexcept { return opts_; }

  test::sentinel_group& redis() { return group_; }

  std::vector<node_slot>& nodes() { return nodes_; }

  /// Starts node `i` (again, after a kill, on the same ports and configuration).
  void start_node(size_t i);

  /// Waits up to `deadline` until every running node answers /readyz with 200.
  bool wait_ready(std::chrono::milliseconds deadline);

  /// kill -9 of node `i`, reaped at once.
  void kill9_node(size_t i);

  /// SIGSTOP / SIGCONT of node `i`.
  void stop_node(size_t i);
  void continue_node(size_t i);

  /// kill -9 of the Redis data node on `port`; `restart_redis` starts it again on the same
  /// port and data folder (it comes back as a master and Sentinel turns it into a replica).
  void kill9_redis(std::uint16_t port);
  void restart_redis(std::uint16_t port);

  /// SIGSTOP / SIGCONT of the Redis data node on `port`.
  void stop_redis(std::uint16_t port);
  void continue_redis(std::uint16_t port);

  /// Waits up to `deadline` until the Sentinels agree on a master that says ROLE master and
  /// every other data node is its connected replica: the group is whole again.
  bool wait_redis_settled(std::chrono::milliseconds deadline);

  /// The master the Sentinels name now (0 when none answers).
  std::uint16_t master_port() const;

  /// Every PID we own but the Sentinels' (nodes first, then Redis), for the watchdog.
  std::vector<pid_t> pids();

  /// The nodes' PIDs, in node order (-1 for none).
  std::vector<pid_t> node_pids();

  /// Continues whatever a fault left stopped, then stops every node and the Redis group by
  /// PID. Idempotent.
  void stop() noexcept;

private:
  void write_config(size_t i);

  std::filesystem::path dir_;
  cluster_options opts_;
  test::sentinel_group group_;
  std::vector<node_slot> nodes_;
  std::vector<std::uint16_t> stopped_redis_;
  std::mutex mutex_;
};

/// A node's resident set size in MiB from /proc (0 when it is not running).
double rss_mb(pid_t pid);

} // namespace convoy::chaos
