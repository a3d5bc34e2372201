#pragma once

// Shared by the libFuzzer targets: how a broken property is reported, and how one input is
// split into several parts (a configuration file and its overrides, a queue entry's fields).

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace convoy::fuzz {

/// A broken property: print what and abort, which libFuzzer reports as a crash (a finding).
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "property broken: %s\n", what.c_str());
  std::abort();
}

/// Splits `bytes` at every `sep`; n separators give n + 1 parts.
inline std::vector<std::string> split(std::string_view bytes, char sep) {
  std::vector<std::string> parts;
  for (;;) {
    auto at = bytes.find(sep);
    parts.emplace_back(bytes.substr(0, at));
    if (at == std::string_view::npos)
      return parts;
    bytes.remove_prefix(at + 1);
  }
}

inline bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

} // namespace convoy::fuzz
