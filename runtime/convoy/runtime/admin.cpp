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

/// The dashboard: one read-only page, no build step, polling the JSON API every 2 s. Each view
/// has an address (#overview, #hosts, #tree, #instances, #instances?status=S&type=T,
/// #instance/ID), so a bookmark or a headless browser can open it directly; `<main>` carries
/// `data-view` and `data-ready` ("true" once the view shows data, "error" when it could not).
constexpr const char* dashboard_html = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Convoy</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#123;color:#eee;padding:8px 1.5em} header h1{font-size:1.2em;margin:0 0 4px}
nav a{color:#9cf;margin-right:1.2em;text-decoration:none} nav a.on{color:#fff;font-weight:bold}
main{padding:0 1.5em 2em} h2{font-size:1.05em;margin-top:1.4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;background:#fff} td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
.card{display:inline-block;border:1px solid #ddd;background:#fff;border-radius:6px;padding:6px 12px;margin:0 8px 8px 0}
.bad{color:#b00} .ok{color:#070} .muted{color:#888} code,pre{background:#f0f0f0;padding:1px 4px}
pre{padding:8px;overflow:auto;white-space:pre-wrap} ul.tree{list-style:none;padding-left:1.2em;margin:2px 0}
ul.tree li{margin:1px 0} summary{cursor:pointer} .leaf{color:#555} #status{font-size:12px;color:#bbb;margin:2px 0 0}
</style></head><body>
<header><h1>Convoy <span id="node"></span></h1>
<nav><a href="#overview">Overview</a><a href="#hosts">Hosts</a><a href="#tree">Supervision tree</a><a href="#instances">Instances</a></nav>
<p id="status"></p></header>
<main id="view" data-view="" data-ready="false"></main>
<script>
const q = new URLSearchParams(location.search); const token = q.get('token');
// Ages are taken against the node's clock as of the last answer (X-Convoy-Now-Ms), not the
// browser's: the two may differ, and a headless browser's virtual time runs ahead.
let serverNow = Date.now();
const get = p => fetch(p + (token ? (p.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : ''))
  .then(r => { const now = Number(r.headers.get('X-Convoy-Now-Ms')); if (now > 0) serverNow = now;
    return r.json().then(b => r.ok ? b : Promise.reject(new Error(b.error || r.statusText))); });
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const text = v => v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
const short = (s, n) => s.length > n ? s.slice(0, n - 3) + '...' : s;
const ago = ms => { if (!ms) return '-'; const s = Math.max(0, Math.floor((serverNow - ms) / 1000));
  return s < 60 ? s + 's ago' : s < 3600 ? Math.floor(s / 60) + 'm ago' : s < 86400 ? Math.floor(s / 3600) + 'h ago' : Math.floor(s / 86400) + 'd ago'; };
const until = ms => { const s = Math.round((ms - serverNow) / 1000), a = Math.abs(s);
  const t = a < 60 ? a + 's' : a < 3600 ? Math.floor(a / 60) + 'm' : a < 86400 ? Math.floor(a / 3600) + 'h' : Math.floor(a / 86400) + 'd';
  return s >= 0 ? 'due in ' + t : 'due ' + t + ' ago'; };
const byName = (list, key) => [...list].sort((a, b) => String(a[key]).localeCompare(String(b[key])));
const table = (id, head, body, empty) => '<table id="' + id + '"><tr>' + head.map(h => '<th>' + h + '</th>').join('') + '</tr>' +
  (body.length ? body.map(r => '<tr>' + r.map(c => '<td>' + c + '</td>').join('') + '</tr>').join('')
               : '<tr><td colspan="' + head.length + '" class="muted">' + empty + '</td></tr>') + '</table>';
const card = (k, v) => '<span class="card">' + k + ': <b>' + v + '</b></span>';
const yes = (b, good, bad) => b ? '<span class="ok">' + good + '</span>' : '<span class="bad">' + bad + '</span>';
const link = id => '<a href="#instance/' + encodeURIComponent(id) + '">' + esc(id) + '</a>';

const views = {
  overview: () => get('/api/overview').then(o => {
    const box = o.messagebox, sup = o.cluster.supervisor;
    return '<h2>MessageBox</h2><div id="messagebox">' + [
        card('address', esc(box.address)), card('reachable', yes(box.reachable, 'yes', 'no: ' + esc(box.error))),
        card('persistence latency', (box.write_latency_us / 1000).toFixed(2) + ' ms'),
        card('points acknowledged here', box.points_acknowledged), card('rollbacks detected', box.rollbacks_detected),
        card('Redis server changes', box.servers_changed)].join('') + '</div>' +
      '<h2>Nodes</h2>' + table('nodes', ['node', 'status', 'hosts', 'load', 'heartbeat', 'lease', 'throttled'],
        byName(o.cluster.nodes, 'name').map(n => [esc(n.name) + (n.name === sup ? ' &#9733;' : ''), yes(n.status === 'alive', 'alive', esc(n.status)),
          esc(n.hosts), n.load, ago(n.heartbeat_ms), n.lease_expires_ms > serverNow ? 'live' : '<span class="bad">lapsed</span>',
          esc(Object.keys(n.throttle || {}).join(', ') || 'no')]), 'no nodes') +
      '<p class="muted">&#9733; cluster supervisor (lease epoch ' + o.cluster.supervisor_epoch + ')</p>' +
      '<h2>Instances by state</h2>' + table('by-state', ['state', 'count'],
        Object.entries(o.instances_by_status).map(([k, v]) => [esc(k), '<a href="#instances?status=' + encodeURIComponent(k) + '">' + v + '</a>']),
        'no instances') + '<p class="muted">of the newest ' + o.instances_sampled + ' instances</p>' +
      '<h2>Failures, grouped by error</h2>' + table('failures', ['count', 'error', 'example'],
        o.failures.map(f => [f.count, esc(short(f.error, 160)), link(f.example)]), 'no failures');
  }),
  hosts: () => Promise.all([get('/api/overview'), get('/api/tree')]).then(([o, t]) => {
    const figures = {}; for (const n of t.nodes) figures[n.node] = n.hosts || {};
    const rows = [];
    for (const n of byName(o.cluster.nodes, 'name')) for (const h of (n.hosts || '').split(',').filter(x => x)) {
      const f = (figures[n.name] || {})['host:' + h] || (figures[n.name] || {})[h] || {}, th = (n.throttle || {})[h];
      rows.push([esc(h) + (f.single_active_epoch !== undefined ? ' (single-active, epoch ' + f.single_active_epoch + ')' : ''),
        esc(n.name), yes(n.status === 'alive', 'running', 'down'), ago(n.heartbeat_ms), h === 'processing' ? n.load : '-',
        th ? '<span class="bad">' + esc(th.cause) + '</span>' : 'no']);
    }
    return '<h2>Host instances</h2>' + table('host-instances', ['host', 'node', 'state', 'heartbeat', 'instances in memory', 'throttled'],
      rows, 'no host instances');
  }),
  tree: () => get('/api/tree').then(t => '<h2>Supervision trees</h2><div id="trees">' + byName(t.nodes, 'node').map(n => {
    const head = 'node ' + esc(n.node) + (n.node === t.supervisor ? ' (cluster supervisor)' : '') + ' &middot; ' + esc(n.status);
    if (!n.tree) return '<details open data-key="' + esc(n.node) + '"><summary>' + head + ' &middot; no tree recorded yet</summary></details>';
    return '<details open data-key="' + esc(n.node) + '"><summary>' + head + ' &middot; ' + supText(n.tree) + '</summary>' +
      children(n.tree, n, n.node) + '</details>';
  }).join('') + '</div>'),
  instances: params => get('/api/instances?limit=100' + ['status', 'type'].map(k => params.get(k) ? '&' + k + '=' + encodeURIComponent(params.get(k)) : '').join(''))
    .then(l => '<h2>Instances (newest 100' + ['status', 'type'].map(k => params.get(k) ? ', ' + k + ' ' + esc(params.get(k)) : '').join('') + ')</h2>' +
      table('instance-list', ['id', 'type', 'status', 'steps', 'owner', 'updated', 'result / error'],
        l.instances.map(i => [link(i.id), esc(i.type) + ' v' + i.version, esc(i.status), i.steps, esc(i.owner || '-'), ago(i.updated_ms),
          esc(short(i.error || text(i.result), 80))]), 'no instances')),
  instance: (params, id) => get('/api/instances/' + encodeURIComponent(id)).then(d => {
    const open = new Map(), mailbox = []; let consumed = 0;
    for (const e of d.journal) {
      if (e.event === 'scheduled') open.set(e.step, e);
      else if (['completed', 'failed', 'cancelled'].includes(e.event)) open.delete(e.step);
      else if (e.event === 'arrived') mailbox.push(e); else if (e.event === 'consumed') consumed++;
    }
    const waits = [...open.values()].map(e => 'step ' + e.step + ': ' + esc(e.op) + ' <code>' + esc(text(e.payload)) + '</code>' +
        (e.op === 'sleep' && e.payload && e.payload.due ? ' &middot; ' + until(e.payload.due) : ''))
      .concat(mailbox.slice(consumed).map(e => 'in its mailbox: <code>' + esc(text(e.payload)) + '</code>'));
    const fields = [['id', d.id], ['type', d.type + ' v' + d.version], ['status', d.status], ['host', d.host], ['owner', d.owner || '-'],
      ['owner epoch', d.epoch], ['persistence points', d.persistence_points], ['steps', d.steps], ['created', ago(d.created_ms)],
      ['updated', ago(d.updated_ms)], ['input', text(d.input)], ['result', text(d.result)], ['error', d.error || ''],
      ['query state', text(d.query_state)], ['parent', d.parent || '']].filter(([k, v]) => v !== '' || k === 'input');
    return '<h2>Instance ' + esc(d.id) + '</h2>' + table('instance-card', ['field', 'value'], fields.map(([k, v]) => [k, esc(v)]), '') +
      '<h2>Current waits</h2><ul id="waits">' + (waits.length ? waits.map(w => '<li>' + w + '</li>').join('') :
        '<li class="muted">awaits nothing' + (d.status === 'waiting' || d.status === 'running' ? '' : ' (' + esc(d.status) + ')') + '</li>') + '</ul>' +
      '<h2>History (' + d.journal.length + ' entries)</h2>' + table('history', ['step', 'event', 'op', 'payload'],
        d.journal.map(e => [e.step, esc(e.event), esc(e.op), '<code>' + esc(short(text(e.payload), 200)) + '</code>']), 'no entries');
  })
};
function supText(s) {
  return esc(s.name || '') + ' ' + esc(s.strategy) + ', restarts ' + (s.restarts_in_period || 0) + '/' + (s.intensity || 0) +
    ' in ' + Math.round((s.period_ms || 0) / 1000) + 's';
}
function children(sup, n, key) {
  let out = '<ul class="tree">';
  for (const c of sup.children || []) {
    const k = key + '/' + c.id, figures = (n.hosts || {})[c.id] || {};
    let line = '<b>' + esc(c.id) + '</b> ' + esc(c.kind) + ' ' + esc(c.restart) + ' ' + yes(c.state === 'running', esc(c.state), esc(c.state)) +
      ' &middot; restarts ' + c.restarts + (c.unresponsive ? ' <span class="bad">(did not answer)</span>' : '') +
      (figures.instances_in_memory !== undefined ? ' &middot; ' + figures.instances_in_memory + ' instances in memory' : '') +
      (figures.throttle ? ' &middot; <span class="bad">THROTTLED: ' + esc(figures.throttle.cause) + '</span>' : '');
    if (c.supervisor) {
      out += '<li><details open data-key="' + esc(k) + '"><summary>' + line + ' [' + supText(c.supervisor) + ']</summary>' +
        children(c.supervisor, n, k) + '</details></li>';
    } else if (c.id === 'processing') {
      const types = Object.entries(n.orchestrations || {}), total = types.reduce((a, [, v]) => a + v, 0);
      out += '<li><details open data-key="' + esc(k) + '"><summary>' + line + '</summary><ul class="tree"><li class="leaf">orchestrations: ' +
        total + ' owned, unfinished<ul class="tree">' + types.map(([t, v]) => '<li class="leaf">' + esc(t) + ': ' + v + '</li>').join('') +
        '</ul></li></ul></details></li>';
    } else out += '<li>' + line + '</li>';
  }
  for (const e of sup.recent_exits || [])
    out += '<li class="bad">exit: ' + esc(e.child) + ' ' + esc(e.reason) + ' (' + esc(e.action) + ', ' + ago(e.at_ms) + ')</li>';
  return out + '</ul>';
}
const closed = new Set();
document.addEventListener('toggle', e => { const k = e.target.dataset && e.target.dataset.key;
  if (k) e.target.open ? closed.delete(k) : closed.add(k); }, true);
let generation = 0;
function render() {
  const hash = decodeURIComponent(location.hash.slice(1)) || 'overview';
  const [path, query] = hash.split('?'), params = new URLSearchParams(query || '');
  const name = path.startsWith('instance/') ? 'instance' : (views[path] ? path : 'overview');
  const id = name === 'instance' ? path.slice(9) : '';
  const main = document.getElementById('view'), mine = ++generation;
  for (const a of document.querySelectorAll('nav a')) a.className = a.getAttribute('href') === '#' + (name === 'instance' ? 'instances' : name) ? 'on' : '';
  if (main.dataset.view !== name + id) { main.dataset.ready = 'false'; main.dataset.view = name + id; }
  const header = get('/api/overview').then(o => document.getElementById('node').textContent = '· node ' + o.node.name +
    (o.node.serving ? '' : ' (not serving: ' + o.node.not_ready + ')')).catch(() => {});
  const shown = views[name](params, id).then(html => {
    if (mine !== generation) return;
    main.innerHTML = html;
    for (const d of main.querySelectorAll('details[data-key]')) if (closed.has(d.dataset.key)) d.open = false;
    main.dataset.ready = 'true';
    document.getElementById('status').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · refreshes every 2 s';
  }).catch(err => {
    if (mine !== generation) return;
    main.innerHTML = '<p class="bad" id="error">' + esc(err.message) + '</p>'; main.dataset.ready = 'error';
  });
  return Promise.all([header, shown]);
}
window.addEventListener('hashchange', render);
// A poll waits for the one before (a slow MessageBox must not pile requests up).
let polling = null;
setInterval(() => { if (!polling) polling = render().finally(() => polling = null); }, 2000);
render();
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
    // What the MessageBox holds (its newest instances, as this node reads them): the same
    // figures on every node, for a dashboard that scrapes any one of them.
    auto listed = svc->box->list_instances(sampled_instances);
    if (listed.error.empty()) {
      std::map<std::string, int64_t> by_status;
      for (auto s : {instance_status::pending, instance_status::running, instance_status::waiting,
                     instance_status::completed, instance_status::failed,
                     instance_status::suspended, instance_status::cancelled})
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
      res.set_header("X-Convoy-Now-Ms", std::to_string(wall_clock_ms()));
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
      // Only for paths no route took: a route's own 404 (an unknown instance) keeps its body.
      if (res.status == 404 && res.body.empty())
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
  // Each connection holds a thread while it is open: a browser keeps several open between
  // its polls, so idle ones are closed after a second, and there are threads for a few.
  impl_->server.set_keep_alive_timeout(1);
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(4); };
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
