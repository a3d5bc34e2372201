// Hostile input at a live node's ports (HA-TEST-PLAN F10): a real redis-server and a real
// `convoy node` with its admin endpoint, an HTTP receive location and the TLS cluster link,
// each sent garbage, truncated requests, huge length fields, oversized and unbounded bodies,
// slowloris-style partial headers and a bounded burst of connections. Each port answers with
// an error or disconnects, the node keeps serving (/livez, and an orchestration started
// afterwards completes) and its resident memory grows by less than 64 MiB over all of it.

#include "convoy/actors/json.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/certs.hpp"
#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <variant>
#include <vector>

using namespace convoy;
using namespace std::chrono_literals;

namespace {

/// A client connection to a loopback port, closed by its destructor.
class connection {
public:
  explicit connection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~connection() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  bool connected() const { return connected_; }

  /// Sends all of `bytes`; false once the peer no longer takes them (it closed).
  bool send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  /// Reads until the peer closes or `wait` passes; returns what arrived and whether it closed.
  std::pair<std::string, bool> read_until_closed(std::chrono::seconds wait) {
    timeval tv{static_cast<time_t>(wait.count()), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buf[4096];
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return {got, true};
      if (n > 0)
        got.append(buf, static_cast<size_t>(n));
    }
    return {got, false};
  }

private:
  int fd_;
  bool connected_ = false;
};

/// The status of the first response in `answer` ("HTTP/1.1 NNN"), or 0.
int status_of(const std::string& answer) {
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || answer.size() < 12)
    return 0;
  return std::atoi(answer.substr(9, 3).c_str());
}

/// Sends `request` and waits (tolerantly: the machine is loaded) for the answer and the close.
/// The port must answer an error status (unless `any_status`) or close without answering.
int probe(uint16_t port, const std::string& request, bool any_status = false,
          std::chrono::seconds wait = 30s) {
  connection c(port);
  BOOST_TEST_REQUIRE(c.connected());
  c.send(request); // the server may close before taking everything: that is an answer too
  auto [answer, closed] = c.read_until_closed(wait);
  auto status = status_of(answer);
  BOOST_TEST_INFO("answer: " << answer.substr(0, 200));
  BOOST_TEST((closed || status != 0), "neither answered nor closed within " << wait.count() << " s");
  BOOST_TEST((any_status || status == 0 || (status >= 400 && status < 500)),
             "status " << status << " for " << request.substr(0, 60));
  return status;
}

int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoll(line.substr(6));
  return -1;
}

struct hostile_fixture {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path() / "redis");
  uint16_t admin_port = test::free_loopback_port();
  uint16_t http_port = test::free_loopback_port();
  uint16_t link_port = test::free_loopback_port();
  std::unique_ptr<persistence::message_box> box;
  test::child_process node;
  test::environment env{{"CONVOY_REDIS", ""}, {"CONVOY_PREFIX", ""}};

  hostile_fixture() {
    auto cluster = dir.path() / "cluster";
    auto ca = runtime::cert_init(cluster);
    BOOST_TEST_REQUIRE(std::holds_alternative<runtime::certificate_files>(ca));
    auto issued = runtime::cert_issue(cluster, "node-h");
    BOOST_TEST_REQUIRE(std::holds_alternative<runtime::certificate_files>(issued));
    auto files = std::get<runtime::certificate_files>(issued);
    auto config = dir.path() / "node.toml";
    std::ofstream(config) << "[node]\nname = \"node-h\"\n"
                          << "[messagebox]\naddress = \"" << redis.address() << "\"\n"
                          << "[timing]\nreclaim_idle_ms = 1000\n"
                          << "[admin]\nlisten = \"127.0.0.1:" << admin_port << "\"\n"
                          << "[cluster]\ncertificate = \"" << files.certificate.string()
                          << "\"\nkey = \"" << files.key.string() << "\"\nca = \""
                          << std::get<runtime::certificate_files>(ca).certificate.string() << "\"\nlisten = \"127.0.0.1:"
                          << link_port << "\"\n"
                          << "[receive_locations.orders]\ntype = \"http\"\n"
                          << "listen = \"127.0.0.1:" << http_port << "\"\npath = \"/orders\"\n"
                          << "message_type = \"probe\"\nmax_body_bytes = 65536\n";
    node = test::child_process::start({CONVOY_BINARY, "node", "--config", config.string()}, env,
                                      (dir.path() / "node.log").string());
    persistence::message_box_config cfg;
    cfg.endpoint.port = redis.port();
    box = std::make_unique<persistence::message_box>(cfg);
    BOOST_TEST_REQUIRE(test::wait_until([&] { return livez(); }, 60s), "the node never served");
    BOOST_TEST_REQUIRE(test::wait_until([&] { return connection(link_port).connected(); }, 60s));
    BOOST_TEST_REQUIRE(test::wait_until([&] { return connection(http_port).connected(); }, 60s));
  }

  bool livez() {
    connection c(admin_port);
    if (!c.connected() || !c.send("GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
      return false;
    return status_of(c.read_until_closed(10s).first) == 200;
  }

  /// Starts a hello orchestration with the CLI and waits for it to complete.
  bool orchestration_completes(const std::string& id) {
    auto started = test::run_command({CONVOY_BINARY, "orch", "start", "hello", "\"probe\"", "--id",
                                      id, "--redis", redis.address()},
                                     30s, env);
    BOOST_TEST_INFO("orch start: " << started.output);
    BOOST_TEST_REQUIRE(started.exit_code == 0);
    return test::wait_until(
      [&] {
        auto d = box->describe(id);
        return d.found && d.record.status == instance_status::completed;
      },
      60s);
  }
};

const std::string http_head = "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";

} // namespace

BOOST_AUTO_TEST_SUITE(hostile_input)

BOOST_AUTO_TEST_CASE(every_port_answers_hostile_input_with_an_error_or_a_disconnect_and_the_node_keeps_serving_within_bounded_memory) {
  hostile_fixture f;
  BOOST_TEST_REQUIRE(f.orchestration_completes("before-probes"));
  auto rss_before = rss_kib(f.node.pid());
  BOOST_TEST_REQUIRE(rss_before > 0);

  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i)
    garbage[i] = static_cast<char>((i * 2654435761u) >> 13);

  // -- the admin endpoint ------------------------------------------------------------------------
  // (Requests refused before their body is read are sent without it: a body left unread when
  // the server closes would reset the connection, and the answer with it.)
  probe(f.admin_port, garbage);
  // A GET's Content-Length is ignored (httplib reads no body for GET): answered, nothing read.
  probe(f.admin_port, "GET /api/instances?limit=5 HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n",
        true);
  BOOST_TEST(probe(f.admin_port, "POST /api/tree HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
             == 405);
  probe(f.admin_port, "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n");
  // httplib reads a header line of any length (this one is answered 200): bounded here by
  // the memory check below only.
  probe(f.admin_port, "GET /livez HTTP/1.1\r\nX-Big: " + std::string(100000, 'b') + "\r\n\r\n",
        true);
  probe(f.admin_port, "GET /api/instances/%00%ff HTTP/1.1\r\n\r\n");

  // -- the HTTP receive location ---------------------------------------------------------------
  probe(f.http_port, garbage);
  probe(f.http_port, http_head + "Content-Length: 4"); // truncated: the headers never end
  probe(f.http_port, http_head + "Content-Length: 1099511627776\r\n\r\n{");
  BOOST_TEST(probe(f.http_port, http_head + "Content-Length: 200000\r\n\r\n"
                                  + std::string(200000, '1')) == 413);
  BOOST_TEST(probe(f.http_port, http_head + "Transfer-Encoding: chunked\r\n\r\n") == 411);
  BOOST_TEST(probe(f.http_port, http_head + "\r\n") == 411); // a body to the end of the stream
  BOOST_TEST(probe(f.http_port, http_head + "Content-Encoding: gzip\r\nContent-Length: 10\r\n\r\n")
             == 415);
  BOOST_TEST(probe(f.http_port, http_head + "Content-Length: 2000\r\n\r\n"
                                  + std::string(1000, '[') + std::string(1000, ']')) == 400);
  BOOST_TEST(probe(f.http_port, http_head + "Content-Length: 1\r\n\r\n{") == 400);

  // Slowloris: partial headers on several connections at once; each is closed by the server
  // (its read timeout) rather than held forever. (The admin endpoint has 2 threads: each slow
  // client holds one for its 5 s timeout.)
  {
    std::vector<std::unique_ptr<connection>> slow;
    for (int i = 0; i < 24; ++i) {
      slow.push_back(std::make_unique<connection>(i % 3 ? f.http_port : f.admin_port));
      slow.back()->send("POST /orders HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
    size_t closed = 0;
    for (auto& c : slow)
      closed += c->read_until_closed(90s).second ? 1 : 0;
    BOOST_TEST(closed == slow.size(), closed << " of " << slow.size() << " closed by the node");
  }

  // -- the cluster link (TLS only) -----------------------------------------------------------
  // A plaintext BASP header announcing a 1 GiB payload, then garbage: TLS rejects it as a
  // handshake and disconnects, allocating nothing for the announced payload.
  std::string basp(32, '\0');
  basp[4] = '\x40'; // payload_len = 0x40000000, big-endian
  probe(f.link_port, basp + garbage);
  probe(f.link_port, garbage);
  probe(f.link_port, "\x16\x03\x01\xff\xff" + std::string(1000, 'A')); // a TLS record of 64 KiB announced

  // -- still serving, memory bounded -----------------------------------------------------------
  BOOST_TEST_REQUIRE(f.node.running());
  BOOST_TEST(f.livez());
  BOOST_TEST(f.orchestration_completes("after-probes"));
  auto rss_after = rss_kib(f.node.pid());
  BOOST_TEST_MESSAGE("node RSS " << rss_before / 1024 << " MiB before the probes, "
                                 << rss_after / 1024 << " MiB after");
  BOOST_TEST(rss_after - rss_before < 64 * 1024, "RSS grew by " << (rss_after - rss_before) << " KiB");
  f.node.stop();
}

BOOST_AUTO_TEST_SUITE_END()
