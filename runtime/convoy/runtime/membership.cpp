#include "convoy/runtime/membership.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <set>

namespace convoy::runtime {

namespace {

using tick_atom = caf::atom_constant<caf::atom("tick")>;
using beat_atom = caf::atom_constant<caf::atom("beat")>;
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using assigned_atom = caf::atom_constant<caf::atom("assigned")>;
using relocate_atom = caf::atom_constant<caf::atom("relocate")>;

struct membership_state {
  std::shared_ptr<const host_services> svc;
  std::map<std::string, caf::actor> hosts;
  bool joined = false;
  bool supervising = false;
  int64_t epoch = 0;
  /// Relocations already logged, so a long take-over is reported once.
  std::set<std::string> announced;
  static inline const char* name = "convoy.membership";
};

using membership_actor = caf::stateful_actor<membership_state>;

void tick(membership_actor* self) {
  auto& st = self->state;
  const auto& cfg = *st.svc->config;
  auto hdl = caf::actor_cast<caf::actor>(self);
  auto* box = st.svc->box;
  box->heartbeat(cfg.name, cfg.lease_ttl, cfg.hosts, st.svc->instances_in_memory->load(),
                 [hdl](int code, std::vector<persistence::message_box::assignment> todo,
                       std::string error) {
                   caf::anon_send(hdl, beat_atom::value, code, std::move(error));
                   for (auto& a : todo)
                     caf::anon_send(hdl, assigned_atom::value, std::move(a.dead),
                                    std::move(a.host));
                 });
  box->cluster_lease(cfg.name, cfg.lease_ttl,
                     [hdl](bool held, int64_t epoch, std::string holder, std::string error) {
                       caf::anon_send(hdl, lease_atom::value, held, epoch, std::move(holder),
                                      std::move(error));
                     });
  self->delayed_send(self, cfg.heartbeat, tick_atom::value);
}

caf::behavior membership(membership_actor* self, std::shared_ptr<const host_services> svc,
                         std::map<std::string, caf::actor> hosts) {
  self->state.svc = std::move(svc);
  self->state.hosts = std::move(hosts);
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) { tick(self); },
    [=](beat_atom, int code, const std::string& error) {
      auto& st = self->state;
      const auto& name = st.svc->config->name;
      if (!error.empty()) {
        spdlog::warn("membership: renewing the lease of node {} failed: {}", name, error);
        return;
      }
      if (code == 1 && !st.joined)
        spdlog::info("membership: node {} joined the cluster", name);
      if (code == 2) {
        spdlog::error("membership: node {} had been declared dead (its lease lapsed) and its "
                      "work taken over; dropping what it holds in memory and rejoining",
                      name);
        if (auto i = st.hosts.find("processing"); i != st.hosts.end())
          drop_instances(i->second);
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
      if (held != st.supervising || (held && epoch != st.epoch))
        spdlog::info("membership: {}", held ? "node " + cfg.name
                                                + " is the cluster supervisor (epoch "
                                                + std::to_string(epoch) + ")"
                                            : "the cluster supervisor is " + holder);
      st.supervising = held;
      st.epoch = epoch;
      if (!held)
        return;
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
    [=](relocate_atom, const std::string& dead,
        const std::string& host, const std::string& target, int64_t pending) {
      auto& st = self->state;
      if (st.announced.insert(dead + "|" + host + "|" + target).second)
        spdlog::warn("cluster supervisor: node {} is dead; its {} pending {} messages go to "
                     "node {}",
                     dead, pending, host, target);
    },
    [=](assigned_atom, const std::string& dead, const std::string& host) {
      auto& st = self->state;
      auto i = st.hosts.find(host);
      if (i == st.hosts.end())
        return; // assigned a host this node does not run: the next plan corrects it
      take_over_from(i->second, dead);
    },
  };
}

} // namespace

caf::actor spawn_membership(caf::actor_system& sys, std::shared_ptr<const host_services> svc,
                            std::map<std::string, caf::actor> local_hosts) {
  return sys.spawn(membership, std::move(svc), std::move(local_hosts));
}

} // namespace convoy::runtime
