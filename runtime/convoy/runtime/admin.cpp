#include "convoy/runtime/admin.hpp"

#include "convoy/runtime/internal/admin_routes.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/runtime/node_config.hpp"
#include "convoy/runtime/views.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <map>
#include <sstream>
#include <thread>

namespace convoy::runtime {

namespace {

/// Tallies `recs` by status, and failed or suspended ones by error (with one example id).
void tally(const std::vector<instance_record>& recs, json& by_status, json& failures) {
  std::map<std::string, std::pair<size_t, std::string>> errors;
  for (const auto& r : recs) {
    auto status = std::string(to_string(r.status));
    by_status[status] = by_status.value(status, 0) + 1;
    if (!r.error.empty()) {
      auto& e = errors[r.error.substr(0, 200)];
      if (e.first++ == 0)
        e.second = r.id;
    }
  }
  for (const auto& [error, e] : errors)
    failures.push_back({{"error", error}, {"count", e.first}, {"example", e.second}});
}

/// Sums the restarts of every child in a tree (as JSON).
int64_t restarts_in(const json& sup) {
  int64_t n = 0;
  for (const auto& c : sup.value("children", json::array())) {
    n += c.value("restarts", int64_t{0});
    if (c.contains("supervisor"))
      n += restarts_in(c["supervisor"]);
  }
  return n;
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

/// How many instances the dashboard and /metrics look at (the newest ones).
constexpr size_t sampled_instances = 1000;

/// Unfinished instances by owner node and type: the orchestration leaves of each node's tree.
std::map<std::string, std::map<std::string, int64_t>>
unfinished_by_owner(const std::vector<instance_record>& recs) {
  std::map<std::string, std::map<std::string, int64_t>> out;
  for (const auto& r : recs)
    if (!is_final(r.status) && !r.owner.empty())
      ++out[r.owner][r.type];
  return out;
}

} // namespace

struct admin_server::impl {
  std::shared_ptr<const host_services> svc;
  std::function<bool()> serving;
  httplib::Server server;
  std::thread thread;

  /// Why the node is not ready, or "".
  std::string not_ready() const {
    if (!serving())
      return "its supervision tree gave up";
    auto last = svc->observed->heartbeat_ok_ms.load();
    if (last == 0)
      return "no heartbeat has reached the MessageBox yet";
    auto age = wall_clock_ms() - last;
    if (age > svc->config->lease_ttl.count())
      return "its last heartbeat reached the MessageBox " + std::to_string(age)
             + " ms ago (lease " + std::to_string(svc->config->lease_ttl.count()) + " ms)";
    return {};
  }

  std::string metrics() const {
    const auto& name = svc->config->name;
    auto stats = svc->box->stats();
    std::ostringstream out;
    auto gauge = [&](const char* metric, const char* help, const char* type, auto value,
                     const std::string& labels = "") {
      out << "# HELP " << metric << " " << help << "\n# TYPE " << metric << " " << type << "\n"
          << metric << "{node=\"" << label(name) << "\"" << labels << "} " << value << "\n";
    };
    gauge("convoy_node_serving", "1 while the node's supervision tree runs", "gauge",
          serving() ? 1 : 0);
    gauge("convoy_cluster_supervisor", "1 while this node holds the cluster supervisor's lease",
          "gauge", svc->observed->cluster_supervisor.load() ? 1 : 0);
    gauge("convoy_instances_in_memory", "orchestration instances this node holds in memory",
          "gauge", svc->instances_in_memory->load());
    gauge("convoy_persistence_points_total",
          "persistence points acknowledged (steps/s: rate of this)", "counter",
          stats.points_acknowledged);
    out << "# HELP convoy_persistence_latency_seconds persistence point latency, call to "
           "acknowledgement\n# TYPE convoy_persistence_latency_seconds histogram\n";
    for (size_t i = 0; i < stats.latency_le.size(); ++i) {
      auto le = i < persistence::latency_bounds_ms.size()
                ? fmt::format("{}", persistence::latency_bounds_ms[i] / 1000)
                                             : std::string("+Inf");
      out << "convoy_persistence_latency_seconds_bucket{node=\"" << label(name) << "\",le=\""
          << le << "\"} " << stats.latency_le[i] << "\n";
    }
    out << "convoy_persistence_latency_seconds_sum{node=\"" << label(name) << "\"} "
        << static_cast<double>(stats.latency_sum_us) / 1e6 << "\n"
        << "convoy_persistence_latency_seconds_count{node=\"" << label(name) << "\"} "
        << stats.points_acknowledged << "\n";
    // What the MessageBox holds (its newest instances, as this node reads them): the same
    // figures on every node, for a dashboard that scrapes any one of them.
    auto listed = svc->box->list_instances(sampled_instances);
    if (listed.error.empty()) {
      std::map<std::string, int64_t> by_status;
      for (auto s : {instance_status::pending, instance_status::running, instance_status::waiting,
                     instance_status::completed, instance_status::failed,
                     instance_status::suspended, instance_status::cancelled,
                     instance_status::suspended_resumable, instance_status::terminated})
        by_status[std::string(to_string(s))] = 0;
      int64_t steps = 0;
      for (const auto& r : listed.instances) {
        ++by_status[std::string(to_string(r.status))];
        steps += r.steps;
      }
      out << "# HELP convoy_instances orchestration instances in the MessageBox by status (of "
             "the newest " << sampled_instances << ")\n# TYPE convoy_instances gauge\n";
      for (const auto& [status, n] : by_status)
        out << "convoy_instances{node=\"" << label(name) << "\",status=\"" << status << "\"} " << n
            << "\n";
      gauge("convoy_instance_steps", "steps recorded by those instances, summed", "gauge", steps);
    }
    gauge("convoy_relocated_messages_total",
          "messages this node took over from dead nodes (relocations carried out)", "counter",
          svc->observed->messages_taken_over.load());
    auto tree = json::parse(svc->observed->tree(), nullptr, false);
    gauge("convoy_supervisor_restarts", "restarts of children in this node's supervision tree",
          "gauge",
          tree.is_object() && tree.contains("tree") ? restarts_in(tree["tree"]) : 0);
    out << "# HELP convoy_throttled 1 while a host instance is throttled\n"
           "# TYPE convoy_throttled gauge\n";
    auto throttled = svc->throttle->snapshot();
    for (const auto& host : svc->config->hosts)
      out << "convoy_throttled{node=\"" << label(name) << "\",host=\"" << label(host) << "\"} "
          << (throttled.count(host) ? 1 : 0) << "\n";
    gauge("convoy_redis_server_changes_total",
          "new connections that found another Redis server than before (failovers followed)",
          "counter", stats.servers_changed);
    gauge("convoy_rollbacks_detected_total",
          "times the MessageBox held fewer persistence points than were acknowledged", "counter",
          stats.rollbacks_detected);
    gauge("convoy_points_lost_total", "acknowledged persistence points those rollbacks lost",
          "counter", stats.points_lost);
    return out.str();
  }

  json overview() const {
    auto stats = svc->box->stats();
    auto view = svc->box->list_nodes();
    json nodes = json::array();
    for (const auto& n : view.nodes)
      nodes.push_back({{"name", n.name},
                       {"status", n.status},
                       {"hosts", n.hosts},
                       {"load", n.load},
                       {"heartbeat_ms", n.heartbeat_ms},
                       {"lease_expires_ms", n.lease_expires_ms},
                       {"throttle", json::parse(n.throttle.empty() ? "{}" : n.throttle, nullptr,
                                                false)}});
    auto listed = svc->box->list_instances(sampled_instances);
    json by_status = json::object(), failures = json::array();
    tally(listed.instances, by_status, failures);
    auto why = not_ready();
    return {{"node",
             {{"name", svc->config->name},
              {"serving", why.empty()},
              {"not_ready", why.empty() ? json(nullptr) : json(why)},
              {"hosts", svc->directory->names()},
              {"instances_in_memory", svc->instances_in_memory->load()}}},
            {"messagebox",
             {{"address", svc->config->redis.address()},
              {"reachable", view.error.empty()},
              {"error", view.error.empty() ? json(nullptr) : json(view.error)},
              {"write_latency_us", stats.write_latency_us},
              {"points_acknowledged", stats.points_acknowledged},
              {"rollbacks_detected", stats.rollbacks_detected},
              {"servers_changed", stats.servers_changed}}},
            {"cluster",
             {{"supervisor", view.supervisor},
              {"supervisor_epoch", view.supervisor_epoch},
              {"nodes", std::move(nodes)}}},
            {"instances_sampled", listed.instances.size()},
            {"instances_by_status", std::move(by_status)},
            {"failures", std::move(failures)}};
  }

  /// Every node's recorded tree, with the unfinished orchestrations it owns by type.
  json trees() const {
    auto view = svc->box->list_nodes();
    auto owned = unfinished_by_owner(svc->box->list_instances(sampled_instances).instances);
    json out = json::array();
    for (const auto& n : view.nodes) {
      auto entry = recorded_tree(n);
      entry["orchestrations"] = json::object();
      for (const auto& [type, count] : owned[n.name])
        entry["orchestrations"][type] = count;
      out.push_back(std::move(entry));
    }
    return {{"supervisor", view.supervisor}, {"nodes", std::move(out)}};
  }
};

admin_server::admin_server(std::shared_ptr<const host_services> svc, std::function<bool()> serving)
  : impl_(std::make_unique<impl>()) {
  impl_->svc = std::move(svc);
  impl_->serving = std::move(serving);
}

admin_server::~admin_server() {
  stop();
}

std::string admin_server::start(const std::string& listen, const std::string& token) {
  auto where = parse_listen_address(listen);
  if (!where)
    return "error: admin.listen '" + listen + "' is not host:port";
  auto* d = impl_.get();
  internal::admin_backend backend{
    [d] { return d->not_ready(); },
    [d] { return d->metrics(); },
    [d] { return d->overview(); },
    [d] { return d->trees(); },
    [d](size_t limit) { return d->svc->box->list_instances(limit); },
    [d](const std::string& id) { return d->svc->box->describe(id); }};
  internal::serve_admin(impl_->server, std::move(backend), token);
  // A browser keeps several connections open between its polls: threads for a few.
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(4); };
  int port = where->second == 0 ? impl_->server.bind_to_any_port(where->first)
                                : (impl_->server.bind_to_port(where->first, where->second)
                                     ? where->second
                                     : -1);
  if (port < 0)
    return "error: cannot listen on " + listen + " for the admin endpoint";
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  return where->first + ":" + std::to_string(port);
}

void admin_server::stop() {
  if (!impl_ || !impl_->thread.joinable())
    return;
  impl_->server.stop();
  impl_->thread.join();
}

} // namespace convoy::runtime
