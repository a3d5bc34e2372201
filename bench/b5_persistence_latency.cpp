// B5 persistence-latency: p50 / p99 / p999 from "step decided" (the call that hands the
// persistence point over: `message_box::write` for ours) to "persistence point acknowledged"
// (its callback), at 10 %, 50 % and 80 % of B4's maximum throughput, with an open-loop pacer;
// the peer is a raw hiredis client offered the same load on the same server.
//
// - Max: B4's best cell measured again in this run: ours' closed-loop rate at batch 256
//   (AOF everysec), median of 3 windows alternating with the peer's. The offered loads are
//   fractions of ours' max, the same for both sides.
// - Ours: this thread paces `write` calls at their due times (a late pacer sends at once, it
//   never waits for acknowledgements: open loop), round-robin over 256 instances; each point
//   carries one journal entry and one activity command. Latency = callback time (Redis loop
//   thread) minus the time just before `write`.
// - Peer: one thread paces the same transactions (MULTI/HSET/RPUSH/XADD/XADD/EXEC) on one
//   connection and reads replies between due times (ppoll). Latency = EXEC reply parsed minus
//   the time just before the transaction was appended.
// - Per load: one unrecorded warm-up, then 5 rounds alternating ours / peer, 1 s each
//   (--quick: 250 ms); per window the percentiles; the case reports their median over rounds.

#include "redis_bench.hpp"

#include "convoy/test/temp_dir.hpp"

namespace {

using namespace convoy;
using namespace convoy::bench;

} // namespace

int main(int argc, char** argv) try {
  auto opts = parse_options(argc, argv);
  start_bench("B5", "persistence-latency", opts.quick ? 120s : 300s);
  const int rounds = 5;
  const auto duration = opts.quick ? 250ms : 1000ms;
  const auto max_window = opts.quick ? 100ms : 300ms;
  const std::vector<double> loads{0.1, 0.5, 0.8};
  const std::string aof = "everysec";
  const size_t instances = 256;

  test::temp_dir dir;
  auto server = test::redis_server::start(dir.path() / "redis", aof_args(aof));
  watchdog_owns(server.pid(), dir.path().c_str());
  ojson cases, workload;
  std::string redis_version;
  {
    auto box = make_box(loopback(server.port()), "ours:");
    redis_version = box->server_version();
    point_sides sides(*box, server.port(), instances);
    auto max = sides.alternate_rates(256, 3, max_window);
    const auto& ours_max = max.rate[0];
    const auto& peer_max = max.rate[1];
    const double base = summarize(ours_max).median;
    cases = sides.latency_cases(base, loads, rounds, duration,
                                "raw hiredis, same offered load (MULTI/HSET/RPUSH/XADD/XADD/EXEC)",
                                ojson{{"aof", aof}});
    workload = ojson{{"max_rate_ours_batch256", to_json(summarize(ours_max))},
                     {"max_rate_peer_batch256", to_json(summarize(peer_max))},
                     {"loads_are_fractions_of", "ours' max (median)"},
                     {"instances", instances},
                     {"peer_counts_commits", peer_counts_commits()}};
  }
  server.stop();
  watchdog_owns(0);

  ojson result{
    {"id", "B5"},
    {"name", "persistence-latency"},
    {"unit", "us"},
    {"higher_is_better", false},
    {"what",
     "Latency of a persistence point (one journal entry + one activity command) from the call "
     "that hands it over (message_box::write; the peer: appending its MULTI/EXEC) to its "
     "acknowledgement (the callback; the peer: EXEC reply parsed), open loop at 10/50/80 % of "
     "ours' closed-loop max at batch 256 measured in this run. Per window p50/p99/p999; the "
     "case's median/min/max are over rounds."},
    {"workload", std::move(workload)},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version}, {"hiredis", hiredis_version()}},
                        ojson{{"rounds", rounds},
                              {"window_ms", duration.count()},
                              {"max_window_ms", max_window.count()},
                              {"warmup_rounds", 1},
                              {"aof", aof},
                              {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  fail(std::string("exception: ") + e.what());
}
