#include "convoy/adapters/secrets.hpp"

#include "convoy/persistence/keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace convoy::adapters {

namespace {

constexpr size_t key_bytes = 32;
constexpr size_t nonce_bytes = 12;
constexpr size_t tag_bytes = 16;
constexpr std::string_view envelope_version = "v1:";
/// "v1:" + 8 hex digits + ":"
constexpr size_t envelope_prefix_bytes = 12;
/// The longest envelope a credential of `max_credential_bytes` makes; longer ones found in
/// Redis were not written by Convoy and are refused before decoding.
constexpr size_t max_envelope_bytes =
  envelope_prefix_bytes + 4 * ((nonce_bytes + max_credential_bytes + tag_bytes + 2) / 3);
/// The hash field holding the key id the credentials are under; '@' keeps it out of the
/// credential name space.
constexpr const char* key_id_field = "@key";
/// A key file holds a few keys; a backup, one key file. Anything larger is not ours.
constexpr size_t max_key_file_bytes = 64 * 1024;
constexpr std::string_view key_file_header = "convoy master key file v1\n";
constexpr std::string_view backup_header = "convoy master key backup v1\n";
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256; the count is stored in the backup so that it
/// can be raised later, and bounded on reading so that a forged file cannot stall us.
constexpr long backup_iterations = 600'000;
constexpr long max_backup_iterations = 10'000'000;
constexpr size_t salt_bytes = 16;

struct cipher_ctx_free {
  void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free>;

std::string system_error(const fs::path& path, const char* doing, int error) {
  return std::string("cannot ") + doing + " " + path.string() + ": " + std::strerror(error);
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                  reinterpret_cast<const unsigned char*>(bytes.data()),
                  static_cast<int>(bytes.size()));
  return out;
}

/// Strict: canonical padded base64 only (EVP_DecodeBlock alone would skip whitespace and
/// count padding as zero bytes). Wrapped in `secret` because key material passes through.
std::optional<secret> unbase64(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  auto is_b64 = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '+' || c == '/';
  };
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=')
    ++padding;
  if (!std::all_of(text.begin(), text.end() - static_cast<std::ptrdiff_t>(padding), is_b64))
    return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0)
    return std::nullopt;
  out.resize(static_cast<size_t>(n) - padding); // shrinking keeps the buffer `secret` wipes
  return secret(std::move(out));
}

bool is_key_id(std::string_view id) {
  return id.size() == 8 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string mode_text(mode_t mode) {
  char out[8];
  std::snprintf(out, sizeof out, "%04o", static_cast<unsigned>(mode & 07777));
  return out;
}

/// Writes `bytes` to a file that must not exist yet (O_EXCL: never through a planted link,
/// never over an existing key), mode 0600 from the first byte, fsynced. Removes a partial
/// file on failure.
std::string write_new_file(const fs::path& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno == EEXIST ? path.string() + " already exists; Convoy does not overwrite it"
                           : system_error(path, "create", errno);
  bool ok = true;
  for (size_t done = 0; ok && done < bytes.size();) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  ok = ok && ::fsync(fd) == 0;
  int error = errno;
  ::close(fd);
  if (ok)
    return {};
  ::unlink(path.c_str());
  return system_error(path, "write", error);
}

/// Reads a file that must be private to its owner: checked on the open descriptor (fstat),
/// so the file checked is the file read.
std::variant<secret, std::string> read_private_file(const fs::path& path, const char* what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return system_error(path, "read", errno);
  struct stat st{};
  std::string error;
  if (::fstat(fd, &st) != 0)
    error = system_error(path, "read", errno);
  else if (!S_ISREG(st.st_mode))
    error = std::string(what) + " " + path.string() + " is not a regular file";
  else if ((st.st_mode & 077) != 0)
    error = std::string(what) + " " + path.string() + " has mode " + mode_text(st.st_mode)
            + ", so others may read it: chmod 600 " + path.string();
  else if (static_cast<size_t>(st.st_size) > max_key_file_bytes)
    error = std::string(what) + " " + path.string() + " is larger than "
            + std::to_string(max_key_file_bytes) + " bytes, so it is not one";
  if (!error.empty()) {
    ::close(fd);
    return error;
  }
  // Sized up front: a growing string would leave copies of the key in freed memory.
  std::string bytes(max_key_file_bytes + 1, '\0');
  size_t done = 0;
  ssize_t n = 0;
  while (done < bytes.size() && (n = ::read(fd, bytes.data() + done, bytes.size() - done)) > 0)
    done += static_cast<size_t>(n);
  int read_errno = errno;
  ::close(fd);
  bytes.resize(done);
  secret content(std::move(bytes));
  if (n < 0)
    return system_error(path, "read", read_errno);
  if (done > max_key_file_bytes)
    return std::string(what) + " " + path.string() + " grew while being read";
  return content;
}

/// Serializes a ring: the header, then `current ID BASE64` and one `retired ID BASE64`
/// line per retired key.
secret key_file_text(const key_ring& ring) {
  std::string out;
  out.reserve(key_file_header.size() + 64 * (ring.retired.size() + 1));
  out += key_file_header;
  auto line = [&out](const char* role, const master_key& k) {
    auto encoded = secret(base64(k.key.view()));
    out += role;
    out += ' ';
    out += k.id;
    out += ' ';
    out += encoded.view();
    out += '\n';
  };
  line("current", ring.current);
  for (const auto& k : ring.retired)
    line("retired", k);
  return secret(std::move(out));
}

std::string fsync_folder(const fs::path& folder) {
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return system_error(folder, "open", errno);
  int rc = ::fsync(fd);
  int error = errno;
  ::close(fd);
  return rc == 0 ? std::string{} : system_error(folder, "fsync", error);
}

/// Serializes rotations (and restores) of one key file on this machine: two rotations
/// interleaving their key file writes could otherwise leave the file without the key the
/// MessageBox ended up under. A sibling `.lock` file, because the key file itself is
/// replaced by rename and a lock on the old inode would guard nothing.
class key_file_lock {
public:
  explicit key_file_lock(const fs::path& key_file) {
    auto path = key_file;
    path += ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0)
      error_ = system_error(path, "create", errno);
    else if (::flock(fd_, LOCK_EX) != 0)
      error_ = system_error(path, "lock", errno);
  }
  ~key_file_lock() {
    if (fd_ >= 0)
      ::close(fd_); // releases the lock
  }
  key_file_lock(const key_file_lock&) = delete;
  key_file_lock& operator=(const key_file_lock&) = delete;

  const std::string& error() const noexcept { return error_; }

private:
  int fd_ = -1;
  std::string error_;
};

/// One AES-256-GCM operation over `in` into `out` (same size); `tag` is written when
/// encrypting and checked when decrypting. Returns false on failure (for decryption: the
/// tag did not match).
bool gcm(bool encrypt, const secret& key, const unsigned char* nonce, std::string_view aad,
         const unsigned char* in, size_t size, unsigned char* out, unsigned char* tag) {
  cipher_ctx ctx{EVP_CIPHER_CTX_new()};
  int len = 0;
  if (!ctx
      || EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce,
                           encrypt ? 1 : 0)
           != 1
      || EVP_CipherUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size()))
           != 1
      || (size > 0
          && EVP_CipherUpdate(ctx.get(), out, &len, in, static_cast<int>(size)) != 1))
    return false;
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_bytes, tag) != 1)
    return false;
  if (EVP_CipherFinal_ex(ctx.get(), out + len, &len) != 1)
    return false;
  return !encrypt || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_bytes, tag) == 1;
}

std::optional<master_key> derive_backup_key(std::string_view passphrase,
                                            std::string_view salt, long iterations) {
  auto key = secret::zeros(key_bytes);
  if (PKCS5_PBKDF2_HMAC(passphrase.data(), static_cast<int>(passphrase.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations),
                        EVP_sha256(), static_cast<int>(key_bytes), key.data())
      != 1)
    return std::nullopt;
  auto id = master_key::id_of(key.view());
  return master_key{std::move(id), std::move(key)};
}

/// Sets @key if absent, refuses when it names a key this file does not hold (a machine with
/// a stale key file would write values nobody else can read), then stores the envelope.
/// ARGV: name, envelope, current id, then every id the writer holds.
constexpr const char* set_script = R"lua(
local held = redis.call('HGET', KEYS[1], '@key')
if held then
  local known = false
  for i = 3, #ARGV do
    if ARGV[i] == held then known = true end
  end
  if not known then return redis.error_reply('CONVOYKEY ' .. held) end
else
  redis.call('HSET', KEYS[1], '@key', ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

/// Compare-and-swap of the whole hash: applies the new values only if the hash still holds
/// exactly the fields and values the rotation read (what WATCH would guard, but without
/// needing a connection of our own). ARGV: field count, then (field, old, new) triples.
constexpr const char* rotate_script = R"lua(
if redis.call('HLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
for i = 2, #ARGV, 3 do
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '') ~= ARGV[i + 1] then return 0 end
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
end
return 1
)lua";

store_error redis_failure(const persistence::redis_connection& redis, const std::string& doing,
                          const persistence::redis_value& reply) {
  return {store_errc::messagebox,
          "cannot " + doing + " at " + redis.endpoint().address() + ": " + reply.to_text()};
}

/// Reads the whole hash: field → envelope, with `@key` among them.
std::variant<std::map<std::string, std::string>, store_error>
read_hash(persistence::redis_connection& redis, const std::string& hash_key) {
  auto reply = redis.run({"HGETALL", hash_key});
  if (!reply.is_array())
    return redis_failure(redis, "read the credentials " + hash_key, reply);
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2)
    out[std::move(reply.elements[i].str)] = std::move(reply.elements[i + 1].str);
  return out;
}

} // namespace

// -- names ------------------------------------------------------------------

std::string check_credential_name(std::string_view name) {
  auto ok = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '.' || c == '_' || c == '-';
  };
  if (!name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), ok))
    return {};
  return "credential name '" + std::string(name.substr(0, 200))
         + "' is not valid: use 1 to 128 of A-Z a-z 0-9 . _ -";
}

// -- secret -----------------------------------------------------------------

secret::secret(std::string&& bytes) noexcept : bytes_(std::move(bytes)) {
  // A short string is moved by copying its inline buffer: wipe what stayed behind.
  OPENSSL_cleanse(bytes.data(), bytes.capacity());
  bytes.clear();
}

secret::secret(secret&& other) noexcept : secret(std::move(other.bytes_)) {}

secret& secret::operator=(secret&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    other.wipe();
  }
  return *this;
}

secret::~secret() { wipe(); }

secret secret::zeros(size_t n) { return secret(std::string(n, '\0')); }

void secret::wipe() noexcept {
  OPENSSL_cleanse(bytes_.data(), bytes_.capacity());
  bytes_.clear();
}

// -- keys -------------------------------------------------------------------

std::optional<master_key> master_key::generate() {
  auto key = secret::zeros(key_bytes);
  if (RAND_bytes(key.data(), static_cast<int>(key_bytes)) != 1)
    return std::nullopt;
  auto id = id_of(key.view());
  return master_key{std::move(id), std::move(key)};
}

std::string master_key::id_of(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  char out[9];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x", digest[0], digest[1], digest[2],
                digest[3]);
  return out;
}

const master_key* key_ring::find(std::string_view id) const noexcept {
  if (current.id == id)
    return &current;
  for (const auto& k : retired)
    if (k.id == id)
      return &k;
  return nullptr;
}

std::string key_ring::describe() const {
  std::string out = current.id;
  for (size_t i = 0; i < retired.size(); ++i)
    out += (i == 0 ? " (retired: " : ", ") + retired[i].id;
  return retired.empty() ? out : out + ")";
}

fs::path default_key_file(const std::string& flag) {
  if (!flag.empty())
    return flag;
  if (auto env = std::getenv("CONVOY_SECRET_FILE"); env && *env)
    return env;
  auto home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".config" / "convoy" / "master.key";
}

std::string create_key_file(const fs::path& path, const key_ring& ring) {
  auto folder = path.parent_path();
  std::error_code ec;
  if (!folder.empty() && !fs::exists(folder, ec)) {
    fs::create_directories(folder, ec);
    if (!ec)
      fs::permissions(folder, fs::perms::owner_all, ec);
    if (ec)
      return "cannot create folder " + folder.string() + ": " + ec.message();
  }
  return write_new_file(path, key_file_text(ring).view());
}

std::string replace_key_file(const fs::path& path, const key_ring& ring) {
  auto tmp = path;
  tmp += ".tmp";
  // A leftover from a crash midway is incomplete by definition (O_EXCL refuses it).
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
    return system_error(tmp, "remove", errno);
  if (auto err = write_new_file(tmp, key_file_text(ring).view()); !err.empty())
    return err;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(tmp.c_str());
    return system_error(path, "replace", error);
  }
  auto folder = path.parent_path();
  return fsync_folder(folder.empty() ? fs::path(".") : folder);
}

std::variant<key_ring, std::string> load_key_file(const fs::path& path) {
  auto content = read_private_file(path, "key file");
  if (auto err = std::get_if<std::string>(&content))
    return std::move(*err);
  return parse_key_file(std::get<secret>(content).view(), "key file " + path.string());
}

std::variant<key_ring, std::string> parse_key_file(std::string_view text,
                                                   const std::string& where) {
  auto bad = [&](const std::string& why) { return where + " is not a Convoy key file: " + why; };
  if (text.substr(0, key_file_header.size()) != key_file_header)
    return bad("its first line is not '" + std::string(key_file_header.substr(0, 25)) + "'");
  text.remove_prefix(key_file_header.size());
  key_ring ring;
  bool have_current = false;
  for (int line_no = 2; !text.empty(); ++line_no) {
    auto end = text.find('\n');
    if (end == std::string_view::npos)
      return bad("line " + std::to_string(line_no) + " does not end with a newline");
    auto line = text.substr(0, end);
    text.remove_prefix(end + 1);
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos)
      return bad("line " + std::to_string(line_no) + " is not 'current|retired ID KEY'");
    auto role = line.substr(0, sp1);
    auto id = line.substr(sp1 + 1, sp2 - sp1 - 1);
    auto key = unbase64(line.substr(sp2 + 1));
    if ((role != "current" && role != "retired") || !is_key_id(id))
      return bad("line " + std::to_string(line_no) + " is not 'current|retired ID KEY'");
    if (!key || key->size() != key_bytes)
      return bad("line " + std::to_string(line_no) + " does not hold a 32-byte base64 key");
    if (master_key::id_of(key->view()) != id)
      return bad("the key on line " + std::to_string(line_no) + " does not match its id "
                 + std::string(id) + " (the file is damaged)");
    if (role == "current" && have_current)
      return bad("it names two current keys");
    master_key k{std::string(id), std::move(*key)};
    if (role == "current") {
      ring.current = std::move(k);
      have_current = true;
    } else {
      ring.retired.push_back(std::move(k));
    }
  }
  if (!have_current)
    return bad("it holds no current key");
  return ring;
}

// -- backups ----------------------------------------------------------------

std::string write_backup(const fs::path& path, const key_ring& ring,
                         std::string_view passphrase) {
  if (passphrase.size() < min_passphrase_bytes)
    return "the passphrase is too short: use at least " + std::to_string(min_passphrase_bytes)
           + " characters";
  unsigned char salt[salt_bytes];
  if (RAND_bytes(salt, sizeof salt) != 1)
    return "OpenSSL's random generator failed";
  auto salt_text = std::string_view(reinterpret_cast<const char*>(salt), sizeof salt);
  auto key = derive_backup_key(passphrase, salt_text, backup_iterations);
  if (!key)
    return "OpenSSL could not derive a key from the passphrase";
  std::string header = std::string(backup_header) + "kdf pbkdf2-hmac-sha256 "
                       + std::to_string(backup_iterations) + " " + base64(salt_text) + "\n";
  auto sealed = seal(*key, key_file_text(ring).view(), header);
  if (!sealed)
    return "OpenSSL could not encrypt the backup";
  return write_new_file(path, header + *sealed + "\n");
}

std::variant<key_ring, std::string> read_backup(const fs::path& path,
                                                std::string_view passphrase) {
  auto content = read_private_file(path, "backup");
  if (auto err = std::get_if<std::string>(&content))
    return std::move(*err);
  auto text = std::get<secret>(content).view();
  auto bad = [&] { return "backup " + path.string() + " is not a Convoy master key backup"; };
  if (text.substr(0, backup_header.size()) != backup_header)
    return bad();
  auto header_end = text.find('\n', backup_header.size());
  if (header_end == std::string_view::npos)
    return bad();
  auto header = text.substr(0, header_end + 1);
  // "kdf pbkdf2-hmac-sha256 ITERATIONS SALT"
  auto kdf = std::string(header.substr(backup_header.size()));
  char salt_text[64] = {};
  long iterations = 0;
  if (std::sscanf(kdf.c_str(), "kdf pbkdf2-hmac-sha256 %ld %63s", &iterations, salt_text) != 2
      || iterations < 1 || iterations > max_backup_iterations)
    return bad();
  auto salt = unbase64(salt_text);
  auto envelope = text.substr(header_end + 1);
  if (!salt || envelope.empty() || envelope.back() != '\n')
    return bad();
  envelope.remove_suffix(1);
  auto key = derive_backup_key(passphrase, salt->view(), iterations);
  if (!key)
    return "OpenSSL could not derive a key from the passphrase";
  key_ring backup_ring{std::move(*key), {}};
  std::string why;
  auto plain = unseal(backup_ring, envelope, header, why);
  if (!plain)
    return "cannot decrypt backup " + path.string()
           + ": the passphrase is wrong, or the file was altered";
  return parse_key_file(plain->view(), "the key file inside backup " + path.string());
}

// -- envelopes --------------------------------------------------------------

std::optional<std::string> seal(const master_key& key, std::string_view plaintext,
                                std::string_view aad) {
  std::string raw(nonce_bytes + plaintext.size() + tag_bytes, '\0');
  auto bytes = reinterpret_cast<unsigned char*>(raw.data());
  // A random 96-bit nonce per value: the key seals few values (credentials, rotated
  // keys), far below the 2^32 messages where random GCM nonces start to risk a repeat.
  if (RAND_bytes(bytes, nonce_bytes) != 1
      || !gcm(true, key.key, bytes, aad, reinterpret_cast<const unsigned char*>(plaintext.data()),
              plaintext.size(), bytes + nonce_bytes, bytes + nonce_bytes + plaintext.size()))
    return std::nullopt;
  return std::string(envelope_version) + key.id + ":" + base64(raw);
}

std::string envelope_key_id(std::string_view envelope) {
  // Length first: substr past the end throws (found by tests/fuzz/secrets_fuzz.cpp).
  if (envelope.size() < envelope_prefix_bytes
      || envelope.substr(0, envelope_version.size()) != envelope_version
      || envelope[envelope_prefix_bytes - 1] != ':')
    return {};
  auto id = envelope.substr(envelope_version.size(), 8);
  return is_key_id(id) ? std::string(id) : std::string();
}

std::optional<secret> unseal(const key_ring& ring, std::string_view envelope,
                             std::string_view aad, std::string& error) {
  auto id = envelope_key_id(envelope);
  if (id.empty()) {
    error = "is not an encrypted value (it does not start with v1:<key id>:)";
    return std::nullopt;
  }
  auto key = ring.find(id);
  if (!key) {
    error = "is sealed with master key " + id + ", which the key file does not hold (it holds "
            + ring.describe() + ")";
    return std::nullopt;
  }
  auto raw = unbase64(envelope.substr(envelope_prefix_bytes));
  if (!raw || raw->size() < nonce_bytes + tag_bytes) {
    error = "is damaged (its ciphertext is not base64 of nonce, ciphertext and tag)";
    return std::nullopt;
  }
  auto size = raw->size() - nonce_bytes - tag_bytes;
  auto plain = secret::zeros(size);
  // gcm() wants a writable tag buffer for both directions.
  unsigned char tag[tag_bytes];
  std::memcpy(tag, raw->data() + nonce_bytes + size, tag_bytes);
  if (!gcm(false, key->key, raw->data(), aad, raw->data() + nonce_bytes, size, plain.data(),
           tag)) {
    error = "failed authentication: it was altered, or moved from another name";
    return std::nullopt;
  }
  return plain;
}

// -- credential_store -------------------------------------------------------

/// Readers take a snapshot under the mutex and decrypt without it; a swap never waits for
/// a Redis round trip.
struct credential_store::shared_keys {
  std::mutex mutex;
  std::shared_ptr<const key_ring> ring;
};

credential_store::credential_store(fs::path key_file, key_ring ring,
                                   persistence::redis_connection& redis, std::string hash_key)
  : key_file_(std::move(key_file)),
    keys_(std::make_unique<shared_keys>()),
    redis_(&redis),
    hash_key_(std::move(hash_key)) {
  use_keys(std::make_shared<const key_ring>(std::move(ring)));
}

credential_store::credential_store(credential_store&&) noexcept = default;
credential_store& credential_store::operator=(credential_store&&) noexcept = default;
credential_store::~credential_store() = default;

std::shared_ptr<const key_ring> credential_store::keys() const {
  std::lock_guard guard(keys_->mutex);
  return keys_->ring;
}

void credential_store::use_keys(std::shared_ptr<const key_ring> ring) const {
  std::lock_guard guard(keys_->mutex);
  keys_->ring = std::move(ring);
}

bool credential_store::reload_for(std::string_view id) const {
  // Rotated or restored since we loaded the file? Then the file has the key now.
  auto reloaded = load_key_file(key_file_);
  auto ring = std::get_if<key_ring>(&reloaded);
  if (!ring || !ring->find(id))
    return false;
  use_keys(std::make_shared<const key_ring>(std::move(*ring)));
  return true;
}

std::variant<credential_store, std::string>
credential_store::open(const fs::path& key_file, persistence::redis_connection& redis,
                       const std::string& prefix) {
  auto ring = load_key_file(key_file);
  if (auto err = std::get_if<std::string>(&ring))
    return std::move(*err);
  return credential_store(key_file, std::move(std::get<key_ring>(ring)), redis,
                          persistence::keys(prefix).secrets());
}

std::optional<secret> credential_store::get(std::string_view name, store_error& error) const {
  if (auto bad = check_credential_name(name); !bad.empty()) {
    error = {store_errc::invalid_argument, std::move(bad)};
    return std::nullopt;
  }
  auto quoted = "credential '" + std::string(name) + "'";
  auto reply = redis_->run({"HGET", hash_key_, std::string(name)});
  if (reply.is_nil()) {
    error = {store_errc::not_found, quoted + " does not exist in " + hash_key_ + " at "
                                      + redis_->endpoint().address()};
    return std::nullopt;
  }
  if (reply.kind != persistence::redis_value::type::string) {
    error = redis_failure(*redis_, "read " + quoted, reply);
    return std::nullopt;
  }
  if (reply.str.size() > max_envelope_bytes) {
    error = {store_errc::tampered,
             quoted + " is larger than any value Convoy writes; it was not stored by Convoy"};
    return std::nullopt;
  }
  auto ring = keys();
  std::string why;
  auto value = unseal(*ring, reply.str, name, why);
  auto id = envelope_key_id(reply.str);
  bool unknown_key = !value && !id.empty() && !ring->find(id);
  if (unknown_key && reload_for(id)) {
    unknown_key = false;
    value = unseal(*keys(), reply.str, name, why);
  }
  if (!value)
    error = {unknown_key ? store_errc::key_file : store_errc::tampered,
             quoted + " " + why + " [key file " + key_file_.string() + "]"};
  return value;
}

std::optional<store_error> credential_store::set(std::string_view name,
                                                 std::string_view value) {
  if (auto bad = check_credential_name(name); !bad.empty())
    return store_error{store_errc::invalid_argument, std::move(bad)};
  if (value.size() > max_credential_bytes)
    return store_error{store_errc::invalid_argument,
                       "the value of credential '" + std::string(name) + "' has "
                         + std::to_string(value.size()) + " bytes; at most "
                         + std::to_string(max_credential_bytes) + " are allowed"};
  for (bool reloaded = false;; reloaded = true) {
    auto ring = keys();
    auto envelope = seal(ring->current, value, name);
    if (!envelope)
      return store_error{store_errc::failed,
                         "OpenSSL could not encrypt credential '" + std::string(name) + "'"};
    std::vector<std::string> argv{"EVAL", set_script, "1", hash_key_, std::string(name),
                                  std::move(*envelope), ring->current.id};
    for (const auto& k : ring->retired)
      argv.push_back(k.id);
    auto reply = redis_->run(std::move(argv));
    if (reply.is_error() && reply.str.rfind("CONVOYKEY ", 0) == 0) {
      auto held = reply.str.substr(10);
      if (!reloaded && reload_for(held))
        continue; // rotated since we loaded the file: seal again with the new key
      return store_error{store_errc::key_file,
                         "the credentials in " + hash_key_ + " are sealed with master key "
                           + held + ", which key file " + key_file_.string()
                           + " does not hold (it holds " + ring->describe()
                           + "): restore the current key here with convoy secret restore"};
    }
    if (reply.is_error() || reply.integer != 1)
      return redis_failure(*redis_, "store credential '" + std::string(name) + "'", reply);
    return std::nullopt;
  }
}

std::optional<store_error> credential_store::remove(std::string_view name) {
  if (auto bad = check_credential_name(name); !bad.empty())
    return store_error{store_errc::invalid_argument, std::move(bad)};
  auto reply = redis_->run({"HDEL", hash_key_, std::string(name)});
  if (reply.is_error())
    return redis_failure(*redis_, "remove credential '" + std::string(name) + "'", reply);
  if (reply.integer == 0)
    return store_error{store_errc::not_found, "credential '" + std::string(name)
                                                + "' does not exist in " + hash_key_ + " at "
                                                + redis_->endpoint().address()};
  return std::nullopt;
}

std::variant<std::vector<credential_info>, store_error> credential_store::list() const {
  auto hash = read_hash(*redis_, hash_key_);
  if (auto err = std::get_if<store_error>(&hash))
    return std::move(*err);
  std::vector<credential_info> out;
  for (const auto& [name, envelope] : std::get<0>(hash)) {
    if (name == key_id_field)
      continue;
    credential_info info{name, envelope_key_id(envelope), 0};
    // GCM keeps the length: nonce + ciphertext + tag, decoded without decrypting anything.
    auto raw = info.key_id.empty() || envelope.size() > max_envelope_bytes
                 ? std::nullopt
                 : unbase64(std::string_view(envelope).substr(envelope_prefix_bytes));
    if (raw && raw->size() >= nonce_bytes + tag_bytes)
      info.length = raw->size() - nonce_bytes - tag_bytes;
    out.push_back(std::move(info));
  }
  return out; // std::map iterates in name order
}

// Crash safety of a rotation. Two things change: the key file (on this machine) and the
// hash in Redis (shared). The order keeps every stored value decryptable at every moment:
//   1. the key file gets the new key as current and keeps the old ones as retired
//      (atomic replace): a crash now leaves Redis untouched and every old key at hand;
//   2. every value is re-encrypted in ONE script (all or nothing), guarded as a
//      compare-and-swap against the values read, so a concurrent `set` is never lost (the
//      swap fails, we read again and redo it);
//      a crash before the script leaves old values (retired keys read them), after it new
//      values (the current key reads them): never a mix that no key file could read;
//   3. the key file drops the retired keys. A crash before this leaves them in the file,
//      which is harmless: the next rotation drops them.
// Concurrent rotations on this machine are serialized by a lock file; one on another machine
// fails its swap, then cannot read our new values with its stale file and stops, changing
// nothing in Redis.
std::variant<credential_store::rotation, store_error> credential_store::rotate() {
  auto key_file_error = [](std::string message) {
    return store_error{store_errc::key_file, std::move(message)};
  };
  key_file_lock lock(key_file_);
  if (!lock.error().empty())
    return key_file_error(lock.error());
  // Under the lock, re-read: another rotation may have finished since `open`.
  auto loaded = load_key_file(key_file_);
  if (auto err = std::get_if<std::string>(&loaded))
    return key_file_error(std::move(*err));
  auto old_ring = std::move(std::get<key_ring>(loaded));
  auto held = redis_->run({"HGET", hash_key_, key_id_field});
  if (held.is_error())
    return redis_failure(*redis_, "read " + hash_key_, held);
  if (!held.is_nil() && !old_ring.find(held.str))
    return key_file_error("the credentials in " + hash_key_ + " are sealed with master key "
                          + held.str + ", which key file " + key_file_.string()
                          + " does not hold (it holds " + old_ring.describe()
                          + "): restore the current key here before rotating");
  auto fresh = master_key::generate();
  if (!fresh)
    return store_error{store_errc::failed, "OpenSSL's random generator failed"};
  rotation done{old_ring.current.id, fresh->id, 0};
  key_ring next{std::move(*fresh), {}};
  next.retired.push_back(std::move(old_ring.current));
  for (auto& k : old_ring.retired)
    next.retired.push_back(std::move(k));
  if (auto err = replace_key_file(key_file_, next); !err.empty())
    return key_file_error("rotation stopped before changing anything: " + err);
  use_keys(std::make_shared<const key_ring>(std::move(next)));
  auto ring = keys();
  auto stopped = "; key file " + key_file_.string() + " holds the new key " + done.new_id
                 + " and the old ones as retired, so every value still decrypts: fix that"
                   " and run convoy secret rotate again";
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto hash = read_hash(*redis_, hash_key_);
    if (auto err = std::get_if<store_error>(&hash))
      return store_error{err->code, "rotation stopped: " + err->message + stopped};
    auto& fields = std::get<0>(hash);
    std::vector<std::string> argv{"EVAL", rotate_script, "1", hash_key_,
                                  std::to_string(fields.size())};
    argv.insert(argv.end(), {key_id_field, fields.count(key_id_field) ? fields[key_id_field] : "",
                             done.new_id});
    done.credentials = 0;
    for (const auto& [name, envelope] : fields) {
      if (name == key_id_field)
        continue;
      std::string why;
      auto value = unseal(*ring, envelope, name, why);
      auto resealed = value ? seal(ring->current, value->view(), name) : std::nullopt;
      if (!resealed)
        return store_error{value ? store_errc::failed : store_errc::tampered,
                           "rotation stopped, nothing re-encrypted: credential '" + name + "' "
                             + (value ? "could not be encrypted again" : why) + stopped};
      argv.insert(argv.end(), {name, envelope, std::move(*resealed)});
      ++done.credentials;
    }
    auto reply = redis_->run(std::move(argv), std::chrono::seconds(30));
    if (reply.is_error()) {
      auto err = redis_failure(*redis_, "re-encrypt " + hash_key_, reply);
      return store_error{err.code, "rotation stopped: " + err.message + stopped};
    }
    if (reply.integer == 1) {
      key_ring final_ring{master_key{ring->current.id, secret(std::string(ring->current.key.view()))},
                          {}};
      if (auto err = replace_key_file(key_file_, final_ring); !err.empty())
        return key_file_error("the credentials were re-encrypted with key " + done.new_id
                              + ", but dropping the retired keys from the key file failed: "
                              + err);
      use_keys(std::make_shared<const key_ring>(std::move(final_ring)));
      return done;
    }
    // Someone changed a credential between our read and our swap: read again.
  }
  return store_error{store_errc::failed,
                     "rotation stopped: the credentials kept changing during 10 attempts"
                       + stopped};
}

} // namespace convoy::adapters
