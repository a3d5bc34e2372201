#pragma once

/// @file
/// The master secret and the credential store (BizTalk's Enterprise SSO, done with OpenSSL).
///
/// A *master key* (32 random bytes, AES-256-GCM) lives in a key file on each machine that
/// needs credentials; the file is `0600` and refused when group or others may read it.
/// Credentials live in the MessageBox, shared by every node: one Redis hash
/// `{prefix}secrets` (see `convoy/persistence/keys.hpp`) whose fields are credential names
/// and whose values are *envelopes*:
///
///     v1:<key id>:<base64(nonce 12 B | ciphertext | tag 16 B)>
///
/// sealed with the credential's name as associated data, so a value copied to another name
/// does not decrypt. The field `@key` (never a valid name) records the key id the
/// credentials are under, so that a machine holding a stale key file cannot write values
/// the others cannot read.
///
/// Plaintext never leaves `secret` buffers, which are wiped when they die, and no function
/// here puts a value into an error message.

#include "convoy/persistence/redis_client.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace convoy::adapters {

/// Credential values are for tokens, passwords and keys: larger ones are refused.
inline constexpr size_t max_credential_bytes = 64 * 1024;

/// Returns "" when `name` may name a credential (`[A-Za-z0-9._-]`, 1 to 128 characters),
/// else why not (the message quotes the name: names are not secret).
std::string check_credential_name(std::string_view name);

/// Bytes that are wiped (OPENSSL_cleanse) when the object dies or is moved from.
///
/// Move-only so that no stray copy outlives it. Growing it would leave the old buffer
/// unwiped, hence no append: build the whole value, then wrap it.
class secret {
public:
  secret() = default;
  /// Takes `bytes` over; the caller's string is left empty and its buffer wiped.
  explicit secret(std::string&& bytes) noexcept;
  secret(secret&& other) noexcept;
  secret& operator=(secret&& other) noexcept;
  secret(const secret&) = delete;
  secret& operator=(const secret&) = delete;
  ~secret();

  std::string_view view() const noexcept { return bytes_; }
  size_t size() const noexcept { return bytes_.size(); }
  bool empty() const noexcept { return bytes_.empty(); }
  /// For OpenSSL calls that fill a buffer of known size (`secret::zeros(n)` first).
  unsigned char* data() noexcept { return reinterpret_cast<unsigned char*>(bytes_.data()); }
  const unsigned char* data() const noexcept {
    return reinterpret_cast<const unsigned char*>(bytes_.data());
  }

  /// `n` zero bytes, to be overwritten in place.
  static secret zeros(size_t n);

private:
  void wipe() noexcept;
  std::string bytes_;
};

/// One AES-256 master key and its id (8 hex digits of SHA-256 over the key, so a restored
/// key proves it is the one its id names).
struct master_key {
  std::string id;
  secret key; ///< 32 bytes

  /// 32 bytes from RAND_bytes; nullopt only if OpenSSL's generator fails.
  static std::optional<master_key> generate();
  /// The id of `key` (32 bytes).
  static std::string id_of(std::string_view key);
};

/// What a key file holds: the key new values are sealed with, and retired keys still
/// accepted for reading (a rotation in progress, or one that stopped midway).
struct key_ring {
  master_key current;
  std::vector<master_key> retired;

  /// The key with this id, current or retired, or nullptr.
  const master_key* find(std::string_view id) const noexcept;
  /// "3fa2c1d0" or "3fa2c1d0 (retired: 11aa22bb, ...)", for messages.
  std::string describe() const;
};

/// The key file to use: `flag` if given, else $CONVOY_SECRET_FILE, else
/// `$HOME/.config/convoy/master.key`.
std::filesystem::path default_key_file(const std::string& flag = "");

/// Creates `path` (mode 0600, created exclusively: an existing file is never replaced,
/// whatever its content) holding `ring`; creates missing parent folders with mode 0700.
/// Returns "" or an error naming the file.
std::string create_key_file(const std::filesystem::path& path, const key_ring& ring);

/// Replaces `path` with `ring` atomically (temporary file, fsync, rename, fsync of the
/// folder): a crash leaves the old file or the new one. Returns "" or an error.
std::string replace_key_file(const std::filesystem::path& path, const key_ring& ring);

/// Reads a key file. Refuses one that is not a regular file, that group or others may
/// access (naming the file and its mode), or that is malformed.
std::variant<key_ring, std::string> load_key_file(const std::filesystem::path& path);

/// Decodes a key file's text (`load_key_file` after its checks; also a backup's content):
/// a header line, one `current ID BASE64` line, any `retired ID BASE64` lines, each key 32
/// bytes and matching its id. Errors start with `where` ("key file /etc/convoy/master.key").
std::variant<key_ring, std::string> parse_key_file(std::string_view text,
                                                   const std::string& where);

/// Passphrases shorter than this are refused for backups.
inline constexpr size_t min_passphrase_bytes = 8;

/// Writes `ring` to `path` (mode 0600, created exclusively) encrypted under `passphrase`:
/// PBKDF2-HMAC-SHA256 (random 16-byte salt, 600 000 iterations) derives an AES-256-GCM key;
/// the file's header lines are the associated data, so they cannot be altered either.
/// Returns "" or an error.
std::string write_backup(const std::filesystem::path& path, const key_ring& ring,
                         std::string_view passphrase);

/// Reads a backup written by `write_backup`. A wrong passphrase and a damaged file give the
/// same error (GCM cannot tell them apart); nothing is written anywhere.
std::variant<key_ring, std::string> read_backup(const std::filesystem::path& path,
                                                std::string_view passphrase);

/// Encrypts `plaintext` under `key` with `aad` as associated data into an envelope
/// `v1:<key id>:<base64>`. Used for credentials (aad = name), and usable for any payload
/// at rest. Returns nullopt only if OpenSSL fails.
std::optional<std::string> seal(const master_key& key, std::string_view plaintext,
                                std::string_view aad);

/// Decrypts an envelope with whichever key of `ring` its id names. On failure returns
/// nullopt and sets `error` to a phrase to follow the value's name ("is sealed with master
/// key X, which ... does not hold", "failed authentication: ..."), never containing bytes
/// of the value.
std::optional<secret> unseal(const key_ring& ring, std::string_view envelope,
                             std::string_view aad, std::string& error);

/// The key id an envelope names, or "" if it is not an envelope.
std::string envelope_key_id(std::string_view envelope);

/// What kind of problem a `credential_store` call met (the CLI maps them to exit codes).
enum class store_errc : uint8_t {
  /// A bad credential name or a value over `max_credential_bytes`.
  invalid_argument,
  /// The credential does not exist.
  not_found,
  /// The key file is missing, unreadable, readable by others, damaged or could not be
  /// written, or does not hold the key the MessageBox's credentials are under.
  key_file,
  /// A stored value failed authentication or is not an envelope: altered, or moved from
  /// another name.
  tampered,
  /// Redis could not be reached or answered with an error (for a write: outcome unknown).
  messagebox,
  /// OpenSSL failed, or a rotation kept losing its compare-and-swap to concurrent writes.
  failed,
};

/// A `credential_store` error: its kind, and one line naming the credential or file and the
/// problem (never a value).
struct store_error {
  store_errc code;
  std::string message;
};

/// What `credential_store::list` reports of one credential: never its value.
struct credential_info {
  std::string name;
  std::string key_id;
  size_t length = 0; ///< bytes of the value
};

/// The credentials in the MessageBox, read and written with the key file of this machine.
///
/// Blocking: every call waits for Redis (use it from the CLI, from start-up, or from an
/// adapter's own thread, never from a CAF worker). It sends single commands and Lua scripts
/// only, never MULTI/WATCH, so it can share a connection with other users, e.g.
/// `message_box::commands()`. Every call may run on several threads at once (rotations of
/// one key file are serialized by a lock file beside it, `master.key.lock`).
///
/// A long-running process keeps its store open across rotations: when a value (or, for
/// `set`, the MessageBox) names a key the store does not hold, it reads the key file again
/// once (a rotation here, or a `convoy secret restore` after a rotation elsewhere, has
/// replaced it) and retries.
class credential_store {
public:
  credential_store(credential_store&&) noexcept;
  credential_store& operator=(credential_store&&) noexcept;
  ~credential_store();

  /// Loads `key_file` and binds to `{prefix}secrets` through `redis`, which must outlive
  /// the store. Returns the store, or an error naming the key file and the problem.
  static std::variant<credential_store, std::string>
  open(const std::filesystem::path& key_file, persistence::redis_connection& redis,
       const std::string& prefix = "convoy:");

  /// The value of credential `name`, or nullopt with `error` naming the credential and the
  /// problem: missing, sealed with a key this file does not hold, tampered with, or Redis
  /// unreachable.
  std::optional<secret> get(std::string_view name, store_error& error) const;

  /// Stores `value` under `name` (replacing an older value). Refuses a bad name, a value
  /// over `max_credential_bytes`, and a MessageBox whose credentials are under a key this
  /// file does not hold. Returns nullopt on success.
  std::optional<store_error> set(std::string_view name, std::string_view value);

  /// Deletes credential `name` (`not_found` when there is none). Returns nullopt on success.
  std::optional<store_error> remove(std::string_view name);

  /// Every credential's name, key id and length, sorted by name; or an error.
  std::variant<std::vector<credential_info>, store_error> list() const;

  /// What `rotate` did.
  struct rotation {
    std::string old_id;
    std::string new_id;
    size_t credentials = 0; ///< values re-encrypted
  };

  /// Generates a new master key and re-encrypts every credential with it, atomically
  /// (see the crash-safety argument in secrets.cpp). Afterwards the key file holds only the
  /// new key: every other machine needs it too (`convoy secret backup` / `restore`).
  std::variant<rotation, store_error> rotate();

  /// The keys in use (a snapshot: a rotation or a reload in `get` swaps in new ones).
  std::shared_ptr<const key_ring> keys() const;
  const std::filesystem::path& key_file() const noexcept { return key_file_; }
  const std::string& hash_key() const noexcept { return hash_key_; }

private:
  struct shared_keys;

  credential_store(std::filesystem::path key_file, key_ring ring,
                   persistence::redis_connection& redis, std::string hash_key);

  void use_keys(std::shared_ptr<const key_ring> ring) const;
  /// Reads the key file again and uses it if it holds key `id`; returns whether it did.
  bool reload_for(std::string_view id) const;

  std::filesystem::path key_file_;
  std::unique_ptr<shared_keys> keys_;
  persistence::redis_connection* redis_;
  std::string hash_key_;
};

} // namespace convoy::adapters
