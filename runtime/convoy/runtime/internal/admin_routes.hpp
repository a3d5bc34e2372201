#pragma once

// The admin endpoint's HTTP side (see admin.hpp): its routes, the decoding of their requests
// (paths, query strings, the bearer token) and its bounds, apart from where the answers come
// from. admin.cpp binds them to a node; tests/fuzz drives them with arbitrary requests.

#include "convoy/actors/json.hpp"
#include "convoy/persistence/message_box.hpp"

#include <functional>
#include <string>

namespace httplib {
class Server;
}

namespace convoy::runtime::internal {

/// Where the admin endpoint's answers come from.
struct admin_backend {
  std::function<std::string()> not_ready; ///< why the node is not ready, or ""
  std::function<std::string()> metrics;   ///< Prometheus text
  std::function<json()> overview;
  std::function<json()> trees;
  std::function<persistence::message_box::instance_list(size_t limit)> list_instances;
  std::function<persistence::instance_description(const std::string& id)> describe;
};

/// Bounds the server (request size, read and write time, keep-alive) and adds every route,
/// with the bearer-token check when `token` is not empty.
void serve_admin(httplib::Server& server, admin_backend backend, std::string token);

} // namespace convoy::runtime::internal
