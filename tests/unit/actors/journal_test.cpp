// The journal's binary format: round trips, every way a byte string can fail to be an entry,
// the operation hash, and properties over arbitrary entries and arbitrary bytes.

#include "convoy/actors/journal.hpp"

#include <boost/test/unit_test.hpp>

#include <rapidcheck.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

using namespace convoy;

namespace {

/// 'C' 'J' version event op step:u32 hash:u64 length:u32.
constexpr size_t header_size = 2 + 1 + 1 + 1 + 4 + 8 + 4;

/// Every operation kind this build knows: the byte values `to_string` has a name for. Derived
/// rather than listed, so that kinds appended to the enum are covered without editing this file.
std::vector<op_kind> known_ops() {
  std::vector<op_kind> out;
  for (int n = 0; n < 256; ++n)
    if (auto x = static_cast<op_kind>(n); to_string(x) != "unknown-op")
      out.push_back(x);
  return out;
}

/// Every entry event this build knows, found the same way.
std::vector<entry_event> known_events() {
  std::vector<entry_event> out;
  for (int n = 0; n < 256; ++n)
    if (auto x = static_cast<entry_event>(n); to_string(x) != "unknown-event")
      out.push_back(x);
  return out;
}

template <class T>
bool is_in(const std::vector<T>& xs, T x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

template <class T>
void put_le(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xFF));
}

/// A header written by hand, so that tests can state fields the encoder would never write.
std::string header(uint8_t version, uint8_t event, uint8_t op, uint32_t step, uint64_t hash,
                   uint32_t length) {
  std::string out{"CJ"};
  put_le<uint8_t>(out, version);
  put_le<uint8_t>(out, event);
  put_le<uint8_t>(out, op);
  put_le<uint32_t>(out, step);
  put_le<uint64_t>(out, hash);
  put_le<uint32_t>(out, length);
  return out;
}

journal_entry sample_entry(std::string payload = R"({"name":"Ada"})") {
  journal_entry e;
  e.step = 7;
  e.event = entry_event::completed;
  e.op = op_kind::call;
  e.op_hash = 0x0123456789abcdefull;
  e.payload = std::move(payload);
  return e;
}

/// Decodes `bytes`, which must fail; returns the error.
decode_error expect_error(std::string_view bytes) {
  auto decoded = decode_journal_entry(bytes);
  BOOST_REQUIRE_MESSAGE(std::holds_alternative<decode_error>(decoded),
                        "decoding " << bytes.size() << " bytes should have failed");
  return std::get<decode_error>(std::move(decoded));
}

/// Decodes `bytes`, which must succeed; returns the entry.
journal_entry expect_entry(std::string_view bytes) {
  auto decoded = decode_journal_entry(bytes);
  if (auto err = std::get_if<decode_error>(&decoded))
    BOOST_FAIL("decoding failed: " << err->message);
  return std::get<journal_entry>(std::move(decoded));
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(journal)

// -- round trips ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_documented_events_and_ops_are_known) {
  auto ops = known_ops();
  auto events = known_events();
  BOOST_TEST(is_in(ops, op_kind::call));
  BOOST_TEST(is_in(ops, op_kind::sleep));
  BOOST_TEST(is_in(events, entry_event::scheduled));
  BOOST_TEST(is_in(events, entry_event::completed));
  BOOST_TEST(is_in(events, entry_event::failed));
  // Zero is never a valid kind or event: a zeroed header must not decode.
  BOOST_TEST(!is_in(ops, static_cast<op_kind>(0)));
  BOOST_TEST(!is_in(events, static_cast<entry_event>(0)));
}

BOOST_AUTO_TEST_CASE(every_event_and_op_round_trips) {
  for (auto op : known_ops())
    for (auto event : known_events()) {
      BOOST_TEST_CONTEXT("op " << to_string(op) << ", event " << to_string(event)) {
        auto entry = sample_entry();
        entry.op = op;
        entry.event = event;
        auto bytes = encode(entry);
        BOOST_TEST(bytes.size() == header_size + entry.payload.size());
        BOOST_TEST((expect_entry(bytes) == entry));
      }
    }
}

BOOST_AUTO_TEST_CASE(extreme_step_and_hash_values_round_trip) {
  for (uint32_t step : {0u, 1u, 0x7fffffffu, 0xffffffffu})
    for (uint64_t hash : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}, uint64_t{0x8000000000000000}}) {
      auto entry = sample_entry();
      entry.step = step;
      entry.op_hash = hash;
      BOOST_TEST((expect_entry(encode(entry)) == entry));
    }
}

BOOST_AUTO_TEST_CASE(the_header_is_little_endian_as_documented) {
  journal_entry entry;
  entry.step = 0x04030201;
  entry.event = entry_event::failed;
  entry.op = op_kind::sleep;
  entry.op_hash = 0x1817161514131211ull;
  entry.payload = "xy";
  auto bytes = encode(entry);
  auto expected = header(journal_format_version, 3, 2, 0x04030201, 0x1817161514131211ull, 2)
                  + "xy";
  BOOST_TEST(bytes == expected);
  BOOST_TEST(bytes.substr(5, 4) == std::string("\x01\x02\x03\x04", 4));
}

BOOST_AUTO_TEST_CASE(empty_payload_round_trips) {
  auto entry = sample_entry("");
  auto bytes = encode(entry);
  BOOST_TEST(bytes.size() == header_size);
  BOOST_TEST((expect_entry(bytes) == entry));
}

BOOST_AUTO_TEST_CASE(one_mebibyte_payload_round_trips) {
  std::string payload(1024 * 1024, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  auto entry = sample_entry(payload);
  auto bytes = encode(entry);
  BOOST_TEST(bytes.size() == header_size + payload.size());
  auto decoded = expect_entry(bytes);
  BOOST_TEST(decoded.payload.size() == payload.size());
  BOOST_TEST((decoded == entry));
}

BOOST_AUTO_TEST_CASE(binary_payload_bytes_survive_unchanged) {
  std::string payload;
  for (int i = 0; i < 256; ++i)
    payload.push_back(static_cast<char>(i));
  payload += std::string("\0CJ\0", 4); // embedded NULs and a fake magic
  auto entry = sample_entry(payload);
  auto decoded = expect_entry(encode(entry));
  BOOST_TEST(decoded.payload.size() == payload.size());
  BOOST_TEST(decoded.payload == payload);
}

// -- errors -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_truncated_header_is_rejected_as_truncated) {
  auto bytes = encode(sample_entry(""));
  BOOST_REQUIRE(bytes.size() == header_size);
  for (size_t n = 0; n < header_size; ++n) {
    BOOST_TEST_CONTEXT("length " << n) {
      auto err = expect_error(std::string_view(bytes).substr(0, n));
      BOOST_TEST((err.code == errc::malformed));
      BOOST_TEST(contains(err.message, "truncated"), err.message);
      BOOST_TEST(contains(err.message, std::to_string(n) + " bytes"), err.message);
      BOOST_TEST(contains(err.message, std::to_string(header_size)), err.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_magic_is_rejected) {
  for (const std::string& magic : std::vector<std::string>{"XJ", "CX", "cj", std::string("\0\0", 2)}) {
    auto bytes = encode(sample_entry());
    bytes.replace(0, 2, magic);
    auto err = expect_error(bytes);
    BOOST_TEST((err.code == errc::malformed));
    BOOST_TEST(contains(err.message, "magic"), err.message);
  }
}

BOOST_AUTO_TEST_CASE(unsupported_version_is_rejected_with_its_number) {
  for (int version : {0, 2, 255}) {
    auto bytes = header(static_cast<uint8_t>(version), 1, 1, 0, 0, 0);
    auto err = expect_error(bytes);
    BOOST_TEST((err.code == errc::malformed));
    BOOST_TEST(contains(err.message, "version " + std::to_string(version)), err.message);
  }
}

BOOST_AUTO_TEST_CASE(unknown_event_is_rejected_with_its_number) {
  auto events = known_events();
  size_t rejected = 0;
  for (int n = 0; n < 256; ++n) {
    if (is_in(events, static_cast<entry_event>(n)))
      continue;
    BOOST_TEST_CONTEXT("event byte " << n) {
      auto err = expect_error(header(journal_format_version, static_cast<uint8_t>(n), 1, 0, 0, 0));
      BOOST_TEST((err.code == errc::malformed));
      BOOST_TEST(contains(err.message, "unknown event " + std::to_string(n)), err.message);
      ++rejected;
    }
  }
  BOOST_TEST(rejected == 256 - events.size());
}

BOOST_AUTO_TEST_CASE(unknown_op_is_rejected_with_its_number) {
  auto ops = known_ops();
  for (int n = 0; n < 256; ++n) {
    if (is_in(ops, static_cast<op_kind>(n)))
      continue;
    BOOST_TEST_CONTEXT("op byte " << n) {
      auto err = expect_error(header(journal_format_version, 1, static_cast<uint8_t>(n), 0, 0, 0));
      BOOST_TEST((err.code == errc::malformed));
      BOOST_TEST(contains(err.message, "unknown operation " + std::to_string(n)), err.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(decoder_accepts_exactly_the_events_and_ops_that_have_names) {
  // to_string and the decoder must agree on what is known, for every byte value.
  auto ops = known_ops();
  auto events = known_events();
  for (int n = 0; n < 256; ++n) {
    auto byte = static_cast<uint8_t>(n);
    BOOST_TEST_CONTEXT("byte " << n) {
      auto as_event = decode_journal_entry(header(journal_format_version, byte, 1, 0, 0, 0));
      BOOST_TEST(std::holds_alternative<journal_entry>(as_event)
                 == is_in(events, static_cast<entry_event>(n)));
      auto as_op = decode_journal_entry(header(journal_format_version, 1, byte, 0, 0, 0));
      BOOST_TEST(std::holds_alternative<journal_entry>(as_op) == is_in(ops, static_cast<op_kind>(n)));
    }
  }
}

BOOST_AUTO_TEST_CASE(payload_shorter_than_its_length_is_rejected) {
  auto bytes = encode(sample_entry("0123456789"));
  bytes.pop_back();
  auto err = expect_error(bytes);
  BOOST_TEST((err.code == errc::malformed));
  BOOST_TEST(contains(err.message, "length 10"), err.message);
  BOOST_TEST(contains(err.message, "9 bytes present"), err.message);
  // A header announcing a payload with none of it present.
  auto bare = header(journal_format_version, 1, 1, 0, 0, 5);
  auto err2 = expect_error(bare);
  BOOST_TEST((err2.code == errc::malformed));
  BOOST_TEST(contains(err2.message, "length 5"), err2.message);
  BOOST_TEST(contains(err2.message, "0 bytes present"), err2.message);
}

BOOST_AUTO_TEST_CASE(trailing_bytes_after_the_payload_are_rejected) {
  auto bytes = encode(sample_entry("0123456789")) + "!!";
  auto err = expect_error(bytes);
  BOOST_TEST((err.code == errc::malformed));
  BOOST_TEST(contains(err.message, "length 10"), err.message);
  BOOST_TEST(contains(err.message, "12 bytes present"), err.message);
}

BOOST_AUTO_TEST_CASE(length_above_the_payload_limit_is_rejected_before_reading_it) {
  // Only the header: the decoder must refuse on the announced length alone.
  for (uint64_t length : {uint64_t{max_journal_payload} + 1, uint64_t{0xffffffff}}) {
    auto bytes = header(journal_format_version, 1, 1, 0, 0, static_cast<uint32_t>(length));
    auto err = expect_error(bytes);
    BOOST_TEST((err.code == errc::too_large));
    BOOST_TEST(contains(err.message, std::to_string(length)), err.message);
    BOOST_TEST(contains(err.message, std::to_string(max_journal_payload)), err.message);
  }
}

BOOST_AUTO_TEST_CASE(length_exactly_at_the_payload_limit_is_not_too_large) {
  // The header alone: accepted as far as size goes, then rejected for the missing bytes.
  auto err = expect_error(
    header(journal_format_version, 1, 1, 0, 0, static_cast<uint32_t>(max_journal_payload)));
  BOOST_TEST((err.code == errc::malformed));
  BOOST_TEST(contains(err.message, "does not match"), err.message);
}

// -- operation hash ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(operation_hash_is_stable_for_equal_operations) {
  BOOST_TEST(operation_hash(op_kind::call, "greet", R"("Ada")")
             == operation_hash(op_kind::call, "greet", R"("Ada")"));
}

BOOST_AUTO_TEST_CASE(operation_hash_differs_when_kind_target_or_args_differ) {
  auto base = operation_hash(op_kind::call, "greet", R"("Ada")");
  BOOST_TEST(base != operation_hash(op_kind::sleep, "greet", R"("Ada")"));
  BOOST_TEST(base != operation_hash(op_kind::call, "shout", R"("Ada")"));
  BOOST_TEST(base != operation_hash(op_kind::call, "greet", R"("Bob")"));
  BOOST_TEST(base != operation_hash(op_kind::call, "greet", ""));
  BOOST_TEST(operation_hash(op_kind::call, "", "") != operation_hash(op_kind::sleep, "", ""));
}

BOOST_AUTO_TEST_CASE(operation_hash_separates_target_from_args) {
  BOOST_TEST(operation_hash(op_kind::call, "ab", "c") != operation_hash(op_kind::call, "a", "bc"));
  BOOST_TEST(operation_hash(op_kind::call, "", "abc") != operation_hash(op_kind::call, "abc", ""));
}

// -- properties -------------------------------------------------------------------------------

namespace {

rc::Gen<journal_entry> arbitrary_entry() {
  return rc::gen::build<journal_entry>(
    rc::gen::set(&journal_entry::step, rc::gen::arbitrary<uint32_t>()),
    rc::gen::set(&journal_entry::event, rc::gen::elementOf(known_events())),
    rc::gen::set(&journal_entry::op, rc::gen::elementOf(known_ops())),
    rc::gen::set(&journal_entry::op_hash, rc::gen::arbitrary<uint64_t>()),
    rc::gen::set(&journal_entry::payload,
                 rc::gen::container<std::string>(rc::gen::arbitrary<char>())));
}

/// Any bytes at all, or a valid encoding with one byte changed, cut short or extended: the
/// second kind gets past the magic and version checks and exercises the deeper ones.
rc::Gen<std::string> arbitrary_bytes() {
  auto random = rc::gen::container<std::string>(rc::gen::arbitrary<char>());
  auto mutated = rc::gen::mapcat(arbitrary_entry(), [](journal_entry e) {
    auto bytes = encode(e);
    return rc::gen::map(
      rc::gen::tuple(rc::gen::inRange<size_t>(0, bytes.size()), rc::gen::arbitrary<char>(),
                     rc::gen::inRange(0, 4)),
      [bytes](const std::tuple<size_t, char, int>& t) {
        auto out = bytes;
        auto [pos, byte, how] = t;
        switch (how) {
          case 0: out[pos] = byte; break;     // overwrite one byte
          case 1: out.resize(pos); break;     // truncate
          case 2: out.push_back(byte); break; // one trailing byte
          default: break;                     // unchanged
        }
        return out;
      });
  });
  return rc::gen::oneOf(random, mutated);
}

} // namespace

BOOST_AUTO_TEST_CASE(encode_then_decode_is_identity_for_arbitrary_entries) {
  auto ok = rc::check("decode(encode(e)) == e", [] {
    auto entry = *arbitrary_entry();
    auto bytes = encode(entry);
    RC_ASSERT(bytes.size() == header_size + entry.payload.size());
    auto decoded = decode_journal_entry(bytes);
    RC_ASSERT(std::holds_alternative<journal_entry>(decoded));
    RC_ASSERT(std::get<journal_entry>(decoded) == entry);
  });
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_CASE(decoding_arbitrary_bytes_yields_an_entry_or_an_error) {
  auto ok = rc::check("decode(bytes) never crashes and is canonical", [] {
    auto bytes = *arbitrary_bytes();
    auto decoded = decode_journal_entry(bytes);
    if (auto entry = std::get_if<journal_entry>(&decoded)) {
      // The format has exactly one encoding per entry: success means the bytes are it.
      RC_ASSERT(encode(*entry) == bytes);
    } else {
      const auto& err = std::get<decode_error>(decoded);
      RC_ASSERT(err.code == errc::malformed || err.code == errc::too_large);
      RC_ASSERT(!err.message.empty());
    }
  });
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_SUITE_END()
