// The MessageBox behind Redis Sentinel: a node follows a failover of the Redis master without
// a restart, and every orchestration finishes with the right result.

#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/sentinel_group.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"
#include "examples.hpp"

#include <boost/test/unit_test.hpp>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <signal.h>

using namespace convoy;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

/// A load of persistence points against the MessageBox through Sentinel: `instances`
/// instances, each with one point in flight at a time, written as fast as they are
/// acknowledged. It remembers, per instance, the highest point acknowledged, so a test can
/// check independently of Convoy's own rollback detection what a failover lost.
class persistence_load {
public:
  /// `payload` bytes per journal entry: large ones fill the replication link quickly.
  persistence_load(persistence::message_box& box, int instances, size_t payload = 16)
    : box_(box), payload_(payload, 'x') {
    for (int i = 0; i < instances; ++i) {
      auto id = "load-" + std::to_string(i);
      std::promise<std::string> created;
      box_.activate("receive", "", id, "steps", 1, "{}", "processing",
                    [&created](std::string e) { created.set_value(std::move(e)); });
      auto err = created.get_future().get();
      BOOST_TEST_REQUIRE(err.empty(), err);
      std::promise<claim_result> claimed;
      box_.claim(id, "load", [&claimed](claim_result r) { claimed.set_value(std::move(r)); });
      auto c = claimed.get_future().get();
      BOOST_TEST_REQUIRE((c.status == store_status::ok), c.error);
      slots_.push_back({id, c.record.epoch, 0, 0, false});
    }
  }

  /// Writes for `duration`; after `after`, runs `fault` on a thread of its own while the
  /// writes go on. The fault calls `mark_kill()` when it kills the master. Once it has, the
  /// writes go on past `duration` until one written after the kill is acknowledged (a slow
  /// failover on a loaded machine), for at most 30 s more.
  void run(std::chrono::milliseconds duration, std::chrono::milliseconds after,
           const std::function<void()>& fault) {
    auto started = clock_type::now();
    bool fired = false;
    std::thread fault_thread;
    for (size_t i = 0; i < slots_.size(); ++i)
      send(i);
    std::unique_lock<std::mutex> guard(mtx_);
    auto writing = [&] {
      auto elapsed = clock_type::now() - started;
      if (elapsed < duration)
        return true;
      return kill_time_ && !first_ack_after_kill_ && elapsed < duration + 30s;
    };
    while (writing()) {
      cv_.wait_for(guard, 20ms, [&] { return !done_.empty(); });
      while (!done_.empty()) {
        auto [i, status] = done_.front();
        done_.pop_front();
        auto& s = slots_[i];
        if (status == store_status::ok) {
          s.acknowledged = s.seq;
          ++acks_;
          if (kill_time_ && s.sent_at > *kill_time_ && !first_ack_after_kill_)
            first_ack_after_kill_ = clock_type::now() - *kill_time_;
        } else if (status == store_status::rolled_back) {
          s.stopped = true; // its memory is ahead of the store; a real node would replay
          ++rolled_back_;
          continue;
        } else if (status != store_status::unavailable) {
          s.stopped = true;
          ++refused_;
          continue;
        }
        guard.unlock();
        send(i);
        guard.lock();
      }
      if (!fired && clock_type::now() - started >= after) {
        fired = true;
        fault_thread = std::thread(fault);
      }
    }
    guard.unlock();
    if (fault_thread.joinable())
      fault_thread.join();
    guard.lock();
    // Let the writes in flight finish (bounded: WAIT and reconnects time out).
    stopping_ = true;
    cv_.wait_for(guard, 10s, [&] { return in_flight_ == 0; });
    while (!done_.empty()) {
      auto [i, status] = done_.front();
      done_.pop_front();
      if (status == store_status::ok) {
        slots_[i].acknowledged = slots_[i].seq;
        ++acks_;
      }
    }
  }

  /// Acknowledged points the store does not hold: the sum over instances of how far the
  /// stored sequence number is behind the highest acknowledged one.
  int64_t lost(persistence::message_box& reader, std::set<std::string>* hit = nullptr) const {
    int64_t out = 0;
    for (const auto& s : slots_) {
      auto rec = reader.describe(s.id).record;
      if (rec.seq < s.acknowledged) {
        out += static_cast<int64_t>(s.acknowledged - rec.seq);
        if (hit)
          hit->insert(s.id);
      }
    }
    return out;
  }

  void mark_kill() {
    std::lock_guard<std::mutex> guard(mtx_);
    kill_time_ = clock_type::now();
  }

  int64_t acks() const { return acks_; }
  int64_t rolled_back() const { return rolled_back_; }
  int64_t refused() const { return refused_; }
  std::optional<std::chrono::nanoseconds> first_ack_after_kill() const {
    return first_ack_after_kill_;
  }

private:
  struct slot {
    std::string id;
    uint64_t epoch;
    uint64_t seq;          ///< the point in flight (or last sent)
    uint64_t acknowledged; ///< the highest point acknowledged
    bool stopped;
    clock_type::time_point sent_at{};
  };

  void send(size_t i) {
    auto& s = slots_[i];
    if (stopping_ || s.stopped)
      return;
    if (s.seq == s.acknowledged)
      ++s.seq; // else: the outcome was unknown, retry the same point (idempotent)
    checkpoint cp;
    cp.instance_id = s.id;
    cp.host = "processing";
    cp.epoch = s.epoch;
    cp.seq = s.seq;
    cp.steps = static_cast<uint32_t>(s.seq);
    cp.entries.push_back(journal_entry{static_cast<uint32_t>(s.seq - 1), entry_event::recorded,
                                       op_kind::now, 0, payload_});
    s.sent_at = clock_type::now();
    {
      std::lock_guard<std::mutex> guard(mtx_);
      ++in_flight_;
    }
    box_.write(std::move(cp), [this, i](store_status status, std::string) {
      std::lock_guard<std::mutex> guard(mtx_);
      --in_flight_;
      done_.emplace_back(i, status);
      cv_.notify_all();
    });
  }

  persistence::message_box& box_;
  std::string payload_;
  std::vector<slot> slots_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::pair<size_t, store_status>> done_;
  int in_flight_ = 0;
  bool stopping_ = false;
  int64_t acks_ = 0, rolled_back_ = 0, refused_ = 0;
  std::optional<clock_type::time_point> kill_time_;
  std::optional<std::chrono::nanoseconds> first_ack_after_kill_;
};

persistence::message_box_config box_config(const test::sentinel_group& group,
                                           persistence::durability level) {
  persistence::message_box_config cfg;
  cfg.endpoint.sentinels = group.sentinel_addresses();
  cfg.endpoint.master_name = "convoy";
  cfg.level = level;
  cfg.replicas = 1;
  cfg.wait_timeout = 500ms;
  return cfg;
}

/// Replication lag, then a master crash: both replicas are frozen (SIGSTOP) for `lag`
/// while the master keeps acknowledging, then the master is killed and the replicas thawed.
/// Once the frozen replicas' socket buffers are full (the load writes 16 KiB entries), what
/// the master applies stays in its own output buffers and dies with it: the promoted
/// replica does not have it. `WAIT` must refuse to acknowledge those writes; `local` loses them.
void lagging_replicas_then_master_crash(test::sentinel_group& group, persistence_load& load,
                                        std::chrono::milliseconds lag) {
  auto master = group.master_port();
  std::vector<pid_t> replicas;
  for (auto port : group.redis_ports())
    if (port != master)
      replicas.push_back(group.node_on_port(port).pid());
  for (auto pid : replicas)
    ::kill(pid, SIGSTOP);
  std::this_thread::sleep_for(lag);
  group.kill9_master();
  load.mark_kill();
  for (auto pid : replicas)
    ::kill(pid, SIGCONT);
}

long long ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

/// What one lagging-replicas-then-master-crash run under persistence load saw.
struct failover_run {
  int64_t acks = 0, lost = 0, rolled_back = 0, refused = 0;
  std::optional<std::chrono::nanoseconds> first_ack_after_kill;
  std::set<std::string> hit;   ///< instances that lost acknowledged points (counted here)
  std::set<std::string> named; ///< instances Convoy's rollback reports named
  persistence::message_box_stats stats;
};

/// A fresh 1 + 2 + 3 Sentinel group, 32 writers of 16 KiB points for 8 s, and after 1 s
/// `lagging_replicas_then_master_crash` with a 400 ms lag.
failover_run lagging_failover_run(persistence::durability level) {
  test::temp_dir dir;
  auto group = test::sentinel_group::start(dir.path());
  persistence::message_box box(box_config(group, level));
  failover_run out;
  std::mutex mtx;
  box.on_rollback([&](const persistence::rollback_report& r) {
    std::lock_guard<std::mutex> guard(mtx);
    out.named.insert(r.instances.begin(), r.instances.end());
  });
  auto err = box.prepare({"receive", "processing", "send"});
  BOOST_TEST_REQUIRE(err.empty(), err);
  persistence_load load(box, 32, 16 * 1024);
  auto old_master = group.master_port();
  load.run(8s, 1s, [&] { lagging_replicas_then_master_crash(group, load, 400ms); });
  BOOST_TEST_REQUIRE(group.wait_for_failover(old_master, 30s));
  out.lost = load.lost(box, &out.hit);
  out.acks = load.acks();
  out.rolled_back = load.rolled_back();
  out.refused = load.refused();
  out.first_ack_after_kill = load.first_ack_after_kill();
  out.stats = box.stats();
  std::lock_guard<std::mutex> guard(mtx);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(sentinel)

BOOST_AUTO_TEST_CASE(replicated_durability_loses_no_acknowledged_point_when_the_master_dies) {
  auto run = lagging_failover_run(persistence::durability::replicated);
  auto& stats = run.stats;
  BOOST_TEST_MESSAGE("replicated: " << run.acks << " points acknowledged, " << run.lost
                       << " lost; first point written after the kill acknowledged after "
                       << (run.first_ack_after_kill ? ms(*run.first_ack_after_kill) : -1)
                       << " ms; " << stats.group_commits << " WAITs covered "
                       << stats.grouped_writes << " writes (largest group "
                       << stats.largest_group << ")");
  BOOST_TEST(run.acks > 1000);
  BOOST_TEST(run.lost == 0);
  BOOST_TEST(stats.rollbacks_detected == 0);
  BOOST_TEST(run.rolled_back == 0);
  BOOST_TEST(run.refused == 0);
  BOOST_TEST(run.first_ack_after_kill.has_value()); // it followed the new master
  BOOST_TEST(stats.grouped_writes > stats.group_commits); // groups did form
}

BOOST_AUTO_TEST_CASE(local_durability_control_run_reports_what_a_master_crash_lost) {
  auto run = lagging_failover_run(persistence::durability::local);
  BOOST_TEST_MESSAGE("local (control): " << run.acks << " points acknowledged, " << run.lost
                       << " acknowledged points lost in " << run.hit.size() << " instances; "
                       << "rollback detection counted " << run.stats.points_lost << " in "
                       << run.stats.rollbacks_detected << " report(s); " << run.rolled_back
                       << " writers found the store behind their memory");
  BOOST_TEST(run.acks > 1000);
  BOOST_TEST(run.lost > 0); // the lag window was acknowledged by the master alone
  // Whatever was lost, Convoy noticed exactly that much and named the instances.
  BOOST_TEST(run.stats.points_lost == run.lost);
  BOOST_TEST((run.named == run.hit));
  BOOST_TEST(run.rolled_back <= static_cast<int64_t>(run.hit.size()));
}

BOOST_AUTO_TEST_CASE(an_old_master_restarted_empty_is_not_trusted) {
  test::temp_dir dir;
  test::sentinel_group::options opts;
  opts.appendonly = false;    // a restart comes back empty
  opts.down_after_ms = 10000; // and before the Sentinels would fail over
  auto group = test::sentinel_group::start(dir.path(), opts);
  persistence::message_box box(box_config(group, persistence::durability::local));
  BOOST_TEST_REQUIRE(box.prepare({"receive", "processing", "send"}).empty());
  persistence_load load(box, 8);
  auto port = group.master_port();
  load.run(4s, 1s, [&] {
    group.kill9_master();
    load.mark_kill();
    group.restart(port); // the same address, the same ROLE master, and nothing in it
  });
  auto stats = box.stats();
  BOOST_TEST_MESSAGE("restarted empty master: " << load.acks() << " points acknowledged before, "
                       << load.refused() << " writers refused after, " << stats.store_changes
                       << " writes refused as not our store");
  BOOST_TEST(group.master_port() == port); // Sentinel never saw it down
  BOOST_TEST(load.first_ack_after_kill().has_value() == false); // nothing acknowledged after
  BOOST_TEST(load.refused() == 8);          // every writer was refused, none was "applied"
  BOOST_TEST(stats.store_changes >= 1);
  BOOST_TEST(test::redis_command(port, {"HGET", "convoy:store", "id"}) == "(nil)");
  BOOST_TEST(test::redis_command(port, {"EXISTS", "convoy:inst:load-0"}) == "0");
}

BOOST_AUTO_TEST_CASE(a_frozen_master_is_left_for_the_promoted_one_while_it_is_still_frozen) {
  // A master that stops answering without closing its sockets (SIGSTOP here; a network
  // partition does the same, see convoy chaos F5) must not hold the MessageBox: once a reply
  // is overdue by the stall timeout its connections are dropped, the Sentinels are asked
  // again and the writes go to the promoted replica, while the old master is still frozen.
  test::temp_dir dir;
  auto group = test::sentinel_group::start(dir.path());
  persistence::message_box box(box_config(group, persistence::durability::replicated));
  BOOST_TEST_REQUIRE(box.prepare({"receive", "processing", "send"}).empty());
  persistence_load load(box, 8);
  const auto old_master = group.master_port();
  const auto pid = group.node_on_port(old_master).pid();
  struct thaw_at_exit {
    pid_t pid;
    ~thaw_at_exit() { ::kill(pid, SIGCONT); }
  } thaw{pid};
  load.run(3s, 1s, [&] {
    ::kill(pid, SIGSTOP);
    load.mark_kill();
  });
  const bool still_frozen = group.node_on_port(old_master).running();
  BOOST_TEST_MESSAGE("frozen master: first point written after the freeze acknowledged after "
                       << (load.first_ack_after_kill() ? ms(*load.first_ack_after_kill()) : -1)
                       << " ms; " << load.acks() << " acknowledged in all");
  BOOST_TEST(still_frozen);
  BOOST_TEST_REQUIRE(load.first_ack_after_kill().has_value()); // it left the frozen master
  BOOST_TEST(group.master_port() != old_master);
  BOOST_TEST(load.refused() == 0);
  BOOST_TEST(load.lost(box) == 0); // replicated: nothing acknowledged by the frozen one alone
}

BOOST_AUTO_TEST_CASE(a_node_follows_a_master_failover_without_restart_and_finishes_every_instance) {
  test::temp_dir dir;
  auto group = test::sentinel_group::start(dir.path());
  runtime::node_config cfg;
  cfg.name = "follower";
  cfg.redis.sentinels = group.sentinel_addresses();
  cfg.redis.master_name = "convoy";
  cfg.durability = "replicated";
  cfg.replicas = 1;
  cfg.wait_timeout = 500ms;
  cfg.reclaim_idle = 1000ms;
  cfg.poll_block = 100ms;
  cfg.timer_poll = 50ms;
  cfg.dehydrate_after = 0ms;
  registry reg;
  examples::register_all(reg);
  runtime::node node(cfg, reg);
  BOOST_TEST_REQUIRE(node.start().empty());

  persistence::message_box_config bcfg;
  bcfg.endpoint = cfg.redis;
  persistence::message_box box(bcfg);
  auto sink = dir.path() / "effects.log";
  constexpr int instances = 10, steps = 6;
  for (int i = 0; i < instances; ++i) {
    auto input = json{{"count", steps}, {"sink", sink.string()}, {"pause_ms", 200}}.dump();
    BOOST_TEST_REQUIRE(box.submit("receive", "steps", input, "s-" + std::to_string(i)).empty());
  }
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] { return box.describe("s-" + std::to_string(instances - 1)).record.steps >= 2; }, 30s));

  auto old_master = group.master_port();
  auto killed_at = std::chrono::steady_clock::now();
  group.kill9_master();
  BOOST_TEST_REQUIRE(group.wait_for_failover(old_master, 30s));
  auto failover = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed_at);
  BOOST_TEST(group.master_port() != old_master);

  std::set<std::string> unfinished;
  BOOST_TEST(test::wait_until(
    [&] {
      unfinished.clear();
      for (int i = 0; i < instances; ++i) {
        auto rec = box.describe("s-" + std::to_string(i)).record;
        if (rec.status != instance_status::completed)
          unfinished.insert(rec.id.empty() ? "s-" + std::to_string(i) : rec.id);
      }
      return unfinished.empty();
    },
    60s));
  auto recovered = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed_at);
  BOOST_TEST_MESSAGE("Sentinel failover took " << failover.count() << " ms; all " << instances
                                               << " instances completed " << recovered.count()
                                               << " ms after the kill, on the same node");
  for (const auto& id : unfinished)
    BOOST_TEST_ERROR("instance " << id << " did not complete");
  for (int i = 0; i < instances; ++i) {
    auto rec = box.describe("s-" + std::to_string(i)).record;
    BOOST_TEST(rec.result == std::to_string(steps * (steps - 1) / 2), rec.id);
  }
  // Every effect happened (at least once; keys make them idempotent downstream).
  std::set<std::string> keys;
  std::ifstream in(sink);
  for (std::string line; std::getline(in, line);)
    keys.insert(line);
  BOOST_TEST(keys.size() == size_t{instances * steps});
}

BOOST_AUTO_TEST_CASE(an_unreachable_sentinel_group_is_a_clear_error) {
  persistence::message_box_config cfg;
  cfg.endpoint.sentinels = {"127.0.0.1:1", "127.0.0.1:2"};
  persistence::message_box box(cfg);
  auto err = box.prepare({"processing"}, 3s);
  BOOST_TEST(err.find("no Sentinel named a usable master for 'convoy'") != std::string::npos, err);
  BOOST_TEST(err.find("127.0.0.1:1") != std::string::npos, err);
}

BOOST_AUTO_TEST_SUITE_END()
