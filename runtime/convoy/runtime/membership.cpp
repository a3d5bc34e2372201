#include "convoy/runtime/membership.hpp"

#include "convoy/actors/clock.hpp"

#include "convoy/runtime/cluster_link.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace convoy::runtime {

namespace {

using tick_atom = caf::atom_constant<caf::atom("tick")>;
using beat_atom = caf::atom_constant<caf::atom("beat")>;
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using host_lease_atom = caf::atom_constant<caf::atom("hostlease")>;
using assigned_atom = caf::atom_constant<caf::atom("assigned")>;
using relocate_atom = caf::atom_constant<caf::atom("relocate")>;
using links_atom = caf::atom_constant<caf::atom("links")>;
using host_command_atom = caf::atom_constant<caf::atom("hostcmd")>;

/// Where a node's membership actor is found (the relocator looks it up).
constexpr caf::atom_value membership_name = caf::atom("membership");

/// A single-active host as this node sees it.
struct clustered_host {
  enum class phase { idle, starting, running, stopping } now = phase::idle;
  /// When this node last held the lease (steady clock): past a lease period without a
  /// renewal, another node may hold it, so this one stops the host.
  std::chrono::steady_clock::time_point renewed{};
  int64_t epoch = 0;
};

struct membership_state {
  std::shared_ptr<const host_services> svc;
  caf::actor root;
  std::function<child_spec(const std::string&)> host_spec;
  std::map<std::string, clustered_host> clustered;
  bool joined = false;
  bool supervising = false;
  int64_t epoch = 0;
  uint64_t ticks = 0;
  /// The supervision tree as last recorded, so an unchanged tree is not written again.
  std::string published_tree;
  /// Relocations already logged, so a long take-over is reported once (cleared when the
  /// cluster supervisor changes, so it stays bounded by the dead nodes of one epoch).
  std::set<std::string> announced;
  /// Cluster link (supervisor only): the peers connected over TLS, and those being connected.
  std::map<std::string, caf::actor> peers;
  std::set<std::string> connecting;
  /// Hosts an operator stopped (`convoy host stop`), until started again.
  std::set<std::string> stopped;
  static inline const char* name = "convoy.membership";
};

using membership_actor = caf::stateful_actor<membership_state>;

/// The hosts this node runs now (those whose actors are in the directory), in the order of
/// its configuration.
std::vector<std::string> running_hosts(const membership_state& st) {
  auto running = st.svc->directory->names();
  std::vector<std::string> out;
  for (const auto& host : st.svc->config->hosts)
    if (std::find(running.begin(), running.end(), host) != running.end())
      out.push_back(host);
  return out;
}

void tick(membership_actor* self) {
  auto& st = self->state;
  const auto& cfg = *st.svc->config;
  auto hdl = caf::actor_cast<caf::actor>(self);
  auto* box = st.svc->box;
  box->heartbeat(cfg.name, cfg.lease_ttl, running_hosts(st), st.svc->instances_in_memory->load(),
                 st.svc->throttle->to_json(),
                 [hdl](persistence::message_box::heartbeat_reply reply) {
                   for (auto& a : reply.todo)
                     caf::anon_send(hdl, assigned_atom::value, std::move(a.dead),
                                    std::move(a.host));
                   for (auto& [host, command] : reply.host_commands)
                     caf::anon_send(hdl, host_command_atom::value, host, command);
                   caf::anon_send(hdl, beat_atom::value, reply.code, reply.backlog,
                                  std::move(reply.error));
                 },
                 std::vector<std::string>(st.stopped.begin(), st.stopped.end()));
  box->cluster_lease(cfg.name, cfg.lease_ttl,
                     [hdl](bool held, int64_t epoch, std::string holder, std::string error) {
                       caf::anon_send(hdl, lease_atom::value, held, epoch, std::move(holder),
                                      std::move(error));
                     });
  for (const auto& [host, state] : st.clustered)
    box->host_lease(host, cfg.name, cfg.lease_ttl,
                    [hdl, host = host](bool held, int64_t epoch, std::string holder,
                                       std::string error) {
                      caf::anon_send(hdl, host_lease_atom::value, host, held, epoch,
                                     std::move(holder), std::move(error));
                    });
  // The tree about once a second: it changes rarely, and describing it asks every supervisor.
  // The supervisor looks for new peers as often.
  auto every = std::max<uint64_t>(1, std::chrono::milliseconds(1000) / cfg.heartbeat);
  if (st.supervising && cfg.link_enabled() && st.ticks % every == 0)
    box->links([hdl](std::map<std::string, std::string> links, std::string error) {
      if (error.empty())
        caf::anon_send(hdl, links_atom::value, std::move(links));
    });
  if (st.ticks++ % every == 0)
    self->request(st.root, std::chrono::seconds(2), describe_atom::value, int64_t{500})
      .then(
        [self](supervisor_description& d) {
          auto& st = self->state;
          json hosts = json::object();
          for (const auto& name : running_hosts(st))
            hosts[name] = json::object();
          if (hosts.contains("processing"))
            hosts["processing"]["instances_in_memory"] = st.svc->instances_in_memory->load();
          for (const auto& [host, s] : st.svc->throttle->snapshot())
            if (hosts.contains(host))
              hosts[host]["throttle"] = {{"cause", s.cause}, {"since_ms", s.since_ms}};
          for (const auto& [host, c] : st.clustered)
            if (hosts.contains(host))
              hosts[host]["single_active_epoch"] = c.epoch;
          auto text = json{{"tree", to_json(d)}, {"hosts", std::move(hosts)}}.dump();
          if (text == st.published_tree)
            return;
          st.svc->observed->set_tree(text);
          st.published_tree = text;
          st.svc->box->publish_tree(st.svc->config->name, std::move(text));
        },
        [self](caf::error& err) {
          spdlog::debug("membership: describing the supervision tree failed: {}",
                        self->system().render(err));
        });
  self->delayed_send(self, cfg.heartbeat, tick_atom::value);
}

/// Connects to `node`'s link at `address` over mutual TLS and watches it. With `retry`, the
/// link had dropped: if it cannot be made again, `node` is taken for failed.
void connect_peer(membership_actor* self, const std::string& node, const std::string& address,
                  bool retry) {
  auto& st = self->state;
  auto colon = address.rfind(':');
  auto mm = tls_middleman(self->system());
  if (colon == std::string::npos || !mm || !st.connecting.insert(node).second)
    return;
  auto host = address.substr(0, colon);
  auto port = static_cast<uint16_t>(std::stoul(address.substr(colon + 1)));
  auto timeout = st.svc->config->link.connection_timeout;
  self->request(mm, timeout, caf::connect_atom::value, host, port)
    .then(
      [self, node](caf::node_id&, caf::strong_actor_ptr& peer, std::set<std::string>&) {
        auto& st = self->state;
        st.connecting.erase(node);
        if (!peer)
          return;
        auto actor = caf::actor_cast<caf::actor>(std::move(peer));
        self->monitor(actor);
        st.peers[node] = actor;
        spdlog::info("cluster link: connected to node {} over mutual TLS", node);
      },
      [self, node, address, retry](caf::error& err) {
        auto& st = self->state;
        st.connecting.erase(node);
        if (!retry || !st.supervising) {
          spdlog::debug("cluster link: cannot connect to node {} at {}: {}", node, address,
                        self->system().render(err));
          return;
        }
        auto why = "its link dropped and it did not answer again at " + address + " ("
                   + self->system().render(err) + ")";
        spdlog::warn("cluster link: node {} is unreachable: {}; ending its lease now", node, why);
        const auto& name = st.svc->config->name;
        st.svc->box->end_lease(node, name, st.epoch, why, [node](std::string error) {
          if (!error.empty())
            spdlog::warn("cluster link: ending the lease of node {} failed: {}", node, error);
        });
      });
}

/// Hands a new take-over to its target at once: remote-spawns a relocator there (or tells
/// this node's own membership). Without a link the target learns it from its next heartbeat.
void deliver_take_over(membership_actor* self, const std::string& dead, const std::string& host,
                       const std::string& target) {
  auto& st = self->state;
  if (target == st.svc->config->name) {
    self->send(self, assigned_atom::value, dead, host);
    return;
  }
  auto peer = st.peers.find(target);
  auto mm = tls_middleman(self->system());
  if (peer == st.peers.end() || !mm)
    return;
  self->request(mm, std::chrono::seconds(5), caf::spawn_atom::value, peer->second.node(),
                std::string{"convoy.relocator"}, caf::make_message(dead, host),
                std::set<std::string>{})
    .then(
      [target, dead, host](caf::strong_actor_ptr&) {
        spdlog::info("cluster link: remote-spawned a relocator on node {} for the {} messages "
                     "of node {}",
                     target, host, dead);
      },
      [self, target](caf::error& err) {
        spdlog::debug("cluster link: remote spawn on node {} failed ({}); it learns its "
                      "take-over from its next heartbeat",
                      target, self->system().render(err));
      });
}

/// A relocator, remote-spawned on the target of a take-over: tells the local membership.
caf::behavior relocator(caf::event_based_actor* self, std::string dead, std::string host) {
  if (auto m = self->system().registry().get(membership_name))
    self->send(caf::actor_cast<caf::actor>(m), assigned_atom::value, std::move(dead),
               std::move(host));
  self->quit();
  return {};
}

/// Starts the single-active `host` under the node supervisor: this node holds its lease.
void start_clustered(membership_actor* self, const std::string& host) {
  auto& c = self->state.clustered[host];
  c.now = clustered_host::phase::starting;
  self->request(self->state.root, caf::infinite, start_child_atom::value,
                self->state.host_spec(host))
    .then(
      [self, host](caf::actor&) {
        auto& c = self->state.clustered[host];
        c.now = clustered_host::phase::running;
        spdlog::info("membership: single-active host {} runs on node {} (lease epoch {})", host,
                     self->state.svc->config->name, c.epoch);
      },
      [self, host](caf::error& err) {
        self->state.clustered[host].now = clustered_host::phase::idle;
        spdlog::error("membership: single-active host {} did not start: {}", host,
                      self->system().render(err));
      });
}

/// Stops the single-active `host`: the lease is lost, or could not be renewed in time.
void stop_clustered(membership_actor* self, const std::string& host, const std::string& why) {
  auto& c = self->state.clustered[host];
  if (c.now != clustered_host::phase::running)
    return;
  c.now = clustered_host::phase::stopping;
  spdlog::warn("membership: stopping single-active host {} on node {}: {}", host,
               self->state.svc->config->name, why);
  self->state.svc->directory->erase(host);
  self->request(self->state.root, caf::infinite, terminate_child_atom::value, "host:" + host)
    .then([self, host](caf::ok_atom) {
            self->state.clustered[host].now = clustered_host::phase::idle;
          },
          [self, host](caf::error& err) {
            self->state.clustered[host].now = clustered_host::phase::idle;
            spdlog::warn("membership: stopping single-active host {}: {}", host,
                         self->system().render(err));
          });
}

/// Carries out an operator's `convoy host start|stop` for this node: stops the host's
/// supervisor (it shows as stopped in the tree and in `convoy host list`, and takes no work)
/// or starts it again. The command is the desired state, so applying it is idempotent.
/// Single-active hosts follow their lease instead.
void apply_host_command(membership_actor* self, const std::string& host,
                        const std::string& command) {
  auto& st = self->state;
  const auto& cfg = *st.svc->config;
  auto listed = [&host](const std::vector<std::string>& hosts) {
    return std::find(hosts.begin(), hosts.end(), host) != hosts.end();
  };
  if (!listed(cfg.hosts) || listed(cfg.single_active))
    return;
  if (command == "stop" && st.stopped.insert(host).second) {
    spdlog::warn("membership: an operator stopped host {} on node {}", host, cfg.name);
    st.svc->directory->erase(host);
    self->request(st.root, caf::infinite, terminate_child_atom::value, "host:" + host)
      .then([](caf::ok_atom) {},
            [self, host](caf::error& err) {
              spdlog::warn("membership: stopping host {}: {}", host, self->system().render(err));
            });
  } else if (command == "start" && st.stopped.count(host) > 0) {
    self->request(st.root, caf::infinite, restart_child_atom::value, "host:" + host)
      .then(
        [self, host](caf::actor&) {
          self->state.stopped.erase(host);
          spdlog::info("membership: an operator started host {} on node {} again", host,
                       self->state.svc->config->name);
        },
        [self, host](caf::error& err) {
          // Still stopping, say: the next heartbeat asks again.
          spdlog::debug("membership: starting host {}: {}", host, self->system().render(err));
        });
  }
}

caf::behavior membership(membership_actor* self, std::shared_ptr<const host_services> svc,
                         caf::actor root,
                         std::function<child_spec(const std::string&)> host_spec) {
  auto& st = self->state;
  st.svc = std::move(svc);
  st.root = std::move(root);
  st.host_spec = std::move(host_spec);
  for (const auto& host : st.svc->config->single_active)
    st.clustered[host];
  self->system().registry().put(membership_name, caf::actor_cast<caf::strong_actor_ptr>(self));
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto i = st.peers.begin(); i != st.peers.end(); ++i)
      if (i->second.address() == dm.source) {
        auto node = i->first;
        st.peers.erase(i);
        if (!st.supervising)
          return;
        spdlog::warn("cluster link: the link to node {} dropped ({}); connecting again once",
                     node, self->system().render(dm.reason));
        // Its address, to retry: ask for the links again (a node that left has none).
        auto hdl = caf::actor_cast<caf::actor>(self);
        st.svc->box->links([hdl, node](std::map<std::string, std::string> links,
                                       std::string error) {
          auto i = links.find(node);
          if (error.empty() && i != links.end())
            caf::anon_send(hdl, links_atom::value, node, i->second);
        });
        return;
      }
  });
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) { tick(self); },
    [=](host_command_atom, const std::string& host, const std::string& command) {
      apply_host_command(self, host, command);
    },
    [=](beat_atom, int code, int64_t backlog, const std::string& error) {
      auto& st = self->state;
      const auto& name = st.svc->config->name;
      if (!error.empty()) {
        spdlog::warn("membership: renewing the lease of node {} failed: {}", name, error);
        return;
      }
      st.svc->throttle->set_backlog(backlog);
      st.svc->observed->heartbeat_ok_ms = wall_clock_ms();
      if (code == 1 && !st.joined)
        spdlog::info("membership: node {} joined the cluster", name);
      if (code == 2) {
        spdlog::error("membership: node {} had been declared dead (its lease lapsed) and its "
                      "work taken over; dropping what it holds in memory and rejoining",
                      name);
        if (auto processing = st.svc->directory->get("processing"))
          drop_instances(processing);
      }
      st.joined = true;
    },
    [=](lease_atom, bool held, int64_t epoch, const std::string& holder,
        const std::string& error) {
      auto& st = self->state;
      const auto& cfg = *st.svc->config;
      if (!error.empty()) {
        spdlog::warn("membership: the cluster lease could not be renewed: {}", error);
        return;
      }
      if (held != st.supervising || (held && epoch != st.epoch)) {
        spdlog::info("membership: {}", held ? "node " + cfg.name
                                                + " is the cluster supervisor (epoch "
                                                + std::to_string(epoch) + ")"
                                            : "the cluster supervisor is " + holder);
        st.announced.clear();
      }
      st.supervising = held;
      st.epoch = epoch;
      st.svc->observed->cluster_supervisor = held;
      if (!held) {
        for (auto& [node, peer] : st.peers)
          self->demonitor(peer);
        st.peers.clear(); // watching the links is the supervisor's job
        return;
      }
      auto hdl = caf::actor_cast<caf::actor>(self);
      st.svc->box->plan_relocation(
        cfg.name, epoch, known_hosts,
        [hdl](std::vector<persistence::message_box::relocation> plan, std::string error) {
          if (!error.empty()) {
            spdlog::warn("membership: planning relocations failed: {}", error);
            return;
          }
          for (auto& r : plan)
            caf::anon_send(hdl, relocate_atom::value, r.dead, r.host, r.target, r.pending);
        });
    },
    [=](host_lease_atom, const std::string& host, bool held, int64_t epoch,
        const std::string& holder, const std::string& error) {
      auto& st = self->state;
      auto& c = st.clustered[host];
      auto now = std::chrono::steady_clock::now();
      if (!error.empty() || !held) {
        if (!error.empty())
          spdlog::warn("membership: the lease of single-active host {} could not be renewed: {}",
                       host, error);
        bool lapsed = now - c.renewed >= st.svc->config->lease_ttl;
        if (!held && error.empty())
          stop_clustered(self, host, "node " + holder + " holds its lease now");
        else if (lapsed)
          stop_clustered(self, host, "its lease could not be renewed for a lease period");
        return;
      }
      c.renewed = now;
      c.epoch = epoch;
      if (c.now == clustered_host::phase::idle)
        start_clustered(self, host);
    },
    [=](relocate_atom, const std::string& dead,
        const std::string& host, const std::string& target, int64_t pending) {
      auto& st = self->state;
      if (!st.announced.insert(dead + "|" + host + "|" + target).second)
        return;
      spdlog::warn("cluster supervisor: node {} is dead; its {} pending {} messages go to "
                   "node {}",
                   dead, pending, host, target);
      deliver_take_over(self, dead, host, target);
    },
    [=](links_atom, const std::map<std::string, std::string>& links) {
      auto& st = self->state;
      for (const auto& [node, address] : links)
        if (node != st.svc->config->name && st.peers.count(node) == 0)
          connect_peer(self, node, address, false);
    },
    [=](links_atom, const std::string& node, const std::string& address) {
      connect_peer(self, node, address, true);
    },
    [=](assigned_atom, const std::string& dead, const std::string& host) {
      // A host this node does not run (now) leaves the assignment to the next plan, which
      // only picks nodes that list the host as running.
      if (auto actor = self->state.svc->directory->get(host))
        take_over_from(actor, dead);
    },
  };
}

} // namespace

void add_relocator_type(caf::actor_system_config& cfg) {
  cfg.add_actor_type("convoy.relocator", relocator);
}

caf::actor spawn_membership(caf::actor_system& sys, std::shared_ptr<const host_services> svc,
                            caf::actor root,
                            std::function<child_spec(const std::string& host)> host_spec) {
  return sys.spawn(membership, std::move(svc), std::move(root), std::move(host_spec));
}

} // namespace convoy::runtime
