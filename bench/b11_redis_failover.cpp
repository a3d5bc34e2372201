// B11 redis-failover: `kill -9` of the Redis master under persistence-point load. Measures
// the time from the kill to the first acknowledged persistence point after the failover, and
// the acknowledged points the new master does not hold, with and without WAIT.
//
// - Servers: tests/support's sentinel_group: 1 master, 2 replicas (AOF everysec), 3
//   Sentinels, quorum 2, down-after 1000 ms, failover-timeout 3000 ms, on free loopback
//   ports in a temporary folder; a fresh group for every failover; everything stopped by PID.
// - Load, on each side: two writers at once, 16 instances each, one persistence point per
//   instance in flight (a group of 16, the next group when all answered): one writer with
//   durability local, one replicated (WAIT 1 of the 2 replicas, timeout 500 ms: after the
//   failover only one replica is left). A point whose outcome is unknown is retried with the
//   same seq after 20 ms. Ours: an instance whose point is refused otherwise (the MessageBox
//   detected a rollback: acknowledged points lost) resumes like a real one, from what the
//   store holds (claim again); the acknowledged points beyond the stored seq count as lost.
// - Ours: `message_box` with the Sentinels as its endpoint (it resolves the master through
//   them on every reconnect and checks ROLE), `write` of checkpoints with one journal entry
//   and one activity command.
// - Peer: a raw synchronous hiredis client per writer: asks the Sentinels in turn
//   (SENTINEL get-master-addr-by-name), connects, sends the group's MULTI/EXEC transactions
//   (+ WAIT 1 500), and on any failure closes, waits 20 ms and re-discovers.
// - Recovery = first acknowledgement of a point issued after the master was dead, minus the
//   kill. Lost = acknowledged points (each point's journal entry names its seq) missing from
//   the new master's journals, read after the load stopped.
// - Rounds: ours' failover then the peer's, 5 rounds (--quick: 1 failover per side).

#include "redis_bench.hpp"

#include "convoy/test/sentinel_group.hpp"
#include "convoy/test/temp_dir.hpp"

#include <set>

namespace {

using namespace convoy;
using namespace convoy::bench;

constexpr size_t writer_instances = 16;
constexpr auto retry_backoff = 20ms;
constexpr int wait_replicas = 1;
constexpr auto wait_timeout = 500ms;
const std::string master_name = "convoy";

/// What one writer saw.
struct writer_report {
  std::optional<clock_type::time_point> recovered_at;
  std::vector<std::vector<uint64_t>> acked; ///< per instance, the acknowledged seqs
  size_t acked_points = 0;
  size_t retries = 0;
  /// Ours: instances whose point was refused (rolled back, stale epoch) and that resumed from
  /// what the store holds (claim again), and the acknowledged points found lost then.
  size_t resumed_instances = 0;
  size_t lost_at_resume = 0;
  std::string refusal;
};

/// When the master was known dead (0 = not yet), and how many writers have recovered since.
struct kill_clock {
  std::atomic<int64_t> dead_ns{0};
  std::atomic<int> recovered_writers{0};
  bool issued_after_death(clock_type::time_point t) const {
    auto d = dead_ns.load();
    return d != 0 && t.time_since_epoch().count() > d;
  }
};

void note_ack(writer_report& rep, kill_clock& kill, clock_type::time_point issued,
              clock_type::time_point acked_at) {
  if (!kill.issued_after_death(issued))
    return;
  if (!rep.recovered_at)
    kill.recovered_writers += 1;
  if (!rep.recovered_at || acked_at < *rep.recovered_at)
    rep.recovered_at = acked_at;
}

// -- ours -----------------------------------------------------------------------------------

/// Claims `x` again (after a refusal): its new epoch and the seq the store holds. Returns
/// false when the store did not answer usably (try again later).
bool reclaim_instance(persistence::message_box& box, tracked_instance& x) {
  countdown cd;
  cd.reset(1);
  claim_result out;
  box.claim(x.id, "bench-node", [&](claim_result r) {
    out = std::move(r);
    cd.arrive();
  });
  if (!cd.wait_until(clock_type::now() + 30s))
    fail("ours: claim unanswered after 30 s");
  if (out.status != store_status::ok)
    return false;
  x.epoch = out.record.epoch;
  x.seq = out.record.seq;
  return true;
}

void our_writer(persistence::message_box& box, std::vector<tracked_instance> inst,
                const std::atomic<bool>& stop, kill_clock& kill, writer_report& rep) {
  const auto n = inst.size();
  rep.acked.assign(n, {});
  std::vector<bool> active(n, true), refused(n, false);
  struct slot {
    store_status status = store_status::ok;
    std::string error;
    clock_type::time_point at;
  };
  countdown cd;
  while (!stop.load()) {
    for (size_t i = 0; i < n; ++i) {
      if (!refused[i] || !reclaim_instance(box, inst[i]))
        continue;
      refused[i] = false;
      ++rep.resumed_instances;
      auto& seqs = rep.acked[i];
      auto beyond = std::remove_if(seqs.begin(), seqs.end(),
                                   [&](uint64_t seq) { return seq > inst[i].seq; });
      rep.lost_at_resume += static_cast<size_t>(seqs.end() - beyond);
      seqs.erase(beyond, seqs.end());
    }
    std::vector<size_t> idx;
    for (size_t i = 0; i < n; ++i)
      if (active[i] && !refused[i])
        idx.push_back(i);
    if (idx.empty()) {
      std::this_thread::sleep_for(retry_backoff);
      continue;
    }
    std::vector<slot> slots(idx.size());
    cd.reset(idx.size());
    auto issued = clock_type::now();
    for (size_t k = 0; k < idx.size(); ++k) {
      auto& x = inst[idx[k]];
      box.write(make_point(x.id, x.epoch, x.seq + 1),
                [&slots, &cd, k](store_status s, std::string err) {
                  slots[k] = {s, std::move(err), clock_type::now()};
                  cd.arrive();
                });
    }
    if (!cd.wait_until(issued + 30s))
      fail("ours: persistence points unanswered after 30 s");
    bool retry = false;
    for (size_t k = 0; k < idx.size(); ++k) {
      auto i = idx[k];
      const auto& s = slots[k];
      if (s.status == store_status::ok) {
        rep.acked[i].push_back(++inst[i].seq);
        ++rep.acked_points;
        note_ack(rep, kill, issued, s.at);
      } else if (s.status == store_status::unavailable) {
        retry = true;
        ++rep.retries;
      } else if (s.status == store_status::stale_epoch
                 || s.error.rfind("CONVOY_ROLLED_BACK", 0) == 0) {
        refused[i] = true;
        rep.refusal = s.error;
      } else {
        active[i] = false; // anything else is not expected: this instance stops
        rep.refusal = s.error;
      }
    }
    if (retry)
      std::this_thread::sleep_for(retry_backoff);
  }
}

// -- peer -----------------------------------------------------------------------------------

/// Asks the Sentinels in turn for the master and connects to it (300 ms timeouts, like the
/// MessageBox' resolver); false when none named a reachable one.
bool discover(raw_redis& conn, const std::vector<uint16_t>& sentinels) {
  for (auto port : sentinels) {
    raw_redis s("127.0.0.1", port, 300ms, 300ms);
    if (!s.ok())
      continue;
    auto rep = s.run({"SENTINEL", "get-master-addr-by-name", master_name});
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
      continue;
    std::string host(rep->element[0]->str, rep->element[0]->len);
    auto master_port = static_cast<uint16_t>(std::atoi(rep->element[1]->str));
    if (conn.connect(host, master_port, 300ms, 2s))
      return true;
  }
  return false;
}

void raw_writer(std::vector<uint16_t> sentinels, const persistence::keys& k,
                std::vector<tracked_instance> inst, int wait_n, const std::atomic<bool>& stop,
                kill_clock& kill, writer_report& rep) {
  const auto n = inst.size();
  rep.acked.assign(n, {});
  raw_redis conn;
  while (!stop.load()) {
    if (!conn.ok() && !discover(conn, sentinels)) {
      ++rep.retries;
      std::this_thread::sleep_for(retry_backoff);
      continue;
    }
    auto issued = clock_type::now();
    for (size_t i = 0; i < n; ++i)
      append_raw_point(conn, k, inst[i].id, inst[i].seq + 1);
    if (wait_n > 0)
      conn.append({"WAIT", std::to_string(wait_n), std::to_string(wait_timeout.count())});
    std::vector<bool> ok(n, false);
    bool broken = false;
    for (size_t i = 0; i < n && !broken; ++i)
      for (int j = 0, m = raw_point_replies(); j < m; ++j) {
        auto r = conn.get();
        if (!r) {
          broken = true;
          break;
        }
        if (j + 1 == m)
          ok[i] = exec_ok(r.get());
      }
    if (!broken && wait_n > 0) {
      auto w = conn.get();
      if (!w)
        broken = true;
      else if (w->type != REDIS_REPLY_INTEGER || w->integer < wait_n)
        ok.assign(n, false); // not acknowledged: retried
    }
    auto acked_at = clock_type::now();
    bool retry = broken;
    for (size_t i = 0; i < n; ++i) {
      if (!broken && ok[i]) {
        rep.acked[i].push_back(++inst[i].seq);
        ++rep.acked_points;
        note_ack(rep, kill, issued, acked_at);
      } else {
        retry = true;
        ++rep.retries;
      }
    }
    if (broken)
      conn.close();
    if (retry)
      std::this_thread::sleep_for(retry_backoff);
  }
}

// -- checking what the new master holds ----------------------------------------------------

/// Acknowledged points whose journal entry is not in the new master's journal.
size_t count_lost(uint16_t port, const persistence::keys& k,
                  const std::vector<tracked_instance>& inst, const writer_report& rep) {
  raw_redis r("127.0.0.1", port);
  if (!r.ok())
    fail("cannot reach the new master on port " + std::to_string(port) + ": " + r.error());
  size_t lost = 0;
  for (size_t i = 0; i < inst.size(); ++i) {
    auto list = r.run({"LRANGE", k.journal(inst[i].id), "0", "-1"});
    if (!list || list->type != REDIS_REPLY_ARRAY)
      fail("LRANGE: " + (list ? reply_text(list.get()) : r.error()));
    std::set<uint64_t> held;
    for (size_t j = 0; j < list->elements; ++j) {
      auto d = decode_journal_entry(std::string_view(list->element[j]->str, list->element[j]->len));
      if (auto e = std::get_if<journal_entry>(&d))
        held.insert(static_cast<uint64_t>(e->step) + 1);
    }
    for (auto seq : rep.acked[i])
      if (!held.count(seq))
        ++lost;
  }
  return lost;
}

// -- one failover ---------------------------------------------------------------------------

struct failover_sample {
  double recovery_ms[2] = {0, 0}; ///< local, replicated
  double lost[2] = {0, 0};
  double acked[2] = {0, 0};
  double resumed[2] = {0, 0};
  double sentinel_ms = 0;
  std::string refusal;
};

std::string redis_version;

/// One failover on a fresh Sentinel group: ours (`ours`) or the peer's writers.
failover_sample run_failover(bool ours, const std::filesystem::path& dir,
                             const test::sentinel_group::options& gopts,
                             std::chrono::milliseconds warm) {
  auto group = test::sentinel_group::start(dir, gopts);
  failover_sample out;
  std::vector<uint16_t> sentinel_ports = group.sentinel_ports();
  persistence::redis_endpoint ep;
  ep.sentinels = group.sentinel_addresses();
  ep.master_name = master_name;

  std::unique_ptr<persistence::message_box> boxes[2];
  const persistence::keys keys(ours ? "ours:" : "peer:");
  std::vector<tracked_instance> inst[2];
  if (ours) {
    boxes[0] = make_box(ep, "ours:", persistence::durability::local);
    boxes[1] = make_box(ep, "ours:", persistence::durability::replicated, wait_replicas,
                        wait_timeout);
    inst[0] = create_instances(*boxes[0], "loc-", writer_instances);
    inst[1] = create_instances(*boxes[1], "rep-", writer_instances);
    redis_version = boxes[0]->server_version();
    raw_redis admin("127.0.0.1", group.master_port());
    if (!admin.ok())
      fail("cannot reach the master: " + admin.error());
    detect_commit_counter(admin, "ours:"); // the peer writes what this tree's function writes
  } else {
    raw_redis admin("127.0.0.1", group.master_port());
    if (!admin.ok())
      fail("peer: cannot reach the master: " + admin.error());
    inst[0] = create_raw_instances(admin, keys, "loc-", writer_instances);
    inst[1] = create_raw_instances(admin, keys, "rep-", writer_instances);
  }

  std::atomic<bool> stop{false};
  kill_clock kill;
  writer_report reports[2];
  std::vector<std::thread> writers;
  for (int d = 0; d < 2; ++d)
    writers.emplace_back([&, d] {
      if (ours)
        our_writer(*boxes[d], inst[d], stop, kill, reports[d]);
      else
        raw_writer(sentinel_ports, keys, inst[d], d == 0 ? 0 : wait_replicas, stop, kill,
                   reports[d]);
    });
  auto stop_writers = [&] {
    stop = true;
    for (auto& w : writers)
      if (w.joinable())
        w.join();
  };

  std::this_thread::sleep_for(warm);
  const auto old_master = group.master_port();
  const auto killed_at = clock_type::now();
  group.node_on_port(old_master).kill9();
  kill.dead_ns = clock_type::now().time_since_epoch().count();
  if (!group.wait_for_failover(old_master, 30s)) {
    stop_writers();
    fail("Sentinel did not fail over within 30 s");
  }
  out.sentinel_ms = ms_between(killed_at, clock_type::now());
  // Until both writers had a point acknowledged (at most 20 s), then a little more load.
  for (auto until = clock_type::now() + 20s;
       kill.recovered_writers.load() < 2 && clock_type::now() < until;)
    std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(300ms);
  stop_writers();

  const auto new_master = group.master_port();
  for (int d = 0; d < 2; ++d) {
    if (!reports[d].recovered_at)
      fail(std::string(ours ? "ours" : "peer") + ": the " + (d == 0 ? "local" : "replicated")
           + " writer had no point acknowledged within 20 s after Sentinel's failover"
           + (reports[d].refusal.empty() ? "" : " (last refusal: " + reports[d].refusal + ")"));
    out.recovery_ms[d] = ms_between(killed_at, *reports[d].recovered_at);
    out.lost[d] = static_cast<double>(reports[d].lost_at_resume
                                      + count_lost(new_master, keys, inst[d], reports[d]));
    out.acked[d] = static_cast<double>(reports[d].acked_points);
    out.resumed[d] = static_cast<double>(reports[d].resumed_instances);
    if (!reports[d].refusal.empty())
      out.refusal = reports[d].refusal;
  }
  boxes[0].reset();
  boxes[1].reset();
  group.stop();
  return out;
}

} // namespace

int main(int argc, char** argv) try {
  auto opts = parse_options(argc, argv);
  start_bench("B11", "redis-failover", opts.quick ? 120s : 320s);
  const int rounds = opts.quick ? 1 : 5;
  const auto warm = opts.quick ? 500ms : 1000ms;
  test::sentinel_group::options gopts;
  gopts.replicas = 2;
  gopts.sentinels = 3;
  gopts.quorum = 2;
  gopts.down_after_ms = 1000;
  gopts.failover_timeout_ms = 3000;
  gopts.appendonly = true;

  test::temp_dir dir;
  // The watchdog kills every child of ours by PID (kill_own_children) and removes `dir`.
  watchdog_owns(0, dir.path().c_str());
  std::vector<failover_sample> samples[2];
  int run_no = 0;
  for (int round = 0; round < rounds; ++round)
    for (int side = 0; side < 2; ++side) {
      auto run_dir = dir.path() / ("run-" + std::to_string(++run_no));
      samples[side].push_back(run_failover(side == 0, run_dir, gopts, warm));
      std::error_code ec;
      std::filesystem::remove_all(run_dir, ec);
    }
  watchdog_owns(0);

  auto pick = [&](int side, auto field) {
    std::vector<double> xs;
    for (const auto& s : samples[side])
      xs.push_back(field(s));
    return summarize(xs);
  };
  const std::string peer_name = "raw hiredis, master re-discovered via SENTINEL get-master-addr-by-name";
  ojson cases = ojson::array();
  const char* level[2] = {"local (no WAIT)", "replicated (WAIT 1, 500 ms)"};
  for (int d = 0; d < 2; ++d) {
    auto c = make_case(ojson{{"measure", "recovery: kill -9 to first acknowledged point"},
                             {"durability", level[d]}},
                       pick(0, [d](const failover_sample& s) { return s.recovery_ms[d]; }),
                       peer_name,
                       pick(1, [d](const failover_sample& s) { return s.recovery_ms[d]; }),
                       "<= 1.2");
    c["unit"] = "ms";
    cases.push_back(std::move(c));
  }
  for (int d = 0; d < 2; ++d) {
    ojson params{{"measure", "acknowledged points lost"}, {"durability", level[d]}};
    auto ours_lost = pick(0, [d](const failover_sample& s) { return s.lost[d]; });
    auto peer_lost = pick(1, [d](const failover_sample& s) { return s.lost[d]; });
    auto c = d == 0 ? make_info_case(params, ours_lost, peer_name, peer_lost)
                    : make_case_on_ours(params, ours_lost, peer_name, peer_lost, "<= 0");
    c["unit"] = "points";
    c["detail"] = ojson{
      {"acknowledged_ours", to_json(pick(0, [d](const failover_sample& s) { return s.acked[d]; }))},
      {"acknowledged_peer", to_json(pick(1, [d](const failover_sample& s) { return s.acked[d]; }))},
      {"instances_resumed_ours", to_json(pick(0, [d](const failover_sample& s) { return s.resumed[d]; }))}};
    cases.push_back(std::move(c));
  }
  ojson reasons = ojson::array();
  for (const auto& s : samples[0])
    if (!s.refusal.empty())
      reasons.push_back(s.refusal);

  ojson result{
    {"id", "B11"},
    {"name", "redis-failover"},
    {"unit", "ms (recovery) / points (lost)"},
    {"higher_is_better", false},
    {"what",
     "kill -9 of the Redis master (1 master, 2 replicas, 3 Sentinels, down-after 1000 ms) under "
     "load: 2 writers x 16 instances, one point per instance in flight, one writer local, one "
     "replicated (WAIT 1). Recovery = kill to the first acknowledged point issued after the "
     "master was dead. Lost = acknowledged points missing from the new master's journals. "
     "Ours: message_box resolving the master through the Sentinels; peer: raw hiredis asking "
     "SENTINEL get-master-addr-by-name and retrying every 20 ms."},
    {"workload", ojson{{"sentinel_failover_ms_ours_runs",
                        to_json(pick(0, [](const failover_sample& s) { return s.sentinel_ms; }))},
                       {"sentinel_failover_ms_peer_runs",
                        to_json(pick(1, [](const failover_sample& s) { return s.sentinel_ms; }))},
                       {"ours_refusals", std::move(reasons)},
                       {"peer_counts_commits", peer_counts_commits()}}},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version}, {"hiredis", hiredis_version()}},
                        ojson{{"failovers_per_side", rounds},
                              {"down_after_ms", gopts.down_after_ms},
                              {"failover_timeout_ms", gopts.failover_timeout_ms},
                              {"instances_per_writer", writer_instances},
                              {"retry_backoff_ms", retry_backoff.count()},
                              {"warm_ms", warm.count()},
                              {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  fail(std::string("exception: ") + e.what());
}
