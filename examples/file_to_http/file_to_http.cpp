// File -> HTTP: files dropped into a folder (or orders POSTed over HTTP) become orchestrations
// that call a local HTTP service through a send port and write a receipt file through
// another. The ports are declared in the node configuration (file_to_http/node.toml); the
// orchestration only names them.

#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"

namespace convoy::examples {

/// One incoming order (a file's JSON, or an HTTP body): sent to the orders service, which
/// sees the call's idempotency key as its `Idempotency-Key` header (so a retried or
/// re-run call is processed once), then a receipt `receipt-<instance>.json` is written.
orchestration<json> file_to_http(context& ctx, json order) {
  auto reply = co_await ctx.call<json>("http-send:orders-api", order);
  json receipt{{"instance", ctx.instance_id()},
               {"order", order},
               {"status", reply.value("status", 0)},
               {"answer", reply.value("body", json())}};
  json write{{"file", "receipt-" + ctx.instance_id() + ".json"}, {"content", receipt}};
  auto written = co_await ctx.call<json>("file-send:receipts", write);
  co_return written;
}

void register_file_to_http(registry& reg) {
  reg.add_orchestration("file-to-http", 1, &file_to_http);
  // Every "intake-order" message (from the inbox folder or the HTTP endpoint) starts one.
  reg.activate_on("intake-order", "file-to-http");
}

} // namespace convoy::examples
