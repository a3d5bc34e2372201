#pragma once

/// @file
/// JSON text of the values orchestrations pass most (integers, booleans, plain ASCII strings)
/// without building an nlohmann value, and back. Byte for byte what `json(v).dump()` and
/// `json::parse(text).get<T>()` give: the journal's payloads and operation hashes do not
/// change. Anything else (user types, floats, strings that need escaping, unusual spellings
/// such as "1.0" or " 1") goes through nlohmann.

#include "convoy/actors/json.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace convoy::detail {

/// The integer types written with `std::to_chars` (not bool, not the character types, which
/// nlohmann treats on their own terms).
template <class T>
inline constexpr bool is_plain_integer_v
  = std::is_same_v<T, short> || std::is_same_v<T, int> || std::is_same_v<T, long>
    || std::is_same_v<T, long long> || std::is_same_v<T, unsigned short>
    || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long>
    || std::is_same_v<T, unsigned long long>;

/// True when `s` is written by nlohmann's dump as it is, between quotes: printable ASCII
/// without `"` and `\`.
inline bool is_plain_ascii(std::string_view s) noexcept {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\')
      return false;
  return true;
}

/// Appends the JSON text of the string `s` to `out`.
inline void append_json_string(std::string& out, std::string_view s) {
  if (is_plain_ascii(s)) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += json(std::string(s)).dump();
  }
}

/// `json(value).dump()`.
template <class T>
std::string to_json_text(const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (is_plain_integer_v<T>) {
    char buf[24];
    auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
    return std::string(buf, end);
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>
                       || (std::is_array_v<T>
                           && std::is_same_v<std::remove_cv_t<std::remove_extent_t<T>>, char>)) {
    std::string out;
    append_json_string(out, std::string_view(value));
    return out;
  } else {
    return json(value).dump();
  }
}

/// The integer `text` spells when it is a plain JSON integer of at most 18 digits (so it fits
/// an int64_t), else nothing.
inline std::optional<int64_t> plain_integer(std::string_view text) noexcept {
  size_t i = text.size() > 0 && text[0] == '-' ? 1 : 0;
  size_t digits = text.size() - i;
  if (digits == 0 || digits > 18 || (text[i] == '0' && digits > 1))
    return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return v;
}

/// `json::parse(text).get<R>()`.
template <class R>
R from_json_text(const std::string& text) {
  if constexpr (is_plain_integer_v<R>) {
    if (auto v = plain_integer(text))
      return static_cast<R>(*v);
  } else if constexpr (std::is_same_v<R, bool>) {
    if (text == "true")
      return true;
    if (text == "false")
      return false;
  } else if constexpr (std::is_same_v<R, std::string>) {
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
      auto inner = std::string_view(text).substr(1, text.size() - 2);
      if (is_plain_ascii(inner))
        return std::string(inner);
    }
  }
  return json::parse(text).template get<R>();
}

} // namespace convoy::detail
