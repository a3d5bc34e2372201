#pragma once

#include <functional>
#include <optional>
#include <string>

namespace convoy::adapters {

/// Looks up the credential named `name` (from the credential store, decrypted with the
/// master secret). Returns it, or nothing and sets `error` to why not. Called on send host
/// worker threads, once per attempt, so a rotated credential takes effect at the next one.
using credential_resolver =
  std::function<std::optional<std::string>(const std::string& name, std::string& error)>;

} // namespace convoy::adapters
