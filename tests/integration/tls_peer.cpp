// convoy_tls_peer: a BASP peer in its own process, for cluster_tls_test.cpp.
//
//   convoy_tls_peer serve NAME --cert C --key K --ca A --port-file F
//       publishes an actor answering (ping, text) with "pong from NAME: text" over TLS on
//       127.0.0.1 and a free port, writes the port to F, runs until SIGTERM (at most 120 s).
//   convoy_tls_peer call PORT (--cert C --key K --ca A [--raw-tls] | --anonymous | --plaintext)
//       connects to 127.0.0.1:PORT, sends (ping, "hello"), prints "reply: ..." and exits 0,
//       or prints "error: ..." and exits 1. --raw-tls hands the files to CAF without the
//       checks of configure_cluster_link (an intruder would not run them); --anonymous
//       speaks TLS with no certificate (what CAF does when none is configured); --plaintext
//       speaks cleartext BASP. Every wait is bounded (--wait-ms, default 10000).
//
// Heartbeat settings: --heartbeat-ms H --connection-timeout-ms T (default 250 / 2000 ms:
// generous, so a peer started on a loaded machine still completes its handshake).

#include "convoy/runtime/cluster_link.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>

using ping_atom = caf::atom_constant<caf::atom("ping")>;
using namespace std::chrono_literals;

namespace {

struct arguments {
  std::string mode;
  std::string name_or_port;
  std::map<std::string, std::string> options;
  std::set<std::string> flags;

  std::string get(const std::string& key, std::string fallback = "") const {
    auto i = options.find(key);
    return i == options.end() ? fallback : i->second;
  }
};

int usage(const std::string& why) {
  std::cerr << "convoy_tls_peer: " << why << "\n";
  return 2;
}

convoy::runtime::cluster_link_config link_config(const arguments& args) {
  convoy::runtime::cluster_link_config link;
  link.certificate = args.get("--cert");
  link.key = args.get("--key");
  link.ca = args.get("--ca");
  link.heartbeat_interval = std::chrono::milliseconds{std::stol(args.get("--heartbeat-ms", "250"))};
  link.connection_timeout =
    std::chrono::milliseconds{std::stol(args.get("--connection-timeout-ms", "2000"))};
  return link;
}

caf::behavior echo(caf::event_based_actor*, std::string name) {
  return {[name](ping_atom, const std::string& text) { return "pong from " + name + ": " + text; }};
}

int serve(const arguments& args) {
  // Blocked before the actor system starts its threads, so that only sigtimedwait sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  caf::actor_system_config cfg;
  if (auto err = convoy::runtime::configure_cluster_link(cfg, link_config(args)); !err.empty()) {
    std::cout << "error: " << err << std::endl;
    return 1;
  }
  caf::actor_system sys{cfg};
  auto actor = sys.spawn(echo, args.name_or_port);
  auto published = convoy::runtime::publish_over_tls(sys, actor, 0, "127.0.0.1");
  if (auto err = std::get_if<std::string>(&published)) {
    std::cout << "error: " << *err << std::endl;
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return 1;
  }
  auto port_file = args.get("--port-file");
  {
    // Written under another name and renamed, so the test never reads half a number.
    std::ofstream out(port_file + ".tmp");
    out << std::get<std::uint16_t>(published) << "\n";
  }
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  std::cout << "listening on 127.0.0.1:" << std::get<std::uint16_t>(published) << std::endl;
  auto give_up = std::chrono::steady_clock::now() + 120s;
  for (auto left = 120s; left.count() > 0;
       left = std::chrono::duration_cast<std::chrono::seconds>(give_up - std::chrono::steady_clock::now())) {
    timespec wait{static_cast<time_t>(left.count()), 0};
    if (sigtimedwait(&stop, nullptr, &wait) > 0 || errno != EINTR)
      break;
  }
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  return 0;
}

/// Asks the middleman actor `mm` (TLS or cleartext) for the actor at 127.0.0.1:port.
std::variant<caf::actor, std::string> connect_raw(caf::actor_system& sys,
                                                  const caf::io::middleman_actor& mm,
                                                  std::uint16_t port,
                                                  std::chrono::milliseconds wait) {
  std::variant<caf::actor, std::string> out{std::string{"no answer"}};
  caf::scoped_actor self{sys};
  self->request(mm, caf::timespan{wait}, caf::connect_atom::value, std::string{"127.0.0.1"}, port)
    .receive(
      [&](caf::node_id&, caf::strong_actor_ptr& peer, std::set<std::string>&) {
        if (peer)
          out = caf::actor_cast<caf::actor>(std::move(peer));
        else
          out = std::string{"connected, but no actor is published there"};
      },
      [&](caf::error& err) { out = sys.render(err); });
  return out;
}

int call(const arguments& args) {
  auto port = static_cast<std::uint16_t>(std::stoul(args.name_or_port));
  std::chrono::milliseconds wait{std::stol(args.get("--wait-ms", "10000"))};
  bool anonymous = args.flags.count("--anonymous") > 0;
  bool plaintext = args.flags.count("--plaintext") > 0;
  bool raw_tls = args.flags.count("--raw-tls") > 0;
  caf::actor_system_config cfg;
  if (plaintext) {
    cfg.load<caf::io::middleman>();
  } else if (anonymous || raw_tls) {
    cfg.load<caf::io::middleman>();
    cfg.load<caf::openssl::manager>();
    if (raw_tls) {
      cfg.openssl_certificate = args.get("--cert");
      cfg.openssl_key = args.get("--key");
      cfg.openssl_cafile = args.get("--ca");
    }
  } else if (auto err = convoy::runtime::configure_cluster_link(cfg, link_config(args));
             !err.empty()) {
    std::cout << "error: " << err << std::endl;
    return 1;
  }
  caf::actor_system sys{cfg};
  auto peer = plaintext   ? connect_raw(sys, sys.middleman().actor_handle(), port, wait)
              : anonymous || raw_tls
                ? connect_raw(sys, sys.openssl_manager().actor_handle(), port, wait)
                          : convoy::runtime::connect_over_tls(sys, "127.0.0.1", port, wait);
  if (auto err = std::get_if<std::string>(&peer)) {
    std::cout << "error: " << *err << std::endl;
    return 1;
  }
  int code = 1;
  caf::scoped_actor self{sys};
  self->request(std::get<caf::actor>(peer), caf::timespan{wait}, ping_atom::value,
                std::string{"hello"})
    .receive(
      [&](const std::string& reply) {
        std::cout << "reply: " << reply << std::endl;
        code = 0;
      },
      [&](caf::error& err) { std::cout << "error: " << sys.render(err) << std::endl; });
  return code;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3)
    return usage("usage: convoy_tls_peer serve NAME ... | call PORT ...");
  arguments args;
  args.mode = argv[1];
  args.name_or_port = argv[2];
  for (int i = 3; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--anonymous" || word == "--plaintext" || word == "--raw-tls")
      args.flags.insert(word);
    else if (i + 1 < argc)
      args.options[word] = argv[++i];
    else
      return usage("option " + word + " needs a value");
  }
  if (args.mode == "serve")
    return serve(args);
  if (args.mode == "call")
    return call(args);
  return usage("unknown mode '" + args.mode + "'");
}
