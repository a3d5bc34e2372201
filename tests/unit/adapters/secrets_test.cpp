// The master key, its key file and backups, and the AES-256-GCM envelopes credentials are
// stored in: everything of adapters/convoy/adapters/secrets.hpp that needs no Redis (the
// credential store itself runs against a real server in tests/integration/secrets_test.cpp).

#include "convoy/adapters/secrets.hpp"
#include "convoy/test/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>

#include <fstream>
#include <string>
#include <variant>

#include <sys/stat.h>

namespace ad = convoy::adapters;
namespace fs = std::filesystem;

namespace {

ad::master_key new_key() {
  auto key = ad::master_key::generate();
  BOOST_REQUIRE(key);
  return std::move(*key);
}

ad::key_ring new_ring() {
  return ad::key_ring{new_key(), {}};
}

std::string sealed(const ad::master_key& key, std::string_view plain, std::string_view aad) {
  auto out = ad::seal(key, plain, aad);
  BOOST_REQUIRE(out);
  return *out;
}

/// Flips one bit of the decoded byte at `index` (negative: from the end) of an envelope.
std::string flip_byte(const std::string& envelope, long index) {
  auto encoded = envelope.substr(12);
  std::string raw(encoded.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                          reinterpret_cast<const unsigned char*>(encoded.data()),
                          static_cast<int>(encoded.size()));
  BOOST_REQUIRE(n > 0);
  raw.resize(static_cast<size_t>(n) - static_cast<size_t>(std::count(encoded.end() - 2, encoded.end(), '=')));
  raw[static_cast<size_t>(index < 0 ? static_cast<long>(raw.size()) + index : index)] ^= 0x01;
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                  reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  return envelope.substr(0, 12) + out;
}

/// Unseals and expects failure; returns the error phrase.
std::string unseal_error(const ad::key_ring& ring, const std::string& envelope,
                         std::string_view aad) {
  std::string error;
  auto plain = ad::unseal(ring, envelope, aad, error);
  BOOST_CHECK(!plain);
  BOOST_CHECK(!error.empty());
  return error;
}

mode_t mode_of(const fs::path& path) {
  struct stat st{};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

template <class T>
T expect(std::variant<T, std::string> outcome) {
  if (auto err = std::get_if<std::string>(&outcome))
    BOOST_FAIL("unexpected error: " << *err);
  return std::move(std::get<T>(outcome));
}

std::string expect_error(const auto& outcome) {
  auto err = std::get_if<std::string>(&outcome);
  BOOST_REQUIRE_MESSAGE(err, "expected an error");
  return *err;
}

} // namespace

BOOST_AUTO_TEST_SUITE(secrets)

BOOST_AUTO_TEST_CASE(sealed_value_round_trips_and_names_its_key) {
  auto ring = new_ring();
  auto envelope = sealed(ring.current, "s3cr3t-token", "http.orders.token");
  BOOST_TEST(envelope.rfind("v1:" + ring.current.id + ":", 0) == 0);
  BOOST_TEST(ad::envelope_key_id(envelope) == ring.current.id);
  BOOST_TEST(envelope.find("s3cr3t") == std::string::npos);
  std::string error;
  auto plain = ad::unseal(ring, envelope, "http.orders.token", error);
  BOOST_REQUIRE_MESSAGE(plain, error);
  BOOST_TEST(plain->view() == "s3cr3t-token");
  // Two seals of one value differ (fresh nonce), and empty values work too.
  BOOST_TEST(sealed(ring.current, "s3cr3t-token", "http.orders.token") != envelope);
  auto empty = ad::unseal(ring, sealed(ring.current, "", "x"), "x", error);
  BOOST_REQUIRE(empty);
  BOOST_TEST(empty->empty());
}

BOOST_AUTO_TEST_CASE(tampered_nonce_ciphertext_or_tag_is_rejected) {
  auto ring = new_ring();
  auto envelope = sealed(ring.current, "a value of some length", "name");
  for (long index : {0L, 11L, 12L, 20L, -16L, -1L}) {
    BOOST_TEST_CONTEXT("byte " << index) {
      auto error = unseal_error(ring, flip_byte(envelope, index), "name");
      BOOST_TEST(error.find("failed authentication") != std::string::npos);
    }
  }
  // Truncated, not base64, not an envelope at all.
  BOOST_TEST(unseal_error(ring, envelope.substr(0, 20), "name").find("damaged")
             != std::string::npos);
  BOOST_TEST(unseal_error(ring, envelope.substr(0, 12) + "!!!!", "name").find("damaged")
             != std::string::npos);
  for (std::string not_one : {"", "v", "v1:", "plain text", "v1:0123456", "v1:0123456x:AAAA"})
    BOOST_TEST(unseal_error(ring, not_one, "name").find("not an encrypted value")
               != std::string::npos);
}

BOOST_AUTO_TEST_CASE(value_moved_to_another_name_is_rejected) {
  auto ring = new_ring();
  auto envelope = sealed(ring.current, "for orders only", "http.orders.token");
  auto error = unseal_error(ring, envelope, "http.billing.token");
  BOOST_TEST(error.find("moved from another name") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_key_id_is_named_and_retired_keys_still_read) {
  auto old_ring = new_ring();
  auto envelope = sealed(old_ring.current, "v", "n");
  auto other = new_ring();
  auto error = unseal_error(other, envelope, "n");
  BOOST_TEST(error.find("master key " + old_ring.current.id) != std::string::npos);
  BOOST_TEST(error.find(other.current.id) != std::string::npos);
  ad::key_ring rotated{new_key(), {}};
  rotated.retired.push_back(std::move(old_ring.current));
  std::string why;
  auto plain = ad::unseal(rotated, envelope, "n", why);
  BOOST_REQUIRE_MESSAGE(plain, why);
  BOOST_TEST(plain->view() == "v");
}

BOOST_AUTO_TEST_CASE(key_file_is_created_0600_and_never_overwritten) {
  convoy::test::temp_dir dir;
  auto path = dir.path() / "conf" / "master.key";
  auto ring = new_ring();
  ring.retired.push_back(new_key());
  BOOST_TEST(ad::create_key_file(path, ring) == "");
  BOOST_TEST(mode_of(path) == 0600u);
  BOOST_TEST(mode_of(path.parent_path()) == 0700u);
  auto loaded = expect(ad::load_key_file(path));
  BOOST_TEST(loaded.current.id == ring.current.id);
  BOOST_CHECK(loaded.current.key.view() == ring.current.key.view());
  BOOST_REQUIRE(loaded.retired.size() == 1u);
  BOOST_CHECK(loaded.retired[0].key.view() == ring.retired[0].key.view());
  auto again = ad::create_key_file(path, new_ring());
  BOOST_TEST(again.find("already exists") != std::string::npos);
  BOOST_TEST(expect(ad::load_key_file(path)).current.id == ring.current.id);
  // replace_key_file swaps it whole and keeps the mode.
  auto next = new_ring();
  BOOST_TEST(ad::replace_key_file(path, next) == "");
  BOOST_TEST(mode_of(path) == 0600u);
  BOOST_TEST(expect(ad::load_key_file(path)).current.id == next.current.id);
}

BOOST_AUTO_TEST_CASE(key_file_others_may_read_is_refused) {
  convoy::test::temp_dir dir;
  auto path = dir.path() / "master.key";
  BOOST_REQUIRE(ad::create_key_file(path, new_ring()) == "");
  BOOST_REQUIRE(::chmod(path.c_str(), 0644) == 0);
  auto error = expect_error(ad::load_key_file(path));
  BOOST_TEST(error.find(path.string()) != std::string::npos);
  BOOST_TEST(error.find("mode 0644") != std::string::npos);
  BOOST_REQUIRE(::chmod(path.c_str(), 0640) == 0);
  BOOST_TEST(expect_error(ad::load_key_file(path)).find("mode 0640") != std::string::npos);
  BOOST_TEST(expect_error(ad::load_key_file(dir.path() / "missing.key")).find("missing.key")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(damaged_key_file_is_refused) {
  convoy::test::temp_dir dir;
  auto path = dir.path() / "master.key";
  BOOST_REQUIRE(ad::create_key_file(path, new_ring()) == "");
  std::string text;
  {
    std::ifstream in(path);
    std::getline(in, text, '\0');
  }
  auto write = [&](const std::string& content) {
    fs::remove(path);
    std::ofstream(path) << content;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  };
  // A changed key no longer matches its id.
  auto damaged = text;
  damaged[damaged.size() - 10] = damaged[damaged.size() - 10] == 'A' ? 'B' : 'A';
  write(damaged);
  BOOST_TEST(expect_error(ad::load_key_file(path)).find("does not match its id")
             != std::string::npos);
  write("hello\n");
  BOOST_TEST(expect_error(ad::load_key_file(path)).find("not a Convoy key file")
             != std::string::npos);
  write("convoy master key file v1\n");
  BOOST_TEST(expect_error(ad::load_key_file(path)).find("no current key") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(backup_round_trips_and_wrong_passphrase_is_refused) {
  convoy::test::temp_dir dir;
  auto ring = new_ring();
  ring.retired.push_back(new_key());
  auto file = dir.path() / "master.bak";
  BOOST_TEST(ad::write_backup(file, ring, "short").find("too short") != std::string::npos);
  BOOST_TEST(!fs::exists(file));
  BOOST_TEST(ad::write_backup(file, ring, "correct horse battery") == "");
  BOOST_TEST(mode_of(file) == 0600u);
  std::string content;
  {
    std::ifstream in(file);
    std::getline(in, content, '\0');
  }
  BOOST_TEST(content.find(ring.current.id) == std::string::npos);
  auto restored = expect(ad::read_backup(file, "correct horse battery"));
  BOOST_CHECK(restored.current.key.view() == ring.current.key.view());
  BOOST_REQUIRE(restored.retired.size() == 1u);
  BOOST_TEST(restored.retired[0].id == ring.retired[0].id);
  auto wrong = expect_error(ad::read_backup(file, "correct horse battery!"));
  BOOST_TEST(wrong.find("passphrase is wrong") != std::string::npos);
  BOOST_TEST(ad::write_backup(file, ring, "another passphrase").find("already exists")
             != std::string::npos);
  // The iteration count is covered by the tag: lowering it does not get past the check.
  auto lowered = content;
  lowered.replace(lowered.find("600000"), 6, "100000");
  fs::remove(file);
  std::ofstream(file) << lowered;
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  BOOST_TEST(expect_error(ad::read_backup(file, "correct horse battery")).find("altered")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(credential_names_are_validated) {
  BOOST_TEST(ad::check_credential_name("http.orders-token_2") == "");
  BOOST_TEST(ad::check_credential_name(std::string(128, 'a')) == "");
  for (std::string bad : {std::string(), std::string(129, 'a'), std::string("with space"),
                          std::string("@key"), std::string("a:b"), std::string("ünï")}) {
    BOOST_TEST_CONTEXT("name '" << bad << "'") {
      BOOST_TEST(ad::check_credential_name(bad).find("is not valid") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(secret_leaves_what_it_moved_from_empty) {
  std::string source = "short";
  ad::secret s(std::move(source));
  BOOST_TEST(s.view() == "short");
  BOOST_TEST(source.empty());
  ad::secret t(std::move(s));
  BOOST_TEST(t.view() == "short");
  BOOST_TEST(s.empty()); // NOLINT(bugprone-use-after-move): the point of the test
}

BOOST_AUTO_TEST_SUITE_END()
