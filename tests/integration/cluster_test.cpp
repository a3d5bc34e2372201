// Several real nodes on one MessageBox: when one dies or freezes, the node holding the cluster
// supervisor's lease notices its lapsed lease and hands its unfinished work to the
// least-loaded survivor, long before the idle-reclaim fallback would; a frozen node that
// wakes up finds its work gone, drops it and rejoins. Nothing is lost, no effect repeats
// after dedupe by idempotency key.

#include "convoy/persistence/message_box.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/sentinel_group.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

using namespace convoy;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// Fallback reclaim is set far beyond every deadline below: whatever moves in time was
/// moved by the lease path.
constexpr auto reclaim_idle = 60s;

struct cluster_run {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path());
  std::unique_ptr<persistence::message_box> box;
  std::map<std::string, test::child_process> nodes;
  fs::path sink = dir.path() / "effects.log";

  /// With `with_sentinels`, the MessageBox is a Sentinel group (1 master, 2 replicas, 3
  /// Sentinels) that nodes and the test reach through the Sentinels; else one redis-server.
  std::optional<test::sentinel_group> group;

  enum class messagebox { single_server, with_sentinels };

  explicit cluster_run(messagebox kind = messagebox::single_server) {
    persistence::message_box_config cfg;
    if (kind == messagebox::with_sentinels) {
      group = test::sentinel_group::start(dir.path());
      cfg.endpoint.sentinels = group->sentinel_addresses();
      cfg.endpoint.master_name = "convoy";
    } else {
      cfg.endpoint.port = redis.port();
    }
    box = std::make_unique<persistence::message_box>(cfg);
  }

  /// Where the MessageBox's master is now.
  uint16_t master_port() const { return group ? group->master_port() : redis.port(); }

  std::string master_command(std::initializer_list<std::string> args) const {
    return test::redis_command(master_port(), args);
  }

  ~cluster_run() {
    for (auto& [name, p] : nodes) {
      p.send_signal(SIGCONT);
      p.send_signal(SIGTERM);
      p.wait_for_exit(10s);
    }
  }

  fs::path log(const std::string& name) const { return dir.path() / (name + ".log"); }

  /// Settings every node started from now on gets too (`section.key=value`).
  std::vector<std::string> extra;

  /// A cluster CA and a certificate per node, made with the real `convoy cert`; from now on
  /// nodes start with the cluster link on (mutual TLS), with these BASP settings.
  void use_cluster_link(const std::vector<std::string>& names, int heartbeat_ms,
                        int connection_timeout_ms) {
    auto certs = (dir.path() / "certs").string();
    auto run = [&](std::vector<std::string> args) {
      args.insert(args.begin(), CONVOY_BINARY);
      auto r = test::run_command(args, 30s);
      BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    };
    run({"cert", "init", "--dir", certs});
    for (const auto& name : names)
      run({"cert", "issue", name, "--dir", certs});
    link_settings = [certs, heartbeat_ms, connection_timeout_ms](const std::string& name) {
      return std::vector<std::string>{
        "cluster.certificate=" + certs + "/" + name + ".pem",
        "cluster.key=" + certs + "/" + name + ".key", "cluster.ca=" + certs + "/ca.pem",
        "cluster.heartbeat_ms=" + std::to_string(heartbeat_ms),
        "cluster.connection_timeout_ms=" + std::to_string(connection_timeout_ms)};
    };
  }
  std::function<std::vector<std::string>(const std::string&)> link_settings;

  void start(const std::string& name, const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv{CONVOY_BINARY, "node"};
    std::vector<std::string> settings{
      "node.name=" + name, "node.log_level=debug",
      "timing.heartbeat_ms=100",
      "timing.lease_ttl_ms=500",
      "timing.reclaim_idle_ms=" + std::to_string(reclaim_idle.count() * 1000),
      "timing.poll_block_ms=100", "processing.dehydrate_after_ms=0"};
    if (group) {
      std::string list;
      for (const auto& a : group->sentinel_addresses())
        list += (list.empty() ? "\"" : ", \"") + a + "\"";
      settings.push_back("messagebox.sentinels=[" + list + "]");
      settings.push_back("messagebox.master_name=convoy");
    } else {
      settings.push_back("messagebox.address=127.0.0.1:" + std::to_string(redis.port()));
    }
    settings.insert(settings.end(), extra.begin(), extra.end());
    settings.insert(settings.end(), more.begin(), more.end());
    if (link_settings)
      for (auto& kv : link_settings(name))
        settings.push_back(std::move(kv));
    for (const auto& kv : settings) {
      argv.push_back("--set");
      argv.push_back(kv);
    }
    nodes.emplace(name, test::child_process::start(argv, {}, log(name).string()));
  }

  /// Makes frozen `node` hold an unacknowledged message, as a busy node does: a harmless one,
  /// a repeated start of a running instance, added and read as `node` in one transaction so
  /// that no live node's blocked read can take it first.
  void hand_pending_to(const std::string& node) {
    auto handed = test::redis_commands(
      master_port(),
      {{"MULTI"},
       {"XADD", "convoy:q:processing", "*", "v", "1", "kind", "start", "instance", "w-0"},
       {"XREADGROUP", "GROUP", "processing", node, "COUNT", "1", "STREAMS",
        "convoy:q:processing", ">"},
       {"EXEC"}});
    BOOST_TEST_REQUIRE(
      !master_command({"XPENDING", "convoy:q:processing", "processing", "-", "+", "10", node})
         .empty(),
      node << " holds nothing: " << handed.back());
  }

  /// Waits until every node is a live member.
  bool all_joined() {
    return test::wait_until(
      [&] {
        auto listed = box->list_nodes();
        size_t alive = 0;
        for (const auto& n : listed.nodes)
          alive += n.status == "alive" ? 1 : 0;
        return alive == nodes.size();
      },
      10s);
  }

  void submit(int instances, int steps, int pause_ms = 300) {
    for (int i = 0; i < instances; ++i) {
      auto input = json{{"count", steps}, {"sink", sink.string()}, {"pause_ms", pause_ms}}.dump();
      BOOST_TEST_REQUIRE(box->submit("receive", "steps", input, "w-" + std::to_string(i)).empty());
    }
  }

  /// The records of w-0 .. w-(instances-1), in that order (one pipelined read of the newest
  /// records, not a describe each: polling a thousand instances must not load the machine).
  std::vector<instance_record> records(int instances) {
    std::map<std::string, instance_record> by_id;
    for (auto& r : box->list_instances(static_cast<size_t>(instances) + 16).instances)
      by_id[r.id] = std::move(r);
    std::vector<instance_record> out;
    for (int i = 0; i < instances; ++i) {
      auto id = "w-" + std::to_string(i);
      auto found = by_id.find(id);
      if (found != by_id.end()) {
        out.push_back(std::move(found->second));
      } else {
        out.emplace_back();
        out.back().id = id; // not created yet
      }
    }
    return out;
  }

  /// node-a and node-b joined, `instances` submitted, node-a running some of them.
  void two_nodes_with_node_a_busy(int instances, int steps) {
    for (auto name : {"node-a", "node-b"})
      start(name);
    BOOST_TEST_REQUIRE(all_joined(), logs());
    submit(instances, steps);
    BOOST_TEST_REQUIRE(wait_until_running_on("node-a", instances), logs());
  }

  /// Waits until `node` runs at least one instance that has made progress.
  bool wait_until_running_on(const std::string& node, int instances) {
    return test::wait_until(
      [&] {
        for (const auto& r : records(instances))
          if (r.owner == node && r.status == instance_status::waiting && r.steps >= 2)
            return true;
        return false;
      },
      20s);
  }

  bool all_completed(int instances) {
    for (const auto& r : records(instances))
      if (r.status != instance_status::completed)
        return false;
    return true;
  }

  std::string logs() const {
    std::string out = "nodes: " + master_command({"ZRANGE", "convoy:nodes", "0", "-1", "WITHSCORES"})
                      + "\nnode-a: " + master_command({"HGETALL", "convoy:node:node-a"})
                      + "\nlease: " + master_command({"HGETALL", "convoy:cluster-lease"})
                      + "\npending: " + master_command({"XPENDING", "convoy:q:processing", "processing"})
                      + "\nrelocations: " + master_command({"KEYS", "convoy:relocate:*"}) + "\n";
    for (const auto& [name, p] : nodes) {
      std::ifstream in(log(name));
      std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      out += "---- " + name + " ----\n" + text.substr(text.size() > 4000 ? text.size() - 4000 : 0);
    }
    return out;
  }

  std::string log_text(const std::string& name) const {
    std::ifstream in(log(name));
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  /// Every activity ran at least once; after dedupe by idempotency key, once.
  void check_effects(int instances, int steps) {
    std::set<std::string> keys;
    std::ifstream in(sink);
    for (std::string line; std::getline(in, line);)
      keys.insert(line);
    BOOST_TEST(keys.size() == size_t(instances * steps));
    for (int i = 0; i < instances; ++i)
      for (int s = 0; s < steps; ++s)
        BOOST_TEST(keys.count("w-" + std::to_string(i) + "/" + std::to_string(2 * s)) == 1u);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(cluster)

BOOST_AUTO_TEST_CASE(a_dead_nodes_work_moves_to_a_survivor_once_its_lease_lapses) {
  cluster_run c;
  for (auto name : {"node-a", "node-b", "node-c"})
    c.start(name);
  BOOST_TEST_REQUIRE(c.all_joined(), c.logs());
  constexpr int instances = 12, steps = 10;
  c.submit(instances, steps);
  // Wait until node-a owns some running instances, then kill it.
  std::set<std::string> on_a;
  BOOST_TEST_REQUIRE(test::wait_until(
                       [&] {
                         on_a.clear();
                         for (const auto& r : c.records(instances))
                           if (r.owner == "node-a" && r.status == instance_status::waiting && r.steps >= 2)
                             on_a.insert(r.id);
                         return !on_a.empty();
                       },
                       20s),
                     c.logs());
  // Frozen, then handed work it will never finish, then killed: it dies holding an
  // unacknowledged message, as a busy node does.
  c.nodes.at("node-a").send_signal(SIGSTOP);
  c.hand_pending_to("node-a");
  c.nodes.at("node-a").send_signal(SIGKILL);
  c.nodes.at("node-a").wait_for_exit(10s);
  auto killed = std::chrono::steady_clock::now();
  bool done = test::wait_until(
    [&] { return c.all_completed(instances); },
    30s); // far below reclaim_idle: only the lease path can have moved node-a's work
  BOOST_TEST_REQUIRE(done, c.logs());
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now()
                                                                    - killed);
  BOOST_TEST_MESSAGE("node-a held " << on_a.size() << " running instances; all " << instances
                                    << " completed " << took.count() << " ms after its kill -9");
  for (const auto& r : c.records(instances))
    BOOST_TEST(r.owner != "node-a", r.id << " still owned by node-a");
  c.check_effects(instances, steps);
  auto survivors = c.log_text("node-b") + c.log_text("node-c");
  BOOST_TEST(survivors.find("node node-a is dead") != std::string::npos);
  BOOST_TEST(survivors.find("messages of dead node node-a") != std::string::npos);
  BOOST_TEST(test::wait_until(
    [&] {
      for (const auto& n : c.box->list_nodes().nodes)
        if (n.name == "node-a")
          return false;
      return true;
    },
    15s), "node-a is still listed ten leases after nothing of it was pending");
  BOOST_TEST(c.redis.command({"HGET", "convoy:node:node-a", "status"}) == "dead");
}

BOOST_AUTO_TEST_CASE(a_frozen_node_is_replaced_fenced_and_rejoins_when_it_wakes) {
  cluster_run c;
  constexpr int instances = 8, steps = 10;
  c.two_nodes_with_node_a_busy(instances, steps);
  auto& a = c.nodes.at("node-a");
  a.send_signal(SIGSTOP); // a zombie: alive, holding instances in memory, saying nothing
  // node-b declares it dead and finishes its work.
  bool done = test::wait_until(
    [&] { return c.all_completed(instances); },
    30s);
  BOOST_TEST_REQUIRE(done, c.logs());
  a.send_signal(SIGCONT);
  // node-a learns it was declared dead, drops what it held, and rejoins as a live member.
  BOOST_TEST(test::wait_until(
               [&] {
                 return c.log_text("node-a").find("had been declared dead") != std::string::npos;
               },
               10s),
             c.logs());
  BOOST_TEST(c.all_joined(), c.logs());
  for (const auto& r : c.records(instances))
    BOOST_TEST((r.status == instance_status::completed), r.id);
  c.check_effects(instances, steps);
  auto woke = c.log_text("node-a");
  size_t rejected = 0;
  for (auto at = woke.find("fenced, a newer owner holds it"); at != std::string::npos;
       at = woke.find("fenced, a newer owner holds it", at + 1))
    ++rejected;
  BOOST_TEST_MESSAGE("node-a, woken after being declared dead: " << rejected
                       << " of its writes rejected as stale (CONVOY_STALE_EPOCH)");
  // Nothing node-a does after waking is accepted for work node-b finished: results stand.
  for (const auto& r : c.records(instances))
    BOOST_TEST(r.result == std::to_string(steps * (steps - 1) / 2), r.id);
}

BOOST_AUTO_TEST_CASE(a_node_stopped_gracefully_hands_its_work_over_at_once) {
  cluster_run c;
  constexpr int instances = 8, steps = 10;
  c.two_nodes_with_node_a_busy(instances, steps);
  auto& a = c.nodes.at("node-a");
  a.send_signal(SIGTERM);
  auto code = a.wait_for_exit(15s);
  BOOST_TEST_REQUIRE(code.has_value());
  BOOST_TEST(*code == 0);
  BOOST_TEST_REQUIRE(test::wait_until([&] { return c.all_completed(instances); }, 30s), c.logs());
  c.check_effects(instances, steps);
  BOOST_TEST(c.redis.command({"HGET", "convoy:node:node-a", "status"}) == "dead");
}

BOOST_AUTO_TEST_CASE(with_the_cluster_link_a_hung_node_is_noticed_by_its_link_before_its_lease) {
  cluster_run c;
  constexpr int instances = 8, steps = 10;
  // A lease long enough that only the link can explain a quick take-over.
  c.extra = {"timing.lease_ttl_ms=20000"};
  c.use_cluster_link({"node-a", "node-b", "node-c", "node-x"}, 200, 1000);
  // node-b first, so it is the cluster supervisor; it runs no processing host, so node-a's
  // processing work must go to node-c: by a relocator node-b remote-spawns there.
  c.start("node-b", {"node.hosts=[\"receive\", \"send\"]"});
  BOOST_TEST_REQUIRE(c.all_joined(), c.logs());
  c.start("node-a");
  c.start("node-c");
  BOOST_TEST_REQUIRE(c.all_joined(), c.logs());
  for (auto peer : {"node-a", "node-c"})
    BOOST_TEST_REQUIRE(test::wait_until(
                         [&] {
                           return c.log_text("node-b").find(std::string("connected to node ") + peer
                                                            + " over mutual TLS")
                                  != std::string::npos;
                         },
                         20s),
                       c.logs());
  c.submit(instances, steps);
  BOOST_TEST_REQUIRE(c.wait_until_running_on("node-a", instances), c.logs());
  c.nodes.at("node-a").send_signal(SIGSTOP); // hung: its socket stays open, its lease valid
  c.hand_pending_to("node-a");
  BOOST_TEST_REQUIRE(test::wait_until([&] { return c.all_completed(instances); }, 15s), c.logs());
  auto b = c.log_text("node-b");
  BOOST_TEST(b.find("the link to node node-a dropped") != std::string::npos, c.logs());
  BOOST_TEST(b.find("node node-a is unreachable") != std::string::npos, c.logs());
  BOOST_TEST(b.find("remote-spawned a relocator on node node-c for the processing messages of "
                    "node node-a")
               != std::string::npos,
             c.logs());
  c.nodes.at("node-a").send_signal(SIGCONT);
  c.check_effects(instances, steps);
  // A node whose BASP settings differ from the cluster's refuses to start, naming both.
  auto certs = (c.dir.path() / "certs").string();
  auto refused = test::run_command(
    {CONVOY_BINARY, "node", "--set", "node.name=node-x", "--set",
     "messagebox.address=127.0.0.1:" + std::to_string(c.redis.port()), "--set",
     "cluster.certificate=" + certs + "/node-x.pem", "--set", "cluster.key=" + certs + "/node-x.key",
     "--set", "cluster.ca=" + certs + "/ca.pem", "--set", "cluster.heartbeat_ms=300", "--set",
     "cluster.connection_timeout_ms=1000"},
    30s);
  BOOST_TEST(refused.exit_code == 3, refused.output);
  BOOST_TEST(refused.output.find("cluster.heartbeat_ms = 300 and cluster.connection_timeout_ms = "
                                 "1000 here, but the cluster uses 200 and 1000")
               != std::string::npos,
             refused.output);
}

BOOST_AUTO_TEST_CASE(a_node_killed_with_a_thousand_instances_in_flight_loses_nothing_on_sentinel) {
  cluster_run c{cluster_run::messagebox::with_sentinels};
  for (auto name : {"node-a", "node-b", "node-c"})
    c.start(name);
  BOOST_TEST_REQUIRE(c.all_joined(), c.logs());
  constexpr int instances = 1000, steps = 4;
  c.submit(instances, steps, 200);
  // Kill node-a once it has a good share of the instances in flight.
  std::set<std::string> on_a;
  BOOST_TEST_REQUIRE(test::wait_until(
                       [&] {
                         on_a.clear();
                         for (const auto& r : c.records(instances))
                           if (r.owner == "node-a" && !is_final(r.status) && r.steps >= 1)
                             on_a.insert(r.id);
                         return on_a.size() >= 100;
                       },
                       120s, 250ms),
                     c.logs());
  // Frozen first, so that what it holds unfinished is known exactly when it dies.
  c.nodes.at("node-a").send_signal(SIGSTOP);
  on_a.clear();
  for (const auto& r : c.records(instances))
    if (r.owner == "node-a" && !is_final(r.status))
      on_a.insert(r.id);
  c.nodes.at("node-a").send_signal(SIGKILL);
  c.nodes.at("node-a").wait_for_exit(10s);
  auto killed = std::chrono::steady_clock::now();
  BOOST_TEST_REQUIRE(test::wait_until([&] { return c.all_completed(instances); }, 300s, 500ms),
                     c.logs());
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed);
  BOOST_TEST_MESSAGE("node-a held " << on_a.size() << " of " << instances
                                    << " instances in flight; all completed " << took.count()
                                    << " ms after its kill -9 (Sentinel group, lease 500 ms)");
  // What node-a held unfinished when it died finished elsewhere (what it had finished before
  // stays its own).
  for (const auto& r : c.records(instances)) {
    if (on_a.count(r.id))
      BOOST_TEST(r.owner != "node-a", r.id << " still owned by node-a");
    BOOST_TEST(r.result == std::to_string(steps * (steps - 1) / 2), r.id);
  }
  c.check_effects(instances, steps);
}

BOOST_AUTO_TEST_CASE(the_cluster_supervisor_killed_mid_relocation_leaves_it_to_another_node) {
  cluster_run c;
  constexpr int instances = 12, steps = 10;
  c.start("node-b"); // first: the cluster supervisor
  BOOST_TEST_REQUIRE(c.all_joined(), c.logs());
  c.start("node-a");
  c.start("node-c");
  BOOST_TEST_REQUIRE(c.all_joined(), c.logs());
  c.submit(instances, steps);
  BOOST_TEST_REQUIRE(c.wait_until_running_on("node-a", instances), c.logs());
  c.nodes.at("node-a").send_signal(SIGSTOP);
  c.hand_pending_to("node-a");
  c.nodes.at("node-a").send_signal(SIGKILL);
  c.nodes.at("node-a").wait_for_exit(10s);
  // The supervisor starts relocating node-a's work: kill it as soon as it has declared
  // node-a dead, before or while the take-over it assigned is carried out.
  BOOST_TEST_REQUIRE(test::wait_until(
                       [&] {
                         return c.log_text("node-b").find("node node-a is dead")
                                != std::string::npos;
                       },
                       20s),
                     c.logs());
  c.nodes.at("node-b").send_signal(SIGKILL);
  c.nodes.at("node-b").wait_for_exit(10s);
  BOOST_TEST_REQUIRE(test::wait_until([&] { return c.all_completed(instances); }, 60s), c.logs());
  auto survivor = c.log_text("node-c");
  BOOST_TEST(survivor.find("node node-c is the cluster supervisor") != std::string::npos,
             c.logs());
  for (auto dead : {"node-a", "node-b"})
    BOOST_TEST(c.master_command({"XPENDING", "convoy:q:processing", "processing", "-", "+", "10",
                                 dead})
                 .empty(),
               dead << " still holds messages: " << c.logs());
  for (const auto& r : c.records(instances))
    BOOST_TEST(r.owner == "node-c", r.id << " owned by " << r.owner);
  c.check_effects(instances, steps);
}

BOOST_AUTO_TEST_SUITE_END()
