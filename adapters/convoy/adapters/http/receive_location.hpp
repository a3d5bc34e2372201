#pragma once

#include "convoy/actors/json.hpp"
#include "convoy/runtime/adapter.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace convoy::persistence {
class message_box;
}

namespace convoy::adapters {

/// `[receive_locations.NAME]` with `type = "http"`.
struct http_receive_config {
  std::string name;
  std::string host = "0.0.0.0";
  uint16_t port = 0;
  /// The path clients `POST` to.
  std::string path = "/";
  /// The type of the messages it publishes (what activation subscriptions match).
  std::string message_type;
  /// Properties every message gets; query parameters add more (`?customer=42`).
  std::map<std::string, std::string> properties;
  /// Larger bodies are answered 413 before they are read in full.
  size_t max_body_bytes = 1024 * 1024;
  /// Threads serving requests; connections beyond `threads` + `backlog` wait in the kernel.
  size_t threads = 4;
  size_t backlog = 64;
  /// Requests being persisted at once; more are answered 503 with Retry-After (throttled).
  size_t max_in_flight = 64;
  /// Longest a client may take to send a request, and a persist may take before 503.
  std::chrono::milliseconds request_timeout{5000};
  /// How long an `Idempotency-Key` is remembered.
  std::chrono::milliseconds idempotency_ttl{24 * 3600 * 1000};
  /// Retry-After (seconds) sent with 503.
  int retry_after_s = 1;
  /// Why the node's receive host is throttled now, or "" (see runtime/throttle.hpp): while
  /// it is, requests are answered 503 rather than adding to a backlog the node cannot follow.
  std::function<std::string()> host_throttled;
};

/// Reads an HTTP receive location's settings; returns an error naming NAME and the key.
std::string parse_http_receive(const std::string& name, const json& settings,
                               http_receive_config& out);

/// An HTTP receive location: `POST <path>` with a JSON body publishes it as a message and
/// answers `202 {"id": ...}` only after the MessageBox acknowledged it (the receive queue's
/// XADD, with the node's durability: WAIT when replicated). `400` malformed body or
/// parameters, `413` body over `max_body_bytes`, `503` + `Retry-After` when throttled or
/// when the MessageBox did not acknowledge (the client retries; with the same
/// `Idempotency-Key` a retry after a lost 202 gets the same id and publishes nothing twice).
/// Runs on every node that declares it: put any load balancer in front.
class http_receive_location final : public runtime::adapter {
public:
  http_receive_location(http_receive_config config, persistence::message_box& box,
                        std::string receive_host = "receive");
  ~http_receive_location() override;

  std::string describe() const override;
  std::string start() override;
  void stop() override;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace convoy::adapters
