// Receive location and send port declarations (every error names the port and the key), and
// the send ports' behaviour against a real local HTTP server and a real folder.

#include "convoy/adapters/file/receive_location.hpp"
#include "convoy/adapters/file/send_port.hpp"
#include "convoy/adapters/http/receive_location.hpp"
#include "convoy/adapters/http/send_port.hpp"
#include "convoy/adapters/schedule/schedule.hpp"
#include "convoy/runtime/node_config.hpp"

#include <boost/test/unit_test.hpp>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

using namespace convoy;
using namespace convoy::adapters;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool mentions(const std::string& error, const std::string& what) {
  BOOST_TEST_MESSAGE("error: " << error);
  return error.find(what) != std::string::npos;
}

/// A throwaway folder, removed with the fixture.
struct scratch {
  fs::path dir;
  scratch() {
    auto base = std::getenv("TMPDIR");
    std::string templ = (fs::path(base && *base ? base : "/tmp") / "convoy-ports-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr)
      throw std::runtime_error("cannot create " + templ);
    dir = templ;
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

/// A local HTTP server on 127.0.0.1 (a free port) answering `POST /status/<code>` with that
/// code, and recording the Idempotency-Key of each request.
struct target_server {
  httplib::Server server;
  int port = 0;
  std::thread thread;
  std::mutex mtx;
  std::vector<std::string> keys;

  target_server() {
    server.Post(R"(/status/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mtx);
        keys.push_back(req.get_header_value("Idempotency-Key"));
      }
      res.status = std::stoi(req.matches[1]);
      res.set_content(R"({"echo":)" + req.body + "}", "application/json");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    // The bound socket queues clients already; stop() only works once the loop runs.
    for (int i = 0; i < 5000 && !server.is_running(); ++i)
      std::this_thread::sleep_for(1ms);
    BOOST_TEST_REQUIRE(server.is_running());
  }
  ~target_server() {
    server.stop();
    thread.join();
  }
  std::string url(int status) const {
    return "http://127.0.0.1:" + std::to_string(port) + "/status/" + std::to_string(status);
  }
};

activity_result call(const registry& reg, const std::string& activity, const json& args,
                     const std::string& key = "inst-1/3") {
  auto fn = reg.find_activity(activity);
  BOOST_TEST_REQUIRE(fn != nullptr);
  activity_context ctx{"inst-1", 3, key, 1, std::nullopt};
  return (*fn)(ctx, args);
}

} // namespace

BOOST_AUTO_TEST_SUITE(adapters_ports)

BOOST_AUTO_TEST_CASE(http_receive_declaration_errors_name_the_location_and_key) {
  http_receive_config c;
  BOOST_TEST(parse_http_receive("web", json{{"type", "http"}, {"listen", "127.0.0.1:8080"},
                                            {"message_type", "order"}},
                                c)
               .empty());
  BOOST_TEST(c.port == 8080);
  BOOST_TEST(c.max_body_bytes == 1024u * 1024u);
  BOOST_TEST(mentions(parse_http_receive("web", json{{"type", "http"}, {"message_type", "o"}}, c),
                      "receive_locations.web.listen is required"));
  BOOST_TEST(mentions(parse_http_receive("web", json{{"listen", "nowhere"}, {"message_type", "o"}}, c),
                      "receive_locations.web.listen 'nowhere' is not host:port"));
  BOOST_TEST(mentions(parse_http_receive("web", json{{"listen", "127.0.0.1:1"}, {"message_type", "o"},
                                                     {"max_body_bytes", 64 * 1024 * 1024}},
                                         c),
                      "receive_locations.web.max_body_bytes must be an integer between 1 and"));
  BOOST_TEST(mentions(parse_http_receive("web", json{{"listen", "127.0.0.1:1"}, {"message_type", "o"},
                                                     {"max_bdy_bytes", 5}},
                                         c),
                      "receive_locations.web: unknown key 'max_bdy_bytes'"));
  BOOST_TEST(mentions(parse_http_receive("web", json{{"listen", "127.0.0.1:1"}, {"message_type", "o"},
                                                     {"path", "orders"}},
                                         c),
                      "receive_locations.web.path 'orders' must start with /"));
}

BOOST_AUTO_TEST_CASE(file_and_schedule_declaration_errors_name_the_location_and_key) {
  file_receive_config f;
  BOOST_TEST(mentions(parse_file_receive("inbox", json{{"folder", "/tmp/x"}, {"message_type", "o"},
                                                       {"format", "xml"}},
                                         f),
                      "receive_locations.inbox.format 'xml' must be json or text"));
  BOOST_TEST(mentions(parse_file_receive("inbox", json{{"folder", "/tmp/x"}, {"message_type", "o"},
                                                       {"poll_ms", 1000}, {"lease_ms", 1500}},
                                         f),
                      "receive_locations.inbox.lease_ms must be more than twice poll_ms"));
  schedule_config s;
  BOOST_TEST(parse_schedule("tick", json{{"every", "250ms"}, {"message_type", "tick"}}, s).empty());
  BOOST_TEST(s.every == 250ms);
  BOOST_TEST(mentions(parse_schedule("tick", json{{"every", "10 s"}, {"message_type", "tick"}}, s),
                      "receive_locations.tick.every '10 s' is not an interval"));
  BOOST_TEST(mentions(parse_schedule("tick", json{{"every", "5ms"}, {"message_type", "tick"}}, s),
                      "receive_locations.tick.every '5ms' must be between 100ms and 366 days"));
  BOOST_TEST(parse_interval("2h").value() == 2h);
  BOOST_TEST(parse_interval("15m").value() == 15min);
  BOOST_TEST(!parse_interval("0s"));
  BOOST_TEST(!parse_interval("s"));
  BOOST_TEST(!parse_interval("99999999999999999h"));
}

BOOST_AUTO_TEST_CASE(send_port_declaration_errors_name_the_port_and_key) {
  http_send_config h;
  BOOST_TEST(parse_http_send("api", json{{"url", "http://127.0.0.1:9/x"},
                                         {"retry", {{"max_attempts", 2}, {"initial_backoff_ms", 10}}}},
                             h)
               .empty());
  BOOST_TEST(h.policy.retry.max_attempts == 2u);
  BOOST_TEST(h.policy.suspend_when_exhausted);
  BOOST_TEST(mentions(parse_http_send("api", json{{"url", "ftp://x/y"}}, h),
                      "send_ports.api.url 'ftp://x/y' is not an http:// or https:// URL"));
  BOOST_TEST(mentions(parse_http_send("api", json{{"url", "http://x/y"}, {"retry", {{"max_attempts", 0}}}}, h),
                      "send_ports.api.retry.max_attempts must be an integer between 1 and 1000"));
  BOOST_TEST(mentions(parse_http_send("api", json{{"url", "http://x/y"}, {"retry", {{"multiplyer", 2}}}}, h),
                      "send_ports.api.retry: unknown key 'multiplyer'"));
  file_send_config f;
  BOOST_TEST(mentions(parse_file_send("out", json{{"type", "file"}}, f),
                      "send_ports.out.folder is required"));
}

BOOST_AUTO_TEST_CASE(node_config_keeps_port_declarations_for_the_adapters) {
  scratch s;
  auto path = s.dir / "node.toml";
  std::ofstream(path) << R"(
[node]
name = "n1"
[receive_locations.web]
type = "http"
listen = "127.0.0.1:8080"
message_type = "order"
properties = { source = "web" }
[send_ports.api]
type = "http"
url = "http://127.0.0.1:9090/orders"
retry = { max_attempts = 3, multiplier = 1.5 }
)";
  auto loaded = runtime::load_node_config(path.string());
  if (auto err = std::get_if<std::string>(&loaded))
    BOOST_FAIL(*err);
  auto cfg = std::get<runtime::node_config>(loaded);
  BOOST_TEST(cfg.receive_locations.at("web")["properties"]["source"] == "web");
  BOOST_TEST(cfg.send_ports.at("api")["retry"]["multiplier"] == 1.5);
  // The dump reads back to the same declarations.
  auto dumped = s.dir / "dumped.toml";
  std::ofstream(dumped) << runtime::dump_config(cfg);
  auto again = runtime::load_node_config(dumped.string());
  BOOST_TEST_REQUIRE(std::holds_alternative<runtime::node_config>(again));
  BOOST_TEST(std::get<runtime::node_config>(again).send_ports == cfg.send_ports);
  BOOST_TEST(std::get<runtime::node_config>(again).receive_locations == cfg.receive_locations);
  std::ofstream(path) << "[receive_locations]\nweb = 5\n";
  auto bad = runtime::load_node_config(path.string());
  BOOST_TEST_REQUIRE(std::holds_alternative<std::string>(bad));
  BOOST_TEST(mentions(std::get<std::string>(bad), "receive_locations.web must be a table"));
}

BOOST_AUTO_TEST_CASE(http_send_port_sends_the_idempotency_key_and_classifies_answers) {
  target_server srv;
  auto port = [&](int status) {
    http_send_config c;
    BOOST_TEST_REQUIRE(parse_http_send("s" + std::to_string(status),
                                       json{{"url", srv.url(status)}, {"timeout_ms", 2000}}, c)
                         .empty());
    return c;
  };
  registry reg;
  for (int status : {200, 503, 404})
    register_http_send(reg, port(status), {});
  auto ok = call(reg, "http-send:s200", json{{"order", 7}});
  BOOST_TEST(ok.ok);
  BOOST_TEST(ok.value["status"] == 200);
  BOOST_TEST(ok.value["body"]["echo"]["order"] == 7);
  auto busy = call(reg, "http-send:s503", json{{"order", 7}});
  BOOST_TEST(!busy.ok);
  BOOST_TEST(busy.kind == "transient"); // retried, then suspended
  auto missing = call(reg, "http-send:s404", json{{"order", 7}});
  BOOST_TEST(!missing.ok);
  BOOST_TEST(missing.kind == "rejected"); // fails the call at once
  BOOST_TEST(reg.find_activity_policy("http-send:s404")->retry.non_retryable
             == std::vector<std::string>{"rejected"});
  std::lock_guard<std::mutex> lock(srv.mtx);
  BOOST_TEST(srv.keys == (std::vector<std::string>{"inst-1/3", "inst-1/3", "inst-1/3"}));
}

BOOST_AUTO_TEST_CASE(http_send_port_to_an_unreachable_target_is_a_transient_failure) {
  int closed_port = 0;
  {
    target_server gone;
    closed_port = gone.port;
  }
  http_send_config c;
  BOOST_TEST_REQUIRE(parse_http_send("down", json{{"url", "http://127.0.0.1:" + std::to_string(closed_port)
                                                            + "/x"},
                                                  {"timeout_ms", 500}},
                                     c)
                       .empty());
  registry reg;
  register_http_send(reg, c, {});
  auto r = call(reg, "http-send:down", json::object());
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.kind == "transient");
  BOOST_TEST(mentions(r.error, "send port down: POST http://127.0.0.1:"));
}

BOOST_AUTO_TEST_CASE(file_send_port_writes_whole_files_and_refuses_paths) {
  scratch s;
  file_send_config c;
  BOOST_TEST_REQUIRE(parse_file_send("out", json{{"folder", (s.dir / "out").string()}}, c).empty());
  registry reg;
  register_file_send(reg, c);
  auto r = call(reg, "file-send:out", json{{"file", "receipt-1.json"}, {"content", {{"ok", true}}}});
  BOOST_TEST_REQUIRE(r.ok, r.error);
  std::ifstream in(s.dir / "out" / "receipt-1.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(text == R"({"ok":true})");
  auto plain = call(reg, "file-send:out", json{{"n", 1}}, "inst-1/4");
  BOOST_TEST_REQUIRE(plain.ok, plain.error);
  BOOST_TEST(fs::exists(s.dir / "out" / "inst-1_4.json"));
  size_t files = 0;
  for (auto& e : fs::directory_iterator(s.dir / "out")) {
    BOOST_TEST(e.path().filename().string().front() != '.'); // no temporary file left
    ++files;
  }
  BOOST_TEST(files == 2u);
  for (auto bad : {"../escape.json", ".hidden", "a/b"}) {
    auto refused = call(reg, "file-send:out", json{{"file", bad}, {"content", "x"}});
    BOOST_TEST(!refused.ok);
    BOOST_TEST(refused.kind == "rejected");
  }
}

BOOST_AUTO_TEST_SUITE_END()
