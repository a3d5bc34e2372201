// libFuzzer target: convoy::decode_journal_entry on arbitrary bytes.
//
// Beyond "no crash, no out-of-bounds read, no unbounded allocation" (the sanitizers watch),
// two properties: every rejection carries an error code and a message, and the format is
// canonical: bytes that decode are exactly the encoding of the entry they decode to.

#include "convoy/actors/journal.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = convoy::decode_journal_entry(bytes);
  if (auto* entry = std::get_if<convoy::journal_entry>(&decoded)) {
    if (convoy::encode(*entry) != bytes) {
      std::fprintf(stderr, "re-encoding a decoded entry did not give back the input bytes\n");
      std::abort();
    }
  } else {
    const auto& err = std::get<convoy::decode_error>(decoded);
    if (err.code == convoy::errc::none || err.message.empty()) {
      std::fprintf(stderr, "a rejection without an error code or a message\n");
      std::abort();
    }
  }
  return 0;
}
