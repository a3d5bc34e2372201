#pragma once

#include "workload.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace convoy::chaos {

using json = nlohmann::json;

/// What the sampler saw of one instance over the run, and what the MessageBox held at the end.
struct instance_track {
  std::string id;
  int expected_steps = 0;
  bool acknowledged = false; ///< some attempt got a 202
  int64_t acknowledged_ms = -1;
  // -- last sample ---------------------------------------------------------------------------
  int64_t seq = -1;
  int64_t steps = -1;
  int64_t epoch = -1;
  std::string owner;
  std::string status;
  std::uint16_t master = 0; ///< the master the last sample was read from
  int64_t finished_ms = -1; ///< first sample that showed a final status
  // -- C2 / C4 evidence -------------------------------------------------------------------------
  int regressions = 0;                 ///< seq or steps went down on the same master
  int regressions_across_failover = 0; ///< went down between two masters (unacknowledged)
  std::string first_regression;        ///< e.g. "seq 12 -> 11 on :40123", for the report
  /// epoch -> (owner, master generation: how many master changes the sampler had seen)
  std::map<int64_t, std::pair<std::string, size_t>> owner_by_epoch;
  int epoch_owner_conflicts = 0; ///< one epoch seen with two owners under one master
  /// One epoch with two owners on two masters: a claim the old master took (cut off or
  /// frozen) that the failover discarded. Never acknowledged to its node (a claim waits for
  /// the replicas), so not a double grant; the node logs (C4) show acknowledged claims only.
  int epoch_owner_conflicts_across_failover = 0;
  // -- the final MessageBox ----------------------------------------------------------------------
  bool found = false;
  std::string final_status;
  std::string final_result;
  std::string final_input;
  int64_t final_seq = -1;
  int64_t final_steps = -1;
  std::vector<std::string> journal; ///< raw entries
};

/// One fault as planned by the seed and as it happened.
struct fault_event {
  std::string type;     ///< F1, F2, F3, F4, F5, F6, F9
  int64_t plan_at_ms = 0;
  int64_t plan_hold_ms = 0;
  int target = -1;      ///< node index (F1, F2; F5, F6: the node cut off)
  // -- as run --------------------------------------------------------------------------------
  bool injected = false;
  bool healed = false;
  int64_t at_ms = -1;
  int64_t healed_ms = -1;
  std::uint16_t redis_port = 0;   ///< the master it hit (F3, F4; F5: the one cut off)
  std::uint16_t new_master = 0;   ///< the master Sentinel promoted (F3, F4)
  int64_t failover_ms = -1;       ///< injection to the Sentinels naming a new master
  std::vector<std::string> affected; ///< instances in flight it hit (owned by the node: F1, F2)
  size_t log_offset = 0;          ///< the victim's log size when it was healed (F2)
  std::vector<size_t> log_offsets; ///< every node log's size at injection (F5, F6)
  std::vector<std::string> cut;   ///< the paths a partition cut, "a-b" (F5, F6)
  std::map<std::string, int64_t> figures; ///< the fault's own numbers (F5, F6), for the report
  std::string note;
};

/// Everything a run observed, for the checkers.
struct run_history {
  std::vector<operation> operations;
  std::vector<arrival> arrivals;
  std::map<std::string, instance_track> instances;
  std::vector<fault_event> faults;
  std::vector<std::pair<int64_t, std::uint16_t>> master_changes; ///< (t, new master)
  double max_rss_mb = 0;
  std::map<std::string, double> max_rss_by_node;
  int64_t max_queue = 0;
  std::map<std::string, int64_t> max_queue_by_host;
  int64_t throttled_samples = 0; ///< node/host samples whose convoy_throttled was 1
  int64_t last_heal_ms = 0;
  int64_t settled_ms = -1; ///< when every acknowledged instance had finished
  std::vector<std::string> node_logs; ///< paths
  int64_t rollbacks = 0;   ///< entries of the MessageBox's rollbacks stream
  /// C4's direct probe, after quiescence: persistence points written by the tool with an owner
  /// epoch one below the record's (a stale owner's write), which the store must refuse.
  int64_t probe_attempted = 0;
  int64_t probe_rejected = 0;      ///< refused with CONVOY_STALE_EPOCH
  std::vector<std::string> probe_accepted; ///< instances whose stale write was applied
};

/// Limits the checkers hold the run to.
struct check_limits {
  int64_t settle_ms = 120'000; ///< C5: every instance finishes within this after the last heal
  double rss_cap_mb = 1024;    ///< C7
  int64_t queue_cap = 20'000;  ///< C7
};

/// Runs C1-C7 (HA-TEST-PLAN.md) over `h`; O(n) in operations, arrivals and journal entries.
/// Returns `{"C1": {...,"pass": bool}, ...}`.
json run_checkers(const run_history& h, const check_limits& limits);

/// p50, p99 and max of `xs` (ms) as JSON (`null`s when empty).
json percentiles(std::vector<double> xs);

} // namespace convoy::chaos
