#include "convoy/runtime/cluster_link.hpp"

#include "convoy/runtime/certs.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <set>

namespace convoy::runtime {

namespace {

std::string milliseconds_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

/// Everything `configure_cluster_link` sets, checked on the running system: a system built
/// by other code (or with the middleman alone) must not publish or connect through us.
std::string check_tls_system(caf::actor_system& sys) {
  if (!sys.has_middleman() || !sys.has_openssl_manager())
    return "the actor system has no TLS middleman (configure it with configure_cluster_link)";
  const auto& cfg = sys.config();
  if (cfg.openssl_certificate.empty() || cfg.openssl_key.empty() || cfg.openssl_cafile.empty())
    return "the actor system's TLS has no certificate, key or CA file and would run "
           "anonymous, unauthenticated TLS (configure it with configure_cluster_link)";
  return {};
}

std::string endpoint(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":"
         + std::to_string(port);
}

} // namespace

std::string configure_cluster_link(caf::actor_system_config& cfg,
                                   const cluster_link_config& link) {
  using std::chrono::milliseconds;
  if (link.heartbeat_interval <= milliseconds{0})
    return "cluster heartbeat interval must be positive (" + milliseconds_text(link.heartbeat_interval)
           + " given): without heartbeats a hung or partitioned node is never noticed";
  if (link.connection_timeout < 2 * link.heartbeat_interval)
    return "cluster connection timeout (" + milliseconds_text(link.connection_timeout)
           + ") must be at least twice the heartbeat interval ("
           + milliseconds_text(link.heartbeat_interval)
           + "), or one late heartbeat drops a healthy peer";
  if (auto err = check_node_credentials(link.certificate, link.key, link.ca); !err.empty())
    return err;
  cfg.load<caf::io::middleman>();
  cfg.load<caf::openssl::manager>();
  // CAF 0.17 reads these fields, not the "openssl.*" settings, when it builds a TLS context.
  cfg.openssl_certificate = link.certificate.string();
  cfg.openssl_key = link.key.string();
  cfg.openssl_cafile = link.ca.string();
  cfg.openssl_capath.clear();
  cfg.openssl_passphrase.clear();
  cfg.set("middleman.heartbeat-interval", caf::timespan{link.heartbeat_interval});
  cfg.set("middleman.connection-timeout", caf::timespan{link.connection_timeout});
  // Automatic connections open direct BASP links through the plain middleman: cleartext.
  cfg.set("middleman.enable-automatic-connections", false);
  return {};
}

std::variant<std::uint16_t, std::string> publish_over_tls(caf::actor_system& sys,
                                                          const caf::actor& whom,
                                                          std::uint16_t port,
                                                          const std::string& bind_address) {
  using result = std::variant<std::uint16_t, std::string>;
  auto where = endpoint(bind_address.empty() ? "0.0.0.0" : bind_address, port);
  if (auto err = check_tls_system(sys); !err.empty())
    return result{std::in_place_index<1>, "cannot publish on " + where + ": " + err};
  if (!whom)
    return result{std::in_place_index<1>, "cannot publish an invalid actor on " + where};
  auto bound = caf::openssl::publish(whom, port,
                                     bind_address.empty() ? nullptr : bind_address.c_str());
  if (!bound)
    return result{std::in_place_index<1>,
                  "cannot listen for TLS peers on " + where + ": " + sys.render(bound.error())};
  return result{std::in_place_index<0>, *bound};
}

std::variant<caf::actor, std::string> connect_over_tls(caf::actor_system& sys,
                                                       const std::string& host,
                                                       std::uint16_t port,
                                                       std::chrono::milliseconds timeout) {
  using result = std::variant<caf::actor, std::string>;
  auto where = endpoint(host, port);
  if (auto err = check_tls_system(sys); !err.empty())
    return result{std::in_place_index<1>, "cannot connect to " + where + ": " + err};
  result out{std::in_place_index<1>, "no answer from " + where};
  caf::scoped_actor self{sys};
  self
    ->request(sys.openssl_manager().actor_handle(), caf::timespan{timeout},
              caf::connect_atom::value, host, port)
    .receive(
      [&](caf::node_id&, caf::strong_actor_ptr& peer, std::set<std::string>&) {
        if (peer)
          out = caf::actor_cast<caf::actor>(std::move(peer));
        else
          out = "connected to " + where + " over TLS, but no actor is published there";
      },
      [&](caf::error& err) {
        if (err == caf::sec::request_timeout)
          out = "no TLS peer answered at " + where + " within " + milliseconds_text(timeout)
                + " (down, hung, or not speaking TLS)";
        else if (err == caf::sec::disconnect_during_handshake)
          // CAF does not say which side gave up or why: name every cause we know of.
          out = "the handshake with " + where
                + " failed: one side refused the other's certificate (both must be issued by "
                  "the same cluster CA) or the peer does not speak TLS";
        else
          out = "cannot connect to " + where + " over TLS: " + sys.render(err);
      });
  return out;
}

caf::io::middleman_actor tls_middleman(caf::actor_system& sys) {
  if (!check_tls_system(sys).empty())
    return {};
  return sys.openssl_manager().actor_handle();
}

} // namespace convoy::runtime
