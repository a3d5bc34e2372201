#include "convoy/runtime/internal/admin_routes.hpp"

#include "convoy/runtime/internal/http_bounds.hpp"
#include "convoy/runtime/views.hpp"

#include <httplib.h>

#include <memory>

namespace convoy::runtime::internal {

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

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

void serve_admin(httplib::Server& server, admin_backend backend, std::string token) {
  // Bounded: small requests only (the API is read-only), slow clients time out.
  server.set_payload_max_length(64 * 1024);
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_keep_alive_max_count(20);
  auto b = std::make_shared<const admin_backend>(std::move(backend));
  auto json_reply = [](httplib::Response& res, const json& body, int status = 200) {
    res.status = status;
    res.set_content(dump(body), "application/json");
  };
  server.set_pre_routing_handler([token](const httplib::Request& req, httplib::Response& res) {
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
    if (res.status == 404)
      res.set_content(dump({{"error", "no such path: " + req.path.substr(0, 200)}}),
                      "application/json");
  });
}

} // namespace convoy::runtime::internal
