// libFuzzer target: the decoders of adapters/convoy/adapters/secrets.hpp on arbitrary bytes,
// an envelope (`unseal`) and a key file's text (`parse_key_file`), plus the round trip
// `seal` → `unseal` with the input as plaintext.
//
// Beyond what the sanitizers watch: every rejection carries a message, a decoded key file
// holds only 32-byte keys that match their ids, and a sealed value opens to itself, under its
// own name only. The ring's key is fixed so that the seed envelopes open.

#include "convoy/adapters/secrets.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

namespace {

using namespace convoy::adapters;

void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

const key_ring& fixed_ring() {
  static const key_ring ring = [] {
    std::string key(32, '\x42');
    auto id = master_key::id_of(key);
    return key_ring{master_key{std::move(id), secret(std::move(key))}, {}};
  }();
  return ring;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto& ring = fixed_ring();

  std::string error;
  if (!unseal(ring, bytes, "name", error) && error.empty())
    fail("unseal rejected an envelope without a message");

  auto parsed = parse_key_file(bytes, "input");
  if (auto* decoded = std::get_if<key_ring>(&parsed)) {
    auto check = [](const master_key& k) {
      if (k.key.size() != 32 || master_key::id_of(k.key.view()) != k.id)
        fail("a decoded key file holds a key that is not 32 bytes or does not match its id");
    };
    check(decoded->current);
    for (const auto& k : decoded->retired)
      check(k);
  } else if (std::get<std::string>(parsed).empty()) {
    fail("parse_key_file rejected a key file without a message");
  }

  auto sealed = seal(ring.current, bytes, "name");
  if (!sealed)
    fail("seal failed");
  auto opened = unseal(ring, *sealed, "name", error);
  if (!opened || opened->view() != bytes)
    fail("a sealed value did not open to itself");
  if (unseal(ring, *sealed, "other", error))
    fail("a sealed value opened under another name");
  return 0;
}
