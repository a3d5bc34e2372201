// B6 replicated-durability: B4 and B5 with a master and 2 replicas and
// `durability = replicated` (a persistence point is acknowledged once `WAIT 2` confirms it),
// against raw hiredis with one WAIT per batch.
//
// - Servers: a redis-server master and two replicas (`--replicaof`, diskless sync without
//   delay), AOF everysec on all three, on free loopback ports in a temporary folder, stopped
//   by PID. Both sides write to the master.
// - Throughput (B4's method): batch 1, 16, 64, 256 persistence points in flight, one per
//   instance. Ours: `message_box::write` with message_box_config{level = replicated,
//   replicas = 2, wait_timeout = 1 s}: the MessageBox decides how WAITs cover the writes.
//   Peer: the batch's MULTI/EXEC transactions pipelined, then one `WAIT 2 1000`.
// - Latency (B5's method): open loop at 10/50/80 % of ours' replicated max at batch 256
//   (measured in this run). Peer: one thread, at most one WAIT outstanding; points sent
//   while it is out are covered by the next one (group commit on the client).
// - Rounds alternate ours / peer after one unrecorded warm-up.

#include "redis_bench.hpp"

#include "convoy/test/temp_dir.hpp"

namespace {

using namespace convoy;
using namespace convoy::bench;

} // namespace

int main(int argc, char** argv) try {
  auto opts = parse_options(argc, argv);
  start_bench("B6", "replicated-durability", opts.quick ? 120s : 300s);
  const int rounds = opts.quick ? 5 : 7;
  const int latency_rounds = 5;
  const auto window = opts.quick ? 60ms : 250ms;
  const auto duration = opts.quick ? 250ms : 1000ms;
  const auto max_window = opts.quick ? 100ms : 300ms;
  const std::vector<size_t> batches{1, 16, 64, 256};
  const std::vector<double> loads{0.1, 0.5, 0.8};
  const std::string aof = "everysec";
  const int replicas = 2;
  const auto wait_timeout = 1000ms;
  const size_t instances = 256;

  test::temp_dir dir;
  // The watchdog kills every child of ours by PID (kill_own_children) and removes `dir`.
  watchdog_owns(0, dir.path().c_str());
  auto master = test::redis_server::start(dir.path() / "node-0", aof_args(aof));
  std::vector<test::redis_server> replica_servers;
  for (int i = 1; i <= replicas; ++i)
    replica_servers.push_back(
      start_replica(dir.path() / ("node-" + std::to_string(i)), master.port(), aof_args(aof)));

  ojson cases = ojson::array();
  ojson workload;
  std::string redis_version;
  const std::string peer_name = "raw hiredis + WAIT 2 per batch";
  {
    auto box = make_box(loopback(master.port()), "ours:", persistence::durability::replicated,
                        replicas, wait_timeout);
    redis_version = box->server_version();
    point_sides sides(*box, master.port(), instances, replicas, wait_timeout);
    for (auto batch : batches) {
      auto s = sides.alternate_rates(batch, rounds, window);
      auto c = make_case(ojson{{"measure", "throughput"}, {"batch", batch}, {"aof", aof}},
                         summarize(s.rate[0]), peer_name, summarize(s.rate[1]), ">= 0.7");
      c["unit"] = "points/s";
      c["detail"] = s.cpu_detail();
      cases.push_back(std::move(c));
    }
    auto max = sides.alternate_rates(256, 3, max_window);
    const auto& ours_max = max.rate[0];
    const auto& peer_max = max.rate[1];
    auto latency = sides.latency_cases(summarize(ours_max).median, loads, latency_rounds,
                                       duration, peer_name,
                                       ojson{{"measure", "latency"}, {"aof", aof}});
    for (auto& c : latency)
      cases.push_back(std::move(c));
    workload = ojson{{"max_rate_ours_batch256", to_json(summarize(ours_max))},
                     {"max_rate_peer_batch256", to_json(summarize(peer_max))},
                     {"loads_are_fractions_of", "ours' replicated max (median)"},
                     {"instances", instances},
                     {"ours_group_commit_stats", group_commit_stats(*box)},
                     {"peer_counts_commits", peer_counts_commits()}};
  }
  for (auto& r : replica_servers)
    r.stop();
  master.stop();
  watchdog_owns(0);

  ojson result{
    {"id", "B6"},
    {"name", "replicated-durability"},
    {"unit", "points/s (throughput) / us (latency)"},
    {"higher_is_better", "throughput: yes; latency: no"},
    {"what",
     "B4 and B5 against a master with 2 replicas, durability replicated (WAIT 2). Throughput: "
     "`batch` persistence points in flight (one per instance); ours = message_box::write with "
     "replicated durability, peer = batch MULTI/EXEC transactions + one WAIT 2. Latency: open "
     "loop at 10/50/80 % of ours' replicated max at batch 256 measured in this run; the peer "
     "keeps at most one WAIT outstanding and covers everything sent meanwhile with the next."},
    {"workload", std::move(workload)},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version}, {"hiredis", hiredis_version()}},
                        ojson{{"rounds", rounds},
                              {"latency_rounds", latency_rounds},
                              {"window_ms", window.count()},
                              {"latency_window_ms", duration.count()},
                              {"replicas", replicas},
                              {"wait_timeout_ms", wait_timeout.count()},
                              {"warmup_rounds", 1},
                              {"aof", aof},
                              {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  fail(std::string("exception: ") + e.what());
}
