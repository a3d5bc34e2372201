// libFuzzer target: convoy::replay::decode_journal_file (golden journal files) on arbitrary
// bytes. No crash, no read past the input, no allocation driven by a corrupt length prefix;
// every rejection has a message; and what decodes re-encodes to the same bytes.

#include "replay/journal_file.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = convoy::replay::decode_journal_file(bytes);
  if (auto* entries = std::get_if<std::vector<convoy::journal_entry>>(&decoded)) {
    if (convoy::replay::encode_journal_file(*entries) != bytes) {
      std::fprintf(stderr, "re-encoding a decoded journal file did not give back the input\n");
      std::abort();
    }
  } else if (std::get<convoy::replay::failure>(decoded).message.empty()) {
    std::fprintf(stderr, "a rejection without a message\n");
    std::abort();
  }
  return 0;
}
