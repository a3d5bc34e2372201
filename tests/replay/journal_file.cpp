#include "replay/journal_file.hpp"

#include <cstdint>

namespace convoy::replay {

namespace {

constexpr size_t length_prefix_size = 4;

void put_u32(std::string& out, uint32_t value) {
  for (size_t i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint32_t get_u32(const char* p) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i)
    value |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return value;
}

/// The bytes as a C-like literal, for messages about binary data.
std::string printable(std::string_view bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

std::string where(size_t index, size_t offset) {
  return "entry " + std::to_string(index) + " at byte " + std::to_string(offset);
}

} // namespace

std::string encode_journal_file(const std::vector<journal_entry>& entries) {
  std::string out(journal_file_magic);
  for (const auto& entry : entries) {
    auto bytes = encode(entry);
    put_u32(out, static_cast<uint32_t>(bytes.size()));
    out += bytes;
  }
  return out;
}

expected<std::vector<journal_entry>> decode_journal_file(std::string_view bytes) {
  auto fail = [](std::string message) { return failure{std::move(message)}; };
  if (bytes.size() < journal_file_magic.size() || bytes.substr(0, 8) != journal_file_magic) {
    if (bytes.size() < journal_file_magic.size()
        && journal_file_magic.substr(0, bytes.size()) == bytes)
      return fail("journal file truncated: " + std::to_string(bytes.size())
                  + " bytes, its magic \"" + std::string(journal_file_magic) + "\" needs "
                  + std::to_string(journal_file_magic.size()));
    return fail("not a journal file: expected the magic \"" + std::string(journal_file_magic)
                + "\", found \"" + printable(bytes.substr(0, journal_file_magic.size())) + "\"");
  }
  std::vector<journal_entry> entries;
  size_t offset = journal_file_magic.size();
  while (offset < bytes.size()) {
    auto index = entries.size();
    auto rest = bytes.size() - offset;
    if (rest < length_prefix_size)
      return fail("journal file truncated: " + where(index, offset) + " has " + std::to_string(rest)
                  + " bytes of its " + std::to_string(length_prefix_size) + "-byte length prefix");
    auto length = get_u32(bytes.data() + offset);
    rest -= length_prefix_size;
    // Compared before anything is allocated: a corrupt prefix may announce up to 4 GiB.
    if (length > rest)
      return fail("journal file truncated: " + where(index, offset) + " announces "
                  + std::to_string(length) + " bytes but only " + std::to_string(rest)
                  + " follow");
    auto decoded = decode_journal_entry(bytes.substr(offset + length_prefix_size, length));
    if (auto* err = std::get_if<decode_error>(&decoded))
      return fail("journal file corrupt: " + where(index, offset) + " does not decode ("
                  + std::string(to_string(err->code)) + "): " + err->message);
    entries.push_back(std::get<journal_entry>(std::move(decoded)));
    offset += length_prefix_size + length;
  }
  return entries;
}

} // namespace convoy::replay
