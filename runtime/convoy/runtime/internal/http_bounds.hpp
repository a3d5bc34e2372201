#pragma once

// What the node's HTTP servers (the admin endpoint, HTTP receive locations) refuse before
// reading a body. Include only where httplib.h is included anyway.

#include <httplib.h>

#include <string>
#include <utility>

namespace convoy::runtime::internal {

/// Why `req`'s body would be read without the server's size bound, as a status (411, 415)
/// and a reason; {0, ""} when it would not. httplib 0.11 applies set_payload_max_length only
/// to a body with a Content-Length: a chunked body, or a POST's body without a length, it
/// reads to its end whatever its size, and a gzip, deflate or brotli body it inflates without a
/// bound. Found by tests/fuzz/http_receive_fuzz (a body over max_body_bytes reached the
/// handler); call it from a pre-routing handler, which runs before any body is read.
inline std::pair<int, std::string> unbounded_body(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding"))
    return {411, "a body must come with a Content-Length (no Transfer-Encoding)"};
  const auto& m = req.method;
  bool has_body = m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE" || m == "PRI";
  if (has_body && !req.has_header("Content-Length"))
    return {411, "a body must come with a Content-Length"};
  if (req.has_header("Content-Encoding") && req.get_header_value("Content-Encoding") != "identity")
    return {415, "compressed bodies (Content-Encoding) are not accepted"};
  return {0, {}};
}

} // namespace convoy::runtime::internal
