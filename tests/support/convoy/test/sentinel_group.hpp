#pragma once

#include "convoy/test/placement.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace convoy::test {

/// A throwaway Redis master with replicas, watched by a group of Sentinels, on loopback.
///
/// Everything is started by the test under one directory and stopped by PID only: data
/// nodes live in `DIR/node-I` (node 0 starts as the master), Sentinels in `DIR/sentinel-I`
/// with their own `sentinel.conf` (Sentinel rewrites it) and `sentinel.log`. `start`
/// returns only once the topology is settled: every replica's link is up and every
/// Sentinel agrees on the master and sees all replicas and all other Sentinels.
///
/// Data nodes run with `--repl-diskless-sync-delay 0`: Redis 7 otherwise waits 5 s before
/// every full sync, which would slow down both startup and a rejoining old master.
/// The destructor calls `stop()`.
class sentinel_group {
public:
  /// How the group is laid out and how eagerly Sentinel fails over.
  struct options {
    /// Replicas of the initial master.
    int replicas = 2;

    /// Sentinel processes.
    int sentinels = 3;

    /// Sentinels that must agree the master is down before a failover.
    int quorum = 2;

    /// The name the Sentinels monitor the master under.
    std::string master_name = "convoy";

    /// `sentinel down-after-milliseconds`: silence before a node counts as down.
    int down_after_ms = 1000;

    /// `sentinel failover-timeout`.
    int failover_timeout_ms = 3000;

    /// `--appendonly yes` on every data node, so a restarted node keeps its data.
    bool appendonly = true;

    /// Appended to every data node's command line (after ours, so they win).
    std::vector<std::string> extra_redis_args;

    /// Where each member runs ("redis-0" is the initial master, "redis-1"..., "sentinel-0"...);
    /// unset: all on 127.0.0.1 in our own network namespace (see placement.hpp).
    std::function<placement(const std::string& member)> place;
  };

  // -- constructors, destructors, and assignment operators -------------------

  /// Starts the master, the replicas and the Sentinels in `dir` (created if missing).
  ///
  /// Waits up to 15 s for every replica to report `master_link_status:up`, then up to 20 s
  /// for every Sentinel to agree. Throws `std::runtime_error` naming what was missing, with
  /// the tails of the relevant logs, if the group does not settle; whatever was started is
  /// stopped again. Throws `std::invalid_argument` for nonsensical `opts`.
  static sentinel_group start(const std::filesystem::path& dir, options opts);

  /// `start(dir, options{})`. (An overload, not a default argument: GCC cannot use a
  /// nested class with member initializers as a default argument inside its own class.)
  static sentinel_group start(const std::filesystem::path& dir);

  sentinel_group(sentinel_group&&) noexcept = default;

  /// Stops everything this group owned, then takes over `other`'s processes.
  sentinel_group& operator=(sentinel_group&& other) noexcept;

  sentinel_group(const sentinel_group&) = delete;

  sentinel_group& operator=(const sentinel_group&) = delete;

  ~sentinel_group();

  // -- properties ------------------------------------------------------------

  [[nodiscard]] const options& config() const noexcept {
    return opts_;
  }

  /// The current master as the Sentinels see it, so it follows failovers.
  ///
  /// Asks the Sentinels in turn and returns the first answer. Mid-failover they may
  /// disagree for a moment; use `wait_for_failover` to wait until they do not.
  /// Throws `std::runtime_error` if no Sentinel answers.
  [[nodiscard]] std::uint16_t master_port() const;

  /// Every Sentinel as `HOST:PORT` (`127.0.0.1:PORT` unless placed elsewhere), in start order.
  [[nodiscard]] std::vector<std::string> sentinel_addresses() const;

  /// Every Sentinel's port, in start order.
  [[nodiscard]] std::vector<std::uint16_t> sentinel_ports() const;

  /// Every data node's port (the initial master first), running or not.
  [[nodiscard]] std::vector<std::uint16_t> redis_ports() const;

  /// The data node on `port`. Throws `std::out_of_range` if none of ours has that port.
  [[nodiscard]] redis_server& node_on_port(std::uint16_t port);

  /// The data node on `port`. Throws `std::out_of_range` if none of ours has that port.
  [[nodiscard]] const redis_server& node_on_port(std::uint16_t port) const;

  // -- control ---------------------------------------------------------------

  /// `kill -9` (by PID) the node the Sentinels currently call master.
  /// @returns the killed node's port.
  std::uint16_t kill9_master();

  /// Starts a stopped or killed data node again on the same port and directory.
  ///
  /// It comes back as a plain server (no `--replicaof`), like a crashed master rebooting:
  /// Sentinel notices and turns it into a replica of the current master, which takes it
  /// about 10 s. Until then it answers as an (old, possibly stale) master.
  /// @pre the node on `port` is not running. Throws `std::logic_error` if it is.
  void restart(std::uint16_t port);

  /// Waits up to `deadline` until every answering Sentinel reports the same master, other
  /// than `old_master_port`, and that node's `ROLE` says `master`.
  /// @returns whether that happened in time.
  bool wait_for_failover(std::uint16_t old_master_port, std::chrono::milliseconds deadline);

  /// Stops the Sentinels first (so no failover starts during teardown), then the data
  /// nodes, by PID: SIGTERM, repeated every 100 ms for up to 5 s (a replica that is
  /// writing its first AOF after a full sync refuses a shutdown request and forgets it),
  /// then SIGKILL. Idempotent.
  void stop() noexcept;

  // -- assertion helpers -----------------------------------------------------

  /// Runs one command on `host_of(port):port` (a data node or a Sentinel) and renders the
  /// reply as text, exactly like `redis_server::command`.
  static std::string command(std::uint16_t port, std::initializer_list<std::string> args,
                             std::chrono::milliseconds timeout = std::chrono::seconds{10});

  /// Runs `commands` in order over one connection to `host_of(port):port`, like
  /// `redis_commands`. Use it for `SET` + `WAIT`: `WAIT` only counts its own
  /// connection's writes, so through `command` it would return at once.
  static std::vector<std::string>
  commands(std::uint16_t port, std::initializer_list<std::vector<std::string>> commands,
           std::chrono::milliseconds timeout = std::chrono::seconds{10});

private:
  struct data_node {
    std::filesystem::path dir;
    redis_server server;
    placement where;
  };

  struct sentinel {
    std::filesystem::path dir;
    std::uint16_t port = 0;
    child_process process;
  };

  sentinel_group() = default;

  /// The arguments of a data node: ours, `--replicaof` when `replica_of` is not 0, then
  /// `extra_redis_args`.
  [[nodiscard]] std::vector<std::string> data_node_args(std::uint16_t replica_of = 0) const;

  /// The master all answering Sentinels agree on, if at least one answers and none
  /// disagrees.
  [[nodiscard]] std::optional<std::uint16_t> agreed_master() const;

  void start_sentinel(const std::filesystem::path& dir, std::uint16_t master_port,
                      const placement& where);

  /// `opts_.place(member)`, or the default placement when it is unset.
  [[nodiscard]] placement place(const std::string& member) const;

  options opts_;
  std::vector<data_node> nodes_;
  std::vector<sentinel> sentinels_;
};

} // namespace convoy::test
