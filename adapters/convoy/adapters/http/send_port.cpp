#include "convoy/adapters/http/send_port.hpp"

#include "convoy/adapters/internal/settings.hpp"
#include "convoy/persistence/keys.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace convoy::adapters {

namespace {

/// Splits `http[s]://authority/path` into the part httplib::Client takes and the path.
bool split_url(const std::string& url, std::string& origin, std::string& path) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return false;
  auto scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    return false;
  auto slash = url.find('/', scheme_end + 3);
  origin = url.substr(0, slash);
  path = slash == std::string::npos ? "/" : url.substr(slash);
  return origin.size() > scheme_end + 3;
}

bool retryable_status(int status) {
  return status == 408 || status == 429 || status >= 500;
}

} // namespace

std::string http_send_activity(const std::string& port) {
  return "http-send:" + port;
}

std::string parse_http_send(const std::string& name, const json& object, http_send_config& out) {
  out = http_send_config{}; // every key not given takes its default, not a previous value
  internal::settings s("send_ports." + name, object);
  out.name = name;
  s.text("type", "http");
  out.url = s.text("url", "", true);
  out.method = s.text("method", out.method);
  out.headers = s.strings("headers");
  out.timeout = s.ms("timeout_ms", out.timeout, std::chrono::milliseconds(10),
                     std::chrono::minutes(10));
  out.max_response_bytes = static_cast<size_t>(
    s.integer("max_response_bytes", static_cast<int64_t>(out.max_response_bytes), 0,
              static_cast<int64_t>(persistence::max_payload_bytes) / 2));
  out.credential = s.text("credential", "");
  out.credential_header = s.text("credential_header", out.credential_header);
  if (auto prefix = s.value("credential_prefix", out.credential_prefix); prefix.is_string())
    out.credential_prefix = prefix.get<std::string>();
  else
    s.fail("credential_prefix", "must be a string");
  out.policy = internal::send_port_policy(s);
  std::string origin, path;
  if (!out.url.empty() && !split_url(out.url, origin, path))
    s.fail("url", "'" + out.url + "' is not an http:// or https:// URL");
  if (out.method != "POST" && out.method != "PUT")
    s.fail("method", "'" + out.method + "' must be POST or PUT");
  for (const auto& [k, v] : out.headers)
    if (k.empty() || k.find_first_of(":\r\n ") != std::string::npos
        || v.find_first_of("\r\n") != std::string::npos)
      s.fail("headers." + k, "is not a valid HTTP header");
  if (!persistence::valid_name(http_send_activity(name)))
    s.fail("", "the port name must be 1-118 characters of [A-Za-z0-9._:-]");
  return s.error();
}

void register_http_send(registry& reg, http_send_config config, credential_resolver resolver) {
  auto name = http_send_activity(config.name);
  auto policy = config.policy;
  reg.add_activity(
    name,
    [config = std::move(config), resolver = std::move(resolver)](
      const activity_context& ctx, const json& args) -> activity_result {
      std::string origin, path;
      split_url(config.url, origin, path); // validated when the port was declared
      httplib::Headers headers(config.headers.begin(), config.headers.end());
      headers.emplace("Idempotency-Key", ctx.idempotency_key);
      if (!config.credential.empty()) {
        std::string error;
        auto secret = resolver ? resolver(config.credential, error) : std::nullopt;
        if (!secret)
          return activity_result::failure("send port " + config.name + ": credential '"
                                            + config.credential + "' is unavailable: "
                                            + (resolver ? error : "no credential store"),
                                          "credential");
        headers.emplace(config.credential_header, config.credential_prefix + *secret);
      }
      auto timeout = config.timeout;
      if (ctx.deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *ctx.deadline - std::chrono::system_clock::now());
        timeout = std::clamp(left, std::chrono::milliseconds(1), timeout);
      }
      httplib::Client client(origin);
      client.set_connection_timeout(timeout);
      client.set_read_timeout(timeout);
      client.set_write_timeout(timeout);
      httplib::Request req;
      req.method = config.method;
      req.path = path;
      req.headers = std::move(headers);
      req.body = args.dump();
      req.set_header("Content-Type", "application/json");
      std::string received;
      bool too_large = false;
      req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (received.size() + n > config.max_response_bytes) {
          too_large = true;
          return false;
        }
        received.append(data, n);
        return true;
      };
      auto result = client.send(req);
      auto where = config.method + " " + config.url;
      if (too_large)
        return activity_result::failure("send port " + config.name + ": the response to " + where
                                          + " is over "
                                          + std::to_string(config.max_response_bytes) + " bytes",
                                        "rejected");
      if (!result)
        return activity_result::failure("send port " + config.name + ": " + where + " failed: "
                                          + httplib::to_string(result.error()),
                                        "transient");
      auto status = result->status;
      if (status < 200 || status > 299) {
        // Quoted, and bytes that are not UTF-8 replaced: the text ends up in JSON records.
        auto snippet = json(received.substr(0, 200)).dump(-1, ' ', false,
                                                          json::error_handler_t::replace);
        return activity_result::failure("send port " + config.name + ": " + where + " answered "
                                          + std::to_string(status) + " " + snippet,
                                        retryable_status(status) ? "transient" : "rejected");
      }
      auto body = json::parse(received, nullptr, false);
      if (body.is_discarded()) // not JSON: kept as text, bytes that are not UTF-8 replaced
        body = json::parse(json(received).dump(-1, ' ', false, json::error_handler_t::replace));
      return activity_result::success(json{{"status", status}, {"body", std::move(body)}});
    },
    std::move(policy));
}

} // namespace convoy::adapters
