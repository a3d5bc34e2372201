#include "convoy/actors/journal.hpp"

#include <cstring>

namespace convoy {

std::string_view to_string(errc x) noexcept {
  switch (x) {
    case errc::none: return "none";
    case errc::malformed: return "malformed";
    case errc::too_large: return "too_large";
    case errc::stale_epoch: return "stale_epoch";
    case errc::unavailable: return "unavailable";
    case errc::store_error: return "store_error";
    case errc::nondeterminism: return "nondeterminism";
    case errc::unknown_type: return "unknown_type";
    case errc::no_such_instance: return "no_such_instance";
    case errc::bad_config: return "bad_config";
  }
  return "unknown";
}

std::string_view to_string(op_kind x) noexcept {
  switch (x) {
    case op_kind::call: return "call";
    case op_kind::sleep: return "sleep";
    case op_kind::receive: return "receive";
    case op_kind::now: return "now";
    case op_kind::random: return "random";
    case op_kind::child: return "child";
    case op_kind::signal: return "signal";
  }
  return "unknown-op";
}

std::string_view to_string(entry_event x) noexcept {
  switch (x) {
    case entry_event::scheduled: return "scheduled";
    case entry_event::completed: return "completed";
    case entry_event::failed: return "failed";
    case entry_event::recorded: return "recorded";
    case entry_event::cancelled: return "cancelled";
    case entry_event::arrived: return "arrived";
    case entry_event::consumed: return "consumed";
  }
  return "unknown-event";
}

namespace {

constexpr size_t header_size = 2 + 1 + 1 + 1 + 4 + 8 + 4;

template <class T>
void put(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xFF));
}

template <class T>
T get(const char* p) {
  uint64_t value = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    value |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return static_cast<T>(value);
}

bool valid(op_kind x) {
  auto n = static_cast<uint8_t>(x);
  return n >= 1 && n <= max_op_kind;
}

bool valid(entry_event x) {
  auto n = static_cast<uint8_t>(x);
  return n >= 1 && n <= max_entry_event;
}

} // namespace

std::string encode(const journal_entry& entry) {
  std::string out;
  out.reserve(header_size + entry.payload.size());
  out.push_back('C');
  out.push_back('J');
  put<uint8_t>(out, journal_format_version);
  put<uint8_t>(out, static_cast<uint8_t>(entry.event));
  put<uint8_t>(out, static_cast<uint8_t>(entry.op));
  put<uint32_t>(out, entry.step);
  put<uint64_t>(out, entry.op_hash);
  put<uint32_t>(out, static_cast<uint32_t>(entry.payload.size()));
  out += entry.payload;
  return out;
}

std::variant<journal_entry, decode_error> decode_journal_entry(std::string_view bytes) {
  auto fail = [](errc code, std::string msg) { return decode_error{code, std::move(msg)}; };
  if (bytes.size() < header_size)
    return fail(errc::malformed, "journal entry truncated: " + std::to_string(bytes.size())
                                   + " bytes, header needs " + std::to_string(header_size));
  if (bytes[0] != 'C' || bytes[1] != 'J')
    return fail(errc::malformed, "journal entry has no 'CJ' magic");
  const char* p = bytes.data() + 2;
  auto version = get<uint8_t>(p);
  if (version != journal_format_version)
    return fail(errc::malformed,
                "journal entry has unsupported format version " + std::to_string(version));
  journal_entry entry;
  entry.event = static_cast<entry_event>(get<uint8_t>(p + 1));
  entry.op = static_cast<op_kind>(get<uint8_t>(p + 2));
  if (!valid(entry.event))
    return fail(errc::malformed, "journal entry has unknown event "
                                   + std::to_string(static_cast<int>(entry.event)));
  if (!valid(entry.op))
    return fail(errc::malformed, "journal entry has unknown operation "
                                   + std::to_string(static_cast<int>(entry.op)));
  entry.step = get<uint32_t>(p + 3);
  entry.op_hash = get<uint64_t>(p + 7);
  auto length = get<uint32_t>(p + 15);
  if (length > max_journal_payload)
    return fail(errc::too_large, "journal entry payload of " + std::to_string(length)
                                   + " bytes exceeds the limit of "
                                   + std::to_string(max_journal_payload));
  if (bytes.size() - header_size != length)
    return fail(errc::malformed, "journal entry payload length " + std::to_string(length)
                                   + " does not match the " + std::to_string(bytes.size() - header_size)
                                   + " bytes present");
  entry.payload.assign(bytes.substr(header_size));
  return entry;
}

uint64_t operation_hash(op_kind op, std::string_view target, std::string_view args) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xFF; // separator, so ("ab","c") and ("a","bc") differ
    h *= 1099511628211ull;
  };
  mix(to_string(op));
  mix(target);
  mix(args);
  return h;
}

} // namespace convoy
