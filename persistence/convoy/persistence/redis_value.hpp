#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convoy::persistence {

/// An owned copy of a Redis reply (RESP2), safe to move across threads and into actors.
struct redis_value {
  enum class type : uint8_t { nil, integer, string, status, error, array };

  type kind = type::nil;
  int64_t integer = 0;
  /// Bulk string, status or error text.
  std::string str;
  std::vector<redis_value> elements;

  static redis_value error(std::string text) {
    redis_value v;
    v.kind = type::error;
    v.str = std::move(text);
    return v;
  }

  bool is_error() const noexcept { return kind == type::error; }
  bool is_nil() const noexcept { return kind == type::nil; }
  bool is_array() const noexcept { return kind == type::array; }
  /// True for errors that mean "the command may or may not have run": the connection was
  /// lost, could not be made, or the server is not a writable master (yet).
  bool outcome_unknown() const noexcept;
  /// Renders any reply as text (for CLI output and error messages).
  std::string to_text() const;
};

/// Prefix of errors produced by the client itself rather than by the server.
inline constexpr std::string_view connection_error_prefix = "CONNECTION ";

} // namespace convoy::persistence
