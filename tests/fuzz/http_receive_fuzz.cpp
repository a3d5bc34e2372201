// libFuzzer target: an HTTP receive location's request handling (adapters/internal/
// http_request.hpp): one connection's bytes, served with the location's bounds and its
// request decoding on a real httplib::Server; a decoded message is answered 202 as if the
// MessageBox had acknowledged it.
//
// Properties: nothing makes the server answer 500 (an escaped exception) or write anything
// but HTTP responses; every JSON answer is valid JSON; a body over max_body_bytes is never
// handed to the decoder; a decoded message's body is valid JSON, its properties are valid
// names with 1-1024 printable characters plus `receive-location`, and its idempotency key is
// 1-256 printable characters or none; a rejection says why.

#include "convoy/adapters/internal/http_request.hpp"
#include "convoy/persistence/message_box.hpp"
#include "fuzz/fuzz_support.hpp"
#include "fuzz/http_harness.hpp"

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace {

using namespace convoy;
using namespace convoy::adapters;

constexpr size_t max_body = 4096;

/// 1 to `max` bytes, none a control character (the oracle, written apart from the decoder's).
bool printable(const std::string& s, size_t max) {
  auto control = [](unsigned char c) { return c < 0x20 || c == 0x7f; };
  return !s.empty() && s.size() <= max && std::none_of(s.begin(), s.end(), control);
}

void check_message(const internal::http_message& m) {
  if (!json::accept(m.body))
    fuzz::fail("a decoded message whose body is not JSON");
  if (m.properties.count("receive-location") == 0 || m.properties.at("receive-location") != "orders")
    fuzz::fail("a decoded message without its receive-location property");
  for (const auto& [k, v] : m.properties)
    if (!persistence::valid_name(k) || !printable(v, 1024))
      fuzz::fail("a decoded message with an invalid property '" + k + "'");
  if (!m.idempotency_key.empty() && !printable(m.idempotency_key, 256))
    fuzz::fail("a decoded message with an invalid idempotency key");
}

fuzz::memory_server& server() {
  static fuzz::memory_server s;
  static bool ready = [] {
    static http_receive_config config;
    config.name = "orders";
    config.path = "/orders";
    config.message_type = "order";
    config.properties = {{"source", "web"}};
    config.max_body_bytes = max_body;
    internal::bound_http_server(s, config);
    s.Post(config.path, [](const httplib::Request& req, httplib::Response& res) {
      if (req.body.size() > max_body)
        fuzz::fail("a body over max_body_bytes reached the handler");
      auto key = req.get_header_value("Idempotency-Key");
      auto decoded = internal::decode_http_request(
        config, req.body, req.params, req.has_header("Idempotency-Key") ? &key : nullptr);
      if (auto* why = std::get_if<std::string>(&decoded)) {
        if (why->empty())
          fuzz::fail("a rejected request without a reason");
        internal::answer(res, 400, {{"error", *why}});
        return;
      }
      check_message(std::get<internal::http_message>(decoded));
      internal::answer(res, 202, {{"id", "orders-1"}, {"duplicate", false}});
    });
    return true;
  }();
  (void) ready;
  return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto responses = server().serve({reinterpret_cast<const char*>(data), size});
  for (const auto& r : responses) {
    if (r.status == -1)
      fuzz::fail("the server wrote something that is not an HTTP response");
    if (r.status >= 500)
      fuzz::fail("a request made the receive location answer " + std::to_string(r.status) + ": "
                 + r.body);
    if (r.content_type == "application/json" && !r.ranged && !json::accept(r.body))
      fuzz::fail("a JSON answer that is not JSON: " + r.body);
  }
  return 0;
}
