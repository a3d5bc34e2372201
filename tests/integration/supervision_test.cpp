// The node's supervision tree, clustered (single-active) hosts, throttling and the admin
// endpoint, with real
// in-process nodes against a real Redis, inspected through the real `convoy` CLI.

#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"
#include "examples.hpp"

#include <caf/actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <boost/test/unit_test.hpp>

#include <httplib.h>

#include <cstdlib>

using namespace convoy;
using namespace std::chrono_literals;

namespace {

struct supervision_fixture {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path());
  std::unique_ptr<persistence::message_box> box;
  registry reg;

  supervision_fixture() {
    persistence::message_box_config cfg;
    cfg.endpoint.port = redis.port();
    box = std::make_unique<persistence::message_box>(cfg);
    examples::register_all(reg);
  }

  runtime::node_config config(const std::string& name) const {
    runtime::node_config cfg;
    cfg.name = name;
    cfg.redis.port = redis.port();
    cfg.reclaim_idle = 500ms;
    cfg.poll_block = 100ms;
    cfg.timer_poll = 20ms;
    cfg.heartbeat = 100ms;
    cfg.lease_ttl = 400ms;
    cfg.log_level = "warn";
    return cfg;
  }

  /// `convoy ARGS... --redis 127.0.0.1:PORT -o json`, parsed.
  json cli_json(std::vector<std::string> args) const {
    args.insert(args.begin(), CONVOY_BINARY);
    for (const std::string& extra : std::vector<std::string>{
           "--redis", "127.0.0.1:" + std::to_string(redis.port()), "-o", "json"})
      args.push_back(extra);
    auto result = test::run_command(args, 30s);
    BOOST_TEST_INFO("convoy printed: " << result.output);
    BOOST_TEST_REQUIRE(result.exit_code == 0);
    auto start = result.output.find('{');
    BOOST_TEST_REQUIRE(start != std::string::npos);
    return json::parse(result.output.substr(start));
  }

  bool completes(const std::string& id, const std::string& type, const json& input) {
    if (!box->submit("receive", type, input.dump(), id).empty())
      return false;
    return test::wait_until(
      [&] { return box->describe(id).record.status == instance_status::completed; }, 20s);
  }

  /// The node's tree as it last recorded it (null until it did).
  json tree_of(const std::string& node) const {
    auto all = cli_json({"tree"}); // (a temporary's member in a range-for would dangle)
    for (const auto& n : all["nodes"])
      if (n["node"] == node)
        return n["tree"];
    return nullptr;
  }
};

/// The child `id` of a supervisor in a tree as JSON, or null.
json child(const json& sup, const std::string& id) {
  for (const auto& c : sup["children"])
    if (c["id"] == id)
      return c;
  return nullptr;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(supervision, supervision_fixture)

BOOST_AUTO_TEST_CASE(the_node_supervision_tree_is_listed_and_restarts_a_crashed_host) {
  runtime::node node(config("node-1"), reg);
  BOOST_TEST_REQUIRE(node.start().empty());
  BOOST_TEST_REQUIRE(completes("hello-a", "hello", "Ada"));
  json tree;
  BOOST_TEST_REQUIRE(test::wait_until([&] { return !(tree = tree_of("node-1")).is_null(); }, 10s));
  BOOST_TEST(tree["name"] == "node:node-1");
  BOOST_TEST(tree["strategy"] == "one_for_one");
  std::vector<std::string> ids;
  for (const auto& c : tree["children"])
    ids.push_back(c["id"]);
  BOOST_TEST((ids == std::vector<std::string>{"host:send", "host:processing", "host:receive",
                                              "membership"}));
  auto processing = child(tree, "host:processing");
  BOOST_TEST(processing["supervisor"]["strategy"] == "one_for_all");
  BOOST_TEST(child(processing["supervisor"], "processing")["state"] == "running");

  // A crash of the processing host (CAF's exit reason for an actor that threw): its
  // supervisor starts a new one, which serves on. (Not exit_reason::kill: CAF makes a kill
  // untrappable, so it would travel up the links and stop the whole tree.)
  auto before = node.host_actor("processing");
  BOOST_TEST_REQUIRE(static_cast<bool>(before));
  caf::anon_send_exit(before, caf::exit_reason::unhandled_exception);
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] {
      auto now = node.host_actor("processing");
      return now && now != before;
    },
    10s));
  BOOST_TEST(completes("hello-b", "hello", "Grace"));
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] {
      auto t = tree_of("node-1");
      auto p = t.is_null() ? json(nullptr) : child(t, "host:processing");
      return !p.is_null() && child(p["supervisor"], "processing")["restarts"] == 1;
    },
    10s));
  auto sup = child(tree_of("node-1"), "host:processing")["supervisor"];
  BOOST_TEST(sup["restarts_in_period"] == 1);
  BOOST_TEST_REQUIRE(sup["recent_exits"].size() >= 1u);
  BOOST_TEST(sup["recent_exits"].back()["child"] == "processing");
  BOOST_TEST(sup["recent_exits"].back()["reason"].get<std::string>().find("unhandled_exception")
             != std::string::npos);

  // The text form shows the same tree.
  auto text = test::run_command({CONVOY_BINARY, "tree", "--redis",
                                 "127.0.0.1:" + std::to_string(redis.port())},
                                30s);
  BOOST_TEST_INFO("convoy tree printed: " << text.output);
  BOOST_TEST(text.exit_code == 0);
  BOOST_TEST(text.output.find("node node-1 (cluster supervisor)") != std::string::npos);
  BOOST_TEST(text.output.find("host:processing") != std::string::npos);
  BOOST_TEST(text.output.find("exit: processing") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_host_that_keeps_crashing_escalates_until_the_node_stops_serving) {
  runtime::node node(config("node-1"), reg);
  BOOST_TEST_REQUIRE(node.start().empty());
  // host:processing allows 3 restarts in 5 s, the node supervisor 3 restarts of a host
  // supervisor in 10 s: the 16th crash in a row exhausts both.
  int crashes = 0;
  while (node.serving() && crashes < 40) {
    auto host = node.host_actor("processing");
    if (!host) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    caf::anon_send_exit(host, caf::exit_reason::unhandled_exception);
    ++crashes;
    test::wait_until([&] { return !node.serving() || node.host_actor("processing") != host; }, 5s);
  }
  BOOST_TEST(!node.serving());
  BOOST_TEST(crashes == 16);
}

BOOST_AUTO_TEST_CASE(a_single_active_host_runs_on_one_node_and_moves_when_its_node_stops) {
  auto a_cfg = config("node-a");
  a_cfg.single_active = {"receive"};
  auto b_cfg = config("node-b");
  b_cfg.single_active = {"receive"};
  auto a = std::make_unique<runtime::node>(a_cfg, reg);
  BOOST_TEST_REQUIRE(a->start().empty());
  BOOST_TEST_REQUIRE(test::wait_until([&] { return static_cast<bool>(a->host_actor("receive")); }, 10s));
  runtime::node b(b_cfg, reg);
  BOOST_TEST_REQUIRE(b.start().empty());
  // Several lease periods: b never runs receive while a holds it.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(100ms);
    BOOST_TEST_REQUIRE(!b.host_actor("receive"));
  }
  BOOST_TEST(static_cast<bool>(b.host_actor("processing")));
  auto hosts = cli_json({"host", "list"})["host_instances"];
  int receivers = 0;
  for (const auto& h : hosts)
    if (h["host"] == "receive") {
      ++receivers;
      BOOST_TEST(h["node"] == "node-a");
    }
  BOOST_TEST(receivers == 1);
  BOOST_TEST(completes("hello-1", "hello", "Ada"));

  a->stop(); // node-a leaves: its lease on receive lapses, node-b takes the host over
  a.reset();
  BOOST_TEST_REQUIRE(test::wait_until([&] { return static_cast<bool>(b.host_actor("receive")); }, 10s));
  BOOST_TEST(completes("hello-2", "hello", "Grace"));
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] {
      auto listed = cli_json({"host", "list"});
      for (const auto& h : listed["host_instances"])
        if (h["host"] == "receive" && h["node"] == "node-b" && h.contains("single_active_epoch"))
          return h["single_active_epoch"] == 2;
      return false;
    },
    10s));
}

BOOST_AUTO_TEST_CASE(a_host_over_its_memory_threshold_is_throttled_visibly_and_still_works) {
  auto cfg = config("node-1");
  cfg.throttling.memory_mb = 1; // any process is over 1 MiB
  cfg.throttling.delay = 50ms;
  runtime::node node(cfg, reg);
  BOOST_TEST_REQUIRE(node.start().empty());
  // Throttled intake is slower, not stopped.
  BOOST_TEST(completes("hello-t", "hello", "Ada"));
  json rows;
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] {
      rows = cli_json({"host", "list"})["host_instances"];
      for (const auto& r : rows)
        if (r["host"] == "processing" && r["throttled"] == true)
          return true;
      return false;
    },
    10s));
  for (const auto& r : rows) {
    BOOST_TEST_INFO("host " << r["host"]);
    BOOST_TEST(r["throttled"] == true);
    BOOST_TEST(r["throttle_cause"].get<std::string>().find("memory: the node uses")
               != std::string::npos);
    BOOST_TEST(r["throttle_cause"].get<std::string>().find("throttling.memory_mb = 1")
               != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(the_admin_endpoint_serves_health_metrics_json_and_the_dashboard) {
  ::setenv("CONVOY_TEST_ADMIN_TOKEN", "t0ken", 1);
  auto cfg = config("node-1");
  cfg.admin_token_env = "CONVOY_TEST_ADMIN_TOKEN";
  runtime::node node(cfg, reg);
  BOOST_TEST_REQUIRE(node.start().empty());
  BOOST_TEST_REQUIRE(completes("hello-m", "hello", "Ada"));
  std::string admin;
  for (const auto& n : box->list_nodes().nodes)
    if (n.name == "node-1")
      admin = n.admin;
  BOOST_TEST_REQUIRE(!admin.empty());
  auto colon = admin.rfind(':');
  httplib::Client http(admin.substr(0, colon), std::stoi(admin.substr(colon + 1)));
  http.set_read_timeout(10, 0);
  auto get = [&](const std::string& path, bool with_token = true) {
    httplib::Headers headers;
    if (with_token)
      headers.emplace("Authorization", "Bearer t0ken");
    auto res = http.Get(path, headers);
    BOOST_TEST_REQUIRE(static_cast<bool>(res), "no answer for " << path);
    return *res;
  };
  BOOST_TEST(get("/livez", false).status == 200);
  BOOST_TEST_REQUIRE(test::wait_until([&] { return get("/readyz", false).status == 200; }, 10s));
  BOOST_TEST(get("/metrics", false).status == 401); // the token guards everything else
  BOOST_TEST(get("/api/overview?token=wrong", false).status == 401);
  auto metrics = get("/metrics");
  BOOST_TEST(metrics.status == 200);
  for (auto line : {"convoy_node_serving{node=\"node-1\"} 1",
                    "convoy_persistence_latency_seconds_bucket{node=\"node-1\",le=\"+Inf\"}",
                    "convoy_throttled{node=\"node-1\",host=\"processing\"} 0",
                    "convoy_rollbacks_detected_total{node=\"node-1\"} 0",
                    "convoy_relocated_messages_total{node=\"node-1\"} 0"})
    BOOST_TEST(metrics.body.find(line) != std::string::npos, "missing: " << line);
  BOOST_TEST(metrics.body.find("convoy_persistence_points_total{node=\"node-1\"} 0")
             == std::string::npos); // hello-m wrote points
  auto overview = json::parse(get("/api/overview").body);
  BOOST_TEST(overview["node"]["name"] == "node-1");
  BOOST_TEST(overview["node"]["serving"] == true);
  BOOST_TEST(overview["instances_by_status"]["completed"] == 1);
  BOOST_TEST(overview["cluster"]["supervisor"] == "node-1");
  auto trees = json::parse(get("/api/tree").body);
  BOOST_TEST(trees["nodes"][0]["tree"]["name"] == "node:node-1");
  auto one = json::parse(get("/api/instances/hello-m").body);
  BOOST_TEST(one["status"] == "completed");
  BOOST_TEST(one["journal"].size() > 0u);
  BOOST_TEST(get("/api/instances/nobody").status == 404);
  BOOST_TEST(get("/api/instances?limit=0").status == 400);
  auto listed = json::parse(get("/api/instances?status=completed&type=hello").body);
  BOOST_TEST(listed["instances"].size() == 1u);
  auto page = get("/");
  BOOST_TEST(page.status == 200);
  BOOST_TEST(page.body.find("<title>Convoy</title>") != std::string::npos);
  BOOST_TEST(get("/no/such/path").status == 404);
}

BOOST_AUTO_TEST_SUITE_END()
