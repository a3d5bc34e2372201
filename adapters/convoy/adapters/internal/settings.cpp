#include "convoy/adapters/internal/settings.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <stdexcept>

namespace convoy::adapters::internal {

settings::settings(std::string where, const json& object)
  : where_(std::move(where)), object_(object) {
  if (!object_.is_object())
    error_ = where_ + " must be a table";
}

const json* settings::find(const std::string& key) {
  read_.insert(key);
  if (!object_.is_object())
    return nullptr;
  auto i = object_.find(key);
  return i == object_.end() ? nullptr : &*i;
}

void settings::fail(const std::string& key, const std::string& what) {
  if (error_.empty())
    error_ = where_ + "." + key + " " + what;
}

std::string settings::text(const std::string& key, std::string fallback, bool required) {
  auto v = find(key);
  if (!v) {
    if (required)
      fail(key, "is required");
    return fallback;
  }
  if (!v->is_string() || v->get<std::string>().empty()) {
    fail(key, "must be a non-empty string");
    return fallback;
  }
  return v->get<std::string>();
}

int64_t settings::integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  auto v = find(key);
  if (!v)
    return fallback;
  if (!v->is_number_integer() || v->get<int64_t>() < min || v->get<int64_t>() > max) {
    fail(key, "must be an integer between " + std::to_string(min) + " and "
                + std::to_string(max));
    return fallback;
  }
  return v->get<int64_t>();
}

std::chrono::milliseconds settings::ms(const std::string& key, std::chrono::milliseconds fallback,
                                       std::chrono::milliseconds min,
                                       std::chrono::milliseconds max) {
  return std::chrono::milliseconds(integer(key, fallback.count(), min.count(), max.count()));
}

bool settings::flag(const std::string& key, bool fallback) {
  auto v = find(key);
  if (!v)
    return fallback;
  if (!v->is_boolean()) {
    fail(key, "must be true or false");
    return fallback;
  }
  return v->get<bool>();
}

std::map<std::string, std::string> settings::strings(const std::string& key) {
  std::map<std::string, std::string> out;
  auto v = find(key);
  if (!v)
    return out;
  if (!v->is_object()) {
    fail(key, "must be a table of strings");
    return out;
  }
  for (const auto& [k, x] : v->items()) {
    if (!x.is_string()) {
      fail(key + "." + k, "must be a string");
      return {};
    }
    out[k] = x.get<std::string>();
  }
  return out;
}

json settings::value(const std::string& key, json fallback) {
  auto v = find(key);
  return v ? *v : fallback;
}

retry_policy settings::retry(const std::string& key, retry_policy fallback) {
  auto v = find(key);
  if (!v)
    return fallback;
  if (!v->is_object()) {
    fail(key, "must be a table { max_attempts, initial_backoff_ms, max_backoff_ms, multiplier }");
    return fallback;
  }
  settings inner(where_ + "." + key, *v);
  retry_policy p = fallback;
  p.max_attempts = static_cast<uint32_t>(inner.integer("max_attempts", p.max_attempts, 1, 1000));
  p.initial_backoff = inner.ms("initial_backoff_ms", p.initial_backoff,
                               std::chrono::milliseconds(1), std::chrono::hours(24));
  p.max_backoff = inner.ms("max_backoff_ms", p.max_backoff, std::chrono::milliseconds(1),
                           std::chrono::hours(24));
  if (auto m = inner.find("multiplier")) {
    if (!m->is_number() || m->get<double>() < 1.0 || m->get<double>() > 100.0)
      inner.fail("multiplier", "must be a number between 1 and 100");
    else
      p.multiplier = m->get<double>();
  }
  if (p.max_backoff < p.initial_backoff)
    inner.fail("max_backoff_ms", "must not be below initial_backoff_ms");
  if (auto err = inner.error(); !err.empty() && error_.empty())
    error_ = err;
  return p;
}

std::string settings::error() const {
  if (!error_.empty())
    return error_;
  for (const auto& [k, v] : object_.items())
    if (read_.count(k) == 0)
      return where_ + ": unknown key '" + k + "'";
  return {};
}

activity_policy send_port_policy(settings& s) {
  retry_policy defaults;
  defaults.max_attempts = 5;
  defaults.initial_backoff = std::chrono::milliseconds(500);
  defaults.max_backoff = std::chrono::milliseconds(30000);
  activity_policy out;
  out.retry = s.retry("retry", defaults);
  out.retry.non_retryable = {"rejected"};
  out.suspend_when_exhausted = s.flag("suspend_when_exhausted", true);
  return out;
}

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("EVP_Digest(SHA-256) failed");
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", digest[i]);
    out += buf;
  }
  return out;
}

std::string random_hex() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  std::string out;
  char buf[3];
  for (auto b : bytes) {
    std::snprintf(buf, sizeof(buf), "%02x", b);
    out += buf;
  }
  return out;
}

} // namespace convoy::adapters::internal
