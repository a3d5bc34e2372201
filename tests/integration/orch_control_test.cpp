// The operator's control verbs against real `convoy node` processes on a real redis-server:
// `convoy orch suspend | resume | terminate` (one instance and by filter), `purge`, and their
// one-line errors. A suspended instance takes no step while what it awaits (an activity
// result, a timer, a signal) arrives, and after resume completes with nothing lost and each
// effect once, on whichever node picks it up.

#include "convoy/persistence/message_box.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace convoy;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct control_run {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path());
  std::unique_ptr<persistence::message_box> box;
  std::map<std::string, test::child_process> nodes;
  fs::path sink = dir.path() / "effects.log";

  control_run() {
    persistence::message_box_config cfg;
    cfg.endpoint.port = redis.port();
    box = std::make_unique<persistence::message_box>(cfg);
  }

  ~control_run() {
    for (auto& [name, p] : nodes) {
      p.send_signal(SIGTERM);
      p.wait_for_exit(10s);
    }
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(redis.port()); }
  fs::path log(const std::string& name) const { return dir.path() / (name + ".log"); }

  /// Starts `convoy node` named `name` running `hosts` (TOML list body).
  void start(const std::string& name, const std::string& hosts = R"("receive", "processing", "send")") {
    std::vector<std::string> argv{CONVOY_BINARY, "node"};
    for (const auto& kv : std::vector<std::string>{
           "node.name=" + name, "node.log_level=debug", "node.hosts=[" + hosts + "]",
           "timing.heartbeat_ms=100", "timing.lease_ttl_ms=500", "timing.reclaim_idle_ms=60000",
           "timing.poll_block_ms=100", "processing.dehydrate_after_ms=0",
           "messagebox.address=" + address()}) {
      argv.push_back("--set");
      argv.push_back(kv);
    }
    nodes.emplace(name, test::child_process::start(argv, {}, log(name).string()));
  }

  /// Runs `convoy ARGS... --redis <this server>`.
  test::command_result convoy(std::vector<std::string> args, test::environment env = {}) const {
    args.insert(args.begin(), CONVOY_BINARY);
    args.push_back("--redis");
    args.push_back(address());
    env.emplace_back("XDG_RUNTIME_DIR", dir.path().string());
    env.emplace_back("CONVOY_REDIS", "");
    env.emplace_back("CONVOY_PREFIX", "");
    return test::run_command(std::move(args), 30s, env);
  }

  void submit_steps(const std::string& id, int count, int pause_ms) {
    auto input = json{{"count", count}, {"sink", sink.string()}, {"pause_ms", pause_ms}}.dump();
    BOOST_TEST_REQUIRE(box->submit("receive", "steps", input, id).empty());
  }

  instance_record record(const std::string& id) { return box->describe(id).record; }

  bool wait_for(const std::string& id, std::function<bool(const instance_record&)> cond,
                std::chrono::milliseconds deadline = 30s) {
    return test::wait_until([&] { return cond(record(id)); }, deadline, 50ms);
  }

  int64_t parked(const std::string& id) const {
    auto n = test::redis_command(redis.port(), {"LLEN", "convoy:parked:" + id});
    return std::atoll(n.c_str());
  }

  /// The sink's lines: one per activity execution.
  std::vector<std::string> effects() const {
    std::vector<std::string> out;
    std::ifstream in(sink);
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }

  std::string logs() const {
    std::string out;
    for (const auto& [name, p] : nodes) {
      std::ifstream in(log(name));
      std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      out += "---- " + name + " ----\n" + text.substr(text.size() > 4000 ? text.size() - 4000 : 0);
    }
    return out;
  }
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

size_t line_count(const std::string& text) {
  size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    n += line.empty() ? 0 : 1;
  return n;
}

/// The command ended with `code`, printing one line that contains each of `needles`.
void check_one_line_error(const test::command_result& r, int code,
                          const std::vector<std::string>& needles) {
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(r.exit_code == code);
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(line_count(r.output) == 1u);
  for (const auto& needle : needles) {
    BOOST_TEST_INFO("output:\n" << r.output << "\nexpected to contain: " << needle);
    BOOST_TEST(contains(r.output, needle));
  }
}

/// Each step's activity ran exactly once: `count` lines, one per idempotency key.
void check_each_effect_once(const std::vector<std::string>& lines, const std::string& id,
                            int count) {
  BOOST_TEST(lines.size() == size_t(count));
  std::set<std::string> keys(lines.begin(), lines.end());
  BOOST_TEST(keys.size() == size_t(count));
  for (const auto& k : keys)
    BOOST_TEST(k.rfind(id + "/", 0) == 0, k);
}

} // namespace

BOOST_AUTO_TEST_SUITE(orch_control)

BOOST_AUTO_TEST_CASE(a_suspended_instance_keeps_an_activity_result_and_completes_after_resume) {
  control_run c;
  // No send host yet: the instance's first activity waits in the send queue.
  c.start("node-p", R"("receive", "processing")");
  c.submit_steps("s-1", 2, 0);
  BOOST_TEST_REQUIRE(c.wait_for("s-1", [](const instance_record& r) {
    return r.status == instance_status::waiting && r.steps >= 1;
  }), c.logs());
  auto r = c.convoy({"orch", "suspend", "s-1", "--reason", "supplier outage"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "suspended s-1"), r.output);
  auto steps_before = c.record("s-1").steps;
  BOOST_TEST((c.record("s-1").status == instance_status::suspended_resumable));

  // Now the activity runs and its result arrives while the instance is suspended.
  c.start("node-s", R"("send")");
  BOOST_TEST_REQUIRE(test::wait_until([&] { return c.parked("s-1") >= 1; }, 30s), c.logs());
  BOOST_TEST(c.effects().size() == 1u);
  auto held = c.record("s-1");
  BOOST_TEST((held.status == instance_status::suspended_resumable));
  BOOST_TEST(held.steps == steps_before);

  auto described = c.convoy({"orch", "describe", "s-1", "-o", "json"});
  BOOST_TEST_REQUIRE(described.exit_code == 0, described.output);
  auto d = json::parse(described.output);
  BOOST_TEST(d["status"] == "suspended-resumable", described.output);
  BOOST_TEST(contains(described.output, "supplier outage"), described.output);
  BOOST_TEST(d["operator_actions"].size() == 1u, described.output);
  auto listed = c.convoy({"orch", "list", "--status", "suspended-resumable", "-o", "json"});
  BOOST_TEST(json::parse(listed.output).size() == 1u, listed.output);

  r = c.convoy({"orch", "resume", "s-1"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "resumed s-1 (1 parked"), r.output);
  BOOST_TEST_REQUIRE(c.wait_for("s-1", [](const instance_record& x) {
    return x.status == instance_status::completed;
  }), c.logs());
  BOOST_TEST(c.record("s-1").result == "1");
  check_each_effect_once(c.effects(), "s-1", 2);
  auto history = c.convoy({"orch", "history", "s-1"});
  BOOST_TEST(contains(history.output, "suspended"), history.output);
  BOOST_TEST(contains(history.output, "resumed"), history.output);
  BOOST_TEST(contains(history.output, "supplier outage"), history.output);
}

BOOST_AUTO_TEST_CASE(a_timer_that_fires_while_suspended_is_kept_until_resume) {
  control_run c;
  c.start("node-a");
  c.submit_steps("t-1", 2, 1500);
  // First call done, the sleep scheduled: steps = 2.
  BOOST_TEST_REQUIRE(c.wait_for("t-1", [](const instance_record& r) {
    return r.status == instance_status::waiting && r.steps >= 2;
  }), c.logs());
  auto r = c.convoy({"orch", "suspend", "t-1", "--reason", "hold"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  auto steps_before = c.record("t-1").steps;
  // The timer fires into the queue and is parked, not consumed.
  BOOST_TEST_REQUIRE(test::wait_until([&] { return c.parked("t-1") >= 1; }, 30s), c.logs());
  BOOST_TEST(test::redis_command(c.redis.port(), {"ZCARD", "convoy:timers"}) == "0");
  BOOST_TEST(c.record("t-1").steps == steps_before);
  BOOST_TEST(c.effects().size() == 1u);
  r = c.convoy({"orch", "resume", "t-1", "-o", "json"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(json::parse(r.output)["parked_delivered"] == 1, r.output);
  BOOST_TEST_REQUIRE(c.wait_for("t-1", [](const instance_record& x) {
    return x.status == instance_status::completed;
  }), c.logs());
  BOOST_TEST(c.record("t-1").result == "1");
  check_each_effect_once(c.effects(), "t-1", 2);
}

BOOST_AUTO_TEST_CASE(a_signal_sent_while_suspended_is_delivered_after_resume) {
  control_run c;
  c.start("node-a");
  auto r = c.convoy({"orch", "start", "counter", "{}", "--id", "counter-1"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST_REQUIRE(c.wait_for("counter-1", [](const instance_record& x) {
    return x.status == instance_status::waiting;
  }), c.logs());
  BOOST_TEST_REQUIRE(c.convoy({"orch", "suspend", "counter-1", "--reason", "audit"}).exit_code == 0);
  r = c.convoy({"orch", "signal", "counter-1", "add", "5"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST_REQUIRE(test::wait_until([&] { return c.parked("counter-1") >= 1; }, 30s), c.logs());
  BOOST_TEST(c.record("counter-1").query_state.find("\"total\":0") != std::string::npos,
             c.record("counter-1").query_state);
  BOOST_TEST_REQUIRE(c.convoy({"orch", "resume", "counter-1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(c.wait_for("counter-1", [](const instance_record& x) {
    return x.query_state.find("\"total\":5") != std::string::npos;
  }), c.logs());
  r = c.convoy({"orch", "signal", "counter-1", "add", "\"stop\""});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST_REQUIRE(c.wait_for("counter-1", [](const instance_record& x) {
    return x.status == instance_status::completed;
  }), c.logs());
  BOOST_TEST(json::parse(c.record("counter-1").result)["total"] == 5);
}

BOOST_AUTO_TEST_CASE(resume_after_the_node_that_held_it_is_killed_continues_on_another_node) {
  control_run c;
  c.start("node-a");
  c.start("node-b");
  for (int i = 0; i < 4; ++i)
    c.submit_steps("k-" + std::to_string(i), 3, 1000);
  std::string id, holder;
  BOOST_TEST_REQUIRE(test::wait_until([&] {
    for (int i = 0; i < 4; ++i) {
      auto r = c.record("k-" + std::to_string(i));
      if (r.status == instance_status::waiting && r.steps >= 2 && !r.owner.empty()) {
        id = r.id;
        holder = r.owner;
        return true;
      }
    }
    return false;
  }, 30s), c.logs());
  auto r = c.convoy({"orch", "suspend", id, "--reason", "move it"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  c.nodes.at(holder).kill();
  c.nodes.erase(holder);
  r = c.convoy({"orch", "resume", id});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST_REQUIRE(c.wait_for(id, [](const instance_record& x) {
    return x.status == instance_status::completed;
  }, 60s), c.logs());
  auto done = c.record(id);
  BOOST_TEST(done.owner != holder);
  BOOST_TEST(done.result == "3");
  std::set<std::string> keys;
  for (const auto& line : c.effects())
    if (line.rfind(id + "/", 0) == 0)
      keys.insert(line);
  BOOST_TEST(keys.size() == 3u); // each effect once after dedupe by idempotency key
}

BOOST_AUTO_TEST_CASE(terminate_ends_an_instance_with_its_reason_and_drops_its_timers) {
  control_run c;
  c.start("node-a");
  c.submit_steps("x-1", 2, 600000);
  BOOST_TEST_REQUIRE(c.wait_for("x-1", [](const instance_record& r) {
    return r.status == instance_status::waiting && r.steps >= 2;
  }), c.logs());
  BOOST_TEST(test::redis_command(c.redis.port(), {"ZCARD", "convoy:timers"}) == "1");
  auto r = c.convoy({"orch", "terminate", "x-1", "--reason", "duplicate order"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  auto rec = c.record("x-1");
  BOOST_TEST((rec.status == instance_status::terminated));
  BOOST_TEST(contains(rec.error, "duplicate order"), rec.error);
  BOOST_TEST(test::redis_command(c.redis.port(), {"ZCARD", "convoy:timers"}) == "0");
  auto listed = c.convoy({"orch", "list", "--status", "terminated", "-o", "json"});
  BOOST_TEST(json::parse(listed.output).size() == 1u, listed.output);
  auto history = c.convoy({"orch", "history", "x-1"});
  BOOST_TEST(contains(history.output, "terminated"), history.output);
  BOOST_TEST(contains(history.output, "duplicate order"), history.output);
  // A signal for it now is refused as for any finished instance; so are the verbs.
  check_one_line_error(c.convoy({"orch", "signal", "x-1", "add", "1"}), 5, {"terminated"});
  check_one_line_error(c.convoy({"orch", "terminate", "x-1", "--reason", "again"}), 5,
                       {"x-1", "already terminated"});
  check_one_line_error(c.convoy({"orch", "resume", "x-1"}), 5, {"already terminated"});
  check_one_line_error(c.convoy({"orch", "suspend", "x-1", "--reason", "r"}), 5,
                       {"already terminated"});
  BOOST_TEST(c.effects().size() == 1u);
}

BOOST_AUTO_TEST_CASE(resume_of_an_instance_suspended_as_not_resumable_is_refused_with_why) {
  control_run c;
  c.start("node-a");
  // An instance of a type no node has: the node suspends it as not resumable.
  auto port = c.redis.port();
  test::redis_command(port, {"HSET", "convoy:inst:odd-1", "fmt", "1", "type", "no-such-type",
                             "version", "1", "input", "null", "host", "processing", "status",
                             "pending", "epoch", "0", "seq", "0", "steps", "0", "generation",
                             "0", "created", "1", "updated", "1"});
  test::redis_command(port, {"ZADD", "convoy:instances", "1", "odd-1"});
  test::redis_command(port, {"XADD", "convoy:q:processing", "*", "v", "1", "kind", "start",
                             "instance", "odd-1"});
  BOOST_TEST_REQUIRE(c.wait_for("odd-1", [](const instance_record& r) {
    return r.status == instance_status::suspended;
  }), c.logs());
  check_one_line_error(c.convoy({"orch", "resume", "odd-1"}), 5,
                       {"cannot resume instance 'odd-1'", "not resumable", "not registered"});
  // It can be terminated, though.
  auto r = c.convoy({"orch", "terminate", "odd-1", "--reason", "cleanup"});
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST((c.record("odd-1").status == instance_status::terminated));
}

BOOST_AUTO_TEST_CASE(bulk_verbs_ask_for_confirmation_and_purge_removes_finished_instances) {
  control_run c;
  c.start("node-a");
  for (int i = 0; i < 3; ++i)
    c.submit_steps("b-" + std::to_string(i), 2, 600000);
  for (int i = 0; i < 3; ++i)
    BOOST_TEST_REQUIRE(c.wait_for("b-" + std::to_string(i), [](const instance_record& r) {
      return r.status == instance_status::waiting && r.steps >= 2;
    }), c.logs());
  // No terminal (stdin is /dev/null) and no --yes: refused, nothing changed.
  check_one_line_error(c.convoy({"orch", "suspend", "--type", "steps", "--reason", "r"}), 2,
                       {"3 instances", "--yes"});
  BOOST_TEST((c.record("b-0").status == instance_status::waiting));
  auto r = c.convoy({"orch", "suspend", "--type", "steps", "--reason", "maintenance", "--yes"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "suspended 3 of 3"), r.output);
  for (int i = 0; i < 3; ++i)
    BOOST_TEST((c.record("b-" + std::to_string(i)).status == instance_status::suspended_resumable));
  r = c.convoy({"orch", "resume", "--type", "steps", "--limit", "2", "--yes", "-o", "json"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  auto j = json::parse(r.output);
  BOOST_TEST(j["matched"] == 2, r.output);
  BOOST_TEST(j["changed"] == 2, r.output);
  r = c.convoy({"orch", "terminate", "--type", "steps", "--reason", "cleanup", "--yes"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "terminated 3 of 3"), r.output);
  // Purge: never an unfinished instance; finished ones with their journals.
  c.submit_steps("live-1", 2, 600000);
  BOOST_TEST_REQUIRE(c.wait_for("live-1", [](const instance_record& x) {
    return x.status == instance_status::waiting;
  }), c.logs());
  check_one_line_error(c.convoy({"orch", "purge", "--older-than", "soon"}), 2, {"--older-than"});
  check_one_line_error(c.convoy({"orch", "purge"}), 2, {"3 finished instances", "--yes"});
  r = c.convoy({"orch", "purge", "--older-than", "1h", "--yes"});
  BOOST_TEST(contains(r.output, "purged 0"), r.output);
  r = c.convoy({"orch", "purge", "--status", "terminated", "--yes"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "purged 3 finished instances"), r.output);
  check_one_line_error(c.convoy({"orch", "describe", "b-0"}), 4, {"no instance 'b-0'"});
  BOOST_TEST(test::redis_command(c.redis.port(), {"EXISTS", "convoy:journal:b-0"}) == "0");
  BOOST_TEST((c.record("live-1").status == instance_status::waiting));
}

BOOST_AUTO_TEST_CASE(control_verbs_give_one_line_errors_for_bad_arguments_and_unknown_ids) {
  control_run c;
  c.start("node-a"); // loads the MessageBox functions
  BOOST_TEST_REQUIRE(test::wait_until([&] { return !c.box->list_nodes().nodes.empty(); }, 30s),
                     c.logs());
  check_one_line_error(c.convoy({"orch", "suspend", "--reason", "r"}), 2,
                       {"an instance id or a filter"});
  check_one_line_error(c.convoy({"orch", "suspend", "x-1", "--type", "steps", "--reason", "r"}), 2,
                       {"not both"});
  check_one_line_error(c.convoy({"orch", "suspend", "x-1"}), 2, {"--reason"});
  check_one_line_error(c.convoy({"orch", "terminate", "bad id", "--reason", "r"}), 2,
                       {"not a valid instance id"});
  check_one_line_error(c.convoy({"orch", "resume", "--status", "bogus"}), 2, {"bogus"});
  check_one_line_error(c.convoy({"orch", "suspend", "nobody", "--reason", "r"}), 4,
                       {"no instance 'nobody'"});
  check_one_line_error(c.convoy({"orch", "resume", "nobody"}), 4, {"no instance 'nobody'"});
  check_one_line_error(c.convoy({"orch", "terminate", "nobody", "--reason", "r"}), 4,
                       {"no instance 'nobody'"});
}

BOOST_AUTO_TEST_CASE(node_describe_shows_one_node_as_a_card_and_as_json) {
  control_run c;
  c.start("node-a");
  BOOST_TEST_REQUIRE(test::wait_until([&] {
    auto r = c.convoy({"node", "describe", "node-a", "-o", "json"});
    if (r.exit_code != 0)
      return false;
    auto j = json::parse(r.output, nullptr, false);
    return j.is_object() && j["tree"]["recorded"] == true && j["cluster_supervisor"] == true;
  }, 30s), c.logs());
  auto j = json::parse(c.convoy({"node", "describe", "node-a", "-o", "json"}).output);
  BOOST_TEST(j["name"] == "node-a");
  BOOST_TEST(j["status"] == "alive");
  BOOST_TEST(j["hosts"].size() == 3u);
  BOOST_TEST(j["tree"]["supervisors"].get<int>() >= 4);
  BOOST_TEST(j["lease_expires_ms"].get<int64_t>() > 0);
  auto card = c.convoy({"node", "describe", "node-a"});
  BOOST_TEST_REQUIRE(card.exit_code == 0, card.output);
  for (auto key : {"status", "lease", "cluster supervisor", "hosts", "load", "admin", "throttle",
                   "tree"})
    BOOST_TEST(contains(card.output, key), key << " in\n" << card.output);
  check_one_line_error(c.convoy({"node", "describe", "node-z"}), 4, {"no node named 'node-z'"});
}

BOOST_AUTO_TEST_CASE(a_host_stopped_by_an_operator_shows_stopped_and_takes_no_work_until_started) {
  control_run c;
  c.start("node-a");
  BOOST_TEST_REQUIRE(test::wait_until([&] {
    return contains(c.convoy({"host", "list"}).output, "processing");
  }, 30s), c.logs());
  auto r = c.convoy({"host", "stop", "processing", "--node", "node-a"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  auto processing_state = [&] {
    auto listed = json::parse(c.convoy({"host", "list", "-o", "json"}).output, nullptr, false);
    if (!listed.is_object())
      return std::string();
    for (const auto& row : listed["host_instances"])
      if (row["host"] == "processing" && row["node"] == "node-a")
        return row["state"].get<std::string>();
    return std::string("absent");
  };
  BOOST_TEST_REQUIRE(test::wait_until([&] { return processing_state() == "stopped"; }, 30s),
                     c.logs());
  BOOST_TEST(contains(c.convoy({"host", "list"}).output, "stopped"));
  // Work for it waits: a new instance is activated but does not run.
  c.submit_steps("h-1", 1, 0);
  BOOST_TEST_REQUIRE(c.wait_for("h-1", [](const instance_record& x) {
    return x.status == instance_status::pending;
  }), c.logs());
  BOOST_TEST(c.effects().empty());
  r = c.convoy({"host", "start", "processing", "--node", "node-a", "-o", "json"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST_REQUIRE(test::wait_until([&] { return processing_state() == "running"; }, 30s),
                     c.logs());
  BOOST_TEST_REQUIRE(c.wait_for("h-1", [](const instance_record& x) {
    return x.status == instance_status::completed;
  }), c.logs());
  check_one_line_error(c.convoy({"host", "stop", "bogus", "--node", "node-a"}), 2,
                       {"unknown host 'bogus'"});
  check_one_line_error(c.convoy({"host", "stop", "send", "--node", "node-z"}), 4,
                       {"no node named 'node-z'"});
  check_one_line_error(c.convoy({"host", "stop", "send"}), 2, {"--node"});
}

BOOST_AUTO_TEST_CASE(text_output_follows_no_color_time_format_and_the_settings_file) {
  control_run c;
  c.start("node-a");
  c.submit_steps("c-1", 1, 0);
  BOOST_TEST_REQUIRE(c.wait_for("c-1", [](const instance_record& x) {
    return x.status == instance_status::completed;
  }), c.logs());
  // On a terminal (script(1) gives the command one) statuses are coloured, unless NO_COLOR.
  auto on_terminal = [&](const std::string& env) {
    std::string line = env + " " + CONVOY_BINARY + " orch list --redis " + c.address();
    return test::run_command({"script", "-qec", line, "/dev/null"}, 30s);
  };
  auto coloured = on_terminal("env -u NO_COLOR");
  BOOST_TEST_REQUIRE(coloured.exit_code == 0, coloured.output);
  BOOST_TEST(contains(coloured.output, "\x1b[32m"), coloured.output);
  auto plain = on_terminal("env NO_COLOR=1");
  BOOST_TEST_REQUIRE(plain.exit_code == 0, plain.output);
  BOOST_TEST(contains(plain.output, "completed"), plain.output);
  BOOST_TEST(!contains(plain.output, "\x1b["), plain.output);
  // Not a terminal: never colour.
  auto piped = c.convoy({"orch", "list"});
  BOOST_TEST(!contains(piped.output, "\x1b["), piped.output);
  BOOST_TEST(contains(piped.output, "s ago"), piped.output);
  // ISO times from the flag, the environment or the settings file; flag > env > file.
  auto iso = c.convoy({"orch", "describe", "c-1", "--time-format", "iso"});
  BOOST_TEST(contains(iso.output, "Z\n"), iso.output);
  BOOST_TEST(!contains(iso.output, " ago"), iso.output);
  BOOST_TEST(contains(c.convoy({"orch", "list"}, {{"CONVOY_TIME_FORMAT", "iso"}}).output, "Z "));
  auto settings = c.dir.path() / "cli.toml";
  std::ofstream(settings) << "time_format = \"iso\"\noutput = \"json\"\n";
  auto from_file = c.convoy({"orch", "describe", "c-1", "--config", settings.string()});
  BOOST_TEST(json::parse(from_file.output, nullptr, false).is_object(), from_file.output);
  auto flag_wins = c.convoy({"orch", "list", "-o", "text", "--config", settings.string()},
                            {{"CONVOY_TIME_FORMAT", "relative"}});
  BOOST_TEST(contains(flag_wins.output, "s ago"), flag_wins.output);
  // The MessageBox address from the settings file (with no flag and no variable).
  auto only_file = c.dir.path() / "only.toml";
  std::ofstream(only_file) << "redis = \"" << c.address() << "\"\n";
  auto r = test::run_command({CONVOY_BINARY, "orch", "count", "--config", only_file.string()}, 30s,
                             {{"CONVOY_REDIS", ""}, {"XDG_RUNTIME_DIR", c.dir.path().string()}});
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(contains(r.output, "1"), r.output);
  std::ofstream(c.dir.path() / "bad.toml") << "colour = \"yes\"\n";
  check_one_line_error(c.convoy({"orch", "list", "--config", (c.dir.path() / "bad.toml").string()}),
                       2, {"unknown setting 'colour'"});
  check_one_line_error(c.convoy({"orch", "list", "--time-format", "julian"}), 2, {"julian"});
  check_one_line_error(c.convoy({"orch", "list", "--config", "/nonexistent/cli.toml"}), 2,
                       {"does not exist"});
}

BOOST_AUTO_TEST_CASE(every_command_help_has_an_example) {
  control_run c;
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{}, {"node"}, {"node", "list"}, {"node", "describe"}, {"tree"},
        {"host"}, {"host", "list"}, {"host", "start"}, {"host", "stop"}, {"orch"},
        {"orch", "list"}, {"orch", "count"}, {"orch", "describe"}, {"orch", "history"},
        {"orch", "stack"}, {"orch", "start"}, {"orch", "signal"}, {"orch", "cancel"},
        {"orch", "suspend"}, {"orch", "resume"}, {"orch", "terminate"}, {"orch", "purge"},
        {"msg"}, {"msg", "publish"}, {"msg", "list"}, {"box"}, {"box", "stat"}, {"health"},
        {"version"}, {"dev"}, {"cert"}, {"secret"}}) {
    cmd.insert(cmd.begin(), CONVOY_BINARY);
    cmd.push_back("--help");
    auto r = test::run_command(cmd, 30s);
    BOOST_TEST_INFO(cmd[1] << (cmd.size() > 3 ? " " + cmd[2] : "") << ":\n" << r.output);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(contains(r.output, "example: convoy"));
  }
}

BOOST_AUTO_TEST_SUITE_END()
