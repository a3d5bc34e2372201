// libFuzzer target: the admin endpoint's request handling (runtime/internal/admin_routes.hpp):
// one connection's bytes, served by the node's own routes and bounds on a real
// httplib::Server, answered from a fixed backend. Each input is served twice, without a
// token and with one.
//
// Properties: no request makes a handler throw (httplib would answer 500) or the server write
// something that is not an HTTP response; every JSON answer is valid JSON; with a token, a
// protected path answers only to a request that carries it; the instance list answers 200 or
// 400 (a bad limit), never more instances than asked for.

#include "convoy/runtime/internal/admin_routes.hpp"
#include "fuzz/fuzz_support.hpp"
#include "fuzz/http_harness.hpp"

#include <cstdint>
#include <string_view>

namespace {

using namespace convoy;
using namespace convoy::runtime;

constexpr std::string_view token = "s3cret";

instance_record record(size_t i) {
  instance_record r;
  r.id = "order-" + std::to_string(i);
  r.type = i % 2 ? "order" : "t\xff\x01y"; // stored bytes need not be UTF-8
  r.status = i % 3 ? instance_status::completed : instance_status::failed;
  r.error = i % 3 ? "" : "boom \"quoted\" \n\x80";
  r.input = "{\"a\":1}";
  return r;
}

internal::admin_backend backend() {
  internal::admin_backend b;
  b.not_ready = [] { return std::string(); };
  b.metrics = [] { return std::string("convoy_node_serving{node=\"n\"} 1\n"); };
  b.overview = [] { return json{{"node", {{"name", "n"}}}}; };
  b.trees = [] { return json{{"nodes", json::array()}}; };
  b.list_instances = [](size_t limit) {
    persistence::message_box::instance_list out;
    for (size_t i = 0; i < std::min<size_t>(limit, 4); ++i)
      out.instances.push_back(record(i));
    return out;
  };
  b.describe = [](const std::string& id) {
    persistence::instance_description d;
    if (id.rfind("e", 0) == 0)
      d.error = "the MessageBox is unreachable";
    else if (id.rfind("order-", 0) == 0) {
      d.found = true;
      d.record = record(id.size());
      d.record.id = id;
    }
    return d;
  };
  return b;
}

fuzz::memory_server& server(bool with_token) {
  static fuzz::memory_server open, guarded;
  static bool ready = [] {
    internal::serve_admin(open, backend(), "");
    internal::serve_admin(guarded, backend(), std::string(token));
    return true;
  }();
  (void) ready;
  return with_token ? guarded : open;
}

void check(const std::vector<fuzz::response>& responses) {
  for (const auto& r : responses) {
    if (r.status == -1)
      fuzz::fail("the server wrote something that is not an HTTP response");
    if (r.status >= 500 && r.status != 503)
      fuzz::fail("a request made the admin endpoint answer " + std::to_string(r.status) + ": "
                 + r.body);
    if (r.content_type == "application/json" && !r.ranged && !json::accept(r.body))
      fuzz::fail("a JSON answer that is not JSON: " + r.body);
    if (r.content_type == "application/json" && !r.ranged && r.status == 200) {
      auto body = json::parse(r.body);
      if (body.contains("instances") && body["instances"].size() > 4)
        fuzz::fail("more instances than the backend listed");
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto open = server(false).serve(input);
  check(open);
  auto guarded = server(true).serve(input);
  check(guarded);
  bool carries_token = input.find(token) != std::string_view::npos
                       || input.find('%') != std::string_view::npos;
  for (const auto& r : guarded)
    if (r.status == 200 && !carries_token && r.path != "/livez" && r.path != "/readyz")
      fuzz::fail("a protected path answered 200 to a request without the token: " + r.body);
  return 0;
}
