#pragma once

// The link between nodes: CAF BASP over mutual TLS (caf::openssl), and nothing else.
//
// How a node uses it:
//
//   caf::actor_system_config cfg;
//   if (auto err = configure_cluster_link(cfg, link); !err.empty()) ... refuse to start
//   caf::actor_system sys{cfg};
//   auto port = publish_over_tls(sys, node_actor, link_port, "0.0.0.0");   // before joining
//   auto peer = connect_over_tls(sys, "node-b.example", 4242, 10s);        // outside actors
//   // inside actors: request(tls_middleman(sys), timeout, connect_atom::value, host, port)
//
// Why it refuses so much (CAF-0.17-NOTES.md, "TLS between nodes"):
// - With no certificate configured, CAF's OpenSSL module silently speaks anonymous,
//   unauthenticated TLS; with an unreadable file it throws from its I/O thread at the first
//   connection. So the three files are checked before the actor system exists.
// - Plain `middleman()` calls are always cleartext, and a cleartext BASP peer can make a node
//   allocate a 1 GiB buffer with a 32-byte header: never publish through them. Automatic
//   BASP connections (which also bypass TLS) are switched off.
// - Heartbeats are off by default, so a hung or partitioned node would never be noticed; a
//   node whose connection timeout differs from its peers' drops healthy peers that send
//   heartbeats less often. Every node must use the same two durations.

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>

namespace convoy::runtime {

/// A node's side of the cluster link: its credentials and the BASP liveness settings.
struct cluster_link_config {
  /// This node's certificate (PEM), issued by `convoy cert issue NODE`.
  std::filesystem::path certificate;
  /// Its private key (PEM, unencrypted, mode 0600).
  std::filesystem::path key;
  /// The cluster CA's certificate (`ca.pem`); peers must present a certificate it signed.
  std::filesystem::path ca;
  /// How often a node sends a BASP heartbeat to each peer. Must be the same on all nodes.
  std::chrono::milliseconds heartbeat_interval{500};
  /// A peer silent this long is dropped (its proxies report `remote_link_unreachable`).
  /// Five heartbeats: one delayed heartbeat on a busy machine must not drop a healthy peer,
  /// while a hung node is noticed within seconds. Must be the same on all nodes.
  std::chrono::milliseconds connection_timeout{2500};
};

/// Loads `caf::io::middleman` and `caf::openssl::manager` into `cfg` and configures them from
/// `link`: mutual TLS with the given files, heartbeats, connection timeout, no automatic
/// connections. Returns "" or an error naming the file or setting and the problem; on an
/// error `cfg` is left unchanged and the node must not start.
/// @pre Nothing has loaded the middleman or the OpenSSL manager into `cfg` yet.
std::string configure_cluster_link(caf::actor_system_config& cfg,
                                   const cluster_link_config& link);

/// Publishes `whom` over TLS at `bind_address`:`port` (port 0: a free port the kernel picks;
/// bind_address "0.0.0.0": every interface). Returns the bound port or an error message.
/// Blocks until the port is open: call it while the node starts, not from inside an actor.
/// @pre `sys` was configured with `configure_cluster_link`; otherwise it refuses.
std::variant<std::uint16_t, std::string> publish_over_tls(caf::actor_system& sys,
                                                          const caf::actor& whom,
                                                          std::uint16_t port,
                                                          const std::string& bind_address);

/// Connects to the actor a peer published at `host`:`port` over mutual TLS, waiting at most
/// `timeout` (CAF's own `openssl::remote_actor` waits forever, and a peer that never answers
/// the handshake - a cleartext listener, a hung node - would block the caller for good).
/// Returns a handle to the remote actor or an error message naming the peer.
/// Blocks: call it outside actors; inside one, ask `tls_middleman(sys)` instead.
/// @pre `sys` was configured with `configure_cluster_link`; otherwise it refuses.
std::variant<caf::actor, std::string> connect_over_tls(caf::actor_system& sys,
                                                       const std::string& host,
                                                       std::uint16_t port,
                                                       std::chrono::milliseconds timeout);

/// The TLS-speaking middleman actor, for connecting from inside actors without blocking:
/// `request(tls_middleman(sys), timeout, caf::connect_atom::value, host, port)` answers
/// `(node_id, strong_actor_ptr, std::set<std::string>)`. An invalid handle when `sys` was not
/// configured with `configure_cluster_link`: never fall back to `sys.middleman()`, which
/// speaks cleartext.
caf::io::middleman_actor tls_middleman(caf::actor_system& sys);

} // namespace convoy::runtime
