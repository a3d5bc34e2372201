#include "convoy/runtime/internal/admin_routes.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/runtime/internal/http_bounds.hpp"
#include "convoy/runtime/views.hpp"

#include <httplib.h>

#include <memory>

namespace convoy::runtime::internal {

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

bool authorized(const std::string& token, const httplib::Request& req) {
  if (token.empty())
    return true;
  auto header = req.get_header_value("Authorization");
  return header == "Bearer " + token
         || (req.has_param("token") && req.get_param_value("token") == token);
}

/// JSON text of `body`. Stored text (an instance's error, a path) need not be UTF-8: bytes
/// that are not become U+FFFD instead of an exception (an answer 500). Found by
/// tests/fuzz/admin_request_fuzz, as a 404 whose path held a control character, which the
/// hand-built body left unescaped (not JSON).
std::string dump(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

void serve_admin(httplib::Server& server, admin_backend backend, std::string token) {
  // Bounded: small requests only (the API is read-only), slow clients time out.
  server.set_payload_max_length(64 * 1024);
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_keep_alive_max_count(20);
  // Each connection holds a thread while it is open: a browser keeps several open between
  // its polls, so idle ones are closed after a second.
  server.set_keep_alive_timeout(1);
  auto b = std::make_shared<const admin_backend>(std::move(backend));
  auto json_reply = [](httplib::Response& res, const json& body, int status = 200) {
    res.status = status;
    res.set_content(dump(body), "application/json");
  };
  server.set_pre_routing_handler([token](const httplib::Request& req, httplib::Response& res) {
    // The node's clock, so the dashboard computes ages against it (not the browser's).
    res.set_header("X-Convoy-Now-Ms", std::to_string(wall_clock_ms()));
    // Read-only: a request with a body is refused before it is read (see unbounded_body).
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_header("Connection", "close");
      res.set_content(dump({{"error", "the admin endpoint is read-only (GET)"}}), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (auto [status, why] = unbounded_body(req); status != 0) {
      res.status = status;
      res.set_header("Connection", "close");
      res.set_content(dump({{"error", why}}), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.path == "/livez" || req.path == "/readyz" || authorized(token, req))
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer");
    res.set_content("{\"error\":\"missing or wrong bearer token\"}", "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/livez", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz", [b](const httplib::Request&, httplib::Response& res) {
    auto why = b->not_ready();
    res.status = why.empty() ? 200 : 503;
    res.set_content(why.empty() ? "ready\n" : "not ready: " + why + "\n", "text/plain");
  });
  server.Get("/metrics", [b](const httplib::Request&, httplib::Response& res) {
    res.set_content(b->metrics(), "text/plain; version=0.0.4");
  });
  server.Get("/api/overview", [b, json_reply](const httplib::Request&, httplib::Response& res) {
    json_reply(res, b->overview());
  });
  server.Get("/api/tree", [b, json_reply](const httplib::Request&, httplib::Response& res) {
    json_reply(res, b->trees());
  });
  server.Get("/api/instances", [b, json_reply](const httplib::Request& req,
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
    auto listed = b->list_instances(limit);
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
             [b, json_reply](const httplib::Request& req, httplib::Response& res) {
               auto d = b->describe(req.matches[1]);
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
      res.set_content(dump({{"error", "no such path: " + req.path.substr(0, 200)}}),
                      "application/json");
  });
}

} // namespace convoy::runtime::internal
