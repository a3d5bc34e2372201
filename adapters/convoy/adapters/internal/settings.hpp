#pragma once

#include "convoy/actors/context.hpp"
#include "convoy/actors/json.hpp"
#include "convoy/actors/registry.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace convoy::adapters::internal {

/// Reads one declaration's settings (`[receive_locations.NAME]` as JSON) and keeps the first
/// problem, named as `receive_locations.NAME.key`. Every key read is remembered, so a key
/// nobody reads (a misspelling) is an error too, not a silently ignored default.
class settings {
public:
  settings(std::string where, const json& object);

  std::string text(const std::string& key, std::string fallback, bool required = false);
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max);
  std::chrono::milliseconds ms(const std::string& key, std::chrono::milliseconds fallback,
                               std::chrono::milliseconds min, std::chrono::milliseconds max);
  bool flag(const std::string& key, bool fallback);
  /// A table of strings, e.g. `headers = { X-Source = "convoy" }`.
  std::map<std::string, std::string> strings(const std::string& key);
  /// Any JSON value, as given.
  json value(const std::string& key, json fallback);
  /// `retry = { max_attempts, initial_backoff_ms, max_backoff_ms, multiplier }`.
  retry_policy retry(const std::string& key, retry_policy fallback);

  /// Records a problem with `key` (the first one wins).
  void fail(const std::string& key, const std::string& what);

  /// The first problem, or the first key nobody read, or "".
  std::string error() const;

private:
  const json* find(const std::string& key);

  std::string where_;
  const json& object_;
  std::set<std::string> read_;
  std::string error_;
};

/// A send port's `retry` and `suspend_when_exhausted`: failures of kind "rejected" (the target
/// refused the request itself) are never retried; others, past the policy, suspend.
activity_policy send_port_policy(settings& s);

/// SHA-256 of `data` in lowercase hex (64 characters).
std::string sha256_hex(const std::string& data);

/// 16 random lowercase hex characters.
std::string random_hex();

} // namespace convoy::adapters::internal
