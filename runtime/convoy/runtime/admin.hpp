#pragma once

// The node's admin endpoint: plain HTTP on `admin.listen` (default 127.0.0.1, any free port),
// read-only.
//
//   GET /livez                 200 while the process runs
//   GET /readyz                200 while the node serves (its tree runs and its last heartbeat
//                              reached the MessageBox within a lease), else 503 and why
//   GET /metrics               Prometheus text: instances in memory, persistence points and
//                              their latency histogram, relocations, supervisor restarts,
//                              throttle state, Redis servers seen changing, rollbacks, and
//                              the MessageBox's instances by status and their steps (newest
//                              1000, the same on every node)
//   GET /api/overview          this node, the MessageBox, every node, instance counts by
//                              status and failures grouped by error (newest 1000 instances)
//   GET /api/tree              every node's supervision tree as recorded, with the unfinished
//                              orchestrations it owns by type
//   GET /api/instances         ?limit=N&status=S&type=T, newest first
//   GET /api/instances/ID      one instance with its journal
//   GET /                      the dashboard: one page polling the JSON above, its views at
//                              #overview, #hosts, #tree, #instances[?status=S&type=T] and
//                              #instance/ID
//
// Every answer carries `X-Convoy-Now-Ms`, the node's wall clock, against which the dashboard
// shows ages.
//
// With `admin.token_env` naming a variable, every path but /livez and /readyz needs
// `Authorization: Bearer <its value>`. Requests have bounded size and time; the server runs a
// small fixed pool of threads, off the actor system.

#include "convoy/runtime/hosts.hpp"

#include <functional>
#include <memory>
#include <string>

namespace convoy::runtime {

class admin_server {
public:
  /// `serving` tells whether the node's supervision tree still runs.
  admin_server(std::shared_ptr<const host_services> svc, std::function<bool()> serving);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  /// Binds `listen` ("host:port", port 0: any free one) and starts serving. Returns the
  /// bound "host:port" or, prefixed with "error: ", why it could not.
  std::string start(const std::string& listen, const std::string& token);

  /// Stops serving and joins the server's threads. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace convoy::runtime
