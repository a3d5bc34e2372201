#include "convoy/runtime/node.hpp"

#include "convoy/runtime/hosts.hpp"
#include "convoy/runtime/membership.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace convoy::runtime {

/// Where rollback reports go: the processing host, once it runs. The MessageBox calls the
/// listener on its loop thread, possibly before the host exists or after it stopped.
struct rollback_target {
  std::mutex mtx;
  caf::actor processing_host;
};

struct node::impl {
  std::shared_ptr<rollback_target> rollbacks = std::make_shared<rollback_target>();
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<host_services> svc;
  std::vector<caf::actor> hosts;
  caf::actor membership;
};

node::node(node_config config, const registry& orchestrations)
  : config_(std::move(config)), orchestrations_(orchestrations) {
  persistence::message_box_config mcfg;
  mcfg.endpoint = config_.redis;
  mcfg.prefix = config_.prefix;
  mcfg.level = config_.durability == "replicated" ? persistence::durability::replicated
                                                  : persistence::durability::local;
  mcfg.replicas = config_.replicas;
  mcfg.wait_timeout = config_.wait_timeout;
  box_ = std::make_unique<persistence::message_box>(std::move(mcfg));
}

node::~node() {
  stop();
}

void node::add_adapter(std::unique_ptr<adapter> a) {
  adapters_.push_back(std::move(a));
}

std::string node::start() {
  if (impl_)
    return {};
  if (auto err = validate(config_); !err.empty())
    return err;
  // Every node creates every known host's group: producers may enqueue for hosts this node
  // does not run, and a group created later would still see them (groups start at id 0).
  auto target = std::make_shared<rollback_target>();
  box_->on_rollback([target](const persistence::rollback_report& report) {
    std::lock_guard<std::mutex> guard(target->mtx);
    if (target->processing_host && !report.instances.empty())
      restart_instances(target->processing_host, report.instances);
  });
  if (auto err = box_->prepare(known_hosts); !err.empty())
    return err;
  impl_ = std::make_unique<impl>();
  impl_->rollbacks = target;
  impl_->sys = std::make_unique<caf::actor_system>(impl_->cfg);
  impl_->svc = std::make_shared<host_services>();
  impl_->svc->config = &config_;
  impl_->svc->orchestrations = &orchestrations_;
  impl_->svc->box = box_.get();
  auto& sys = *impl_->sys;
  auto runs = [this](const char* host) {
    return std::find(config_.hosts.begin(), config_.hosts.end(), host) != config_.hosts.end();
  };
  // Start order: send and processing first, so the receive host's activations find takers.
  if (runs("send"))
    impl_->hosts.push_back(spawn_send_host(sys, impl_->svc));
  if (runs("processing")) {
    impl_->hosts.push_back(spawn_processing_host(sys, impl_->svc));
    std::lock_guard<std::mutex> guard(target->mtx);
    target->processing_host = impl_->hosts.back();
  }
  if (runs("receive"))
    impl_->hosts.push_back(spawn_receive_host(sys, impl_->svc));
  std::map<std::string, caf::actor> local_hosts; // in start order, as pushed above
  size_t next = 0;
  for (const char* host : {"send", "processing", "receive"})
    if (runs(host))
      local_hosts[host] = impl_->hosts[next++];
  impl_->membership = spawn_membership(sys, impl_->svc, std::move(local_hosts));
  // After the hosts: what the adapters submit finds its takers running.
  for (auto& a : adapters_)
    if (auto err = a->start(); !err.empty()) {
      auto what = a->describe() + ": " + err;
      stop(); // rather than run half configured (stopping an adapter never started is a no-op)
      return what;
    }
  spdlog::info("node {} running hosts [{}] against the MessageBox at {} (prefix '{}')",
               config_.name, fmt::join(config_.hosts, ", "), config_.redis.address(),
               config_.prefix);
  return {};
}

void node::stop() {
  if (!impl_)
    return;
  {
    std::lock_guard<std::mutex> guard(impl_->rollbacks->mtx);
    impl_->rollbacks->processing_host = caf::actor{};
  }
  // Adapters first: they stop taking work in while the hosts can still finish it.
  for (auto i = adapters_.rbegin(); i != adapters_.rend(); ++i)
    (*i)->stop();
  // Reverse start order: membership last started, first stopped (a stopping node stops
  // renewing its lease; its unacknowledged work is taken over once the lease lapses).
  caf::anon_send_exit(impl_->membership, caf::exit_reason::user_shutdown);
  for (auto i = impl_->hosts.rbegin(); i != impl_->hosts.rend(); ++i)
    caf::anon_send_exit(*i, caf::exit_reason::user_shutdown);
  impl_->hosts.clear();
  impl_->sys->await_all_actors_done();
  // Graceful: hand over at once what this node leaves unacknowledged, rather than letting the
  // others wait for its lease to lapse.
  if (auto err = box_->leave_cluster(config_.name); !err.empty())
    spdlog::warn("node {}: could not end its lease ({}); the others take over once it lapses",
                 config_.name, err);
  // Redis callbacks still in flight address actors of this system: drain them while it lives.
  box_.reset();
  impl_.reset();
  spdlog::info("node {} stopped", config_.name);
}

} // namespace convoy::runtime
