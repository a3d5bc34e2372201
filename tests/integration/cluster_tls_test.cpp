// The cluster link: BASP over mutual TLS between real processes on loopback, with a cluster
// CA and node certificates made by runtime/certs and by the `convoy cert` commands.
//
// The peer processes are convoy_tls_peer (tests/integration/tls_peer.cpp): `serve` publishes
// an actor answering (ping, text) with "pong from NAME: text"; `call` connects to it with
// real credentials, with a certificate checked by nobody but CAF (--raw-tls), with no
// certificate (--anonymous) or in cleartext (--plaintext), and prints "reply: ..." or
// "error: ...".

#include "convoy/runtime/certs.hpp"
#include "convoy/runtime/cluster_link.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>

using namespace std::chrono_literals;
using convoy::runtime::certificate_files;
using convoy::runtime::cluster_link_config;
using convoy::test::child_process;
using convoy::test::command_result;
using convoy::test::temp_dir;
using convoy::test::wait_until;

namespace fs = std::filesystem;

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

certificate_files must(std::variant<certificate_files, std::string> outcome) {
  if (auto err = std::get_if<std::string>(&outcome))
    BOOST_FAIL("certificate files not written: " << *err);
  return std::get<certificate_files>(std::move(outcome));
}

bool is_one_line(const std::string& text) {
  return text.size() > 1 && text.find('\n') == text.size() - 1;
}

unsigned mode_of(const fs::path& path) {
  struct stat st{};
  BOOST_REQUIRE_EQUAL(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

/// The cluster CA with certificates for node-a and node-b, and an intruder whose certificate
/// comes from another CA.
struct tls_fixture {
  temp_dir dir;
  fs::path cluster = dir.path() / "cluster";
  fs::path other = dir.path() / "other";
  certificate_files ca = must(convoy::runtime::cert_init(cluster));
  certificate_files node_a = must(convoy::runtime::cert_issue(cluster, "node-a"));
  certificate_files node_b = must(convoy::runtime::cert_issue(cluster, "node-b"));
  certificate_files other_ca = must(convoy::runtime::cert_init(other));
  certificate_files intruder = must(convoy::runtime::cert_issue(other, "intruder"));
  std::vector<child_process> servers;

  std::vector<std::string> credentials(const certificate_files& node,
                                       const fs::path& ca_file) const {
    return {"--cert", node.certificate.string(), "--key", node.key.string(), "--ca",
            ca_file.string()};
  }

  cluster_link_config link(const certificate_files& node) const {
    cluster_link_config out;
    out.certificate = node.certificate;
    out.key = node.key;
    out.ca = ca.certificate;
    out.heartbeat_interval = 200ms;
    out.connection_timeout = 1000ms;
    return out;
  }

  /// Starts `convoy_tls_peer serve NAME` as node-a and returns its port; the process is
  /// stopped by PID when the fixture ends.
  std::uint16_t serve_as_node_a() {
    auto port_file = dir.path() / ("port-" + std::to_string(servers.size()));
    auto log = dir.path() / ("server-" + std::to_string(servers.size()) + ".log");
    std::vector<std::string> argv{CONVOY_TLS_PEER, "serve", "node-a"};
    for (auto& word : credentials(node_a, ca.certificate))
      argv.push_back(word);
    argv.insert(argv.end(), {"--port-file", port_file.string()});
    servers.push_back(child_process::start(argv, {}, log.string()));
    auto& server = servers.back();
    if (!wait_until([&] { return fs::exists(port_file) || !server.running(); }, 20s)
        || !fs::exists(port_file))
      BOOST_FAIL("the TLS peer did not start listening: " << read_text(log));
    return static_cast<std::uint16_t>(std::stoul(read_text(port_file)));
  }

  child_process& server() { return servers.back(); }

  /// `convoy_tls_peer call PORT ARGS...`, killed if it runs past 30 s.
  command_result call(std::uint16_t port, std::vector<std::string> args) const {
    args.insert(args.begin(), {CONVOY_TLS_PEER, "call", std::to_string(port)});
    return convoy::test::run_command(std::move(args), 30s);
  }

  command_result call_as_node_b(std::uint16_t port) const {
    return call(port, credentials(node_b, ca.certificate));
  }

  command_result convoy(std::vector<std::string> args) const {
    args.insert(args.begin(), CONVOY_BINARY);
    return convoy::test::run_command(std::move(args), 30s);
  }
};

/// The refused peer got no answer, and the server, still running, serves node-b right after:
/// the refusal was about that peer, not a crashed or wedged server.
void require_refused_and_server_unharmed(tls_fixture& f, std::uint16_t port,
                                         const command_result& refused) {
  BOOST_TEST_INFO("refused peer printed: " << refused.output);
  BOOST_TEST(refused.exit_code == 1);
  BOOST_TEST(refused.output.find("error: ") != std::string::npos);
  BOOST_TEST(refused.output.find("reply: ") == std::string::npos);
  BOOST_TEST(f.server().running());
  auto good = f.call_as_node_b(port);
  BOOST_TEST_INFO("node-b printed: " << good.output);
  BOOST_TEST(good.exit_code == 0);
  BOOST_TEST(good.output.find("reply: pong from node-a: hello") != std::string::npos);
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(cluster_tls, tls_fixture)

BOOST_AUTO_TEST_CASE(nodes_with_certificates_of_one_ca_exchange_a_request_over_mutual_tls) {
  auto port = serve_as_node_a();
  auto result = call_as_node_b(port);
  BOOST_TEST_INFO("node-b printed: " << result.output);
  BOOST_TEST(result.exit_code == 0);
  BOOST_TEST(result.output.find("reply: pong from node-a: hello") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_peer_with_a_certificate_from_another_ca_is_refused) {
  auto port = serve_as_node_a();
  // The intruder trusts the cluster CA, so it accepts node-a's certificate: only node-a's
  // check of the intruder's certificate can refuse it. CAF gets the files unchecked, since
  // configure_cluster_link would already refuse them locally (see the next case).
  auto raw = credentials(intruder, ca.certificate);
  raw.push_back("--raw-tls");
  require_refused_and_server_unharmed(*this, port, call(port, raw));
  // With its own CA as the only trusted one, the intruder also refuses node-a.
  auto own = call(port, credentials(intruder, other_ca.certificate));
  BOOST_TEST(own.output.find("reply: ") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_peer_without_a_certificate_is_refused) {
  auto port = serve_as_node_a();
  require_refused_and_server_unharmed(*this, port, call(port, {"--anonymous"}));
}

BOOST_AUTO_TEST_CASE(a_plaintext_basp_connect_to_the_tls_port_fails) {
  auto port = serve_as_node_a();
  require_refused_and_server_unharmed(*this, port,
                                      call(port, {"--plaintext", "--wait-ms", "3000"}));
}

BOOST_AUTO_TEST_CASE(a_hung_peer_is_dropped_after_the_connection_timeout) {
  auto port = serve_as_node_a();
  caf::actor_system_config cfg;
  BOOST_REQUIRE_EQUAL(convoy::runtime::configure_cluster_link(cfg, link(node_b)), "");
  caf::actor_system sys{cfg};
  auto connected = convoy::runtime::connect_over_tls(sys, "127.0.0.1", port, 10s);
  if (auto err = std::get_if<std::string>(&connected))
    BOOST_FAIL("node-b cannot connect in process: " << *err);
  auto peer = std::get<caf::actor>(connected);
  caf::scoped_actor self{sys};
  std::string reply;
  self->request(peer, caf::timespan{10s}, ping_atom::value, std::string{"in process"})
    .receive([&](const std::string& text) { reply = text; },
             [&](caf::error& err) { reply = "error: " + sys.render(err); });
  BOOST_TEST(reply == "pong from node-a: in process");
  self->monitor(peer);
  // SIGSTOP keeps the socket open, so only missing heartbeats can tell node-b anything.
  server().send_signal(SIGSTOP);
  auto stopped_at = std::chrono::steady_clock::now();
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(std::chrono::seconds{10}) >> [] {});
  auto noticed_after_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - stopped_at)
                            .count();
  server().send_signal(SIGCONT);
  BOOST_TEST(down, "node-b never noticed that node-a hung (heartbeats off?)");
  // Not before the connection timeout (1 s, less a heartbeat period of slack), and not long
  // after it (generous: the machine may be loaded).
  BOOST_TEST(noticed_after_ms >= 700);
  BOOST_TEST(noticed_after_ms < 8000);
}

BOOST_AUTO_TEST_CASE(the_cluster_link_refuses_missing_or_unfit_files_and_settings) {
  auto refusal = [&](cluster_link_config bad) {
    caf::actor_system_config cfg;
    auto err = convoy::runtime::configure_cluster_link(cfg, bad);
    BOOST_TEST(cfg.module_factories.empty(), "a refused configuration loaded modules");
    return err;
  };
  auto contains = [](const std::string& text, const std::string& part) {
    BOOST_TEST_INFO("message: " << text);
    BOOST_TEST(text.find(part) != std::string::npos, "missing '" << part << "'");
  };
  auto missing = link(node_b);
  missing.certificate = cluster / "node-c.pem";
  contains(refusal(missing), "cannot read node certificate " + missing.certificate.string()
                               + ": No such file or directory");
  auto no_key = link(node_b);
  no_key.key.clear();
  contains(refusal(no_key), "no key file configured");
  auto folder = link(node_b);
  folder.ca = cluster;
  contains(refusal(folder), "cannot read CA certificate " + cluster.string());
  auto mismatch = link(node_b);
  mismatch.key = node_a.key;
  contains(refusal(mismatch), "node key " + node_a.key.string()
                                + " does not belong to certificate "
                                + node_b.certificate.string());
  auto foreign = link(intruder);
  contains(refusal(foreign), "certificate " + intruder.certificate.string()
                               + " is not valid under the CA in " + ca.certificate.string());
  auto not_pem = link(node_b);
  not_pem.ca = dir.path() / "garbage.pem";
  std::ofstream(not_pem.ca) << "not a certificate\n";
  contains(refusal(not_pem), "holds no PEM certificate");
  auto shared_key = dir.path() / "shared.key";
  fs::copy_file(node_b.key, shared_key);
  fs::permissions(shared_key, fs::perms::owner_read | fs::perms::owner_write
                                | fs::perms::group_read | fs::perms::others_read);
  auto readable = link(node_b);
  readable.key = shared_key;
  contains(refusal(readable), "has mode 0644, so others may read it: chmod 600");
  auto silent = link(node_b);
  silent.heartbeat_interval = 0ms;
  contains(refusal(silent), "heartbeat interval must be positive");
  auto hasty = link(node_b);
  hasty.connection_timeout = 150ms;
  contains(refusal(hasty), "must be at least twice the heartbeat interval");

  caf::actor_system_config cfg;
  BOOST_REQUIRE_EQUAL(convoy::runtime::configure_cluster_link(cfg, link(node_b)), "");
  BOOST_TEST(caf::get_or(cfg, "middleman.heartbeat-interval", caf::timespan{0})
             == caf::timespan{200ms});
  BOOST_TEST(caf::get_or(cfg, "middleman.connection-timeout", caf::timespan{0})
             == caf::timespan{1000ms});
  BOOST_TEST(cfg.openssl_certificate == node_b.certificate.string());
}

BOOST_AUTO_TEST_CASE(publish_and_connect_refuse_a_system_without_cluster_tls) {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto actor = sys.spawn([] { return caf::behavior{[](ping_atom) {}}; });
  auto published = convoy::runtime::publish_over_tls(sys, actor, 0, "127.0.0.1");
  BOOST_REQUIRE(std::holds_alternative<std::string>(published));
  BOOST_TEST(std::get<std::string>(published).find("configure_cluster_link") != std::string::npos);
  auto connected = convoy::runtime::connect_over_tls(sys, "127.0.0.1", 1, 1s);
  BOOST_REQUIRE(std::holds_alternative<std::string>(connected));
  BOOST_TEST(std::get<std::string>(connected).find("no TLS middleman") != std::string::npos);
  BOOST_TEST(!convoy::runtime::tls_middleman(sys));
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(connecting_over_tls_to_a_cleartext_basp_port_fails_with_a_clear_error) {
  // What a node sees when a peer's address points at a cleartext BASP port by mistake.
  caf::actor_system_config plain_cfg;
  plain_cfg.load<caf::io::middleman>();
  caf::actor_system plain{plain_cfg};
  auto actor = plain.spawn([] { return caf::behavior{[](ping_atom) {}}; });
  auto plain_port = plain.middleman().publish(actor, 0, "127.0.0.1");
  BOOST_REQUIRE(plain_port);
  caf::actor_system_config cfg;
  BOOST_REQUIRE_EQUAL(convoy::runtime::configure_cluster_link(cfg, link(node_b)), "");
  caf::actor_system sys{cfg};
  auto started = std::chrono::steady_clock::now();
  auto connected = convoy::runtime::connect_over_tls(sys, "127.0.0.1", *plain_port, 1500ms);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - started)
               .count()
             < 10000);
  BOOST_REQUIRE(std::holds_alternative<std::string>(connected));
  auto& err = std::get<std::string>(connected);
  BOOST_TEST_INFO("message: " << err);
  BOOST_TEST(err.find("127.0.0.1:" + std::to_string(*plain_port)) != std::string::npos);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(cert_issue_writes_a_node_certificate_the_ca_verifies) {
  BOOST_TEST(mode_of(ca.key) == 0600u);
  BOOST_TEST(mode_of(node_a.key) == 0600u);
  BOOST_TEST(convoy::runtime::check_node_credentials(node_a.certificate, node_a.key,
                                                     ca.certificate)
             == "");
  auto load = [](const fs::path& path) {
    auto* file = std::fopen(path.c_str(), "r");
    BOOST_REQUIRE(file);
    auto* cert = PEM_read_X509(file, nullptr, nullptr, nullptr);
    std::fclose(file);
    BOOST_REQUIRE(cert);
    return std::unique_ptr<X509, decltype(&X509_free)>(cert, X509_free);
  };
  auto ca_cert = load(ca.certificate);
  auto a = load(node_a.certificate);
  auto b = load(node_b.certificate);
  BOOST_TEST(X509_check_ca(ca_cert.get()) != 0);
  BOOST_TEST(X509_check_ca(a.get()) == 0);
  BOOST_TEST(X509_check_host(a.get(), "node-a", 0, 0, nullptr) == 1);
  BOOST_TEST(X509_check_host(a.get(), "node-b", 0, 0, nullptr) == 0);
  BOOST_TEST(X509_check_ip_asc(a.get(), "127.0.0.1", 0) == 1);
  BOOST_TEST(X509_check_purpose(a.get(), X509_PURPOSE_SSL_SERVER, 0) == 1);
  BOOST_TEST(X509_check_purpose(a.get(), X509_PURPOSE_SSL_CLIENT, 0) == 1);
  char common_name[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(a.get()), NID_commonName, common_name,
                            sizeof common_name);
  BOOST_TEST(std::string(common_name) == "node-a");
  BOOST_TEST(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.get()), X509_get0_serialNumber(b.get()))
             != 0);
  int days = 0, seconds = 0;
  ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(a.get()), X509_get0_notAfter(a.get()));
  BOOST_TEST(days == 365);
  ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(ca_cert.get()),
                 X509_get0_notAfter(ca_cert.get()));
  BOOST_TEST(days == 3650);
}

BOOST_AUTO_TEST_CASE(cert_init_refuses_to_replace_a_ca_unless_forced) {
  auto certs = dir.path() / "cli-certs";
  auto first = convoy({"cert", "init", "--dir", certs.string()});
  BOOST_TEST_INFO(first.output);
  BOOST_REQUIRE_EQUAL(first.exit_code, 0);
  BOOST_TEST(mode_of(certs / "ca.key") == 0600u);
  auto original = read_text(certs / "ca.pem");
  auto again = convoy({"cert", "init", "--dir", certs.string()});
  BOOST_TEST_INFO(again.output);
  BOOST_TEST(again.exit_code == 1);
  BOOST_TEST(is_one_line(again.output));
  BOOST_TEST(again.output.find((certs / "ca.pem").string() + " already exists") != std::string::npos);
  BOOST_TEST(again.output.find("--force") != std::string::npos);
  BOOST_TEST(read_text(certs / "ca.pem") == original);
  auto forced = convoy({"cert", "init", "--dir", certs.string(), "--force"});
  BOOST_TEST(forced.exit_code == 0);
  BOOST_TEST(read_text(certs / "ca.pem") != original);
}

BOOST_AUTO_TEST_CASE(cert_issue_refuses_what_would_break_the_cluster_ca) {
  auto certs = dir.path() / "cli-certs";
  auto no_ca = convoy({"cert", "issue", "node-a", "--dir", certs.string()});
  BOOST_TEST_INFO(no_ca.output);
  BOOST_TEST(no_ca.exit_code == 1);
  BOOST_TEST(no_ca.output.find("convoy cert init") != std::string::npos);
  BOOST_REQUIRE_EQUAL(convoy({"cert", "init", "--dir", certs.string()}).exit_code, 0);
  auto issued = convoy({"cert", "issue", "node-a", "--dir", certs.string()});
  BOOST_TEST_INFO(issued.output);
  BOOST_TEST(issued.exit_code == 0);
  BOOST_TEST(mode_of(certs / "node-a.key") == 0600u);
  auto twice = convoy({"cert", "issue", "node-a", "--dir", certs.string()});
  BOOST_TEST_INFO(twice.output);
  BOOST_TEST(twice.exit_code == 1);
  BOOST_TEST(twice.output.find("already exists") != std::string::npos);
  BOOST_TEST(convoy({"cert", "issue", "node-a", "--dir", certs.string(), "--force"}).exit_code
             == 0);
  fs::permissions(certs / "ca.key", fs::perms::group_read, fs::perm_options::add);
  auto exposed = convoy({"cert", "issue", "node-b", "--dir", certs.string()});
  BOOST_TEST_INFO(exposed.output);
  BOOST_TEST(exposed.exit_code == 1);
  BOOST_TEST(exposed.output.find((certs / "ca.key").string() + " has mode 0640") != std::string::npos);
  fs::permissions(certs / "ca.key", fs::perms::group_read, fs::perm_options::remove);
  fs::copy_file(other_ca.key, certs / "ca.key", fs::copy_options::overwrite_existing);
  auto mismatch = convoy({"cert", "issue", "node-b", "--dir", certs.string()});
  BOOST_TEST_INFO(mismatch.output);
  BOOST_TEST(mismatch.exit_code == 1);
  BOOST_TEST(mismatch.output.find("does not belong to CA certificate") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(convoy_cert_bad_arguments_give_one_line_errors_and_exit_2) {
  for (std::vector<std::string> args : {std::vector<std::string>{"cert"},
                                        {"cert", "issue"},
                                        {"cert", "issue", "node/a"},
                                        {"cert", "issue", "ca"},
                                        {"cert", "issue", ".hidden"},
                                        {"cert", "issue", "node-a", "node-b"},
                                        {"cert", "init", "--bogus"},
                                        {"cert", "renew", "node-a"}}) {
    auto result = convoy(args);
    std::string shown;
    for (auto& word : args)
      shown += " " + word;
    BOOST_TEST_INFO("convoy" << shown << " printed: " << result.output);
    BOOST_TEST(result.exit_code == 2);
    BOOST_TEST(is_one_line(result.output));
    BOOST_TEST(result.output.rfind("convoy: ", 0) == 0u);
  }
  auto invalid = convoy({"cert", "issue", "node/a"});
  BOOST_TEST(invalid.output.find("'node/a' is not a valid node name") != std::string::npos);
  auto named_ca = convoy({"cert", "issue", "ca"});
  BOOST_TEST(named_ca.output.find("would replace the cluster CA's") != std::string::npos);
  for (std::vector<std::string> args : {std::vector<std::string>{"cert", "init", "--help"},
                                        {"cert", "issue", "--help"}}) {
    auto help = convoy(args);
    BOOST_TEST(help.exit_code == 0);
    BOOST_TEST(help.output.find("example: convoy cert") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
