#pragma once

#include "convoy/actors/registry.hpp"
#include "convoy/adapters/credentials.hpp"

#include <chrono>
#include <map>
#include <string>

namespace convoy::adapters {

/// `[send_ports.NAME]` with `type = "http"`.
struct http_send_config {
  std::string name;
  /// `http://host:port/path` or `https://...`.
  std::string url;
  std::string method = "POST";
  std::map<std::string, std::string> headers;
  /// Connect and read timeout of one attempt (the call's attempt_timeout may shorten it).
  std::chrono::milliseconds timeout{10000};
  /// Larger responses fail the attempt.
  size_t max_response_bytes = 1024 * 1024;
  /// Name of a credential sent as `credential_header: credential_prefix<credential>`.
  std::string credential;
  std::string credential_header = "Authorization";
  std::string credential_prefix = "Bearer ";
  activity_policy policy;
};

std::string parse_http_send(const std::string& name, const json& settings, http_send_config& out);

/// The activity name of HTTP send port `port`: orchestrations call `ctx.call("http-send:NAME", body)`.
std::string http_send_activity(const std::string& port);

/// Registers send port `config` as the activity `http-send:NAME`: it sends the call's
/// arguments as a JSON body with an `Idempotency-Key` header (the call's `instance/step`,
/// the same on every attempt and after any crash, so the receiver can drop repeats) and
/// returns `{"status": code, "body": response}`. 2xx succeeds; 408, 429, 5xx and transport
/// errors are retried by the port's policy and then suspend the request (resumable); other
/// answers fail the call at once (kind "rejected": sending it again would not help).
void register_http_send(registry& reg, http_send_config config, credential_resolver resolver);

} // namespace convoy::adapters
