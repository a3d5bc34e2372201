// The `convoy` command line, run as a real process: argument errors, an unreachable
// MessageBox, `version`, a node driven end to end through `orch start/list/describe`, and
// `convoy dev` as a long-running process stopped by Ctrl-C.

#include "convoy/actors/journal.hpp"
#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <signal.h>
#include <unistd.h>

using namespace std::chrono_literals;
using convoy::test::child_process;
using convoy::test::command_result;
using convoy::test::environment;
using convoy::test::redis_server;
using convoy::test::temp_dir;
using convoy::test::wait_until;
using json = nlohmann::json;

namespace fs = std::filesystem;

namespace {

/// Per test: an environment with no ambient MessageBox settings, and a private
/// XDG_RUNTIME_DIR so that no `convoy dev` running elsewhere is picked up through its state
/// file (and ours does not disturb anybody else's).
struct cli_fixture {
  temp_dir dir;

  /// That environment, with `overrides` replacing or adding variables.
  environment env(environment overrides = {}) const {
    environment out{{"XDG_RUNTIME_DIR", dir.path().string()},
                    {"CONVOY_REDIS", ""},
                    {"CONVOY_PREFIX", ""},
                    {"CONVOY_REDIS_PASSWORD", ""}};
    for (auto& [name, value] : overrides) {
      auto same = [&](const auto& kv) { return kv.first == name; };
      out.erase(std::remove_if(out.begin(), out.end(), same), out.end());
      out.emplace_back(name, value);
    }
    return out;
  }

  /// Runs `convoy ARGS...`; a run past `deadline` is killed and reports exit code -1.
  command_result convoy(std::vector<std::string> args, std::chrono::milliseconds deadline = 15s,
                        environment extra = {}) const {
    args.insert(args.begin(), CONVOY_BINARY);
    return convoy::test::run_command(std::move(args), deadline, env(std::move(extra)));
  }

  std::string unused_address() const {
    return "127.0.0.1:" + std::to_string(convoy::test::free_loopback_port());
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(line);
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Checks the shape every CLI error must have: it ended (not killed at the deadline) with
/// `exit_code`, printing exactly one line that contains each of `needles`.
void check_one_line_error(const command_result& r, int exit_code,
                          const std::vector<std::string>& needles) {
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(r.exit_code == exit_code);
  auto lines = lines_of(r.output);
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(lines.size() == 1u);
  for (const auto& needle : needles) {
    BOOST_TEST_INFO("output:\n" << r.output << "\nexpected to contain: " << needle);
    BOOST_TEST(contains(r.output, needle));
  }
}

/// The instances `convoy orch list -o json` prints, by id; empty when it failed.
std::map<std::string, json> listed_instances(const command_result& r) {
  std::map<std::string, json> out;
  if (r.exit_code != 0)
    return out;
  auto parsed = json::parse(r.output, nullptr, false);
  if (!parsed.is_array())
    return out;
  for (const auto& inst : parsed)
    if (inst.is_object() && inst.contains("id") && inst["id"].is_string())
      out[inst["id"].get<std::string>()] = inst;
  return out;
}

bool is_completed(const std::map<std::string, json>& instances, const std::string& id) {
  auto i = instances.find(id);
  return i != instances.end() && i->second.value("status", "") == "completed";
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(cli, cli_fixture)

// -- argument errors --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(missing_subcommand_is_one_line_error) {
  auto r = convoy({});
  check_one_line_error(r, 2, {"convoy", "--help"});
}

BOOST_AUTO_TEST_CASE(unknown_subcommand_is_one_line_error) {
  auto r = convoy({"frobnicate"});
  check_one_line_error(r, 2, {"unknown command 'frobnicate'"});
}

BOOST_AUTO_TEST_CASE(unknown_orch_subcommand_is_one_line_error) {
  auto r = convoy({"orch", "lsit", "--redis", unused_address()});
  check_one_line_error(r, 2, {"'lsit'"});
}

BOOST_AUTO_TEST_CASE(unknown_top_level_option_is_one_line_error) {
  auto r = convoy({"--bogus"});
  check_one_line_error(r, 2, {"'--bogus'"});
}

BOOST_AUTO_TEST_CASE(unknown_option_is_one_line_error) {
  auto r = convoy({"orch", "list", "--bogus", "--redis", unused_address()});
  check_one_line_error(r, 2, {"--bogus"});
}

BOOST_AUTO_TEST_CASE(unknown_output_format_is_one_line_error) {
  auto r = convoy({"orch", "list", "-o", "yaml", "--redis", unused_address()});
  check_one_line_error(r, 2, {"yaml"});
}

BOOST_AUTO_TEST_CASE(describe_without_id_is_one_line_error) {
  auto r = convoy({"orch", "describe", "--redis", unused_address()});
  check_one_line_error(r, 2, {"id"});
}

BOOST_AUTO_TEST_CASE(start_with_invalid_json_input_is_one_line_error) {
  auto r = convoy({"orch", "start", "hello", "{not json", "--redis", unused_address()});
  check_one_line_error(r, 2, {"not valid JSON", "{not json"});
}

BOOST_AUTO_TEST_CASE(start_of_unknown_type_is_one_line_error_listing_known_types) {
  auto r = convoy({"orch", "start", "no-such-type", "--redis", unused_address()});
  check_one_line_error(r, 2, {"unknown orchestration type 'no-such-type'", "hello"});
}

BOOST_AUTO_TEST_CASE(start_with_invalid_id_is_one_line_error) {
  auto r = convoy({"orch", "start", "hello", "\"x\"", "--id", "bad id/1", "--redis",
                   unused_address()});
  check_one_line_error(r, 2, {"--id", "'bad id/1'"});
}

BOOST_AUTO_TEST_CASE(describe_with_invalid_id_is_one_line_error) {
  auto r = convoy({"orch", "describe", "no/such id", "--redis", unused_address()});
  check_one_line_error(r, 2, {"'no/such id'", "not a valid instance id"});
}

BOOST_AUTO_TEST_CASE(malformed_redis_address_is_one_line_error) {
  for (std::vector<std::string> verb :
       {std::vector<std::string>{"orch", "list"}, {"orch", "describe", "x"}, {"version"}}) {
    auto args = verb;
    args.insert(args.end(), {"--redis", "notaport:xx"});
    BOOST_TEST_CONTEXT("verb " << verb.front() << " " << verb.back()) {
      auto r = convoy(args);
      check_one_line_error(r, 2, {"'notaport:xx'", "--redis", "host:port"});
    }
  }
}

BOOST_AUTO_TEST_CASE(malformed_convoy_redis_variable_is_named) {
  auto r = convoy({"orch", "list"}, 15s, {{"CONVOY_REDIS", "localhost:port"}});
  check_one_line_error(r, 2, {"'localhost:port'", "CONVOY_REDIS"});
}

BOOST_AUTO_TEST_CASE(node_with_missing_config_is_one_line_error) {
  auto missing = (dir.path() / "missing.toml").string();
  auto r = convoy({"node", "--config", missing});
  check_one_line_error(r, 2, {missing});
}

// -- unreachable MessageBox -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(list_against_unreachable_redis_fails_fast_naming_the_address) {
  auto address = unused_address();
  auto r = convoy({"orch", "list", "--redis", address}, 10s);
  BOOST_TEST(r.exit_code != -1); // not killed at the deadline
  check_one_line_error(r, 3, {address, "--redis"});
}

BOOST_AUTO_TEST_CASE(describe_against_unreachable_redis_fails_fast_naming_the_address) {
  auto address = unused_address();
  auto r = convoy({"orch", "describe", "x", "--redis", address}, 10s);
  BOOST_TEST(r.exit_code != -1);
  check_one_line_error(r, 3, {address});
}

BOOST_AUTO_TEST_CASE(start_against_unreachable_redis_fails_fast_naming_the_address) {
  auto address = unused_address();
  auto r = convoy({"orch", "start", "hello", "\"x\"", "--redis", address}, 10s);
  BOOST_TEST(r.exit_code != -1);
  check_one_line_error(r, 3, {address});
}

BOOST_AUTO_TEST_CASE(unreachable_redis_from_environment_is_attributed_to_it) {
  auto address = unused_address();
  auto r = convoy({"orch", "list"}, 10s, {{"CONVOY_REDIS", address}});
  BOOST_TEST(r.exit_code != -1);
  check_one_line_error(r, 3, {address, "CONVOY_REDIS"});
}

// -- version ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(version_names_convoy_caf_hiredis_and_the_redis_server) {
  auto redis = redis_server::start(dir.path() / "redis");
  auto info = redis.command({"INFO", "server"});
  auto pos = info.find("redis_version:");
  BOOST_REQUIRE(pos != std::string::npos);
  auto server_version = info.substr(pos + 14, info.find_first_of("\r\n", pos) - pos - 14);
  auto r = convoy({"version", "--redis", redis.address()});
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(r.exit_code == 0);
  auto lines = lines_of(r.output);
  BOOST_REQUIRE_EQUAL(lines.size(), 4u);
  BOOST_TEST(lines[0].rfind("convoy ", 0) == 0);
  BOOST_TEST(lines[0].size() > 7u);
  BOOST_TEST(lines[1] == "CAF 0.17.6");
  BOOST_TEST(lines[2] == "hiredis 0.14.1");
  BOOST_TEST(lines[3] == "redis " + server_version + " at " + redis.address());
}

BOOST_AUTO_TEST_CASE(version_without_redis_still_prints_the_local_versions) {
  auto address = unused_address();
  auto r = convoy({"version", "--redis", address}, 10s);
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.output, "CAF 0.17.6"));
  BOOST_TEST(contains(r.output, "redis unreachable at " + address));
}

// -- a node, end to end -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(orchestration_started_from_the_cli_completes_on_a_node) {
  auto redis = redis_server::start(dir.path() / "redis");
  auto address = redis.address();
  auto config = dir.path() / "node.toml";
  std::ofstream(config) << "[node]\n"
                           "name = \"cli-node\"\n"
                           "[messagebox]\n"
                           "address = \"" << address << "\"\n"
                           "[timing]\n"
                           "reclaim_idle_ms = 1000\n";
  auto node_log = dir.path() / "node.log";
  auto node = child_process::start({CONVOY_BINARY, "node", "--config", config.string()}, env(),
                                   node_log.string());

  auto started = convoy({"orch", "start", "hello", "\"tester\"", "--id", "hello-cli", "--redis",
                         address});
  BOOST_TEST_INFO("output:\n" << started.output);
  BOOST_REQUIRE_EQUAL(started.exit_code, 0);
  BOOST_TEST(contains(started.output, "hello-cli"));

  std::map<std::string, json> listed;
  bool node_died = false;
  auto done = wait_until(
    [&] {
      if (!node.running()) {
        node_died = true;
        return true;
      }
      listed = listed_instances(convoy({"orch", "list", "-o", "json", "--redis", address}, 10s));
      return is_completed(listed, "hello-cli");
    },
    30s, 100ms);
  BOOST_TEST_INFO("node log:\n" << read_file(node_log));
  BOOST_REQUIRE(!node_died);
  BOOST_TEST_INFO("node log:\n" << read_file(node_log));
  BOOST_REQUIRE(done);
  // The node is a member, and (alone) the cluster supervisor.
  auto nodes = convoy({"node", "list", "-o", "json", "--redis", address});
  BOOST_TEST_INFO("output:\n" << nodes.output);
  BOOST_REQUIRE_EQUAL(nodes.exit_code, 0);
  auto members = json::parse(nodes.output, nullptr, false);
  BOOST_REQUIRE(members.is_object());
  BOOST_TEST(members["supervisor"] == "cli-node");
  BOOST_REQUIRE_EQUAL(members["nodes"].size(), 1u);
  BOOST_TEST(members["nodes"][0]["name"] == "cli-node");
  BOOST_TEST(members["nodes"][0]["status"] == "alive");
  BOOST_TEST(members["nodes"][0]["hosts"] == "receive,processing,send");
  auto node_table = convoy({"node", "list", "--redis", address});
  BOOST_TEST_INFO("output:\n" << node_table.output);
  BOOST_TEST(contains(node_table.output, "cli-node *"));
  BOOST_TEST(contains(node_table.output, "expires in"));

  const auto& inst = listed.at("hello-cli");
  BOOST_TEST(inst["type"] == "hello");
  BOOST_TEST(inst["input"] == "tester");
  BOOST_TEST(inst["result"] == "HELLO, TESTER!");
  BOOST_TEST(inst["error"].is_null());

  // The journal: each of greet, sleep and shout scheduled and then completed.
  auto described = convoy({"orch", "describe", "hello-cli", "-o", "json", "--redis", address});
  BOOST_TEST_INFO("output:\n" << described.output);
  BOOST_REQUIRE_EQUAL(described.exit_code, 0);
  auto d = json::parse(described.output, nullptr, false);
  BOOST_REQUIRE(d.is_object());
  BOOST_TEST(d["status"] == "completed");
  BOOST_TEST(d["result"] == "HELLO, TESTER!");
  const auto& journal = d["journal"];
  BOOST_REQUIRE(journal.is_array());
  BOOST_REQUIRE_EQUAL(journal.size(), 6u);
  std::map<std::pair<uint32_t, std::string>, json> by_step;
  for (const auto& e : journal)
    by_step[{e["step"].get<uint32_t>(), e["event"].get<std::string>()}] = e;
  BOOST_REQUIRE_EQUAL(by_step.size(), 6u);
  for (uint32_t step = 0; step < 3; ++step) {
    BOOST_TEST_CONTEXT("step " << step) {
      BOOST_REQUIRE(by_step.count({step, "scheduled"}) == 1u);
      BOOST_REQUIRE(by_step.count({step, "completed"}) == 1u);
    }
  }
  auto sched = [&](uint32_t step) { return by_step.at({step, "scheduled"}); };
  auto done_at = [&](uint32_t step) { return by_step.at({step, "completed"}); };
  BOOST_TEST(sched(0)["op"] == "call");
  BOOST_TEST(sched(0)["payload"]["activity"] == "greet");
  BOOST_TEST(sched(0)["payload"]["args"] == "tester");
  BOOST_TEST(sched(0)["hash"].get<uint64_t>()
             == convoy::operation_hash(convoy::op_kind::call, "greet", "\"tester\""));
  BOOST_TEST(done_at(0)["payload"] == "Hello, tester!");
  BOOST_TEST(sched(1)["op"] == "sleep");
  BOOST_TEST(sched(1)["payload"]["ms"] == 500);
  BOOST_TEST(sched(2)["op"] == "call");
  BOOST_TEST(sched(2)["payload"]["activity"] == "shout");
  BOOST_TEST(done_at(2)["payload"] == "HELLO, TESTER!");
  // Scheduled before completed, step by step.
  for (size_t i = 0; i < journal.size(); ++i) {
    BOOST_TEST(journal[i]["step"].get<size_t>() == i / 2);
    BOOST_TEST(journal[i]["event"] == (i % 2 == 0 ? "scheduled" : "completed"));
  }

  auto card = convoy({"orch", "describe", "hello-cli", "-o", "text", "--redis", address});
  BOOST_TEST_INFO("output:\n" << card.output);
  BOOST_TEST(card.exit_code == 0);
  BOOST_TEST(contains(card.output, "completed"));
  BOOST_TEST(contains(card.output, "journal (6 entries)"));
  BOOST_TEST(contains(card.output, "HELLO, TESTER!"));

  auto table = convoy({"orch", "list", "--redis", address});
  BOOST_TEST_INFO("output:\n" << table.output);
  BOOST_TEST(table.exit_code == 0);
  BOOST_TEST(contains(table.output, "hello-cli"));
  BOOST_TEST(contains(table.output, "completed"));

  auto missing = convoy({"orch", "describe", "nope", "--redis", address});
  check_one_line_error(missing, 4, {"'nope'", address});

  node.send_signal(SIGTERM);
  auto exit_code = node.wait_for_exit(10s);
  BOOST_TEST_INFO("node log:\n" << read_file(node_log));
  BOOST_REQUIRE(exit_code.has_value());
  BOOST_TEST(*exit_code == 0);
}

BOOST_AUTO_TEST_CASE(node_with_invalid_config_exits_with_one_line_naming_the_key) {
  auto config = dir.path() / "bad.toml";
  std::ofstream(config) << "[send]\nworkers = 0\n";
  auto r = convoy({"node", "--config", config.string()});
  check_one_line_error(r, 2, {config.string(), "send.workers"});
}

// -- convoy dev -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(dev_runs_the_examples_and_cleans_up_on_ctrl_c) {
  auto state_file = dir.path() / ("convoy-dev-" + std::to_string(::getuid()) + ".address");
  auto dev_log = dir.path() / "dev.log";
  auto dev = child_process::start({CONVOY_BINARY, "dev"}, env(), dev_log.string());

  // No --redis: `orch list` finds the MessageBox through dev's state file.
  const std::vector<std::string> demo{"hello-1", "order-1001", "order-1002", "steps-1"};
  bool dev_died = false;
  std::map<std::string, json> listed;
  auto all_done = wait_until(
    [&] {
      if (!dev.running()) {
        dev_died = true;
        return true;
      }
      if (!fs::exists(state_file))
        return false;
      listed = listed_instances(convoy({"orch", "list", "-o", "json"}, 10s));
      for (const auto& id : demo)
        if (!is_completed(listed, id))
          return false;
      return true;
    },
    60s, 100ms);
  BOOST_TEST_INFO("dev output:\n" << read_file(dev_log));
  BOOST_REQUIRE(!dev_died);
  BOOST_TEST_INFO("dev output:\n" << read_file(dev_log));
  BOOST_REQUIRE(all_done);
  BOOST_TEST(listed.at("hello-1")["result"] == "HELLO, WORLD!");
  BOOST_TEST(listed.at("order-1001")["result"]["status"] == "shipped");
  BOOST_TEST(listed.at("order-1002")["result"]["status"] == "rejected");

  auto address = read_file(state_file);
  BOOST_TEST(address.rfind("127.0.0.1:", 0) == 0);

  dev.send_signal(SIGINT);
  auto exit_code = dev.wait_for_exit(15s);
  auto output = read_file(dev_log);
  BOOST_TEST_INFO("dev output:\n" << output);
  BOOST_REQUIRE(exit_code.has_value());
  BOOST_TEST(*exit_code == 0);
  BOOST_TEST(!fs::exists(state_file));

  // Its redis-server is gone too: stopped and reaped by dev, not left behind as an orphan.
  auto pos = output.find("redis-server pid ");
  BOOST_TEST_INFO("dev output:\n" << output);
  BOOST_REQUIRE(pos != std::string::npos);
  auto redis_pid = static_cast<pid_t>(std::stol(output.substr(pos + 17)));
  BOOST_REQUIRE(redis_pid > 0);
  errno = 0;
  BOOST_TEST(::kill(redis_pid, 0) == -1);
  BOOST_TEST(errno == ESRCH);
}

BOOST_AUTO_TEST_CASE(operators_filter_count_follow_and_inspect_instances_and_the_box) {
  auto redis = redis_server::start(dir.path() / "redis");
  auto address = redis.address();
  auto config = dir.path() / "node.toml";
  std::ofstream(config) << "[node]\nname = \"ops-node\"\n[messagebox]\naddress = \"" << address
                        << "\"\n";
  auto node_log = dir.path() / "node.log";
  auto node = child_process::start({CONVOY_BINARY, "node", "--config", config.string()}, env(),
                                   node_log.string());
  auto run = [&](std::vector<std::string> args) {
    args.push_back("--redis");
    args.push_back(address);
    auto r = convoy(args, 20s);
    BOOST_TEST_INFO("convoy printed:\n" << r.output << "\nnode log:\n" << read_file(node_log));
    BOOST_REQUIRE_EQUAL(r.exit_code, 0);
    return r.output;
  };
  run({"orch", "start", "hello", "\"ops\"", "--id", "hello-ops"});
  run({"orch", "start", "counter", "{}", "--id", "counter-ops"});
  BOOST_REQUIRE(wait_until(
    [&] {
      auto counts = json::parse(convoy({"orch", "count", "--group-by", "status", "-o", "json",
                                        "--redis", address})
                                  .output,
                                nullptr, false);
      size_t completed = 0, waiting = 0;
      for (const auto& g : counts.is_array() ? counts : json::array()) {
        completed += g["status"] == "completed" ? g["count"].get<size_t>() : 0;
        waiting += g["status"] == "waiting" ? g["count"].get<size_t>() : 0;
      }
      return completed == 1 && waiting == 1;
    },
    20s, 100ms));
  // Filters, and JSON lines: one instance per line.
  auto lines = run({"orch", "list", "--status", "completed", "--type", "hello", "-o", "jsonl"});
  BOOST_TEST(std::count(lines.begin(), lines.end(), '\n') == 1);
  BOOST_TEST(json::parse(lines)["id"] == "hello-ops");
  BOOST_TEST(run({"orch", "count", "--host", "ops-node"}) == "2\n");
  BOOST_TEST(run({"orch", "count", "--host", "someone-else"}) == "0\n");
  // History: every event of the journal; stack: what the counter awaits now.
  auto history = run({"orch", "history", "hello-ops"});
  BOOST_TEST(contains(history, "scheduled  call"));
  BOOST_TEST(contains(history, "\"HELLO, OPS!\""));
  auto stack = json::parse(run({"orch", "stack", "counter-ops", "-o", "json"}));
  BOOST_TEST(stack["status"] == "waiting");
  BOOST_REQUIRE(stack["awaits"].size() >= 1u);
  BOOST_TEST(stack["awaits"][0]["op"] == "signal");
  // The MessageBox and the cluster's health.
  auto box = json::parse(run({"box", "stat", "-o", "json"}));
  BOOST_TEST(box["role"] == "master");
  BOOST_TEST(box["persistence_points_applied"].get<int64_t>() > 0);
  BOOST_TEST(box["queues"].contains("processing"));
  BOOST_TEST(contains(run({"health"}), "serving: 1 live node(s), cluster supervisor ops-node"));
  // Stopped, the cluster no longer serves (once the lease lapses), and health says so.
  node.send_signal(SIGTERM);
  node.wait_for_exit(15s);
  auto down = convoy({"health", "--redis", address});
  BOOST_TEST(down.exit_code == 1, down.output);
  BOOST_TEST(contains(down.output, "not serving: no node holds a live lease"), down.output);
  auto unreachable = convoy({"health", "--redis", "127.0.0.1:1"});
  BOOST_TEST(unreachable.exit_code == 1, unreachable.output);
  BOOST_TEST(contains(unreachable.output, "does not answer"), unreachable.output);
}

BOOST_AUTO_TEST_SUITE_END()
