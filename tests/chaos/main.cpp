// convoy-chaos (`convoy chaos run ...`): a seeded fault-injection run against a real cluster on
// loopback, or in network namespaces of its own (`--network netns`, root) — a Sentinel group
// and 3 `convoy node` processes — under a workload of chaos orchestrations whose steps reach a
// sink. It injects the faults of HA-TEST-PLAN.md (F1 node kill -9, F2 node SIGSTOP, F3 Redis
// master kill -9, F4 master SIGSTOP, F5 master + one node partitioned from the rest, F6 one
// node partitioned from the other nodes, F9 overload, F11 a seeded mix), heals, waits for quiescence, reads the final MessageBox, runs the checkers
// C1-C7, writes a JSON report and prints one headline line. Exit code 0: every checker
// passed; 1: a checker failed; 2: bad arguments; 3: the run could not be carried out.

#include "cluster.hpp"
#include "history.hpp"
#include "netns.hpp"
#include "workload.hpp"

#include "convoy/test/process.hpp"
#include "convoy/test/temp_dir.hpp"

#include <CLI/CLI.hpp>
#include <hiredis/hiredis.h>
#include <httplib.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#ifndef CONVOY_BINARY
#error "CONVOY_BINARY (path of the convoy executable) must be defined by the build"
#endif

namespace {

using namespace convoy;
using namespace convoy::chaos;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::atomic<int> interrupted{0};

extern "C" void on_stop_signal(int sig) {
  interrupted = sig;
}

// -- arguments ----------------------------------------------------------------------------------

/// F9 multiplies the offered load by this: well past what the throttling thresholds let in.
constexpr double overload_factor = 6.0;

const std::vector<std::string> known_faults{"F1", "F2", "F3", "F4", "F5", "F6", "F9", "F11"};
const std::vector<std::string> planned_faults{"F7", "F8", "F10"};

struct run_options {
  std::vector<std::string> faults;
  std::string faults_text;
  std::string duration_text = "120s";
  int64_t duration_ms = 120'000;
  uint64_t seed = 1;
  int nodes = 3;
  std::string report = "chaos-report.json";
  double rate = 3;
  std::string settle_text = "120s";
  int64_t settle_ms = 120'000;
  double rss_cap_mb = 1024;
  int64_t queue_cap = 20'000;
  bool keep = false;
  int min_replicas_to_write = 0;
  /// "loopback" (everything on 127.0.0.1) or "netns" (namespaces of our own: F5, F6).
  std::string network = "loopback";
};

/// `90s`, `30m`, `2h`, `1500ms`, or plain seconds; nullopt when malformed.
std::optional<int64_t> parse_duration(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || value <= 0)
    return std::nullopt;
  std::string unit(end, text.data() + text.size());
  if (unit.empty() || unit == "s")
    return value * 1000;
  if (unit == "ms")
    return value;
  if (unit == "m")
    return value * 60'000;
  if (unit == "h")
    return value * 3'600'000;
  return std::nullopt;
}

/// "" when fine, else the one-line problem.
std::string parse_faults(const std::string& text, std::vector<std::string>& out) {
  std::stringstream in(text);
  for (std::string f; std::getline(in, f, ',');) {
    for (auto& c : f)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (f.empty())
      return "--faults: an empty name in '" + text + "'";
    if (std::find(planned_faults.begin(), planned_faults.end(), f) != planned_faults.end())
      return "--faults: " + f
             + " is not implemented by this tool yet (F1 F2 F3 F4 F5 F6 F9 F11 are)";
    if (std::find(known_faults.begin(), known_faults.end(), f) == known_faults.end())
      return "--faults: unknown fault '" + f + "' (known: F1 F2 F3 F4 F5 F6 F9 F11)";
    if (std::find(out.begin(), out.end(), f) == out.end())
      out.push_back(f);
  }
  if (out.empty())
    return "--faults: name at least one fault, e.g. --faults F1,F2,F3";
  return "";
}

std::string tool_dir() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string{} : self.parent_path().string();
}

std::string convoy_binary() {
  if (const char* env = std::getenv("CONVOY_BINARY"); env != nullptr && *env != '\0')
    return env;
  if (auto dir = tool_dir(); !dir.empty() && fs::exists(fs::path(dir) / "convoy"))
    return (fs::path(dir) / "convoy").string();
  return CONVOY_BINARY;
}

std::string git_revision() {
#ifdef CONVOY_SOURCE_DIR
  auto r = test::run_command({"git", "-C", CONVOY_SOURCE_DIR, "rev-parse", "--short", "HEAD"},
                             5s);
  if (r.exit_code == 0) {
    auto rev = r.output.substr(0, r.output.find('\n'));
    auto dirty = test::run_command({"git", "-C", CONVOY_SOURCE_DIR, "status", "--porcelain",
                                    "--untracked-files=no"},
                                   5s);
    if (dirty.exit_code == 0 && !dirty.output.empty())
      rev += "-dirty";
    return rev;
  }
#endif
  return "unknown";
}

// -- the schedule ---------------------------------------------------------------------------------

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

/// Faults that take the Redis master away from (most of) the cluster: one at a time.
bool redis_fault(const std::string& t) {
  return t == "F3" || t == "F4" || t == "F5";
}

/// Faults that take one node away: at least one other node stays untouched.
bool node_fault(const std::string& t) {
  return t == "F1" || t == "F2" || t == "F5" || t == "F6";
}

/// Partitions (network namespaces only): one at a time, so a heal removes every cut.
bool partition_fault(const std::string& t) {
  return t == "F5" || t == "F6";
}

/// How long a fault of `type` is held (seeded).
int64_t hold_for(const std::string& type, std::mt19937_64& rng, const cluster_options& c) {
  if (type == "F1")
    return uniform(rng, 3000, 8000); // dead, then restarted
  if (type == "F2")
    return uniform(rng, 3, 5) * c.lease_ttl_ms; // several lease TTLs
  if (type == "F3")
    return uniform(rng, 6000, 10000); // failover, then the old master restarts
  if (type == "F4")
    return c.down_after_ms + uniform(rng, 3000, 5000); // past down-after: a failover
  if (partition_fault(type))
    return uniform(rng, 30000, 60000); // HA-TEST-PLAN: heal after 30-60 s
  return uniform(rng, 15000, 25000);   // F9: overload window
}

/// The seeded schedule. Named faults run one after another, in turn, with seeded gaps; F11
/// draws a random mix of F1 F2 F3 F4 F9 (and F5 F6 with `--network netns`) with seeded holds,
/// gaps and overlaps (at most one Redis fault, one partition and one fault per node at a
/// time, and at least one node untouched).
std::vector<fault_event> plan_faults(const run_options& o, const cluster_options& c) {
  std::mt19937_64 rng(o.seed);
  std::vector<fault_event> plan;
  const bool mix = std::find(o.faults.begin(), o.faults.end(), "F11") != o.faults.end();
  std::vector<std::string> pool = o.faults;
  if (mix) {
    pool = {"F1", "F2", "F3", "F4", "F9"};
    if (o.network == "netns")
      pool.insert(pool.end(), {"F5", "F6"});
    for (const auto& f : o.faults)
      if (f != "F11" && std::find(pool.begin(), pool.end(), f) == pool.end())
        pool.push_back(f);
  }
  const int64_t warmup = 10'000;
  int64_t t = warmup;
  size_t turn = 0;
  int64_t redis_busy_until = 0;
  int64_t partition_busy_until = 0;
  std::vector<int64_t> node_busy_until(static_cast<size_t>(c.nodes), 0);
  while (true) {
    fault_event f;
    f.type = mix ? pool[static_cast<size_t>(uniform(rng, 0, static_cast<int64_t>(pool.size()) - 1))]
                 : pool[turn++ % pool.size()];
    f.plan_hold_ms = hold_for(f.type, rng, c);
    if (node_fault(f.type))
      f.target = static_cast<int>(uniform(rng, 0, c.nodes - 1));
    int64_t at = t;
    if (redis_fault(f.type))
      at = std::max(at, redis_busy_until);
    if (partition_fault(f.type))
      at = std::max(at, partition_busy_until);
    if (f.target >= 0)
      at = std::max(at, node_busy_until[static_cast<size_t>(f.target)]);
    if (node_fault(f.type)) {
      // Keep one node untouched while this one is down.
      size_t busy = 0;
      for (size_t i = 0; i < node_busy_until.size(); ++i)
        if (static_cast<int>(i) != f.target && node_busy_until[i] > at)
          ++busy;
      if (busy + 2 > node_busy_until.size())
        at = *std::max_element(node_busy_until.begin(), node_busy_until.end());
    }
    if (at + f.plan_hold_ms > o.duration_ms - 5000)
      break;
    f.plan_at_ms = at;
    const int64_t end = at + f.plan_hold_ms;
    // After a Redis fault the group needs time to be whole again (the old master rejoins as
    // a replica and resyncs) before the next one.
    if (redis_fault(f.type))
      redis_busy_until = end + 12'000;
    if (partition_fault(f.type))
      partition_busy_until = end + 3000;
    if (f.target >= 0)
      node_busy_until[static_cast<size_t>(f.target)] = end + 3000;
    plan.push_back(f);
    if (mix && uniform(rng, 0, 99) < 35)
      t = at + uniform(rng, 1000, std::max<int64_t>(1001, f.plan_hold_ms / 2)); // overlap
    else
      t = end + uniform(rng, 6000, 12000);
  }
  return plan;
}

// -- Redis reads ----------------------------------------------------------------------------------

/// A synchronous hiredis connection to one server, for the sampler and the final read.
class redis_reader {
public:
  explicit redis_reader(std::uint16_t port) : port_(port) {
    timeval tv{1, 0};
    ctx_ = redisConnectWithTimeout(test::host_of(port).c_str(), port, tv);
    if (ctx_ != nullptr && ctx_->err == 0)
      redisSetTimeout(ctx_, timeval{2, 0});
  }
  ~redis_reader() {
    if (ctx_ != nullptr)
      redisFree(ctx_);
  }
  redis_reader(const redis_reader&) = delete;
  redis_reader& operator=(const redis_reader&) = delete;

  bool ok() const { return ctx_ != nullptr && ctx_->err == 0; }
  std::uint16_t port() const { return port_; }

  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
  }

  /// The next reply, or nullptr on a failed connection.
  std::unique_ptr<redisReply, void (*)(void*)> get() {
    void* r = nullptr;
    if (redisGetReply(ctx_, &r) != REDIS_OK)
      r = nullptr;
    return {static_cast<redisReply*>(r), freeReplyObject};
  }

private:
  std::uint16_t port_;
  redisContext* ctx_ = nullptr;
};

std::string str(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
    return {};
  return {r->str, r->len};
}

int64_t num(const redisReply* r) {
  if (r == nullptr)
    return -1;
  if (r->type == REDIS_REPLY_INTEGER)
    return r->integer;
  auto s = str(r);
  int64_t v = -1;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return s.empty() ? -1 : v;
}

bool final_status(const std::string& s) {
  return s == "completed" || s == "failed" || s == "suspended" || s == "cancelled";
}

/// Past this the run is hung: kill everything we started, by PID, run `last` (the network
/// namespaces' teardown) and exit 3.
void arm_watchdog(int64_t limit_ms, std::function<std::vector<pid_t>()> pids,
                  std::function<void()> last) {
  std::thread([limit_ms, pids = std::move(pids), last = std::move(last)] {
    std::this_thread::sleep_for(std::chrono::milliseconds(limit_ms));
    std::cerr << "convoy chaos: the run overran its time limit (" << limit_ms / 1000
              << " s); killing what it started\n";
    for (auto pid : pids())
      if (pid > 0) {
        ::kill(pid, SIGCONT);
        ::kill(pid, SIGKILL);
      }
    std::this_thread::sleep_for(200ms); // let the killed processes leave their namespaces
    if (last)
      last();
    std::_Exit(3);
  }).detach();
}


// -- the run --------------------------------------------------------------------------------------

class run {
public:
  run(run_options o) : opts_(std::move(o)) {}

  int execute();

private:
  void sample_loop();
  /// `generation`: how many master changes the sampler has seen (a record read on an earlier
  /// master may hold writes that the failover discarded).
  void sample_instances(redis_reader& r, std::uint16_t master, size_t generation);
  void sample_resources(std::uint16_t master);
  void inject(fault_event& f);
  void heal(fault_event& f);
  void heal_all();
  std::vector<std::string> in_flight(int owner_node);
  void cut_partition(fault_event& f);
  void heal_partition(fault_event& f);
  void read_final();
  void probe_fencing();
  bool sleep_until_ms(int64_t t);
  int64_t rel_ms() const { return now_ms() - t0_; }

  run_options opts_;
  cluster_options copts_;
  std::unique_ptr<test::temp_dir> dir_;
  /// Declared before the sink and the cluster, so it is torn down after both have stopped.
  std::unique_ptr<netns_fabric> fabric_;
  std::unique_ptr<sink> sink_;
  std::unique_ptr<cluster> cluster_;
  std::unique_ptr<client> client_;
  run_history h_;
  std::mutex mutex_; ///< guards h_ between the sampler and the fault runner
  std::atomic<bool> stop_sampler_{false};
  std::thread sampler_;
  int64_t t0_ = 0;
  std::vector<fault_event*> active_;
};

bool run::sleep_until_ms(int64_t t) {
  while (rel_ms() < t) {
    if (interrupted)
      return false;
    std::this_thread::sleep_for(std::min<int64_t>(100, t - rel_ms()) * 1ms);
  }
  return !interrupted;
}

std::vector<std::string> run::in_flight(int owner_node) {
  std::lock_guard<std::mutex> guard(mutex_);
  std::vector<std::string> out;
  const auto owner = owner_node >= 0 ? "node-" + std::to_string(owner_node + 1) : std::string{};
  for (const auto& [id, t] : h_.instances)
    if (t.acknowledged && !final_status(t.status) && (owner.empty() || t.owner == owner))
      out.push_back(id);
  return out;
}

void run::inject(fault_event& f) {
  f.at_ms = rel_ms();
  f.injected = true;
  if (f.type == "F1") {
    f.affected = in_flight(f.target);
    cluster_->kill9_node(static_cast<size_t>(f.target));
  } else if (f.type == "F2") {
    f.affected = in_flight(f.target);
    cluster_->stop_node(static_cast<size_t>(f.target));
  } else if (f.type == "F3" || f.type == "F4") {
    // One Redis fault at a time, on a whole group: the plan spaces them; wait if the group
    // is still healing from the previous one.
    if (!cluster_->wait_redis_settled(30s))
      f.note = "the group was not whole within 30 s before this fault";
    f.affected = in_flight(-1);
    f.redis_port = cluster_->master_port();
    f.at_ms = rel_ms();
    if (f.type == "F3")
      cluster_->kill9_redis(f.redis_port);
    else
      cluster_->stop_redis(f.redis_port);
  } else if (f.type == "F5" || f.type == "F6") {
    cut_partition(f);
  } else if (f.type == "F9") {
    f.affected = in_flight(-1);
    client_->set_boost(overload_factor);
  }
  std::cerr << "chaos: " << f.at_ms / 1000.0 << " s  inject " << f.type
            << (f.target >= 0 ? " node-" + std::to_string(f.target + 1) : std::string{})
            << (f.redis_port ? " redis :" + std::to_string(f.redis_port) : std::string{})
            << " (" << f.affected.size() << " instances in flight)\n";
}

void run::heal(fault_event& f) {
  if (!f.injected || f.healed)
    return;
  if (f.type == "F1") {
    cluster_->start_node(static_cast<size_t>(f.target));
  } else if (f.type == "F2") {
    std::error_code ec;
    f.log_offset = static_cast<size_t>(
      fs::file_size(cluster_->nodes()[static_cast<size_t>(f.target)].log, ec));
    cluster_->continue_node(static_cast<size_t>(f.target));
  } else if (f.type == "F3") {
    try {
      cluster_->restart_redis(f.redis_port);
    } catch (const std::exception& e) {
      f.note = std::string("restarting the old master failed: ") + e.what();
    }
  } else if (f.type == "F4") {
    cluster_->continue_redis(f.redis_port);
  } else if (f.type == "F5" || f.type == "F6") {
    heal_partition(f);
  } else if (f.type == "F9") {
    // Overlapping overloads (F11) share one boost: it ends with the last of them.
    bool another = false;
    for (const auto* g : active_)
      another = another || (g != &f && g->type == "F9" && g->injected && !g->healed);
    if (!another)
      client_->set_boost(1.0);
  }
  f.healed = true;
  f.healed_ms = rel_ms();
  {
    std::lock_guard<std::mutex> guard(mutex_);
    h_.last_heal_ms = std::max(h_.last_heal_ms, f.healed_ms);
  }
  std::cerr << "chaos: " << f.healed_ms / 1000.0 << " s  heal   " << f.type << "\n";
}

/// The number after `key` in an INFO reply (`master_repl_offset:`, `cmdstat_fcall:calls=`),
/// -1 when it is not there.
int64_t info_number(const std::string& info, const std::string& key) {
  auto at = info.find(key);
  if (at == std::string::npos)
    return -1;
  at += key.size();
  int64_t value = -1;
  std::from_chars(info.data() + at, info.data() + info.size(), value);
  return value;
}

/// The nodes a cluster supervisor declared dead in `file` from byte `offset` on (its log line
/// "cluster supervisor: node X is dead; ..." comes once per host with pending messages).
void dead_nodes_from(const fs::path& file, size_t offset, std::set<std::string>& out) {
  static const std::string prefix = "cluster supervisor: node ";
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  std::ifstream in(file);
  if (!ec && offset <= size) // a restarted node starts its log afresh
    in.seekg(static_cast<std::streamoff>(offset));
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find(prefix);
    const auto end = at == std::string::npos ? at : line.find(" is dead;", at);
    if (end != std::string::npos)
      out.insert(line.substr(at + prefix.size(), end - at - prefix.size()));
  }
}

/// What a Redis server has written and how many FCALLs it ran (F5's minority figures).
std::pair<int64_t, int64_t> write_counters(std::uint16_t port) {
  const auto repl = test::sentinel_group::command(port, {"INFO", "replication"}, 1s);
  const auto stats = test::sentinel_group::command(port, {"INFO", "commandstats"}, 1s);
  return {info_number(repl, "master_repl_offset:"),
          std::max<int64_t>(0, info_number(stats, "cmdstat_fcall:calls="))};
}

void run::cut_partition(fault_event& f) {
  auto& nodes = cluster_->nodes();
  const auto victim = nodes.at(static_cast<size_t>(f.target)).name;
  std::vector<std::string> side_a{victim}, side_b;
  for (const auto& n : nodes)
    if (n.name != victim)
      side_b.push_back(n.name);
  if (f.type == "F5") {
    // The master and one node on one side; the replicas, every Sentinel and the other nodes
    // on the other: the majority promotes a replica while the old master may still take
    // the cut-off node's writes.
    if (!cluster_->wait_redis_settled(30s))
      f.note = "the group was not whole within 30 s before this fault";
    f.redis_port = cluster_->master_port();
    const auto ports = cluster_->redis().redis_ports();
    for (size_t i = 0; i < ports.size(); ++i)
      (ports[i] == f.redis_port ? side_a : side_b).push_back("redis-" + std::to_string(i));
    for (size_t i = 0; i < cluster_->redis().sentinel_ports().size(); ++i)
      side_b.push_back("sentinel-" + std::to_string(i));
    f.affected = in_flight(-1);
    const auto [offset, fcalls] = write_counters(f.redis_port);
    f.figures["old_master_repl_offset_at_cut"] = offset;
    f.figures["old_master_fcalls_at_cut"] = fcalls;
  } else {
    // F6: the nodes coordinate through the MessageBox only (no cluster link configured), so
    // cutting one node off from the others must change nothing: no relocation, no duplicate.
    f.affected = in_flight(f.target);
  }
  for (const auto& n : nodes) {
    std::error_code ec;
    auto size = fs::file_size(n.log, ec);
    f.log_offsets.push_back(ec ? 0 : static_cast<size_t>(size));
  }
  f.at_ms = rel_ms();
  fabric_->cut(side_a, side_b);
  f.cut = fabric_->cuts();
}

void run::heal_partition(fault_event& f) {
  if (f.type == "F5") {
    // What the old master accepted while cut off (writes that the promotion discards).
    const auto [offset, fcalls] = write_counters(f.redis_port);
    f.figures["minority_write_bytes"] =
      offset >= 0 ? offset - f.figures["old_master_repl_offset_at_cut"] : -1;
    f.figures["minority_fcalls"] = fcalls - f.figures["old_master_fcalls_at_cut"];
  }
  try {
    fabric_->heal();
  } catch (const std::exception& e) {
    f.note = std::string("healing the partition failed: ") + e.what();
  }
  // Nodes the cluster supervisor declared dead while the cut lasted: for F5 the cut-off node
  // (its lease lapsed on the new master: a true relocation); for F6 any is a false one.
  auto& nodes = cluster_->nodes();
  std::set<std::string> dead;
  for (size_t i = 0; i < nodes.size() && i < f.log_offsets.size(); ++i)
    dead_nodes_from(nodes[i].log, f.log_offsets[i], dead);
  f.figures["nodes_declared_dead"] = static_cast<int64_t>(dead.size());
}

void run::heal_all() {
  for (auto* f : active_)
    heal(*f);
  active_.clear();
}

void run::sample_instances(redis_reader& r, std::uint16_t master, size_t generation) {
  // New instances from the client's history, then one pipelined HMGET per unfinished one.
  auto ops = client_->history();
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    for (const auto& op : ops) {
      auto& t = h_.instances[op.instance];
      t.id = op.instance;
      t.expected_steps = op.steps;
      if (op.result == outcome::ok && !t.acknowledged) {
        t.acknowledged = true;
        t.acknowledged_ms = op.complete_ms;
      }
    }
    for (const auto& [id, t] : h_.instances)
      if (!final_status(t.status))
        ids.push_back(id);
  }
  for (const auto& id : ids)
    r.append({"HMGET", "convoy:inst:" + id, "status", "seq", "steps", "epoch", "owner"});
  std::vector<std::unique_ptr<redisReply, void (*)(void*)>> replies;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto reply = r.get();
    if (!reply)
      return; // the master went away mid-sample: the next one starts afresh
    replies.push_back(std::move(reply));
  }
  const auto now = rel_ms();
  std::lock_guard<std::mutex> guard(mutex_);
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto* rep = replies[i].get();
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5 || rep->element[0]->type == REDIS_REPLY_NIL)
      continue;
    auto& t = h_.instances[ids[i]];
    auto seq = num(rep->element[1]), steps = num(rep->element[2]), epoch = num(rep->element[3]);
    auto owner = str(rep->element[4]);
    if (t.seq >= 0 && (seq < t.seq || steps < t.steps || epoch < t.epoch)) {
      if (t.master == master) {
        if (t.regressions++ == 0)
          t.first_regression = "seq " + std::to_string(t.seq) + "->" + std::to_string(seq)
                               + ", steps " + std::to_string(t.steps) + "->"
                               + std::to_string(steps) + ", epoch " + std::to_string(t.epoch)
                               + "->" + std::to_string(epoch) + " on :" + std::to_string(master)
                               + " at " + std::to_string(now) + " ms";
      } else {
        ++t.regressions_across_failover;
      }
    }
    if (epoch > 0 && !owner.empty()) {
      auto [it, fresh] = t.owner_by_epoch.emplace(epoch, std::pair{owner, generation});
      if (!fresh && it->second.first != owner) {
        if (it->second.second == generation)
          ++t.epoch_owner_conflicts;
        else
          ++t.epoch_owner_conflicts_across_failover;
      }
    }
    t.seq = seq;
    t.steps = steps;
    t.epoch = epoch;
    t.owner = owner;
    t.status = str(rep->element[0]);
    t.master = master;
    if (final_status(t.status) && t.finished_ms < 0)
      t.finished_ms = now;
  }
}

void run::sample_resources(std::uint16_t master) {
  auto& nodes = cluster_->nodes(); // names and ports only: those never change
  auto pids = cluster_->node_pids();
  std::map<std::string, double> rss;
  for (size_t i = 0; i < pids.size(); ++i)
    rss[nodes[i].name] = rss_mb(pids[i]);
  std::map<std::string, int64_t> queues;
  {
    redis_reader r(master);
    if (r.ok()) {
      for (const auto* host : {"receive", "processing", "send"})
        r.append({"XLEN", std::string("convoy:q:") + host});
      for (const auto* host : {"receive", "processing", "send"}) {
        auto reply = r.get();
        if (!reply)
          break;
        queues[host] = num(reply.get());
      }
    }
  }
  int64_t throttled = 0;
  for (auto& n : nodes) {
    httplib::Client c(test::host_of(n.admin_port), n.admin_port);
    c.set_connection_timeout(0, 200'000);
    c.set_read_timeout(0, 500'000);
    auto res = c.Get("/metrics");
    if (!res || res->status != 200)
      continue;
    std::istringstream in(res->body);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("convoy_throttled{", 0) == 0 && line.size() > 2
          && line.substr(line.size() - 2) == " 1")
        ++throttled;
  }
  std::lock_guard<std::mutex> guard(mutex_);
  for (const auto& [name, mb] : rss) {
    h_.max_rss_by_node[name] = std::max(h_.max_rss_by_node[name], mb);
    h_.max_rss_mb = std::max(h_.max_rss_mb, mb);
  }
  for (const auto& [host, n] : queues) {
    h_.max_queue_by_host[host] = std::max(h_.max_queue_by_host[host], n);
    h_.max_queue = std::max(h_.max_queue, n);
  }
  h_.throttled_samples += throttled;
}

void run::sample_loop() {
  std::uint16_t last_master = 0;
  size_t generation = 0;
  int64_t last_resources = -10'000;
  while (!stop_sampler_) {
    auto master = cluster_->master_port();
    if (master != 0 && master != last_master) {
      if (last_master != 0) {
        std::lock_guard<std::mutex> guard(mutex_);
        h_.master_changes.emplace_back(rel_ms(), master);
        ++generation;
      }
      last_master = master;
    }
    if (master != 0) {
      redis_reader r(master);
      if (r.ok())
        sample_instances(r, master, generation);
      if (rel_ms() - last_resources >= 1000) {
        last_resources = rel_ms();
        sample_resources(master);
      }
    }
    std::this_thread::sleep_for(250ms);
  }
}

void run::probe_fencing() {
  // A stale owner's persistence point, written the way a node writes one (the MessageBox's
  // convoy_checkpoint, next seq, same status and result), with the epoch one below the
  // record's. The store must refuse it with CONVOY_STALE_EPOCH. Completed instances only: were
  // the write accepted it would change nothing but the record's seq and commit number.
  auto master = cluster_->master_port();
  redis_reader r(master);
  if (!r.ok())
    return;
  r.append({"HGET", "convoy:store", "id"});
  auto store = r.get();
  if (!store)
    return;
  const auto store_id = str(store.get());
  int probed = 0;
  for (const auto& [id, t] : h_.instances) {
    if (probed >= 25)
      break;
    if (!t.acknowledged || t.status != "completed")
      continue;
    r.append({"HMGET", "convoy:inst:" + id, "epoch", "seq", "steps", "result", "host",
              "generation"});
    auto rec = r.get();
    if (!rec || rec->type != REDIS_REPLY_ARRAY || rec->elements != 6)
      continue;
    const auto epoch = num(rec->element[0]);
    if (epoch < 1)
      continue;
    const auto host = str(rec->element[4]);
    r.append({"FCALL", "convoy_checkpoint", "6", "convoy:inst:" + id, "convoy:journal:" + id,
              "convoy:timers", "convoy:tracking", "convoy:q:" + host, "convoy:store",
              std::to_string(epoch - 1), std::to_string(num(rec->element[1]) + 1),
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count()),
              "completed", std::to_string(num(rec->element[2])), str(rec->element[3]), "", host,
              "convoy:", std::to_string(std::max<int64_t>(0, num(rec->element[5]))), "0", "",
              std::string(1, '\0'), "0", "0", "0", "0", "0", "0", "0", store_id});
    auto answer = r.get();
    if (!answer)
      break;
    ++probed;
    ++h_.probe_attempted;
    if (answer->type == REDIS_REPLY_ERROR
        && std::string(answer->str, answer->len).find("CONVOY_STALE_EPOCH") != std::string::npos)
      ++h_.probe_rejected;
    else if (answer->type != REDIS_REPLY_ERROR)
      h_.probe_accepted.push_back(id);
  }
}

void run::read_final() {
  auto master = cluster_->master_port();
  redis_reader r(master);
  if (!r.ok())
    throw std::runtime_error("cannot read the final MessageBox at :" + std::to_string(master));
  std::vector<std::string> ids;
  for (const auto& [id, t] : h_.instances)
    ids.push_back(id);
  for (const auto& id : ids) {
    r.append({"HMGET", "convoy:inst:" + id, "status", "result", "input", "seq", "steps"});
    r.append({"LRANGE", "convoy:journal:" + id, "0", "-1"});
  }
  for (const auto& id : ids) {
    auto rec = r.get();
    auto journal = r.get();
    if (!rec || !journal)
      throw std::runtime_error("the final read of the MessageBox failed");
    auto& t = h_.instances[id];
    if (rec->type == REDIS_REPLY_ARRAY && rec->elements == 5
        && rec->element[0]->type != REDIS_REPLY_NIL) {
      t.found = true;
      t.final_status = str(rec->element[0]);
      t.final_result = str(rec->element[1]);
      t.final_input = str(rec->element[2]);
      t.final_seq = num(rec->element[3]);
      t.final_steps = num(rec->element[4]);
    }
    if (journal->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i < journal->elements; ++i)
        t.journal.push_back(str(journal->element[i]));
  }
  r.append({"XLEN", "convoy:rollbacks"});
  if (auto n = r.get())
    h_.rollbacks = std::max<int64_t>(0, num(n.get()));
}

json by_outcome(const std::vector<operation>& ops) {
  json out{{"invoke", ops.size()}, {"ok", 0}, {"fail", 0}, {"unknown", 0}, {"throttled", 0}};
  std::set<int64_t> messages, acked;
  for (const auto& op : ops) {
    out[to_string(op.result)] = out[to_string(op.result)].get<int64_t>() + 1;
    if (op.throttled)
      out["throttled"] = out["throttled"].get<int64_t>() + 1;
    messages.insert(op.op);
    if (op.result == outcome::ok)
      acked.insert(op.op);
  }
  out["messages"] = messages.size();
  out["messages_acknowledged"] = acked.size();
  out["messages_never_acknowledged"] = messages.size() - acked.size();
  return out;
}

/// Acknowledgement latency (invoke to 202) in steady state and while a fault is active.
json ack_latency(const std::vector<operation>& ops, const std::vector<fault_event>& faults) {
  std::vector<double> steady, during;
  for (const auto& op : ops) {
    if (op.result != outcome::ok)
      continue;
    bool in_fault = false;
    for (const auto& f : faults)
      if (f.injected && op.invoke_ms >= f.at_ms
          && op.invoke_ms <= (f.healed_ms >= 0 ? f.healed_ms : f.at_ms) + 5000)
        in_fault = true;
    (in_fault ? during : steady).push_back(static_cast<double>(op.complete_ms - op.invoke_ms));
  }
  return json{{"steady_ms", percentiles(steady)}, {"during_faults_ms", percentiles(during)}};
}

std::string seconds(const json& ms) {
  if (!ms.is_number())
    return "-";
  std::ostringstream s;
  s.precision(ms.get<double>() < 10'000 ? 2 : 3);
  s << ms.get<double>() / 1000.0;
  return s.str();
}

int run::execute() {
  dir_ = std::make_unique<test::temp_dir>();
  if (opts_.network == "netns") {
    // Before any thread starts: the threads started later (sink, sampler, client) inherit the
    // hub namespace.
    try {
      fabric_ = std::make_unique<netns_fabric>("cvy" + std::to_string(::getpid()));
      fabric_->enter_hub();
    } catch (const std::exception& e) {
      std::cerr << "convoy chaos: " << e.what() << "\n";
      return 3;
    }
    copts_.sink_host = netns_fabric::hub_address;
    copts_.place = [this](const std::string& member) { return fabric_->member(member); };
  }
  sink_ = std::make_unique<sink>(dir_->path() / "sink.jsonl", copts_.sink_host);
  copts_.convoy_binary = convoy_binary();
  copts_.nodes = opts_.nodes;
  copts_.min_replicas_to_write = opts_.min_replicas_to_write;
  copts_.sink_port = sink_->port();
  const auto revision = git_revision(); // the tree the run started from
  auto plan = plan_faults(opts_, copts_);
  std::cerr << "chaos: seed " << opts_.seed << ", " << plan.size() << " faults planned over "
            << opts_.duration_ms / 1000 << " s, run folder " << dir_->path().string() << "\n";
  try {
    cluster_ = std::make_unique<cluster>(dir_->path(), copts_);
  } catch (const std::exception& e) {
    std::cerr << "convoy chaos: cannot start the cluster: " << e.what() << "\n";
    return 3;
  }
  if (!cluster_->wait_ready(60s)) {
    std::cerr << "convoy chaos: the nodes were not ready within 60 s (logs in "
              << dir_->path().string() << ")\n";
    return 3;
  }
  arm_watchdog(
    opts_.duration_ms + opts_.settle_ms + 300'000, [this] { return cluster_->pids(); },
    [this] {
      if (fabric_)
        fabric_->teardown();
    });
  for (auto& n : cluster_->nodes())
    h_.node_logs.push_back(n.log.string());
  std::vector<std::uint16_t> ports;
  for (auto& n : cluster_->nodes())
    ports.push_back(n.http_port);
  t0_ = now_ms();
  client_ = std::make_unique<client>(ports, opts_.seed, opts_.rate);
  client_->start();
  sampler_ = std::thread([this] { sample_loop(); });

  // Faults: inject and heal events in time order.
  std::vector<std::pair<int64_t, std::pair<bool, size_t>>> events; // (t, (inject?, index))
  for (size_t i = 0; i < plan.size(); ++i) {
    events.push_back({plan[i].plan_at_ms, {true, i}});
    events.push_back({plan[i].plan_at_ms + plan[i].plan_hold_ms, {false, i}});
  }
  std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && !a.second.first && b.second.first);
  });
  for (const auto& [t, ev] : events) {
    if (!sleep_until_ms(t))
      break;
    auto& f = plan[ev.second];
    if (ev.first) {
      inject(f);
      active_.push_back(&f);
    } else {
      heal(f);
      std::erase(active_, &f);
    }
  }
  sleep_until_ms(opts_.duration_ms);
  heal_all();
  client_->stop();
  {
    std::lock_guard<std::mutex> guard(mutex_);
    h_.last_heal_ms = std::max(h_.last_heal_ms, rel_ms());
  }
  std::cerr << "chaos: " << rel_ms() / 1000.0 << " s  workload stopped, waiting up to "
            << opts_.settle_ms / 1000 << " s for every instance to finish\n";

  // Quiescence: every acknowledged instance final, bounded.
  const int64_t settle_deadline = rel_ms() + opts_.settle_ms;
  int64_t settled = -1;
  while (!interrupted && rel_ms() < settle_deadline) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      bool all = !h_.instances.empty();
      for (const auto& [id, t] : h_.instances)
        if (t.acknowledged && !final_status(t.status))
          all = false;
      if (all) {
        settled = rel_ms();
        break;
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  // One more sample so the final states the sampler saw are current, then stop it.
  std::this_thread::sleep_for(500ms);
  stop_sampler_ = true;
  sampler_.join();
  h_.settled_ms = settled;
  if (interrupted) {
    std::cerr << "convoy chaos: interrupted (signal " << interrupted.load()
              << "); stopping everything\n";
    cluster_->stop();
    return 130;
  }
  h_.operations = client_->history();
  h_.arrivals = sink_->arrivals();
  // Failover time of the Redis faults: injection to the first sample naming another master.
  for (auto& f : plan)
    for (const auto& [t, port] : h_.master_changes)
      if (f.injected && f.redis_port != 0 && t >= f.at_ms && port != f.redis_port) {
        f.failover_ms = t - f.at_ms;
        f.new_master = port;
        break;
      }
  h_.faults = plan;
  try {
    probe_fencing();
    read_final();
  } catch (const std::exception& e) {
    std::cerr << "convoy chaos: " << e.what() << "\n";
    return 3;
  }
  const int64_t ran_ms = rel_ms();
  cluster_->stop();
  sink_->stop();

  check_limits limits;
  limits.settle_ms = opts_.settle_ms;
  limits.rss_cap_mb = opts_.rss_cap_mb;
  limits.queue_cap = opts_.queue_cap;
  auto checks = run_checkers(h_, limits);

  std::map<std::string, int> by_type;
  for (const auto& f : h_.faults)
    if (f.injected)
      ++by_type[f.type];
  int faults = 0;
  std::string faults_text;
  for (const auto& [t, n] : by_type) {
    faults += n;
    faults_text += (faults_text.empty() ? "" : " ") + t + "\xc3\x97" + std::to_string(n);
  }
  std::vector<std::string> failed;
  for (auto& [name, c] : checks.items())
    if (!c.value("pass", false))
      failed.push_back(name);
  size_t runs = 0;
  for (const auto& [id, t] : h_.instances)
    runs += t.acknowledged ? 1 : 0;

  std::ostringstream reproduce;
  reproduce << "convoy chaos run --faults " << opts_.faults_text << " --duration "
            << opts_.duration_text << " --seed " << opts_.seed << " --nodes " << opts_.nodes
            << " --rate " << opts_.rate << " --settle " << opts_.settle_text;
  if (opts_.min_replicas_to_write > 0)
    reproduce << " --min-replicas-to-write " << opts_.min_replicas_to_write;
  if (opts_.network != "loopback")
    reproduce << " --network " << opts_.network;

  const auto lost = checks["C1"]["lost"].get<int64_t>();
  const auto dups = checks["C3"]["duplicate_effects_after_dedupe"].get<int64_t>();
  const auto stale = checks["C4"]["stale_writes_accepted"].get<int64_t>();
  const auto& rec = checks["C5"]["recovery_ms_per_fault"];
  auto loud = [](int64_t n, const std::string& what) {
    std::string s = std::to_string(n) + " " + what;
    if (n == 0)
      return s;
    for (auto& c : s)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return "!! " + s + " !!";
  };
  std::ostringstream headline;
  headline << runs << " runs, " << faults << " faults (" << (faults_text.empty() ? "none" : faults_text)
           << "), " << loud(lost, "acknowledged items lost") << ", "
           << loud(stale, "stale writes accepted") << ", " << loud(dups, "duplicate effects")
           << ", recovery p50/p99/max " << seconds(rec["p50"]) << "/" << seconds(rec["p99"])
           << "/" << seconds(rec["max"]) << " s";
  // The other checkers' numbers appear only when they are not 0.
  for (const auto& [n, what] : std::vector<std::pair<int64_t, std::string>>{
         {checks["C2"]["regressions"].get<int64_t>(), "step regressions"},
         {checks["C3"]["effects_missing"].get<int64_t>(), "effects missing"},
         {checks["C4"]["two_owners_one_epoch"].get<int64_t>(), "epochs with two owners"},
         {checks["C5"]["stuck"].get<int64_t>(), "instances stuck"},
         {checks["C6"]["mismatches"].get<int64_t>(), "replay mismatches"},
         {checks["C7"]["violations"].get<int64_t>(), "resource caps passed"}})
    if (n != 0)
      headline << ", " << loud(n, what);
  if (failed.empty()) {
    headline << " - all checkers pass";
  } else {
    headline << " - FAILED:";
    for (const auto& f : failed)
      headline << " " << f;
  }

  json planned = json::array();
  for (const auto& f : h_.faults)
    planned.push_back(json{{"type", f.type},
                           {"at_s", static_cast<double>(f.plan_at_ms) / 1000.0},
                           {"hold_s", static_cast<double>(f.plan_hold_ms) / 1000.0},
                           {"node", f.target >= 0 ? json(f.target + 1) : json()},
                           {"injected", f.injected}});
  json report{{"tool", "convoy chaos"},
              {"seed", opts_.seed},
              {"git_revision", revision},
              {"command", reproduce.str()},
              {"faults_requested", opts_.faults},
              {"duration_s", static_cast<double>(opts_.duration_ms) / 1000.0},
              {"ran_s", static_cast<double>(ran_ms) / 1000.0},
              {"topology",
               json{{"redis", "1 master + 2 replicas (appendonly yes), 3 Sentinels, quorum 2"},
                    {"down_after_ms", copts_.down_after_ms},
                    {"failover_timeout_ms", copts_.failover_timeout_ms},
                    {"nodes", opts_.nodes},
                    {"lease_ttl_ms", copts_.lease_ttl_ms},
                    {"heartbeat_ms", copts_.heartbeat_ms},
                    {"durability", "replicated (WAIT 1)"},
                    {"min_replicas_to_write", opts_.min_replicas_to_write},
                    {"network",
                     opts_.network == "netns"
                       ? "network namespaces: one per member on a bridge in 198.18.0.0/24, "
                         "partitions by blackhole routes"
                       : "loopback (no namespaces)"}}},
              {"workload", json{{"rate_per_s", opts_.rate},
                                {"steps_per_instance", "5-50, seeded"},
                                {"overload_factor_F9", overload_factor}}},
              {"operations", by_outcome(h_.operations)},
              {"runs", runs},
              {"faults_by_type", by_type},
              {"faults_planned", planned},
              {"master_changes", h_.master_changes.size()},
              {"acknowledgement_latency", ack_latency(h_.operations, h_.faults)},
              {"recovery_ms", rec},
              {"max_rss_mb", h_.max_rss_mb},
              {"checkers", checks},
              {"failed_checkers", failed},
              {"headline", headline.str()}};
  if (!opts_.report.empty()) {
    std::ofstream out(opts_.report);
    out << report.dump(2) << "\n";
    if (!out)
      std::cerr << "convoy chaos: cannot write the report to " << opts_.report << "\n";
  }
  std::cout << headline.str() << "\n";
  std::cout << "report: " << (opts_.report.empty() ? std::string("(none)") : opts_.report)
            << "\nreproduce: " << reproduce.str() << "\n";
  if (!failed.empty() || opts_.keep) {
    // Keep the run folder (node and Redis logs, the sink's raw arrivals) for a post-mortem.
    ::setenv("CONVOY_KEEP_TEST_DIRS", "1", 1);
  }
  return failed.empty() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"convoy chaos: seeded fault injection against a real cluster on this machine"};
  app.require_subcommand(1);
  run_options o;
  std::string seed_text = "1";
  auto run_cmd = app.add_subcommand(
    "run", "start 3 Redis + 3 Sentinels + N nodes on loopback, run the workload, inject faults,\n"
           "check C1-C7 and write a JSON report\n"
           "example: convoy chaos run --faults F1,F2,F3 --duration 120s --seed 7");
  run_cmd->add_option("--faults", o.faults_text,
                      "comma-separated: F1 F2 F3 F4 F9 (F5 F6 with --network netns), or F11 (a seeded mix)")
    ->required();
  run_cmd->add_option("--duration", o.duration_text, "how long faults are injected: 90s, 30m, 1h (default 120s)");
  run_cmd->add_option("--seed", seed_text, "the seed of the schedule and the workload (default 1)");
  run_cmd->add_option("--nodes", o.nodes, "convoy nodes (default 3)")->check(CLI::Range(2, 5));
  run_cmd->add_option("--report", o.report, "where the JSON report goes (default chaos-report.json)");
  run_cmd->add_option("--rate", o.rate, "messages submitted per second (default 3)")
    ->check(CLI::Range(0.1, 200.0));
  run_cmd->add_option("--settle", o.settle_text, "T of C5: time allowed after the last heal (default 120s)");
  run_cmd->add_option("--rss-cap-mb", o.rss_cap_mb, "C7: a node's RSS cap (default 1024)");
  run_cmd->add_option("--queue-cap", o.queue_cap, "C7: a host queue's length cap (default 20000)");
  run_cmd->add_option("--min-replicas-to-write", o.min_replicas_to_write,
                      "Redis min-replicas-to-write on every data node (default 0: off)")
    ->check(CLI::Range(0, 2));
  run_cmd->add_flag("--keep", o.keep, "keep the run folder (logs, sink arrivals) even when it passes");
  run_cmd
    ->add_option("--network", o.network,
                 "loopback (default) or netns: every member in a network namespace of its own\n"
                 "(root only), which F5 and F6 need to cut partitions")
    ->check(CLI::IsMember({"loopback", "netns"}));
  if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != "run") {
    std::cerr << "convoy chaos: unknown command '" << argv[1] << "' (the command is: run)\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::cerr << "convoy chaos: " << e.what() << " (see convoy chaos run --help)\n";
    return 2;
  }
  if (auto err = parse_faults(o.faults_text, o.faults); !err.empty()) {
    std::cerr << "convoy chaos: " << err << "\n";
    return 2;
  }
  for (const auto& f : o.faults)
    if ((f == "F5" || f == "F6") && o.network != "netns") {
      std::cerr << "convoy chaos: --faults " << f
                << " cuts a partition, which needs --network netns (as root)\n";
      return 2;
    }
  if (o.network == "netns" && ::geteuid() != 0) {
    std::cerr << "convoy chaos: --network netns needs root (it creates network namespaces)\n";
    return 2;
  }
  auto d = parse_duration(o.duration_text);
  if (!d || *d < 20'000) {
    std::cerr << "convoy chaos: --duration '" << o.duration_text
              << "' must be a duration of at least 20s, like 90s, 30m or 1h\n";
    return 2;
  }
  o.duration_ms = *d;
  auto s = parse_duration(o.settle_text);
  if (!s) {
    std::cerr << "convoy chaos: --settle '" << o.settle_text << "' must be a duration like 120s\n";
    return 2;
  }
  o.settle_ms = *s;
  {
    auto [end, ec] = std::from_chars(seed_text.data(), seed_text.data() + seed_text.size(), o.seed);
    if (ec != std::errc{} || end != seed_text.data() + seed_text.size()) {
      std::cerr << "convoy chaos: --seed '" << seed_text << "' must be a non-negative integer\n";
      return 2;
    }
  }
  for (auto& c : o.faults_text)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    run r(o);
    return r.execute();
  } catch (const std::exception& e) {
    std::cerr << "convoy chaos: " << e.what() << "\n";
    return 3;
  }
}
