// Receive locations and send ports end to end: a real redis-server, real nodes (in-process,
// and `convoy node` processes for the kill test), and a local HTTP service started by the
// test that counts what it receives per Idempotency-Key.

#include "convoy/adapters/attach.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"
#include "examples.hpp"

#include <boost/test/unit_test.hpp>
#include <httplib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

using namespace convoy;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// The orders service the send port calls: counts arrivals per Idempotency-Key.
class orders_service {
public:
  explicit orders_service(uint16_t port = 0, std::chrono::milliseconds delay = 0ms) {
    server_.Post("/orders", [this, delay](const httplib::Request& req, httplib::Response& res) {
      if (delay.count() > 0)
        std::this_thread::sleep_for(delay); // a slow service: work is in flight for longer
      std::lock_guard<std::mutex> lock(mtx_);
      ++arrivals_[req.get_header_value("Idempotency-Key")];
      res.set_content(R"({"accepted":true})", "application/json");
    });
    port_ = port == 0 ? server_.bind_to_any_port("127.0.0.1")
                      : (server_.bind_to_port("127.0.0.1", port) ? port : -1);
    BOOST_TEST_REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // The bound socket queues clients already; stop() only works once the loop runs.
    BOOST_TEST_REQUIRE(test::wait_until([this] { return server_.is_running(); }, 5s, 1ms));
  }
  ~orders_service() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/orders"; }
  std::map<std::string, int> arrivals() {
    std::lock_guard<std::mutex> lock(mtx_);
    return arrivals_;
  }

private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mtx_;
  std::map<std::string, int> arrivals_;
};

/// A real Redis, folders for the example, and nodes running against them.
struct fixture {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path());
  std::unique_ptr<persistence::message_box> box;
  fs::path inbox = dir.path() / "inbox";
  fs::path receipts = dir.path() / "receipts";
  uint16_t http_port = test::free_loopback_port();

  fixture() {
    persistence::message_box_config cfg;
    cfg.endpoint.port = redis.port();
    box = std::make_unique<persistence::message_box>(cfg);
    fs::create_directories(inbox);
  }

  runtime::node_config config(const std::string& name, const std::string& orders_url,
                              bool single_active = true) const {
    runtime::node_config cfg;
    cfg.name = name;
    cfg.redis.port = redis.port();
    cfg.reclaim_idle = 500ms;
    cfg.poll_block = 100ms;
    cfg.timer_poll = 20ms;
    cfg.log_level = "warn";
    cfg.receive_locations["inbox"] = {{"type", "file"},       {"folder", inbox.string()},
                                      {"message_type", "intake-order"}, {"poll_ms", 50},
                                      {"lease_ms", 1000},     {"single_active", single_active}};
    cfg.receive_locations["orders-http"] = {{"type", "http"},
                                            {"listen", "127.0.0.1:" + std::to_string(http_port)},
                                            {"path", "/orders"},
                                            {"message_type", "intake-order"},
                                            {"max_body_bytes", 4096}};
    cfg.send_ports["orders-api"] = {
      {"type", "http"},
      {"url", orders_url},
      {"timeout_ms", 2000},
      {"retry", {{"max_attempts", 2}, {"initial_backoff_ms", 50}, {"max_backoff_ms", 100}}}};
    cfg.send_ports["receipts"] = {{"type", "file"}, {"folder", receipts.string()}};
    return cfg;
  }

  /// A node running the examples and the declared ports.
  struct running {
    registry reg;
    std::unique_ptr<runtime::node> node;
  };
  std::unique_ptr<running> start(runtime::node_config cfg) const {
    auto r = std::make_unique<running>();
    examples::register_all(r->reg);
    r->node = std::make_unique<runtime::node>(std::move(cfg), r->reg);
    auto err = adapters::attach(*r->node, r->reg);
    BOOST_TEST_REQUIRE(err.empty(), err);
    err = r->node->start();
    BOOST_TEST_REQUIRE(err.empty(), err);
    return r;
  }

  /// Writes a file next to the inbox and moves it in whole (as writers must: a poller may
  /// take a file the moment it appears).
  void drop(const std::string& name, const json& content) const {
    auto staging = dir.path() / ("staging-" + name);
    std::ofstream(staging) << content.dump();
    fs::rename(staging, inbox / name);
  }

  httplib::Result post(const std::string& body, const std::string& key = "") const {
    httplib::Client client("127.0.0.1", http_port);
    client.set_read_timeout(10s);
    httplib::Headers headers;
    if (!key.empty())
      headers.emplace("Idempotency-Key", key);
    return client.Post("/orders", headers, body, "application/json");
  }

  size_t receipt_count() const {
    std::error_code ec;
    size_t n = 0;
    for (auto it = fs::directory_iterator(receipts, ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
      n += it->path().filename().string().rfind("receipt-", 0) == 0;
    return n;
  }

  size_t files_in(const fs::path& folder) const {
    std::error_code ec;
    size_t n = 0;
    for (auto it = fs::recursive_directory_iterator(folder, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      n += it->is_regular_file();
    return n;
  }

  /// Unacknowledged entries of every host queue, plus delayed retries and suspended sends.
  int64_t left_in_queues() const {
    int64_t n = 0;
    for (const char* host : {"receive", "processing", "send"}) {
      auto v = box->commands().run({"XPENDING", box->key_schema().queue(host), host});
      n += v.elements.empty() ? 0 : v.elements[0].integer;
      n += box->commands().run({"XLEN", box->key_schema().queue(host)}).integer;
    }
    n += box->commands().run({"ZCARD", box->key_schema().delayed()}).integer;
    n += box->commands().run({"HLEN", box->key_schema().suspended()}).integer;
    return n;
  }

  bool all_completed(const std::set<std::string>& ids) const {
    for (const auto& id : ids)
      if (box->describe(id).record.status != instance_status::completed)
        return false;
    return true;
  }
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

} // namespace

BOOST_AUTO_TEST_SUITE(adapters)

BOOST_AUTO_TEST_CASE(http_receive_answers_503_while_its_nodes_receive_host_is_throttled) {
  fixture f;
  orders_service orders;
  auto cfg = f.config("node-1", orders.url());
  cfg.throttling.memory_mb = 1; // any process is over it: the receive host stays throttled
  auto n = f.start(cfg);
  BOOST_TEST_REQUIRE(
    test::wait_until([&] { return !n->node->throttle_cause("receive").empty(); }, 10s));
  auto refused = f.post(R"({"order":1})");
  BOOST_TEST_REQUIRE(static_cast<bool>(refused));
  BOOST_TEST(refused->status == 503);
  BOOST_TEST(refused->get_header_value("Retry-After") == "1");
  BOOST_TEST(refused->body.find("node's receive host is (memory: the node uses") != std::string::npos,
             refused->body);
  n->node->stop();
}

BOOST_AUTO_TEST_CASE(http_receive_answers_202_only_once_persisted_and_400_413_503_otherwise) {
  fixture f;
  orders_service orders;
  auto cfg = f.config("node-1", orders.url());
  cfg.receive_locations["orders-http"]["message_type"] = "probe"; // no subscriber: kept
  auto n = f.start(cfg);

  auto accepted = f.post(R"({"order":1})");
  BOOST_TEST_REQUIRE(static_cast<bool>(accepted));
  BOOST_TEST(accepted->status == 202);
  auto id = json::parse(accepted->body)["id"].get<std::string>();
  BOOST_TEST(id.rfind("orders-http-", 0) == 0);

  // A retry with the same Idempotency-Key after a lost 202 gets the same id, publishes nothing.
  auto first = f.post(R"({"order":2})", "client-key-2");
  auto retry = f.post(R"({"order":2})", "client-key-2");
  BOOST_TEST_REQUIRE((first && retry));
  BOOST_TEST(first->status == 202);
  BOOST_TEST(retry->status == 202);
  BOOST_TEST(json::parse(first->body)["id"] == json::parse(retry->body)["id"]);
  BOOST_TEST(json::parse(retry->body)["duplicate"] == true);

  auto malformed = f.post(R"({"order": )");
  BOOST_TEST_REQUIRE(static_cast<bool>(malformed));
  BOOST_TEST(malformed->status == 400);
  BOOST_TEST(malformed->body.find("not valid JSON") != std::string::npos);
  auto bad_param = httplib::Client("127.0.0.1", f.http_port).Post("/orders?bad%26name=1", "{}",
                                                                  "application/json");
  BOOST_TEST_REQUIRE(static_cast<bool>(bad_param));
  BOOST_TEST(bad_param->status == 400);
  auto oversized = f.post("\"" + std::string(8000, 'x') + "\"");
  BOOST_TEST_REQUIRE(static_cast<bool>(oversized));
  BOOST_TEST(oversized->status == 413);

  // The two accepted messages (and nothing else) reach the MessageBox: no subscriber wants
  // "probe", so they are kept as unrouted.
  BOOST_TEST(test::wait_until(
    [&] { return f.box->list_stream(f.box->key_schema().unrouted(), 100).entries.size() == 2; },
    10s));
  std::set<std::string> bodies;
  for (const auto& e : f.box->list_stream(f.box->key_schema().unrouted(), 100).entries)
    bodies.insert(e.field("body"));
  BOOST_TEST((bodies == std::set<std::string>{R"({"order":1})", R"({"order":2})"}));

  // The MessageBox is away: 503 with Retry-After, never a 202.
  f.redis.stop();
  auto away = f.post(R"({"order":3})");
  BOOST_TEST_REQUIRE(static_cast<bool>(away));
  BOOST_TEST(away->status == 503);
  BOOST_TEST(away->get_header_value("Retry-After") == "1");
  n->node->stop();
}

BOOST_AUTO_TEST_CASE(files_and_http_posts_each_reach_the_service_once_and_leave_a_receipt) {
  fixture f;
  orders_service orders;
  auto n = f.start(f.config("node-1", orders.url()));
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i)
    f.drop("order-" + std::to_string(i) + ".json", json{{"order", i}, {"via", "file"}});
  for (int i = 0; i < 5; ++i) {
    auto key = "post-" + std::to_string(i);
    auto r = f.post(json{{"order", 100 + i}, {"via", "http"}}.dump(), key);
    BOOST_TEST_REQUIRE(static_cast<bool>(r));
    BOOST_TEST_REQUIRE(r->status == 202);
    ids.insert(json::parse(r->body)["id"].get<std::string>());
  }
  BOOST_TEST_REQUIRE(f.post(json{{"order", 100}, {"via", "http"}}.dump(), "post-0")->status == 202);
  BOOST_TEST_REQUIRE(test::wait_until([&] { return f.receipt_count() == 10; }, 60s),
                     "receipts: " << f.receipt_count());
  for (auto& e : fs::directory_iterator(f.receipts)) {
    auto receipt = json::parse(read_text(e.path()));
    BOOST_TEST(receipt["status"] == 200);
    ids.insert(receipt["instance"].get<std::string>());
  }
  BOOST_TEST(ids.size() == 10u); // the 5 posted ids are among the receipts' instances
  BOOST_TEST(test::wait_until([&] { return f.all_completed(ids); }, 20s));
  auto arrivals = orders.arrivals();
  BOOST_TEST(arrivals.size() == 10u); // one Idempotency-Key per order
  for (const auto& id : ids)
    BOOST_TEST(arrivals.count(id + "/0") == 1u, id);
  BOOST_TEST(f.files_in(f.inbox) == 0u); // claimed, published and deleted
  BOOST_TEST(test::wait_until([&] { return f.left_in_queues() == 0; }, 10s),
             "left in queues: " << f.left_in_queues());
}

BOOST_AUTO_TEST_CASE(an_unreachable_send_target_suspends_until_an_operator_resumes_it) {
  fixture f;
  auto port = test::free_loopback_port(); // nothing listens there yet
  auto url = "http://127.0.0.1:" + std::to_string(port) + "/orders";
  auto n = f.start(f.config("node-1", url));
  auto r = f.post(R"({"order":"late"})", "late-1");
  BOOST_TEST_REQUIRE(static_cast<bool>(r));
  BOOST_TEST_REQUIRE(r->status == 202);
  auto id = json::parse(r->body)["id"].get<std::string>();
  BOOST_TEST_REQUIRE(test::wait_until([&] { return f.box->list_suspended().entries.size() == 1; },
                                      20s));
  auto suspended = f.box->list_suspended().entries;
  BOOST_TEST(suspended.begin()->first == id + "/0");
  BOOST_TEST(suspended.begin()->second.find("http-send:orders-api") != std::string::npos);
  BOOST_TEST((f.box->describe(id).record.status == instance_status::waiting)); // still waiting
  // The operator sees it, fixes the target and resumes it.
  auto env = test::environment{{"CONVOY_REDIS", ""}, {"CONVOY_PREFIX", ""}};
  auto listed = test::run_command({CONVOY_BINARY, "msg", "suspended", "--redis",
                                   f.redis.address(), "-o", "json"},
                                  15s, env);
  BOOST_TEST(listed.exit_code == 0);
  BOOST_TEST(listed.output.find(id + "/0") != std::string::npos, listed.output);
  orders_service orders(port);
  auto resumed = test::run_command({CONVOY_BINARY, "msg", "resume", id + "/0", "--redis",
                                    f.redis.address()},
                                   15s, env);
  BOOST_TEST(resumed.exit_code == 0, resumed.output);
  BOOST_TEST(test::wait_until([&] { return f.all_completed({id}); }, 20s));
  BOOST_TEST(orders.arrivals() == (std::map<std::string, int>{{id + "/0", 1}}));
  BOOST_TEST(fs::exists(f.receipts / ("receipt-" + id + ".json")));
  BOOST_TEST(f.box->list_suspended().entries.empty());
  auto again = test::run_command({CONVOY_BINARY, "msg", "resume", id + "/0", "--redis",
                                  f.redis.address()},
                                 15s, env);
  BOOST_TEST(again.exit_code == 4);
  BOOST_TEST(again.output.find("no suspended message") != std::string::npos, again.output);
  BOOST_TEST(test::wait_until([&] { return f.left_in_queues() == 0; }, 10s));
}

BOOST_AUTO_TEST_CASE(two_pollers_racing_for_files_claim_each_exactly_once) {
  fixture f;
  orders_service orders;
  // Both poll at once (no lease): every file is fought over, the rename decides; files the
  // test deletes right after dropping them vanish mid-claim and are skipped, not a crash.
  auto a = f.start(f.config("node-a", orders.url(), false));
  auto cfg_b = f.config("node-b", orders.url(), false);
  cfg_b.receive_locations.erase("orders-http");
  auto b = f.start(cfg_b);
  std::set<std::string> kept;
  for (int i = 0; i < 30; ++i) {
    auto name = "race-" + std::to_string(i) + ".json";
    f.drop(name, json{{"order", i}});
    if (i % 3 == 2) {
      std::error_code ec;
      fs::remove(f.inbox / name, ec); // may already be claimed: then it is processed
    } else {
      kept.insert(name);
    }
  }
  BOOST_TEST_REQUIRE(test::wait_until([&] { return f.files_in(f.inbox) == 0; }, 30s));
  auto enough = [&] { return f.receipt_count() >= kept.size(); };
  BOOST_TEST_REQUIRE(test::wait_until(enough, 60s), "receipts: " << f.receipt_count());
  BOOST_TEST(test::wait_until([&] { return f.left_in_queues() == 0; }, 20s));
  auto arrivals = orders.arrivals();
  BOOST_TEST(arrivals.size() == f.receipt_count()); // one order per receipt
  for (const auto& [key, count] : arrivals)
    BOOST_TEST(count == 1, key);
  std::set<int> orders_seen;
  for (auto& e : fs::directory_iterator(f.receipts))
    BOOST_TEST(orders_seen.insert(json::parse(read_text(e.path()))["order"]["order"].get<int>()).second);
  for (const auto& name : kept) {
    auto i = std::stoi(name.substr(5));
    BOOST_TEST(orders_seen.count(i) == 1u, name);
  }
}

BOOST_AUTO_TEST_CASE(killing_the_receiving_node_mid_way_loses_and_repeats_nothing) {
  fixture f;
  orders_service orders(0, 100ms);
  auto node_config = [&](const std::string& name, uint16_t http_port) {
    auto path = f.dir.path() / (name + ".toml");
    std::ofstream(path) << "[node]\nname = \"" << name << "\"\nlog_level = \"info\"\n"
                        << "[messagebox]\naddress = \"" << f.redis.address() << "\"\n"
                        << "[timing]\nheartbeat_ms = 100\nlease_ttl_ms = 500\n"
                        << "reclaim_idle_ms = 1000\npoll_block_ms = 100\n"
                        << "[receive_locations.inbox]\ntype = \"file\"\nfolder = \""
                        << f.inbox.string() << "\"\nmessage_type = \"intake-order\"\n"
                        << "poll_ms = 50\nlease_ms = 500\nbatch = 2\n"
                        << "[receive_locations.orders-http]\ntype = \"http\"\n"
                        << "listen = \"127.0.0.1:" << http_port << "\"\npath = \"/orders\"\n"
                        << "message_type = \"intake-order\"\n"
                        << "[send_ports.orders-api]\ntype = \"http\"\nurl = \"" << orders.url()
                        << "\"\nretry = { max_attempts = 3, initial_backoff_ms = 50 }\n"
                        << "[send_ports.receipts]\ntype = \"file\"\nfolder = \""
                        << f.receipts.string() << "\"\n";
    return path;
  };
  auto env = test::environment{{"CONVOY_REDIS", ""}, {"CONVOY_PREFIX", ""}};
  auto a = test::child_process::start(
    {CONVOY_BINARY, "node", "--config", node_config("node-a", f.http_port).string()}, env,
    (f.dir.path() / "node-a.log").string());
  // node-a takes the inbox lease first; node-b waits for it.
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] {
      auto v = f.box->commands().run({"GET", f.box->key_schema().adapter_lease("receive:inbox")});
      return v.str == "node-a";
    },
    20s));
  auto b_port = test::free_loopback_port();
  auto b = test::child_process::start(
    {CONVOY_BINARY, "node", "--config", node_config("node-b", b_port).string()}, env,
    (f.dir.path() / "node-b.log").string());
  std::set<std::string> posted;
  for (int i = 0; i < 12; ++i)
    f.drop("order-" + std::to_string(i) + ".json", json{{"order", i}});
  for (int i = 0; i < 4; ++i) {
    auto r = f.post(json{{"order", 100 + i}}.dump(), "kill-" + std::to_string(i));
    BOOST_TEST_REQUIRE(static_cast<bool>(r));
    BOOST_TEST_REQUIRE(r->status == 202);
    posted.insert(json::parse(r->body)["id"].get<std::string>());
  }
  // Mid-way: some orders done, most not.
  BOOST_TEST_REQUIRE(test::wait_until([&] { return f.receipt_count() >= 2; }, 30s));
  BOOST_TEST_REQUIRE(f.receipt_count() < 16u);
  a.kill();
  BOOST_TEST_REQUIRE(test::wait_until([&] { return f.receipt_count() == 16; }, 90s),
                     "receipts: " << f.receipt_count());
  std::set<std::string> ids;
  for (auto& e : fs::directory_iterator(f.receipts))
    ids.insert(json::parse(read_text(e.path()))["instance"].get<std::string>());
  BOOST_TEST(ids.size() == 16u);
  for (const auto& id : posted)
    BOOST_TEST(ids.count(id) == 1u, id);
  BOOST_TEST(test::wait_until([&] { return f.all_completed(ids); }, 30s));
  auto arrivals = orders.arrivals();
  BOOST_TEST(arrivals.size() == 16u); // exactly once per order, after dedupe by key
  for (const auto& id : ids)
    BOOST_TEST(arrivals.count(id + "/0") == 1u, id);
  BOOST_TEST(test::wait_until([&] { return f.files_in(f.inbox) == 0; }, 30s),
             "left in the inbox: " << f.files_in(f.inbox));
  BOOST_TEST(test::wait_until([&] { return f.left_in_queues() == 0; }, 30s),
             "left in queues: " << f.left_in_queues());
  b.stop();
}

BOOST_AUTO_TEST_SUITE_END()
