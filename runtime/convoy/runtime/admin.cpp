#include "convoy/runtime/admin.hpp"

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

/// The dashboard: one read-only page, no build step, polling the JSON API every 2 s.
constexpr const char* dashboard_html = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Convoy</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.05em;margin-top:1.4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse} td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}
.card{display:inline-block;border:1px solid #ddd;border-radius:6px;padding:6px 12px;margin:0 8px 8px 0}
.bad{color:#b00} .ok{color:#070} pre{background:#f6f6f6;padding:8px;overflow:auto}
a{cursor:pointer;color:#05c}
</style></head><body>
<h1>Convoy <span id="node"></span></h1>
<div id="cards"></div>
<h2>Nodes</h2><table id="nodes"></table>
<h2>Failures, grouped by error</h2><table id="failures"></table>
<h2>Supervision trees</h2><pre id="tree"></pre>
<h2>Instances (newest)</h2><table id="instances"></table>
<h2>Instance</h2><pre id="detail">click an instance</pre>
<script>
const q = new URLSearchParams(location.search); const token = q.get('token');
const get = p => fetch(p + (token ? (p.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : ''))
  .then(r => r.json());
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const rows = (el, head, body) => document.getElementById(el).innerHTML =
  '<tr>' + head.map(h => '<th>' + h + '</th>').join('') + '</tr>' +
  body.map(r => '<tr>' + r.map(c => '<td>' + c + '</td>').join('') + '</tr>').join('');
function lines(sup, indent, out) {
  for (const c of sup.children || []) {
    out.push(indent + c.id + '  ' + c.kind + ' ' + c.restart + ' ' + c.state + '  restarts ' + c.restarts);
    if (c.supervisor) lines(c.supervisor, indent + '   ', out);
  }
  for (const e of sup.recent_exits || []) out.push(indent + '   exit: ' + e.child + ' ' + e.reason + ' (' + e.action + ')');
}
function show(id) { get('/api/instances/' + encodeURIComponent(id)).then(d =>
  document.getElementById('detail').textContent = JSON.stringify(d, null, 2)); }
function refresh() {
  get('/api/overview').then(o => {
    document.getElementById('node').textContent = '- node ' + o.node.name;
    const box = o.messagebox;
    document.getElementById('cards').innerHTML = [
      ['serving', o.node.serving ? '<span class=ok>yes</span>' : '<span class=bad>no</span>'],
      ['cluster supervisor', esc(o.cluster.supervisor || '-')],
      ['MessageBox', esc(box.address) + (box.reachable ? '' : ' <span class=bad>unreachable</span>')],
      ['persistence latency', (box.write_latency_us / 1000).toFixed(2) + ' ms'],
      ['rollbacks detected', box.rollbacks_detected],
      ...Object.entries(o.instances_by_status).map(([k, v]) => [k, v])
    ].map(([k, v]) => '<span class=card>' + k + ': <b>' + v + '</b></span>').join('');
    rows('nodes', ['node', 'status', 'hosts', 'load', 'heartbeat', 'throttle'], o.cluster.nodes.map(n =>
      [esc(n.name), n.status === 'alive' ? '<span class=ok>alive</span>' : '<span class=bad>' + esc(n.status) + '</span>',
       esc(n.hosts), n.load, new Date(n.heartbeat_ms).toLocaleTimeString(), esc(JSON.stringify(n.throttle))]));
    rows('failures', ['count', 'error', 'example'], o.failures.map(f => [f.count, esc(f.error), esc(f.example)]));
  });
  get('/api/tree').then(t => {
    const out = [];
    for (const n of t.nodes) { out.push('node ' + n.node + ' (' + n.status + ')'); if (n.tree) lines(n.tree, '   ', out); }
    document.getElementById('tree').textContent = out.join('\n');
  });
  get('/api/instances?limit=50').then(l => rows('instances', ['id', 'type', 'status', 'steps', 'owner', 'error'],
    l.instances.map(i => ['<a onclick="show(\'' + esc(i.id) + '\')">' + esc(i.id) + '</a>', esc(i.type), esc(i.status),
      i.steps, esc(i.owner), esc(i.error || '')])));
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
)HTML";

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

std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

} // namespace

struct admin_server::impl {
  std::shared_ptr<const host_services> svc;
  std::function<bool()> serving;
  httplib::Server server;
  std::thread thread;
  std::string token;

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
    auto listed = svc->box->list_instances(1000);
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

  json trees() const {
    auto view = svc->box->list_nodes();
    json out = json::array();
    for (const auto& n : view.nodes)
      out.push_back(recorded_tree(n));
    return {{"supervisor", view.supervisor}, {"nodes", std::move(out)}};
  }

  bool authorized(const httplib::Request& req) const {
    if (token.empty())
      return true;
    auto header = req.get_header_value("Authorization");
    return header == "Bearer " + token
           || (req.has_param("token") && req.get_param_value("token") == token);
  }

  void routes() {
    auto json_reply = [](httplib::Response& res, const json& body, int status = 200) {
      res.status = status;
      res.set_content(body.dump(), "application/json");
    };
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/livez" || req.path == "/readyz" || authorized(req))
        return httplib::Server::HandlerResponse::Unhandled;
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content("{\"error\":\"missing or wrong bearer token\"}", "application/json");
      return httplib::Server::HandlerResponse::Handled;
    });
    server.Get("/livez", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      auto why = not_ready();
      res.status = why.empty() ? 200 : 503;
      res.set_content(why.empty() ? "ready\n" : "not ready: " + why + "\n", "text/plain");
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    server.Get("/api/overview", [this, json_reply](const httplib::Request&, httplib::Response& res) {
      json_reply(res, overview());
    });
    server.Get("/api/tree", [this, json_reply](const httplib::Request&, httplib::Response& res) {
      json_reply(res, trees());
    });
    server.Get("/api/instances", [this, json_reply](const httplib::Request& req,
                                                     httplib::Response& res) {
      size_t limit = 100;
      if (req.has_param("limit")) {
        try {
          limit = std::stoul(req.get_param_value("limit"));
        } catch (const std::exception&) {
          limit = 0;
        }
        if (limit == 0 || limit > 10000)
          return json_reply(res, {{"error", "limit must be between 1 and 10000"}}, 400);
      }
      auto listed = svc->box->list_instances(limit);
      if (!listed.error.empty())
        return json_reply(res, {{"error", listed.error}}, 503);
      auto status = req.get_param_value("status");
      auto type = req.get_param_value("type");
      std::vector<instance_record> kept;
      for (auto& r : listed.instances)
        if ((status.empty() || to_string(r.status) == status) && (type.empty() || r.type == type))
          kept.push_back(std::move(r));
      json_reply(res, {{"instances", instances_json(kept)}});
    });
    server.Get(R"(/api/instances/([A-Za-z0-9._:-]{1,128}))",
               [this, json_reply](const httplib::Request& req, httplib::Response& res) {
                 auto d = svc->box->describe(req.matches[1]);
                 if (!d.error.empty())
                   return json_reply(res, {{"error", d.error}}, 503);
                 if (!d.found)
                   return json_reply(res, {{"error", "no instance " + std::string(req.matches[1])}},
                                     404);
                 json_reply(res, description_json(d));
               });
    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(dashboard_html, "text/html; charset=utf-8");
    });
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404)
        res.set_content("{\"error\":\"no such path: " + label(req.path.substr(0, 200)) + "\"}",
                        "application/json");
    });
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
  impl_->token = token;
  // Bounded: small requests only (the API is read-only), slow clients time out.
  impl_->server.set_payload_max_length(64 * 1024);
  impl_->server.set_read_timeout(5, 0);
  impl_->server.set_write_timeout(5, 0);
  impl_->server.set_keep_alive_max_count(20);
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  impl_->routes();
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
