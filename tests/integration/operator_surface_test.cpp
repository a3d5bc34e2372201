// The operator's surface against one real 2-node cluster (a redis-server, two `convoy node`
// processes) holding finished, suspended and waiting orchestrations:
//   - every inspection verb of the CLI: its text form compared with golden files under
//     tests/golden/cli/ (volatile fields normalised; CONVOY_UPDATE_GOLDEN=1 rewrites them), its
//     JSON form checked against a schema, and bad arguments or unknown ids answered with one
//     line on stderr and a non-zero exit;
//   - the dashboard each node serves, loaded in a real headless Chromium, view by view, with a
//     screenshot of each saved under build/<preset>/test-artifacts/;
//   - /metrics read with a Prometheus text-format parser written here, whose counters move when
//     an orchestration runs, and /livez, /readyz.
//
// The cluster is started once for the suite (it takes most of its time). The metrics test
// runs an orchestration of its own, so it comes last: the goldens describe the cluster before.

#include "convoy/persistence/message_box.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

using namespace convoy;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// -- the cluster ------------------------------------------------------------------------------

/// What one `convoy` command printed, stdout and stderr apart.
struct cli_result {
  int exit_code = -1;
  std::string out, err;
};

/// A redis-server and two `convoy node` processes, node-a (the cluster supervisor, owner of
/// every instance) and node-b (joined once the instances settled, so that who owns what does
/// not depend on timing). Instances, created one after another (ids sort as they were made,
/// so `orch list` orders them the same whatever the clock's resolution):
///   ops-1-hello, ops-2-steps   completed
///   ops-3-bad, ops-4-bad       suspended: hello's input must be a string (one error, twice)
///   ops-5-sleeper, ops-6-sleeper  waiting on a durable timer an hour away
/// plus one message no subscription wants (unrouted).
struct ops_cluster {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path() / "redis");
  std::unique_ptr<persistence::message_box> box;
  std::map<std::string, test::child_process> nodes;
  fs::path sink = dir.path() / "effects.log";

  static inline ops_cluster* current = nullptr;

  ops_cluster() {
    persistence::message_box_config cfg;
    cfg.endpoint.port = redis.port();
    box = std::make_unique<persistence::message_box>(cfg);
    start_node("node-a");
    BOOST_TEST_REQUIRE(test::wait_until(
                         [&] {
                           auto v = box->list_nodes();
                           return v.supervisor == "node-a" && alive_with_tree(v, {"node-a"});
                         },
                         30s),
                       "node-a did not join as the cluster supervisor\n" << logs());
    create("ops-1-hello", "hello", json("Ada"));
    create("ops-2-steps", "steps", json{{"count", 3}, {"sink", sink.string()}, {"pause_ms", 0}});
    create("ops-3-bad", "hello", json(42));
    create("ops-4-bad", "hello", json(7));
    auto sleeper = [&](int count) {
      return json{{"count", count}, {"sink", sink.string()}, {"pause_ms", 3'600'000}};
    };
    create("ops-5-sleeper", "steps", sleeper(2));
    create("ops-6-sleeper", "steps", sleeper(1));
    BOOST_TEST_REQUIRE(box->submit_message("receive", "stray", json{{"note", "nobody"}}.dump(),
                                           {{"region", "nowhere"}})
                         .empty());
    const std::map<std::string, std::pair<instance_status, size_t>> settled{
      {"ops-1-hello", {instance_status::completed, 6}},
      {"ops-2-steps", {instance_status::completed, 6}},
      {"ops-3-bad", {instance_status::suspended, 0}},
      {"ops-4-bad", {instance_status::suspended, 0}},
      {"ops-5-sleeper", {instance_status::waiting, 3}},
      {"ops-6-sleeper", {instance_status::waiting, 3}}};
    std::string last;
    BOOST_TEST_REQUIRE(test::wait_until(
                         [&] {
                           for (const auto& [id, want] : settled) {
                             auto d = box->describe(id);
                             last = id + " is " + std::string(to_string(d.record.status))
                                    + " with " + std::to_string(d.journal.size()) + " entries";
                             if (d.record.status != want.first || d.journal.size() != want.second
                                 || d.record.owner != "node-a")
                               return false;
                           }
                           return box->status({"receive"}).unrouted == 1;
                         },
                         60s, 100ms),
                       "the instances did not settle: " << last << "\n" << logs());
    start_node("node-b");
    // Joined, and what each node reports of itself caught up: node-a holds the two sleepers
    // in memory (finished instances leave it shortly after their record says so), node-b
    // nothing; both in the load of the heartbeat and in the recorded tree.
    std::string figures;
    BOOST_TEST_REQUIRE(test::wait_until(
                         [&] {
                           auto v = box->list_nodes();
                           if (!alive_with_tree(v, {"node-a", "node-b"}))
                             return false;
                           figures.clear();
                           bool settled_figures = true;
                           for (const auto& n : v.nodes) {
                             auto want = n.name == "node-a" ? 2 : 0;
                             auto recorded = json::parse(n.tree, nullptr, false);
                             auto in_tree = recorded.is_object()
                                              ? recorded["hosts"]["processing"].value(
                                                  "instances_in_memory", -1)
                                              : -1;
                             figures += n.name + ": load " + std::to_string(n.load)
                                        + ", in its tree " + std::to_string(in_tree) + "; ";
                             settled_figures = settled_figures && n.load == want && in_tree == want;
                           }
                           return settled_figures;
                         },
                         30s, 100ms),
                       "node-b did not join, or the loads did not settle: " << figures << "\n"
                                                                             << logs());
    current = this;
  }

  ~ops_cluster() {
    current = nullptr;
    for (auto& [name, p] : nodes) {
      p.send_signal(SIGTERM);
      p.wait_for_exit(15s);
    }
  }

  fs::path log(const std::string& node) const { return dir.path() / (node + ".log"); }

  std::string logs() const {
    std::string out;
    for (const auto& [name, p] : nodes)
      out += "--- " + name + " log:\n" + slurp(log(name));
    return out;
  }

  /// Every node in `names` is alive, has recorded its tree and published its admin address.
  static bool alive_with_tree(const persistence::message_box::cluster_view& v,
                              const std::set<std::string>& names) {
    size_t ready = 0;
    for (const auto& n : v.nodes)
      ready += names.count(n.name) && n.status == "alive" && !n.tree.empty() && !n.admin.empty();
    return ready == names.size();
  }

  void start_node(const std::string& name) {
    std::vector<std::string> argv{CONVOY_BINARY, "node"};
    // Leases generous for a loaded machine; instances stay in memory (no dehydration), so
    // the loads the goldens show stay put.
    const std::vector<std::string> settings{
      "node.name=" + name, "messagebox.address=" + redis.address(), "timing.heartbeat_ms=200",
      "timing.lease_ttl_ms=3000", "processing.dehydrate_after_ms=0"};
    for (const auto& kv : settings) {
      argv.push_back("--set");
      argv.push_back(kv);
    }
    nodes.emplace(name, test::child_process::start(argv, {}, log(name).string()));
  }

  /// Submits instance `id` and waits until the node created it.
  void create(const std::string& id, const std::string& type, const json& input) {
    BOOST_TEST_REQUIRE(box->submit("receive", type, input.dump(), id).empty());
    BOOST_TEST_REQUIRE(test::wait_until([&] { return box->describe(id).found; }, 30s),
                       id << " was not created\n" << logs());
  }

  /// The admin endpoint `node` published, as host:port.
  std::string admin_of(const std::string& node) const {
    for (const auto& n : box->list_nodes().nodes)
      if (n.name == node)
        return n.admin;
    return {};
  }

  /// The environment of every command: no ambient MessageBox settings, no CLI settings file,
  /// no colour, no `convoy dev` found through a state file, UTC.
  test::environment env() const {
    return {{"XDG_RUNTIME_DIR", dir.path().string()},
            {"XDG_CONFIG_HOME", dir.path().string()},
            {"CONVOY_CLI_CONFIG", ""},
            {"CONVOY_REDIS", ""},
            {"CONVOY_PREFIX", ""},
            {"CONVOY_REDIS_PASSWORD", ""},
            {"NO_COLOR", "1"},
            {"TZ", "UTC"}};
  }

  /// `convoy ARGS... --redis <this cluster>` (or without --redis when `with_redis` is
  /// false), stdout and stderr captured apart (the shell sends stderr to a file of its own).
  cli_result convoy(std::vector<std::string> args, bool with_redis = true) const {
    auto err_file = dir.path() / ("stderr-" + std::to_string(++commands_run) + ".txt");
    std::vector<std::string> argv{"/bin/sh", "-c", "f=$1; shift; exec \"$@\" 2>\"$f\"", "sh",
                                  err_file.string(), CONVOY_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    if (with_redis) {
      argv.push_back("--redis");
      argv.push_back(redis.address());
    }
    auto r = test::run_command(argv, 30s, env());
    cli_result out{r.exit_code, r.output, slurp(err_file)};
    fs::remove(err_file);
    return out;
  }

  mutable int commands_run = 0;
};

/// Starts the cluster once for the suite that asks for it.
struct cluster_for_suite {
  std::unique_ptr<ops_cluster> cluster = std::make_unique<ops_cluster>();
};

ops_cluster& cluster() {
  BOOST_TEST_REQUIRE(ops_cluster::current != nullptr, "the cluster did not start");
  return *ops_cluster::current;
}

/// `convoy ARGS...` that must succeed with nothing on stderr; returns stdout.
std::string ok(std::vector<std::string> args) {
  auto r = cluster().convoy(args);
  std::string cmd;
  for (const auto& a : args)
    cmd += " " + a;
  BOOST_TEST_INFO("convoy" << cmd << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  BOOST_TEST_REQUIRE(r.exit_code == 0);
  BOOST_TEST(r.err.empty(), "convoy" << cmd << " wrote to stderr: " << r.err);
  return r.out;
}

// -- golden files -----------------------------------------------------------------------------

/// Replaces every match of `re` in `text` with `with` (which may use $1...).
std::string sub(const std::string& text, const std::string& re, const std::string& with) {
  return std::regex_replace(text, std::regex(re), with);
}

/// Takes out what differs from one run to the next: the temporary folder, ports, process ids,
/// wall-clock times (epoch ms, ISO), stream ids and other generated ids, durations and ages,
/// Convoy's own version. A normalised value keeps one space of padding after it, so that the
/// columns after it stay aligned whatever its width was. With `numbers`, every number goes
/// too (for `box stat`, whose memory, offsets and queue figures vary).
std::string normalise(std::string text, bool numbers = false) {
  const auto& c = cluster();
  for (size_t at; (at = text.find(c.dir.path().string())) != std::string::npos;)
    text.replace(at, c.dir.path().string().size(), "<dir>");
  text = sub(text, R"(\b\d{13}-\d+\b( +|(?=\n)|$))", "<stream-id> ");
  text = sub(text, R"(\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)", "<uuid>");
  text = sub(text, R"(\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?)", "<time>");
  text = sub(text, R"(\b\d{13}\b)", "<epoch-ms>");
  text = sub(text, R"(\b127\.0\.0\.1:\d+)", "127.0.0.1:<port>");
  text = sub(text, R"(\bpid \d+)", "pid <pid>");
  text = sub(text, R"(\b\d+[smhd] ago( +|(?=\n)|$))", "<age> ");
  text = sub(text, R"(\b(expires in|lapsed) \d+ ms)", "$1 <n> ms");
  text = sub(text, R"(\b\d+(\.\d+)? ?(ms|us|µs)\b)", "<duration>");
  text = sub(text, R"((^|\n)convoy [0-9]\S*)", "$1convoy <version>");
  if (numbers)
    text = sub(text, R"(\b\d+\b)", "<n>");
  // Trailing blanks carry no meaning (and editors strip them from golden files).
  std::string out;
  for (auto& line : lines_of(text)) {
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

/// `text` with the lines between its first `head` and its last `foot` lines sorted: for the
/// lists that follow the membership's order, which is by lease expiry and changes from one
/// heartbeat to the next.
std::string rows_sorted(const std::string& text, size_t head, size_t foot) {
  auto lines = lines_of(text);
  if (lines.size() > head + foot)
    std::sort(lines.begin() + static_cast<std::ptrdiff_t>(head),
              lines.end() - static_cast<std::ptrdiff_t>(foot));
  std::string out;
  for (const auto& line : lines)
    out += line + "\n";
  return out;
}

fs::path golden_dir() {
  return fs::path(CONVOY_SOURCE_DIR) / "tests" / "golden" / "cli";
}

bool updating_goldens() {
  const char* v = std::getenv("CONVOY_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

/// Compares `actual` (normalised already) with tests/golden/cli/NAME.txt, or rewrites the file
/// with CONVOY_UPDATE_GOLDEN=1. A difference shows the first line that differs and both texts.
void check_golden(const std::string& name, const std::string& actual) {
  auto path = golden_dir() / (name + ".txt");
  if (updating_goldens()) {
    fs::create_directories(golden_dir());
    std::ofstream(path, std::ios::binary) << actual;
    BOOST_TEST_MESSAGE("rewrote " << path.string());
    return;
  }
  BOOST_TEST_REQUIRE(fs::exists(path), "no golden file " << path.string()
                                         << " (CONVOY_UPDATE_GOLDEN=1 writes it); output was:\n"
                                         << actual);
  auto expected = slurp(path);
  if (expected == actual) {
    BOOST_TEST(true);
    return;
  }
  auto want = lines_of(expected), got = lines_of(actual);
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i])
    ++i;
  BOOST_ERROR("output differs from " << path.string() << " at line " << i + 1 << ":\n  want: "
                                     << (i < want.size() ? want[i] : "(end)") << "\n  got:  "
                                     << (i < got.size() ? got[i] : "(end)")
                                     << "\n--- expected:\n" << expected << "--- actual:\n"
                                     << actual
                                     << "(if the change is intended: CONVOY_UPDATE_GOLDEN=1)");
}

// -- JSON schemas -----------------------------------------------------------------------------

/// A small schema language, written as JSON:
///   "string", "integer", "number", "boolean", "null", "object", "array", "any", unions such
///   as "string|null", and "#name" for a schema of `named` (recursive structures);
///   {"key": schema, "?optional": schema, "*": schema}: an object with these keys ("*": every
///   other key's value, a map) and, with "$null": true, null too;
///   [schema]: an array each of whose elements matches.
/// Returns the first mismatch as "path: why", or "".
std::string schema_mismatch(const json& value, const json& schema, const std::string& path,
                     const std::map<std::string, json>& named) {
  if (schema.is_string()) {
    auto spec = schema.get<std::string>();
    if (spec.front() == '#')
      return schema_mismatch(value, named.at(spec.substr(1)), path, named);
    std::stringstream alternatives(spec);
    for (std::string t; std::getline(alternatives, t, '|');)
      if (t == "any" || (t == "string" && value.is_string())
          || (t == "integer" && value.is_number_integer())
          || (t == "number" && value.is_number()) || (t == "boolean" && value.is_boolean())
          || (t == "null" && value.is_null()) || (t == "object" && value.is_object())
          || (t == "array" && value.is_array()))
        return {};
    return path + ": " + std::string(value.type_name()) + " " + value.dump().substr(0, 80)
           + " is not " + spec;
  }
  if (schema.is_array()) {
    if (!value.is_array())
      return path + ": " + value.type_name() + " is not an array";
    for (size_t i = 0; i < value.size(); ++i)
      if (auto m = schema_mismatch(value[i], schema[0], path + "[" + std::to_string(i) + "]", named);
          !m.empty())
        return m;
    return {};
  }
  if (value.is_null() && schema.value("$null", false))
    return {};
  if (!value.is_object())
    return path + ": " + value.type_name() + " is not an object";
  std::set<std::string> known;
  for (const auto& [key, sub_schema] : schema.items()) {
    if (key == "*" || key == "$null")
      continue;
    bool optional = key.front() == '?';
    auto name = optional ? key.substr(1) : key;
    known.insert(name);
    if (!value.contains(name)) {
      if (optional)
        continue;
      return path + ": no key \"" + name + "\"";
    }
    if (auto m = schema_mismatch(value[name], sub_schema, path + "." + name, named); !m.empty())
      return m;
  }
  if (schema.contains("*"))
    for (const auto& [key, v] : value.items())
      if (!known.count(key))
        if (auto m = schema_mismatch(v, schema["*"], path + "." + key, named); !m.empty())
          return m;
  return {};
}

const std::map<std::string, json>& schemas() {
  static const std::map<std::string, json> named = [] {
    std::map<std::string, json> s;
    s["supervisor"] = json::parse(R"({
      "name": "string", "strategy": "string", "intensity": "integer", "period_ms": "integer",
      "restarts_in_period": "integer", "recent_exits": [{"child": "string", "reason": "string",
      "action": "string", "at_ms": "integer"}],
      "children": [{"id": "string", "kind": "string", "restart": "string", "state": "string",
                    "restarts": "integer", "?supervisor": "#supervisor"}]})");
    s["instance"] = json::parse(R"({
      "id": "string", "type": "string", "version": "integer", "status": "string",
      "host": "string", "owner": "string", "epoch": "integer", "persistence_points": "integer",
      "steps": "integer", "input": "any", "result": "any", "error": "string|null",
      "query_state": "any", "generation": "integer", "parent": "string|null",
      "created_ms": "integer", "updated_ms": "integer"})");
    s["entry"] = json::parse(R"({"step": "integer", "event": "string", "op": "string",
                                 "payload": "any"})");
    s["description"] = s["instance"];
    s["description"]["journal"] = json::array({json::parse(
      R"({"step": "integer", "event": "string", "op": "string", "hash": "integer",
          "payload": "any"})")});
    return s;
  }();
  return named;
}

/// Parses `text` as JSON and checks it against `schema`; returns the value.
json check_schema(const std::string& text, const json& schema) {
  auto value = json::parse(text, nullptr, false);
  BOOST_TEST_REQUIRE(!value.is_discarded(), "not JSON:\n" << text);
  auto m = schema_mismatch(value, schema, "$", schemas());
  BOOST_TEST(m.empty(), m << "\nin:\n" << text);
  return value;
}

json check_schema(const std::string& text, const char* schema) {
  return check_schema(text, json::parse(schema));
}

/// Every line of `text` is JSON matching `schema`; returns how many lines there were.
size_t check_jsonl(const std::string& text, const char* schema) {
  auto lines = lines_of(text);
  for (const auto& line : lines)
    check_schema(line, schema);
  return lines.size();
}

/// A command that must fail: non-zero `exit_code`, nothing on stdout, exactly one line on
/// stderr, naming each of `needles`.
void check_one_line_error(std::vector<std::string> args, int exit_code,
                          const std::vector<std::string>& needles, bool with_redis = true) {
  auto r = cluster().convoy(args, with_redis);
  std::string cmd;
  for (const auto& a : args)
    cmd += " " + a;
  BOOST_TEST_CONTEXT("convoy" << cmd << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err) {
    BOOST_TEST(r.exit_code == exit_code);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    BOOST_TEST((!r.err.empty() && r.err.back() == '\n'));
    for (const auto& needle : needles)
      BOOST_TEST(contains(r.err, needle), "stderr does not name " << needle);
  }
}

// -- Prometheus text format -------------------------------------------------------------------

/// One parsed exposition: families with their HELP and TYPE, and every sample.
struct exposition {
  struct sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
  };
  std::map<std::string, std::string> help, type;
  std::vector<sample> samples;

  /// The family a sample belongs to: its name, or for histograms and summaries its name
  /// without _bucket, _sum or _count.
  std::string family_of(const std::string& name) const {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        auto base = name.substr(0, name.size() - s.size());
        auto t = type.find(base);
        if (t != type.end() && (t->second == "histogram" || t->second == "summary"))
          return base;
      }
    }
    return name;
  }

  /// The value of `name` with exactly `labels`; nothing when absent.
  std::optional<double> value(const std::string& name,
                              const std::map<std::string, std::string>& labels) const {
    for (const auto& s : samples)
      if (s.name == name && s.labels == labels)
        return s.value;
    return std::nullopt;
  }
};

/// Parses the Prometheus text format (version 0.0.4) strictly, and checks what a scraper
/// relies on: HELP and TYPE at most once per family, TYPE before the family's samples, a TYPE
/// for every sample's family, no sample twice, label values with only \\, \" and \n escapes,
/// and for every histogram series: `le` buckets ascending with counts that never decrease, a
/// +Inf bucket equal to _count, and a _sum. Throws std::runtime_error naming the line.
exposition parse_prometheus(const std::string& text) {
  exposition out;
  std::set<std::string> seen_samples;
  std::set<std::string> families_with_samples;
  size_t number = 0;
  auto fail = [&](const std::string& why, const std::string& line) {
    throw std::runtime_error("line " + std::to_string(number) + ": " + why + ": " + line);
  };
  auto is_name = [](const std::string& s, bool metric) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
      return false;
    for (char c : s)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (metric && c == ':')))
        return false;
    return true;
  };
  auto parse_value = [&](const std::string& s, const std::string& line) {
    if (s == "+Inf" || s == "Inf")
      return HUGE_VAL;
    if (s == "-Inf")
      return -HUGE_VAL;
    if (s == "NaN")
      return std::nan("");
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      fail("not a number '" + s + "'", line);
    }
    if (used != s.size())
      fail("not a number '" + s + "'", line);
    return v;
  };
  for (const auto& line : lines_of(text)) {
    ++number;
    if (line.empty())
      continue;
    if (line[0] == '#') {
      std::istringstream in(line.substr(1));
      std::string keyword, name;
      in >> keyword >> name;
      if (keyword != "HELP" && keyword != "TYPE")
        continue; // a comment
      if (!is_name(name, true))
        fail("bad metric name '" + name + "'", line);
      std::string rest;
      std::getline(in, rest);
      if (!rest.empty() && rest[0] == ' ')
        rest.erase(0, 1);
      if (keyword == "HELP") {
        if (out.help.count(name))
          fail("a second HELP for " + name, line);
        std::string unescaped;
        for (size_t i = 0; i < rest.size(); ++i) {
          if (rest[i] != '\\') {
            unescaped += rest[i];
            continue;
          }
          if (++i == rest.size() || (rest[i] != '\\' && rest[i] != 'n'))
            fail("bad escape in HELP", line);
          unescaped += rest[i] == 'n' ? '\n' : '\\';
        }
        out.help[name] = unescaped;
      } else {
        static const std::set<std::string> types{"counter", "gauge", "histogram", "summary",
                                                 "untyped"};
        if (!types.count(rest))
          fail("unknown type '" + rest + "'", line);
        if (out.type.count(name))
          fail("a second TYPE for " + name, line);
        if (families_with_samples.count(name))
          fail("TYPE after samples of " + name, line);
        out.type[name] = rest;
      }
      continue;
    }
    exposition::sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    s.name = line.substr(0, i);
    if (!is_name(s.name, true))
      fail("bad metric name '" + s.name + "'", line);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        auto eq = line.find('=', i);
        if (eq == std::string::npos)
          fail("a label without '='", line);
        auto label = line.substr(i, eq - i);
        if (!is_name(label, false))
          fail("bad label name '" + label + "'", line);
        if (eq + 1 >= line.size() || line[eq + 1] != '"')
          fail("a label value not in double quotes", line);
        std::string value;
        i = eq + 2;
        for (;; ++i) {
          if (i >= line.size())
            fail("an unterminated label value", line);
          if (line[i] == '"')
            break;
          if (line[i] == '\\') {
            if (++i >= line.size() || (line[i] != '\\' && line[i] != '"' && line[i] != 'n'))
              fail("bad escape in a label value", line);
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
        }
        ++i;
        if (s.labels.count(label))
          fail("label " + label + " twice", line);
        s.labels[label] = value;
        if (i < line.size() && line[i] == ',')
          ++i;
        else if (i >= line.size() || line[i] != '}')
          fail("labels not separated by ','", line);
      }
    }
    if (i >= line.size() || line[i] != ' ')
      fail("no value", line);
    std::istringstream rest(line.substr(i + 1));
    std::string value, timestamp, extra;
    rest >> value >> timestamp >> extra;
    if (value.empty() || !extra.empty())
      fail("expected a value and an optional timestamp", line);
    s.value = parse_value(value, line);
    if (!timestamp.empty())
      parse_value(timestamp, line);
    auto family = out.family_of(s.name);
    if (!out.type.count(family))
      fail("a sample of " + family + " without a TYPE", line);
    families_with_samples.insert(family);
    std::string key = s.name;
    for (const auto& [k, v] : s.labels)
      key += "\x1f" + k + "=" + v;
    if (!seen_samples.insert(key).second)
      fail("the same sample twice", line);
    out.samples.push_back(std::move(s));
  }
  // Histograms: per series (labels without `le`), buckets ascending and cumulative.
  for (const auto& [family, t] : out.type) {
    if (t != "histogram")
      continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    for (const auto& s : out.samples) {
      if (s.name != family + "_bucket")
        continue;
      auto labels = s.labels;
      auto le = labels.find("le");
      if (le == labels.end())
        throw std::runtime_error(family + "_bucket without an le label");
      auto bound = le->second == "+Inf" ? HUGE_VAL : std::stod(le->second);
      labels.erase(le);
      buckets[labels].emplace_back(bound, s.value);
    }
    if (buckets.empty())
      throw std::runtime_error("histogram " + family + " has no buckets");
    for (const auto& [labels, series] : buckets) {
      for (size_t k = 1; k < series.size(); ++k) {
        if (!(series[k - 1].first < series[k].first))
          throw std::runtime_error(family + ": le bounds not ascending");
        if (series[k].second < series[k - 1].second)
          throw std::runtime_error(family + ": bucket counts decrease");
      }
      if (series.back().first != HUGE_VAL)
        throw std::runtime_error(family + ": no +Inf bucket");
      auto count = out.value(family + "_count", labels);
      if (!count || *count != series.back().second)
        throw std::runtime_error(family + ": _count differs from the +Inf bucket");
      if (!out.value(family + "_sum", labels))
        throw std::runtime_error(family + ": no _sum");
    }
  }
  return out;
}

} // namespace

// -- the parser and the normaliser, on their own ----------------------------------------------

BOOST_AUTO_TEST_SUITE(operator_surface_tools)

BOOST_AUTO_TEST_CASE(the_prometheus_parser_reads_escapes_and_rejects_broken_expositions) {
  auto e = parse_prometheus("# HELP a_total a \\\\ help\\nline\n# TYPE a_total counter\n"
                            "a_total{x=\"q\\\"uote\\\\ and\\nnewline\",y=\"\"} 3 1700000000000\n"
                            "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                            "h_sum 0.7\nh_count 2\n# just a comment\n");
  BOOST_TEST(e.help["a_total"] == "a \\ help\nline");
  BOOST_TEST(*e.value("a_total", {{"x", "q\"uote\\ and\nnewline"}, {"y", ""}}) == 3);
  BOOST_TEST(*e.value("h_count", {}) == 2);
  for (const char* broken :
       {"a 1\n",                                                     // no TYPE
        "# TYPE a gauge\na{x=\"\\t\"} 1\n",                          // bad escape
        "# TYPE a gauge\na{x=\"1} 1\n",                              // unterminated
        "# TYPE a gauge\na 1\na 2\n",                                // the same sample twice
        "# TYPE a gauge\na one\n",                                   // not a number
        "# TYPE a gauge\n# TYPE a gauge\n",                          // TYPE twice
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"})
    BOOST_CHECK_THROW(parse_prometheus(broken), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(the_schema_check_finds_missing_keys_and_wrong_types_in_every_element) {
  auto schema = json::parse(R"([{"id": "string", "n": "integer|null", "?x": "boolean"}])");
  BOOST_TEST(schema_mismatch(json::parse(R"([{"id": "a", "n": 1}, {"id": "b", "n": null, "x": true}])"),
                      schema, "$", {})
               .empty());
  BOOST_TEST(schema_mismatch(json::parse(R"([{"id": "a", "n": 1}, {"n": 2}])"), schema, "$", {})
             == "$[1]: no key \"id\"");
  BOOST_TEST(!schema_mismatch(json::parse(R"([{"id": "a", "n": "1"}])"), schema, "$", {}).empty());
  BOOST_TEST(!schema_mismatch(json::parse(R"([{"id": "a", "n": 1, "x": 0}])"), schema, "$", {}).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// -- the CLI against the cluster --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(operator_surface, *boost::unit_test::fixture<cluster_for_suite>())

BOOST_AUTO_TEST_CASE(node_list_text_and_json_show_both_members_and_the_cluster_supervisor) {
  check_golden("node-list", rows_sorted(normalise(ok({"node", "list"})), 1, 1));
  auto v = check_schema(ok({"node", "list", "-o", "json"}), R"({
    "supervisor": "string|null", "supervisor_epoch": "integer",
    "nodes": [{"name": "string", "status": "string", "hosts": "string", "load": "integer",
               "generation": "integer", "heartbeat_ms": "integer",
               "lease_expires_ms": "integer", "admin": "string|null"}]})");
  BOOST_TEST(v["supervisor"] == "node-a");
  BOOST_TEST(v["nodes"].size() == 2u);
  BOOST_TEST(check_jsonl(ok({"node", "list", "-o", "jsonl"}), R"({"nodes": "array"})") == 1u);
}

BOOST_AUTO_TEST_CASE(tree_text_and_json_show_each_nodes_supervisors_and_its_orchestrations) {
  // The whole cluster's tree is each node's, in the membership's order (see rows_sorted).
  auto node_a = normalise(ok({"tree", "--node", "node-a"}));
  auto node_b = normalise(ok({"tree", "--node", "node-b"}));
  check_golden("tree-node-a", node_a);
  check_golden("tree-node-b", node_b);
  auto whole = normalise(ok({"tree"}));
  BOOST_TEST((whole == node_a + node_b || whole == node_b + node_a), whole);
  check_golden("tree-node-a-depth-2", normalise(ok({"tree", "--node", "node-a", "--depth", "2"})));
  check_golden("tree-node-b-depth-1", normalise(ok({"tree", "--node", "node-b", "--depth", "1"})));
  auto v = check_schema(ok({"tree", "-o", "json"}), R"({
    "supervisor": "string|null",
    "nodes": [{"node": "string", "status": "string", "tree": "#supervisor",
               "hosts": {"*": {"?instances_in_memory": "integer", "?single_active_epoch": "integer",
                               "?throttle": {"cause": "string", "since_ms": "integer"}}},
               "orchestrations": {"*": "integer"}}]})");
  BOOST_REQUIRE(v["nodes"].size() == 2u);
  for (const auto& n : v["nodes"])
    if (n["node"] == "node-a")
      BOOST_TEST(n["orchestrations"] == json::parse(R"({"steps": 2})"));
    else
      BOOST_TEST(n["orchestrations"] == json::object());
  auto one = check_schema(ok({"tree", "--node", "node-b", "-o", "json"}), R"({"nodes": "array"})");
  BOOST_TEST(one["nodes"].size() == 1u);
}

BOOST_AUTO_TEST_CASE(host_list_text_and_json_show_every_host_instance_of_both_nodes) {
  check_golden("host-list", rows_sorted(normalise(ok({"host", "list"})), 1, 1));
  auto v = check_schema(ok({"host", "list", "-o", "json"}), R"({
    "host_instances": [{"host": "string", "node": "string", "node_status": "string",
      "heartbeat_ms": "integer", "throttled": "boolean", "?throttle_cause": "string",
      "?single_active_epoch": "integer", "?instances_in_memory": "integer",
      "?instances_owned_unfinished": "integer"}]})");
  BOOST_TEST(v["host_instances"].size() == 6u); // receive, processing, send on each node
  BOOST_TEST(check_jsonl(ok({"host", "list", "-o", "jsonl"}), R"({"host": "string"})") == 6u);
}

BOOST_AUTO_TEST_CASE(orch_list_text_and_json_with_filters_and_groupings) {
  const char* list_schema = R"([ "#instance" ])";
  check_golden("orch-list", normalise(ok({"orch", "list"})));
  auto all = check_schema(ok({"orch", "list", "-o", "json"}), list_schema);
  BOOST_TEST(all.size() == 6u);
  BOOST_TEST(all[0]["id"] == "ops-6-sleeper"); // newest first
  BOOST_TEST(all[5]["id"] == "ops-1-hello");
  BOOST_TEST(check_jsonl(ok({"orch", "list", "-o", "jsonl"}), R"("#instance")") == 6u);
  const std::vector<std::pair<std::string, std::vector<std::string>>> filtered{
    {"orch-list-status-waiting", {"--status", "waiting"}},
    {"orch-list-type-hello", {"--type", "hello"}},
    {"orch-list-host-node-b", {"--host", "node-b"}},
    {"orch-list-suspended-hello-limit-3", {"--status", "suspended", "--type", "hello", "--limit", "3"}}};
  for (const auto& [name, filter] : filtered) {
    std::vector<std::string> args{"orch", "list"};
    args.insert(args.end(), filter.begin(), filter.end());
    check_golden(name, normalise(ok(args)));
    args.insert(args.end(), {"-o", "json"});
    for (const auto& inst : check_schema(ok(args), list_schema)) {
      if (filter[0] == "--status")
        BOOST_TEST(inst["status"] == filter[1]);
      if (filter[0] == "--type")
        BOOST_TEST(inst["type"] == filter[1]);
      if (filter[0] == "--host")
        BOOST_TEST(inst["owner"] == filter[1]);
    }
  }
  for (std::string by : {"status", "type", "host", "error"}) {
    check_golden("orch-list-group-by-" + by, normalise(ok({"orch", "list", "--group-by", by})));
    auto groups = check_schema(ok({"orch", "list", "--group-by", by, "-o", "json"}),
                               json::parse("[{\"" + by + "\": \"string\", \"count\": \"integer\"}]"));
    size_t total = 0;
    for (const auto& g : groups)
      total += g["count"].get<size_t>();
    BOOST_TEST(total == 6u, "grouped by " << by);
  }
}

BOOST_AUTO_TEST_CASE(orch_count_text_and_json_with_filters_and_groupings) {
  BOOST_TEST(ok({"orch", "count"}) == "6\n");
  BOOST_TEST(ok({"orch", "count", "--status", "suspended"}) == "2\n");
  BOOST_TEST(ok({"orch", "count", "--host", "node-b"}) == "0\n");
  check_golden("orch-count-group-by-status",
               normalise(ok({"orch", "count", "--group-by", "status"})));
  auto v = check_schema(ok({"orch", "count", "--type", "steps", "-o", "json"}),
                        R"({"count": "integer", "of_newest": "integer"})");
  BOOST_TEST(v["count"] == 3);
  auto groups = check_schema(ok({"orch", "count", "--group-by", "status", "-o", "json"}),
                             R"([{"status": "string", "count": "integer"}])");
  std::map<std::string, int> by_status;
  for (const auto& g : groups)
    by_status[g["status"]] = g["count"];
  BOOST_TEST((by_status == std::map<std::string, int>{{"completed", 2}, {"suspended", 2},
                                                      {"waiting", 2}}));
}

BOOST_AUTO_TEST_CASE(orch_describe_history_and_stack_of_a_finished_a_suspended_and_a_waiting_one) {
  for (std::string id : {"ops-1-hello", "ops-3-bad", "ops-5-sleeper"}) {
    BOOST_TEST_CONTEXT("instance " << id) {
      check_golden("orch-describe-" + id, normalise(ok({"orch", "describe", id})));
      check_golden("orch-history-" + id, normalise(ok({"orch", "history", id})));
      check_golden("orch-stack-" + id, normalise(ok({"orch", "stack", id})));
      auto d = check_schema(ok({"orch", "describe", id, "-o", "json"}), R"("#description")");
      BOOST_TEST(d["id"] == id);
      auto history = check_schema(ok({"orch", "history", id, "-o", "json"}), R"(["#entry"])");
      BOOST_TEST(history.size() == d["journal"].size());
      BOOST_TEST(check_jsonl(ok({"orch", "history", id, "-o", "jsonl"}), R"("#entry")")
                 == history.size());
      auto stack = check_schema(ok({"orch", "stack", id, "-o", "json"}), R"({
        "id": "string", "status": "string", "awaits": ["#entry"], "mailbox": ["#entry"]})");
      BOOST_TEST(stack["status"] == d["status"]);
    }
  }
  auto stack = json::parse(ok({"orch", "stack", "ops-5-sleeper", "-o", "json"}));
  BOOST_REQUIRE(stack["awaits"].size() == 1u);
  BOOST_TEST(stack["awaits"][0]["op"] == "sleep");
  BOOST_TEST(stack["awaits"][0]["payload"]["ms"] == 3'600'000);
  BOOST_TEST(json::parse(ok({"orch", "describe", "ops-3-bad", "-o", "json"}))["error"]
               .get<std::string>()
               .find("input does not fit the orchestration")
             == 0u);
}

BOOST_AUTO_TEST_CASE(box_stat_health_msg_list_and_version_text_and_json) {
  check_golden("box-stat", normalise(ok({"box", "stat"}), true));
  auto box = check_schema(ok({"box", "stat", "-o", "json"}), R"({
    "address": "string", "role": "string", "version": "string",
    "connected_replicas": "integer", "replicas": ["string"], "master_repl_offset": "integer",
    "used_memory": "integer", "maxmemory": "integer",
    "queues": {"*": {"length": "integer", "pending": "integer"}},
    "persistence_points_applied": "integer", "rollbacks_reported": "integer",
    "unrouted": "integer", "zombies": "integer", "at_ms": "integer"})");
  BOOST_TEST(box["role"] == "master");
  BOOST_TEST(box["unrouted"] == 1);
  BOOST_TEST(box["queues"].contains("processing"));

  check_golden("health", normalise(ok({"health"})));
  auto health = check_schema(ok({"health", "-o", "json"}), R"({
    "serving": "boolean", "reason": "string|null", "live_nodes": "integer",
    "supervisor": "string"})");
  BOOST_TEST(health["serving"] == true);
  BOOST_TEST(health["live_nodes"] == 2);

  check_golden("msg-list", normalise(ok({"msg", "list"})));
  check_golden("msg-list-zombies", normalise(ok({"msg", "list", "--zombies"})));
  auto unrouted = check_schema(ok({"msg", "list", "-o", "json"}),
                               R"([{"id": "string", "type": "string", "body": "string",
                                    "*": "string"}])");
  BOOST_REQUIRE(unrouted.size() == 1u);
  BOOST_TEST(unrouted[0]["type"] == "stray");
  BOOST_TEST(check_schema(ok({"msg", "list", "--zombies", "-o", "json"}), R"([{"id": "string"}])")
               .empty());

  check_golden("version", normalise(ok({"version"})));
}

BOOST_AUTO_TEST_CASE(bad_arguments_and_unknown_ids_give_one_line_on_stderr_and_a_nonzero_exit) {
  check_one_line_error({"orch", "describe", "no-such-instance"}, 4, {"'no-such-instance'"});
  check_one_line_error({"orch", "history", "no-such-instance"}, 4, {"'no-such-instance'"});
  check_one_line_error({"orch", "stack", "no-such-instance"}, 4, {"'no-such-instance'"});
  check_one_line_error({"orch", "signal", "no-such-instance", "add", "1"}, 4,
                       {"'no-such-instance'"});
  check_one_line_error({"orch", "describe", "bad id/1"}, 2, {"'bad id/1'"});
  check_one_line_error({"tree", "--node", "node-z"}, 4, {"'node-z'"});
  check_one_line_error({"tree", "--depth", "0"}, 2, {"--depth"});
  check_one_line_error({"orch", "list", "--status", "sleeping"}, 2, {"sleeping"});
  check_one_line_error({"orch", "count", "--group-by", "colour"}, 2, {"colour"});
  check_one_line_error({"orch", "list", "--limit", "0"}, 2, {"--limit"});
  check_one_line_error({"node", "list", "-o", "yaml"}, 2, {"yaml"});
  check_one_line_error({"host", "list", "extra"}, 2, {"extra"});
  check_one_line_error({"box", "stat", "-i", "0"}, 2, {"--interval"});
  check_one_line_error({"msg", "list", "--limit", "0"}, 2, {"--limit"});
  check_one_line_error({"orch", "frobnicate"}, 2, {"'frobnicate'"});
  check_one_line_error({"orch", "list", "--redis", "nohost:xx"}, 2, {"'nohost:xx'"}, false);
  check_one_line_error({"health", "--bogus"}, 2, {"--bogus"});
}

// -- the dashboard in a headless Chromium -----------------------------------------------------

namespace {

/// The Chromium binary: $CONVOY_CHROMIUM, else `chromium` (Debian's package) on PATH.
std::string find_chromium() {
  if (const char* v = std::getenv("CONVOY_CHROMIUM"); v && *v)
    return v;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string d; std::getline(dirs, d, ':');)
    for (const char* name : {"chromium", "chromium-browser"})
      if (!d.empty() && ::access((fs::path(d) / name).c_str(), X_OK) == 0)
        return (fs::path(d) / name).string();
  return {};
}

/// build/<preset>/test-artifacts: next to cli/, where the convoy binary under test is.
fs::path artifact_dir() {
  auto dir = fs::path(CONVOY_BINARY).parent_path().parent_path() / "test-artifacts";
  fs::create_directories(dir);
  return dir;
}

/// Loads `url` in a fresh headless Chromium (its own profile in a temporary folder), lets its
/// scripts run for 3 s of virtual time (the fetches of the JSON API complete meanwhile), saves
/// a screenshot as `png` and returns the DOM as it then is.
std::string render_page(const std::string& chromium, const std::string& url, const fs::path& png) {
  test::temp_dir profile;
  fs::remove(png);
  auto r = test::run_command({chromium, "--headless", "--no-sandbox", "--disable-gpu",
                              "--disable-quic", "--no-first-run", "--disable-background-networking",
                              "--disable-component-update", "--disable-sync",
                              "--disable-dev-shm-usage", "--hide-scrollbars", "--log-level=3",
                              "--user-data-dir=" + profile.path().string(),
                              "--window-size=1280,1400", "--virtual-time-budget=3000",
                              "--screenshot=" + png.string(), "--dump-dom", url},
                             120s, {{"TZ", "UTC"}});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "chromium on " << url << " exited with " << r.exit_code
                                                      << " (-1: killed after 120 s):\n"
                                                      << r.output);
  BOOST_TEST((fs::exists(png) && fs::file_size(png) > 1000), "no screenshot at " << png.string());
  BOOST_TEST_MESSAGE("dashboard screenshot: " << png.string());
  // Chromium may log to stderr too (interleaved in `output`): the DOM is the <html> element.
  auto begin = r.output.find("<html"), end = r.output.rfind("</html>");
  BOOST_TEST_REQUIRE((begin != std::string::npos && end != std::string::npos),
                     "no document in:\n" << r.output);
  return r.output.substr(begin, end + 7 - begin);
}

/// The element with id `id` in `dom` (its opening tag to the matching end tag of the same
/// name), or "" when absent.
std::string element(const std::string& dom, const std::string& id) {
  auto at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos)
    return {};
  auto open = dom.rfind('<', at);
  auto name_end = dom.find_first_of(" >", open);
  auto name = dom.substr(open + 1, name_end - open - 1);
  int depth = 0;
  for (size_t i = open; i < dom.size(); ++i) {
    if (dom.compare(i, name.size() + 1, "<" + name) == 0
        && (dom[i + name.size() + 1] == ' ' || dom[i + name.size() + 1] == '>'))
      ++depth;
    else if (dom.compare(i, name.size() + 3, "</" + name + ">") == 0 && --depth == 0)
      return dom.substr(open, i + name.size() + 3 - open);
  }
  return {};
}

/// The text of `html` without its tags, entities of the few kinds the page writes decoded.
std::string text_of(const std::string& html) {
  auto t = sub(html, "<[^>]*>", " ");
  t = sub(t, "&amp;", "&");
  t = sub(t, "&lt;", "<");
  t = sub(t, "&gt;", ">");
  t = sub(t, "&quot;", "\"");
  t = sub(t, "&#39;", "'");
  return sub(t, R"(\s+)", " ");
}

} // namespace

BOOST_AUTO_TEST_CASE(the_dashboard_renders_every_view_from_the_running_cluster_in_chromium) {
  auto chromium = find_chromium();
  BOOST_TEST_REQUIRE(!chromium.empty(),
                     "chromium is not installed: the dashboard test needs Debian's chromium "
                     "package (scripts/install-deps installs it), or CONVOY_CHROMIUM naming a "
                     "Chromium binary");
  auto& c = cluster();
  auto base = "http://" + c.admin_of("node-b") + "/"; // any node serves the whole cluster
  auto view = [&](const std::string& hash, const std::string& name) {
    auto dom = render_page(chromium, base + "#" + hash, artifact_dir() / ("dashboard-" + name + ".png"));
    auto shown = element(dom, "view");
    BOOST_TEST_INFO("view #" << hash << ":\n" << dom);
    BOOST_TEST_REQUIRE(contains(shown, "data-ready=\"true\""));
    return shown;
  };
  auto row_with = [](const std::string& table, const std::vector<std::string>& cells) {
    for (const auto& row : lines_of(sub(table, "</tr>", "\n"))) {
      auto t = text_of(row);
      if (std::all_of(cells.begin(), cells.end(),
                      [&](const auto& cell) { return contains(t, cell); }))
        return true;
    }
    return false;
  };

  auto overview = view("overview", "overview");
  BOOST_TEST(contains(text_of(element(overview, "messagebox")), "address: " + c.redis.address()));
  BOOST_TEST(contains(text_of(element(overview, "messagebox")), "reachable: yes"));
  auto nodes = element(overview, "nodes");
  BOOST_TEST(row_with(nodes, {"node-a ★", "alive", "receive,processing,send", "live"}), nodes);
  BOOST_TEST(row_with(nodes, {"node-b", "alive", "receive,processing,send", "live"}), nodes);
  auto by_state = element(overview, "by-state");
  for (auto state : {"completed", "suspended", "waiting"})
    BOOST_TEST(row_with(by_state, {std::string(" ") + state + " 2 "}), by_state);
  auto failures = element(overview, "failures");
  BOOST_TEST(row_with(failures, {" 2 ", "input does not fit the orchestration", "ops-"}), failures);

  auto hosts = element(view("hosts", "hosts"), "host-instances");
  for (std::string node : {"node-a", "node-b"})
    for (std::string host : {"receive", "processing", "send"})
      BOOST_TEST(row_with(hosts, {" " + host + " ", node, "running"}), host << " on " << node);
  BOOST_TEST(row_with(hosts, {" processing ", "node-a", "running", " 2 "}), hosts);

  auto trees = text_of(element(view("tree", "tree"), "trees"));
  BOOST_TEST(trees.find("node node-a") < trees.find("node node-b")); // by name
  BOOST_TEST(contains(trees, "node node-a (cluster supervisor) · alive · node:node-a one_for_one"),
             trees);
  BOOST_TEST(contains(trees, "node node-b · alive · node:node-b one_for_one"), trees);
  BOOST_TEST(contains(trees, "host:processing supervisor permanent running · restarts 0"), trees);
  BOOST_TEST(contains(trees, "processing worker permanent running · restarts 0 · 2 instances in "
                             "memory orchestrations: 2 owned, unfinished steps: 2"),
             trees);
  BOOST_TEST(contains(trees, "membership worker permanent running"), trees);

  auto list = element(view("instances", "instances"), "instance-list");
  for (auto id : {"ops-1-hello", "ops-2-steps", "ops-3-bad", "ops-4-bad", "ops-5-sleeper",
                  "ops-6-sleeper"})
    BOOST_TEST(contains(list, "href=\"#instance/" + std::string(id) + "\""), id);
  BOOST_TEST(row_with(list, {"ops-1-hello", "hello v1", "completed", "node-a", "HELLO, ADA!"}));
  auto waiting = element(view("instances?status=waiting", "instances-waiting"), "instance-list");
  BOOST_TEST(contains(waiting, "ops-5-sleeper"));
  BOOST_TEST(!contains(waiting, "ops-1-hello"));

  auto sleeper = view("instance/ops-5-sleeper", "instance-waiting");
  BOOST_TEST(row_with(element(sleeper, "instance-card"), {"status", "waiting"}));
  auto waits = text_of(element(sleeper, "waits"));
  BOOST_TEST(contains(waits, "step 1: sleep {\"due\":"), waits);
  BOOST_TEST(contains(waits, "\"ms\":3600000} · due in 59m"), waits);
  auto history = element(sleeper, "history");
  BOOST_TEST(row_with(history, {" 0 ", "scheduled", "call", "\"activity\":\"record\""}), history);
  BOOST_TEST(row_with(history, {" 0 ", "completed", "call"}), history);
  BOOST_TEST(row_with(history, {" 1 ", "scheduled", "sleep"}), history);

  auto hello = view("instance/ops-1-hello", "instance-completed");
  BOOST_TEST(row_with(element(hello, "instance-card"), {"result", "HELLO, ADA!"}));
  BOOST_TEST(contains(text_of(element(hello, "waits")), "awaits nothing (completed)"));
  BOOST_TEST(contains(text_of(hello), "History (6 entries)"));

  auto missing = render_page(chromium, base + "#instance/no-such-instance",
                             artifact_dir() / "dashboard-instance-missing.png");
  BOOST_TEST(contains(element(missing, "view"), "data-ready=\"error\""));
  BOOST_TEST(contains(element(missing, "error"), "no instance no-such-instance"));
}

// -- /metrics, /livez, /readyz ----------------------------------------------------------------

namespace {

struct http_reply {
  int status = 0;
  std::string body, content_type;
};

http_reply http_get(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  httplib::Client http(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  http.set_connection_timeout(10, 0);
  http.set_read_timeout(20, 0);
  auto res = http.Get(path);
  BOOST_TEST_REQUIRE(static_cast<bool>(res), "no answer from " << address << path);
  return {res->status, res->body, res->get_header_value("Content-Type")};
}

/// Both nodes' /metrics, parsed.
std::map<std::string, exposition> scrape() {
  std::map<std::string, exposition> out;
  for (std::string node : {"node-a", "node-b"}) {
    auto r = http_get(cluster().admin_of(node), "/metrics");
    BOOST_TEST_REQUIRE(r.status == 200);
    BOOST_TEST(contains(r.content_type, "text/plain"));
    try {
      out[node] = parse_prometheus(r.body);
    } catch (const std::exception& e) {
      BOOST_FAIL(node << "'s /metrics does not parse: " << e.what() << "\n" << r.body);
    }
  }
  return out;
}

double metric(const exposition& e, const std::string& name,
              std::map<std::string, std::string> labels) {
  auto v = e.value(name, labels);
  BOOST_TEST_REQUIRE(v.has_value(), "no sample " << name);
  return *v;
}

} // namespace

BOOST_AUTO_TEST_CASE(both_nodes_metrics_parse_and_their_counters_move_when_an_orchestration_runs) {
  auto& c = cluster();
  for (std::string node : {"node-a", "node-b"}) {
    auto live = http_get(c.admin_of(node), "/livez");
    BOOST_TEST(live.status == 200);
    BOOST_TEST(live.body == "ok\n");
    auto ready = http_get(c.admin_of(node), "/readyz");
    BOOST_TEST(ready.status == 200, node << ": " << ready.body);
    BOOST_TEST(ready.body == "ready\n");
  }
  auto before = scrape();
  for (const auto& [node, e] : before) {
    BOOST_TEST_CONTEXT(node) {
      std::map<std::string, std::string> me{{"node", node}};
      BOOST_TEST(metric(e, "convoy_node_serving", me) == 1);
      BOOST_TEST(metric(e, "convoy_cluster_supervisor", me) == (node == "node-a" ? 1 : 0));
      BOOST_TEST(metric(e, "convoy_instances_in_memory", me) == (node == "node-a" ? 2 : 0));
      BOOST_TEST(e.type.at("convoy_persistence_points_total") == "counter");
      BOOST_TEST(e.type.at("convoy_persistence_latency_seconds") == "histogram");
      BOOST_TEST(metric(e, "convoy_instances", {{"node", node}, {"status", "waiting"}}) == 2);
      BOOST_TEST(metric(e, "convoy_instances", {{"node", node}, {"status", "suspended"}}) == 2);
      for (auto host : {"receive", "processing", "send"})
        BOOST_TEST(metric(e, "convoy_throttled", {{"node", node}, {"host", host}}) == 0);
      BOOST_TEST(metric(e, "convoy_rollbacks_detected_total", me) == 0);
      for (const auto& [family, help] : e.help)
        BOOST_TEST(!help.empty(), family);
      for (const auto& [family, type] : e.type)
        BOOST_TEST(e.help.count(family) == 1u, family << " has no HELP");
    }
  }
  BOOST_TEST(metric(before["node-a"], "convoy_persistence_points_total", {{"node", "node-a"}}) > 0);

  // One more orchestration; whichever node runs it, the sums move.
  BOOST_TEST_REQUIRE(c.box->submit("receive", "steps",
                                   json{{"count", 4}, {"sink", c.sink.string()}, {"pause_ms", 0}}.dump(),
                                   "ops-7-metrics")
                       .empty());
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] { return c.box->describe("ops-7-metrics").record.status == instance_status::completed; },
    30s, 100ms));
  auto sum = [](std::map<std::string, exposition>& by_node, const std::string& name) {
    double total = 0;
    for (auto& [node, e] : by_node)
      total += metric(e, name, {{"node", node}});
    return total;
  };
  std::map<std::string, exposition> after;
  // Counters are read when scraped; the persistence points of the last step were acknowledged
  // before the record said completed, so one scrape after suffices.
  after = scrape();
  BOOST_TEST(sum(after, "convoy_persistence_points_total")
             >= sum(before, "convoy_persistence_points_total") + 4);
  BOOST_TEST(sum(after, "convoy_persistence_latency_seconds_count")
             >= sum(before, "convoy_persistence_latency_seconds_count") + 4);
  for (std::string node : {"node-a", "node-b"}) {
    BOOST_TEST_CONTEXT(node) {
      std::map<std::string, std::string> completed{{"node", node}, {"status", "completed"}};
      BOOST_TEST(metric(after[node], "convoy_instances", completed)
                 == metric(before[node], "convoy_instances", completed) + 1);
      BOOST_TEST(metric(after[node], "convoy_instance_steps", {{"node", node}})
                 == metric(before[node], "convoy_instance_steps", {{"node", node}}) + 4);
    }
  }
  BOOST_TEST(http_get(c.admin_of("node-a"), "/no/such/path").status == 404);
}

BOOST_AUTO_TEST_SUITE_END()
