#pragma once

// An HTTP receive location's request handling apart from its socket and the MessageBox:
// the server's bounds and the decoding of a request into the message it publishes. The
// receive location uses both; tests/fuzz drives them with arbitrary requests.

#include "convoy/adapters/http/receive_location.hpp"

#include <map>
#include <string>
#include <variant>

namespace httplib {
class Server;
struct Response;
}

namespace convoy::adapters::internal {

/// Deepest nesting of arrays and objects a body may have. nlohmann::json parses any depth
/// but serialises (and compares) recursively: a 1 MiB body of `[` nested 500 000 deep would
/// overflow a server thread's stack when the message is written out.
inline constexpr size_t max_json_depth = 512;

/// What a request publishes.
struct http_message {
  std::string body; ///< the JSON body, as compact JSON text
  std::map<std::string, std::string> properties;
  std::string idempotency_key; ///< "" when the request has none
};

/// Decodes a request's body (JSON), query parameters (properties) and Idempotency-Key header
/// (`idempotency_key` null: none) with `config`'s properties; returns the message, or why
/// the request is malformed (answered 400).
std::variant<http_message, std::string>
decode_http_request(const http_receive_config& config, const std::string& body,
                    const std::multimap<std::string, std::string>& params,
                    const std::string* idempotency_key);

/// Answers `status` with `body` as JSON.
void answer(httplib::Response& res, int status, const json& body);

/// Applies `config`'s bounds to `server`: body size (413 beyond it, before it is read), read
/// and write time, keep-alive.
void bound_http_server(httplib::Server& server, const http_receive_config& config);

} // namespace convoy::adapters::internal
