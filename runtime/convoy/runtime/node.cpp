#include "convoy/runtime/node.hpp"

#include "convoy/runtime/admin.hpp"
#include "convoy/runtime/cluster_link.hpp"
#include "convoy/runtime/hosts.hpp"
#include "convoy/runtime/membership.hpp"
#include "convoy/runtime/supervisor.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>

namespace convoy::runtime {

struct node::impl {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<host_services> svc;
  /// The node supervisor: the root of this node's supervision tree.
  caf::actor root;
  std::unique_ptr<admin_server> admin;
  /// What peers connect to over the cluster link (when it is on).
  caf::actor agent;
  /// Cleared when the root exits for any reason but a stop.
  std::shared_ptr<std::atomic<bool>> serving = std::make_shared<std::atomic<bool>>(true);
};

namespace {

/// The supervisor of one host instance and what it runs. `one_for_all`: the host actor owns
/// its workers (activity threads, instances), so a restart of the host restarts them all;
/// three restarts in five seconds escalate to the node supervisor.
child_spec host_supervisor(const std::shared_ptr<host_services>& svc, const std::string& host) {
  supervisor_spec spec;
  spec.name = "host:" + host;
  spec.strategy = restart_strategy::one_for_all;
  spec.intensity = 3;
  spec.period = std::chrono::seconds(5);
  child_spec worker;
  worker.id = host;
  worker.restart = restart_type::permanent;
  worker.shutdown = std::chrono::seconds(5);
  worker.start = [svc, host](const child_context& ctx) {
    caf::actor actor;
    if (host == "send")
      actor = spawn_send_host(ctx.system, svc);
    else if (host == "processing")
      actor = spawn_processing_host(ctx.system, svc);
    else
      actor = spawn_receive_host(ctx.system, svc);
    svc->directory->set(host, actor); // a restarted host is a new actor: record it
    return actor;
  };
  spec.children.push_back(std::move(worker));
  return supervisor_child(std::move(spec));
}

} // namespace

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
  auto svc = std::make_shared<host_services>();
  svc->config = &config_;
  svc->orchestrations = &orchestrations_;
  svc->box = box_.get();
  // A rollback seen by a connection's handshake restarts the instances it hit, on whichever
  // processing host actor runs now (called on the Redis loop thread).
  box_->on_rollback([directory = svc->directory](const persistence::rollback_report& report) {
    if (auto processing = directory->get("processing"); processing && !report.instances.empty())
      restart_instances(processing, report.instances);
  });
  if (auto err = box_->prepare(known_hosts); !err.empty())
    return err;
  impl_ = std::make_unique<impl>();
  add_supervisor_message_types(impl_->cfg);
  if (config_.link_enabled()) {
    if (auto err = configure_cluster_link(impl_->cfg, config_.link); !err.empty()) {
      impl_.reset();
      return "cluster link: " + err;
    }
    add_relocator_type(impl_->cfg);
  }
  impl_->sys = std::make_unique<caf::actor_system>(impl_->cfg);
  impl_->svc = svc;
  if (config_.link_enabled())
    if (auto err = open_link(); !err.empty()) {
      stop();
      return "cluster link: " + err;
    }
  auto runs = [this](const std::string& host) {
    return std::find(config_.hosts.begin(), config_.hosts.end(), host) != config_.hosts.end();
  };
  auto single_active = [this](const std::string& host) {
    return std::find(config_.single_active.begin(), config_.single_active.end(), host)
           != config_.single_active.end();
  };
  // The node's supervision tree (OTP terms): the node supervisor, one_for_one, over a
  // supervisor per host instance and the membership worker. Start order: send and
  // processing first, so the receive host's activations find takers; membership last.
  // Single-active hosts are not started here: membership starts one when this node holds
  // its lease. Stop order is the reverse.
  supervisor_spec root;
  root.name = "node:" + config_.name;
  root.strategy = restart_strategy::one_for_one;
  root.intensity = 3;
  root.period = std::chrono::seconds(10);
  for (const char* host : {"send", "processing", "receive"})
    if (runs(host) && !single_active(host))
      root.children.push_back(host_supervisor(svc, host));
  child_spec membership;
  membership.id = "membership";
  membership.restart = restart_type::permanent;
  membership.shutdown = std::chrono::seconds(2);
  membership.start = [svc](const child_context& ctx) {
    return spawn_membership(ctx.system, svc, ctx.supervisor,
                            [svc](const std::string& host) { return host_supervisor(svc, host); });
  };
  root.children.push_back(std::move(membership));
  root.stop_dynamic = dynamic_stop::in_reverse_order;
  impl_->root = spawn_supervisor(*impl_->sys, std::move(root));
  impl_->root->attach_functor(
    [name = config_.name, serving = impl_->serving](const caf::error& reason) {
      if (reason == caf::exit_reason::user_shutdown)
        return;
      serving->store(false);
      spdlog::critical("node {}: its node supervisor exited ({}); the node no longer serves",
                       name, reason_text(reason));
    });
  std::string failed;
  caf::scoped_actor self{*impl_->sys};
  self->request(impl_->root, std::chrono::seconds(30), await_started_atom::value)
    .receive([](caf::ok_atom) {},
             [&](caf::error& err) { failed = impl_->sys->render(err); });
  if (!failed.empty()) {
    stop();
    return "node " + config_.name + ": its supervision tree did not start: " + failed;
  }
  if (!config_.admin_listen.empty()) {
    auto token = config_.admin_token_env.empty() ? nullptr
                                                 : std::getenv(config_.admin_token_env.c_str());
    impl_->admin = std::make_unique<admin_server>(svc, [serving = impl_->serving] {
      return serving->load();
    });
    auto bound = impl_->admin->start(config_.admin_listen, token ? token : "");
    if (bound.rfind("error: ", 0) == 0) {
      stop();
      return "node " + config_.name + ": " + bound.substr(7);
    }
    if (auto err = box_->record_admin(config_.name, bound); !err.empty())
      spdlog::warn("node {}: could not record its admin address: {}", config_.name, err);
    spdlog::info("node {} serves its admin endpoint and dashboard at http://{}/", config_.name,
                 bound);
  }
  // After the hosts: what the adapters submit finds its takers running.
  for (auto& a : adapters_)
    if (auto err = a->start(); !err.empty()) {
      auto what = a->describe() + ": " + err;
      stop(); // rather than run half configured (stopping an adapter never started is a no-op)
      return what;
    }
  spdlog::info("node {} running hosts [{}]{} against the MessageBox at {} (prefix '{}')",
               config_.name, fmt::join(config_.hosts, ", "),
               config_.single_active.empty()
                 ? std::string{}
                 : fmt::format(" ([{}] single-active)", fmt::join(config_.single_active, ", ")),
               config_.redis.address(), config_.prefix);
  return {};
}

std::string node::open_link() {
  auto listen = parse_listen_address(config_.link_listen).value(); // validated before
  // What peers reach: an actor that only answers who it is. Remote spawns and monitoring
  // use the connection itself; nothing else is served to peers.
  impl_->agent = impl_->sys->spawn([name = config_.name]() -> caf::behavior {
    return {[name](caf::get_atom) { return name; }};
  });
  auto bound = publish_over_tls(*impl_->sys, impl_->agent, listen.second, listen.first);
  if (auto err = std::get_if<std::string>(&bound))
    return *err;
  auto address = listen.first + ":" + std::to_string(std::get<std::uint16_t>(bound));
  if (auto err = box_->register_link(config_.name, address,
                                     config_.link.heartbeat_interval.count(),
                                     config_.link.connection_timeout.count());
      !err.empty())
    return err;
  spdlog::info("node {} listens for its peers over mutual TLS at {}", config_.name, address);
  return {};
}

bool node::serving() const noexcept {
  return impl_ && impl_->serving->load();
}

std::string node::throttle_cause(const std::string& host) const {
  return impl_ ? impl_->svc->throttle->cause(host) : std::string{};
}

caf::actor node::host_actor(const std::string& host) const {
  return impl_ ? impl_->svc->directory->get(host) : caf::actor{};
}

void node::stop() {
  if (!impl_)
    return;
  if (impl_->admin)
    impl_->admin->stop();
  // Adapters first: they stop taking work in while the hosts can still finish it.
  for (auto i = adapters_.rbegin(); i != adapters_.rend(); ++i)
    (*i)->stop();
  // The node supervisor stops its children in reverse start order, each within its shutdown
  // timeout: membership first (it stops renewing the leases), then the hosts.
  if (impl_->root) {
    caf::scoped_actor self{*impl_->sys};
    self->monitor(impl_->root);
    caf::anon_send_exit(impl_->root, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {});
  }
  impl_->svc->directory->clear(); // rollback reports go nowhere now
  if (impl_->agent)
    caf::anon_send_exit(impl_->agent, caf::exit_reason::user_shutdown);
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
