// `convoy secret ...` as a real process against a real redis-server, and the credential
// store's library API (what adapters call) against the same server: values go in through
// stdin or a named variable, never show up in any output, survive a rotation and a
// backup/restore, and refuse to decrypt under another name or with a stale key file.

#include "convoy/adapters/secrets.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <sys/stat.h>

using namespace std::chrono_literals;
using convoy::test::command_result;
using convoy::test::environment;
using convoy::test::redis_server;
using convoy::test::temp_dir;

namespace ad = convoy::adapters;
namespace fs = std::filesystem;
namespace persistence = convoy::persistence;

namespace {

constexpr const char* passphrase = "correct horse battery staple";
/// Distinctive enough that finding it in any output means a value leaked.
constexpr const char* token_value = "tok-7f3a9c1e-SECRET-VALUE-d41d8cd9";
constexpr const char* password_value = "pw-SECRET-VALUE-from-the-environment";

struct secrets_fixture {
  temp_dir dir;
  redis_server redis = redis_server::start(dir.path() / "redis");
  fs::path key_file = dir.path() / "keys" / "master.key";
  std::string hash = persistence::keys("convoy:").secrets();

  /// An environment naming our Redis and key file, and nothing of the caller's; `overrides`
  /// replace or add variables.
  environment env(environment overrides = {}) const {
    environment out{{"HOME", dir.path().string()},
                    {"XDG_RUNTIME_DIR", dir.path().string()},
                    {"CONVOY_REDIS", redis.address()},
                    {"CONVOY_PREFIX", ""},
                    {"CONVOY_REDIS_PASSWORD", ""},
                    {"CONVOY_SECRET_FILE", key_file.string()},
                    {"CONVOY_SECRET_PASSPHRASE", passphrase}};
    for (auto& [name, value] : overrides) {
      std::erase_if(out, [&](const auto& kv) { return kv.first == name; });
      out.emplace_back(name, value);
    }
    return out;
  }

  command_result convoy(std::vector<std::string> args, environment extra = {}) const {
    args.insert(args.begin(), CONVOY_BINARY);
    return convoy::test::run_command(std::move(args), 30s, env(std::move(extra)));
  }

  /// `convoy secret set NAME` with `value` on its stdin (through a file, as `< file` would).
  command_result set_from_stdin(const std::string& name, const std::string& value) const {
    auto input = dir.path() / ("stdin-" + name);
    std::ofstream(input) << value << "\n"; // the newline `echo` adds is dropped
    return convoy::test::run_command(
      {"/bin/sh", "-c", "exec \"$0\" secret set \"$1\" < \"$2\"", CONVOY_BINARY, name,
       input.string()},
      30s, env());
  }

  std::string envelope(const std::string& name) const {
    return redis.command({"HGET", hash, name});
  }
};

/// The credential store over its own connection to the test's Redis.
struct library_client {
  persistence::redis_loop loop;
  persistence::redis_connection redis;

  explicit library_client(const redis_server& server)
    : redis(loop, endpoint_of(server)) {
  }

  static persistence::redis_endpoint endpoint_of(const redis_server& server) {
    persistence::redis_endpoint ep;
    BOOST_REQUIRE(persistence::parse_address(server.address(), ep));
    return ep;
  }

  ad::credential_store open(const fs::path& key_file) {
    auto store = ad::credential_store::open(key_file, redis);
    if (auto err = std::get_if<std::string>(&store))
      BOOST_FAIL("cannot open the credential store: " << *err);
    return std::move(std::get<ad::credential_store>(store));
  }
};

/// The value of `name`, or the error, prefixed "ERROR: ".
std::string resolve(const ad::credential_store& store, const std::string& name) {
  ad::store_error error;
  auto value = store.get(name, error);
  return value ? std::string(value->view()) : "ERROR: " + error.message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void check_ok(const command_result& r) {
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(r.exit_code == 0);
}

/// The command ended by itself with `exit_code` and printed `needle`.
void check_fails(const command_result& r, int exit_code, const std::string& needle) {
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(r.exit_code == exit_code);
  BOOST_TEST_INFO("output:\n" << r.output);
  BOOST_TEST(contains(r.output, needle));
}

/// The error a store call returned, or "" if it succeeded.
std::string message_of(const std::optional<ad::store_error>& error) {
  return error ? error->message : "";
}

void check_no_value_in(const std::string& output) {
  BOOST_TEST_INFO("output:\n" << output);
  BOOST_TEST(!contains(output, token_value));
  BOOST_TEST(!contains(output, password_value));
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(secrets_cli, secrets_fixture)

BOOST_AUTO_TEST_CASE(init_set_and_list_never_show_a_value) {
  auto init = convoy({"secret", "init"});
  check_ok(init);
  struct stat st{};
  BOOST_REQUIRE(::stat(key_file.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0600u);
  check_fails(convoy({"secret", "init"}), 1, "already exists");

  std::string all_output = init.output;
  auto by_stdin = set_from_stdin("http.orders.token", token_value);
  check_ok(by_stdin);
  auto by_env = convoy({"secret", "set", "db.password", "--from-env", "DB_PW"},
                       {{"DB_PW", password_value}});
  check_ok(by_env);
  auto text = convoy({"secret", "list"});
  check_ok(text);
  auto json_out = convoy({"secret", "list", "-o", "json"});
  check_ok(json_out);
  for (const auto* r : {&by_stdin, &by_env, &text, &json_out})
    all_output += r->output;
  check_no_value_in(all_output);
  BOOST_TEST(!contains(envelope("http.orders.token"), token_value));

  BOOST_TEST(contains(text.output, "http.orders.token"));
  BOOST_TEST(contains(text.output, "db.password"));
  auto listed = nlohmann::json::parse(json_out.output, nullptr, false);
  BOOST_REQUIRE_MESSAGE(listed.is_object(), json_out.output);
  BOOST_REQUIRE(listed["credentials"].size() == 2u);
  auto key_id = listed["key_id"].get<std::string>();
  // Sorted by name; lengths without the newline stdin carried.
  BOOST_TEST(listed["credentials"][0]["name"] == "db.password");
  BOOST_TEST(listed["credentials"][0]["length"] == std::string(password_value).size());
  BOOST_TEST(listed["credentials"][1]["name"] == "http.orders.token");
  BOOST_TEST(listed["credentials"][1]["length"] == std::string(token_value).size());
  BOOST_TEST(listed["credentials"][1]["key_id"] == key_id);

  library_client client(redis);
  auto store = client.open(key_file);
  BOOST_TEST(resolve(store, "http.orders.token") == token_value);
  BOOST_TEST(resolve(store, "db.password") == password_value);
}

BOOST_AUTO_TEST_CASE(bad_arguments_and_bad_key_files_are_named) {
  check_fails(convoy({"secret", "list"}), 1, key_file.string()); // no key file yet
  check_ok(convoy({"secret", "init"}));
  check_fails(convoy({"secret", "set", "bad name!"}), 2, "bad name!");
  check_fails(convoy({"secret", "set", "x", "--from-env", "CONVOY_NO_SUCH_VARIABLE"}), 2,
              "CONVOY_NO_SUCH_VARIABLE");
  check_fails(set_from_stdin("empty", ""), 2, "is empty");
  check_fails(set_from_stdin("huge", std::string(ad::max_credential_bytes + 1, 'x')), 2,
              "longer than 65536 bytes");
  check_fails(convoy({"secret", "list", "-o", "yaml"}), 2, "yaml");
  check_fails(convoy({"secret", "remove", "never-set"}), 4, "never-set");
  check_fails(convoy({"secret"}), 2, "convoy");
  auto nowhere = "127.0.0.1:" + std::to_string(convoy::test::free_loopback_port());
  check_fails(convoy({"secret", "list", "--redis", nowhere}), 3, nowhere);
  BOOST_TEST(redis.command_int({"HLEN", hash}) == 0);

  BOOST_REQUIRE(::chmod(key_file.c_str(), 0644) == 0);
  check_fails(convoy({"secret", "list"}), 1, "mode 0644");
  auto help = convoy({"secret", "set", "--help"});
  check_ok(help);
  BOOST_TEST(contains(help.output, "example:"));
}

BOOST_AUTO_TEST_CASE(rotate_re_encrypts_every_credential) {
  check_ok(convoy({"secret", "init"}));
  check_ok(set_from_stdin("http.orders.token", token_value));
  check_ok(set_from_stdin("db.password", password_value));
  auto old_token = envelope("http.orders.token");
  auto old_password = envelope("db.password");
  auto old_id = ad::envelope_key_id(old_token);
  BOOST_REQUIRE(!old_id.empty());
  BOOST_TEST(redis.command({"HGET", hash, "@key"}) == old_id);
  // Open before the rotation, like an adapter in a node that keeps running through it.
  library_client client(redis);
  auto store = client.open(key_file);

  auto rotated = convoy({"secret", "rotate"});
  check_ok(rotated);
  check_no_value_in(rotated.output);
  BOOST_TEST(contains(rotated.output, "re-encrypted 2 credentials"));

  auto new_token = envelope("http.orders.token");
  auto new_id = ad::envelope_key_id(new_token);
  BOOST_TEST(new_token != old_token);
  BOOST_TEST(envelope("db.password") != old_password);
  BOOST_TEST(new_id != old_id);
  BOOST_TEST(ad::envelope_key_id(envelope("db.password")) == new_id);
  BOOST_TEST(redis.command({"HGET", hash, "@key"}) == new_id);

  auto ring = ad::load_key_file(key_file);
  BOOST_REQUIRE(std::holds_alternative<ad::key_ring>(ring));
  BOOST_TEST(std::get<ad::key_ring>(ring).current.id == new_id);
  BOOST_TEST(std::get<ad::key_ring>(ring).retired.empty());

  // The store opened before reads the rotated key file again when it meets the new key id.
  BOOST_TEST(store.keys()->current.id == old_id);
  BOOST_TEST(resolve(store, "http.orders.token") == token_value);
  BOOST_TEST(resolve(store, "db.password") == password_value);
  BOOST_TEST(store.keys()->current.id == new_id);
  // A value stored after the rotation is under the new key too.
  BOOST_TEST(message_of(store.set("late", "after")) == "");
  BOOST_TEST(ad::envelope_key_id(envelope("late")) == new_id);
}

BOOST_AUTO_TEST_CASE(backup_and_restore_into_a_fresh_key_file) {
  check_ok(convoy({"secret", "init"}));
  check_ok(set_from_stdin("http.orders.token", token_value));
  auto backup_file = dir.path() / "master.bak";
  auto backup = convoy({"secret", "backup", backup_file.string()});
  check_ok(backup);
  struct stat st{};
  BOOST_REQUIRE(::stat(backup_file.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0600u);

  auto fresh = dir.path() / "elsewhere" / "master.key";
  check_fails(convoy({"secret", "restore", backup_file.string(), "--key-file", fresh.string()},
                     {{"CONVOY_SECRET_PASSPHRASE", "not the passphrase"}}),
              1, "passphrase is wrong");
  BOOST_TEST(!fs::exists(fresh));
  auto restored =
    convoy({"secret", "restore", backup_file.string(), "--key-file", fresh.string()});
  check_ok(restored);
  check_no_value_in(backup.output + restored.output);
  check_fails(convoy({"secret", "restore", backup_file.string(), "--key-file", fresh.string()}),
              1, "--force");

  library_client client(redis);
  BOOST_TEST(resolve(client.open(fresh), "http.orders.token") == token_value);
  // The restored file is a full key file: the CLI lists with it.
  check_ok(convoy({"secret", "list", "--key-file", fresh.string()}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(secrets_store, secrets_fixture)

BOOST_AUTO_TEST_CASE(sets_racing_a_rotation_are_neither_lost_nor_left_under_the_old_key) {
  check_ok(convoy({"secret", "init"}));
  library_client client(redis);
  auto writer = client.open(key_file);
  auto rotator = client.open(key_file);
  for (int i = 0; i < 50; ++i)
    BOOST_REQUIRE(!writer.set("before-" + std::to_string(i), "old " + std::to_string(i)));

  // The writer keeps the key ring it opened with, so its sets during the rotation are under
  // the old key: the rotation's compare-and-swap must notice them and redo its work; once it
  // has swapped, the writer's sets are refused until it picks up the new key from the file.
  // It writes every 2 ms (an adapter's pace, not a wait) until 10 sets after the rotation.
  std::map<std::string, std::string> written;
  std::string writer_error;
  std::atomic<bool> rotation_done{false};
  std::thread racer([&] {
    int after = 0;
    for (int i = 0; i < 3000 && writer_error.empty() && after < 10; ++i) {
      after += rotation_done ? 1 : 0;
      auto name = "during-" + std::to_string(i);
      auto value = "value " + std::to_string(i);
      writer_error = message_of(writer.set(name, value));
      written[name] = value;
      std::this_thread::sleep_for(2ms);
    }
  });
  std::variant<ad::credential_store::rotation, ad::store_error> rotated =
    ad::store_error{ad::store_errc::failed, "not run"};
  // A rotation that keeps losing its swap gives up ("kept changing") leaving every value
  // readable, so trying again is what an operator would do.
  for (int tries = 0; tries < 50 && std::holds_alternative<ad::store_error>(rotated); ++tries)
    rotated = rotator.rotate();
  rotation_done = true;
  racer.join();
  BOOST_REQUIRE_MESSAGE(writer_error.empty(), writer_error);
  if (auto err = std::get_if<ad::store_error>(&rotated))
    BOOST_FAIL("the rotation never succeeded: " << err->message);

  auto new_id = redis.command({"HGET", hash, "@key"});
  BOOST_TEST(new_id == std::get<ad::credential_store::rotation>(rotated).new_id);
  auto fresh = client.open(key_file);
  for (int i = 0; i < 50; ++i)
    written["before-" + std::to_string(i)] = "old " + std::to_string(i);
  for (const auto& [name, value] : written) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(resolve(fresh, name) == value);
      BOOST_TEST(ad::envelope_key_id(envelope(name)) == new_id);
    }
  }
  BOOST_TEST(redis.command_int({"HLEN", hash}) == static_cast<long long>(written.size() + 1));
}

BOOST_AUTO_TEST_CASE(values_resolve_by_name_and_only_by_their_own_name) {
  check_ok(convoy({"secret", "init"}));
  library_client client(redis);
  auto store = client.open(key_file);
  BOOST_TEST(message_of(store.set("http.orders.token", token_value)) == "");
  BOOST_TEST(resolve(store, "http.orders.token") == token_value);

  // Copied by hand to another name: the name is the associated data, so it fails.
  redis.command({"HSET", hash, "http.billing.token", envelope("http.orders.token")});
  auto moved = resolve(store, "http.billing.token");
  BOOST_TEST(contains(moved, "credential 'http.billing.token' failed authentication"));
  ad::store_error error;
  BOOST_TEST(!store.get("http.billing.token", error));
  BOOST_TEST((error.code == ad::store_errc::tampered));
  BOOST_TEST(!store.get("missing", error));
  BOOST_TEST((error.code == ad::store_errc::not_found));
  BOOST_TEST(!contains(moved, token_value));

  BOOST_TEST(contains(resolve(store, "missing"), "credential 'missing' does not exist"));
  BOOST_TEST(contains(resolve(store, "bad name"), "is not valid"));
  auto big = store.set("big", std::string(ad::max_credential_bytes + 1, 'x'));
  BOOST_REQUIRE(big);
  BOOST_TEST(contains(big->message, "at most 65536"));
  BOOST_TEST((big->code == ad::store_errc::invalid_argument));
  BOOST_TEST(message_of(store.set("exactly-max", std::string(ad::max_credential_bytes, 'x'))) == "");
  BOOST_TEST(resolve(store, "exactly-max").size() == ad::max_credential_bytes);

  BOOST_TEST(message_of(store.remove("http.billing.token")) == "");
  auto gone = store.remove("http.billing.token");
  BOOST_TEST((gone && gone->code == ad::store_errc::not_found));
  auto listed = store.list();
  BOOST_REQUIRE(std::holds_alternative<std::vector<ad::credential_info>>(listed));
  BOOST_TEST(std::get<std::vector<ad::credential_info>>(listed).size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_stale_key_file_can_neither_read_nor_write) {
  check_ok(convoy({"secret", "init"}));
  library_client client(redis);
  auto store = client.open(key_file);
  BOOST_TEST(message_of(store.set("http.orders.token", token_value)) == "");

  auto other_file = dir.path() / "other.key";
  check_ok(convoy({"secret", "init", "--key-file", other_file.string()}));
  auto other = client.open(other_file);
  auto read = resolve(other, "http.orders.token");
  BOOST_TEST(contains(read, "is sealed with master key " + store.keys()->current.id));
  BOOST_TEST(contains(read, other_file.string()));
  ad::store_error error;
  BOOST_TEST(!other.get("http.orders.token", error));
  BOOST_TEST((error.code == ad::store_errc::key_file));
  auto written = other.set("new.one", "value");
  BOOST_REQUIRE(written);
  BOOST_TEST(contains(written->message, "does not hold"));
  BOOST_TEST((written->code == ad::store_errc::key_file));
  BOOST_TEST(redis.command({"HEXISTS", hash, "new.one"}) == "0");
  auto rotated = other.rotate();
  BOOST_REQUIRE(std::holds_alternative<ad::store_error>(rotated));
  BOOST_TEST(contains(std::get<ad::store_error>(rotated).message, "does not hold"));
  BOOST_TEST(resolve(store, "http.orders.token") == token_value);
}

BOOST_AUTO_TEST_SUITE_END()
