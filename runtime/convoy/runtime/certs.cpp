#include "convoy/runtime/certs.hpp"

#include "convoy/persistence/keys.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace convoy::runtime {

namespace {

namespace fs = std::filesystem;

constexpr int ca_validity_days = 3650;
constexpr int node_validity_days = 365;
/// Certificates start being valid a little in the past so that a node whose clock lags the
/// issuing machine's by a few minutes does not reject a fresh certificate as "not yet valid".
constexpr long backdate_seconds = 5 * 60;

struct openssl_free {
  void operator()(BIO* p) const noexcept { BIO_free_all(p); }
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
  void operator()(X509* p) const noexcept { X509_free(p); }
  void operator()(X509_STORE* p) const noexcept { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const noexcept { X509_STORE_CTX_free(p); }
};

template <class T>
using owned = std::unique_ptr<T, openssl_free>;

/// An error message on its way out. A type of its own so that `or_failure<T>` converts
/// implicitly from either alternative, even when T is a string.
struct failure {
  std::string message;
};

template <class T>
using or_failure = std::variant<T, failure>;

/// Drains OpenSSL's thread-local error queue into one line ("" when it is empty), so that a
/// stale entry never shows up in the next, unrelated message.
std::string openssl_errors() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out;
}

std::string with_openssl_reason(std::string message) {
  if (auto why = openssl_errors(); !why.empty())
    message += " (" + why + ")";
  return message;
}

/// Reads a whole file; fails with a message naming it and the system's reason.
or_failure<std::string> read_file(const fs::path& path, const char* what) {
  auto cannot_read = [&](int error) {
    return failure{std::string("cannot read ") + what + " " + path.string() + ": "
                   + std::strerror(error)};
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cannot_read(errno);
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  int read_errno = errno;
  ::close(fd);
  if (n < 0)
    return cannot_read(read_errno);
  return out;
}

/// A private key must be accessible by its owner only, as ssh insists for its keys: a key
/// that others can read lets them join the cluster as this node.
std::string check_owner_only(const fs::path& key_file) {
  struct stat st{};
  if (::stat(key_file.c_str(), &st) != 0)
    return "cannot read private key " + key_file.string() + ": " + std::strerror(errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "private key " + key_file.string() + " has mode " + mode
           + ", so others may read it: chmod 600 " + key_file.string();
  }
  return {};
}

owned<BIO> memory_bio(const std::string& bytes) {
  return owned<BIO>{BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size()))};
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  auto size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

or_failure<owned<X509>> load_certificate(const fs::path& path, const char* what) {
  auto bytes = read_file(path, what);
  if (auto err = std::get_if<failure>(&bytes))
    return std::move(*err);
  auto bio = memory_bio(std::get<std::string>(bytes));
  owned<X509> cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
  if (!cert)
    return failure{with_openssl_reason(std::string(what) + " " + path.string()
                                       + " holds no PEM certificate")};
  return cert;
}

/// Refuses to prompt: without this callback OpenSSL would ask for a passphrase on the
/// terminal when a key is encrypted, and a node started by systemd would hang.
int refuse_passphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

or_failure<owned<EVP_PKEY>> load_private_key(const fs::path& path, const char* what) {
  auto bytes = read_file(path, what);
  if (auto err = std::get_if<failure>(&bytes))
    return std::move(*err);
  if (auto err = check_owner_only(path); !err.empty())
    return failure{std::move(err)};
  auto bio = memory_bio(std::get<std::string>(bytes));
  bool passphrase_asked = false;
  owned<EVP_PKEY> key{
    PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, &passphrase_asked)};
  if (!key && passphrase_asked) {
    openssl_errors();
    return failure{std::string(what) + " " + path.string()
                   + " is encrypted; Convoy needs an unencrypted key readable by its owner only"};
  }
  if (!key)
    return failure{with_openssl_reason(std::string(what) + " " + path.string()
                                       + " holds no PEM private key")};
  return key;
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a crash leaves
/// either the old file or the new one, never half of one. `mode` is set before any byte of
/// a private key is written.
std::string write_file(const fs::path& path, const std::string& bytes, mode_t mode) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return "cannot write " + tmp.string() + ": " + std::strerror(errno);
  // O_CREAT's mode does not apply to a leftover temporary file from an earlier crash.
  bool ok = ::fchmod(fd, mode) == 0;
  for (size_t done = 0; ok && done < bytes.size();) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  ok = ok && ::fsync(fd) == 0;
  int write_errno = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok)
      write_errno = errno;
    ::unlink(tmp.c_str());
    return "cannot write " + path.string() + ": " + std::strerror(write_errno);
  }
  return {};
}

/// Writes the key first: a crash in between leaves a key that does not match the old
/// certificate, which `check_node_credentials` reports, rather than a silent mix.
std::string write_pair(const certificate_files& files, X509* cert, EVP_PKEY* key) {
  owned<BIO> key_pem{BIO_new(BIO_s_mem())};
  owned<BIO> cert_pem{BIO_new(BIO_s_mem())};
  if (!key_pem || !cert_pem
      || PEM_write_bio_PrivateKey(key_pem.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
           != 1
      || PEM_write_bio_X509(cert_pem.get(), cert) != 1)
    return with_openssl_reason("cannot encode " + files.certificate.string() + " as PEM");
  if (auto err = write_file(files.key, bio_contents(key_pem.get()), 0600); !err.empty())
    return err;
  return write_file(files.certificate, bio_contents(cert_pem.get()), 0644);
}

owned<EVP_PKEY> generate_key() {
  // EC P-256: accepted by every TLS stack, and signing a handshake costs far less than
  // RSA 3072 of equal strength, which matters when a restarted node reconnects to all peers.
  return owned<EVP_PKEY>{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
}

std::string random_hex(int bytes) {
  std::vector<unsigned char> raw(static_cast<size_t>(bytes));
  if (RAND_bytes(raw.data(), bytes) != 1)
    return {};
  std::string out;
  for (auto b : raw) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", b);
    out += two;
  }
  return out;
}

/// One extension as OpenSSL's configuration syntax writes it, e.g. "critical,CA:TRUE".
struct extension {
  int nid;
  const char* value;
};

/// Builds and signs a certificate for `subject_key`. `issuer` == nullptr: self-signed.
or_failure<owned<X509>> make_certificate(EVP_PKEY* subject_key, const std::string& common_name,
                                         X509* issuer, EVP_PKEY* issuer_key, int validity_days,
                                         const std::vector<extension>& extensions) {
  auto fail = [](const std::string& what) {
    return failure{with_openssl_reason("cannot " + what)};
  };
  owned<X509> cert{X509_new()};
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
    return fail("create a certificate");
  // RFC 5280 serials are positive and at most 20 octets; 128 random bits make collisions
  // between certificates of one CA practically impossible without a serial database.
  // Zero is not a valid serial: draw again in that (2^-128) case.
  owned<BIGNUM> serial{BN_new()};
  bool drawn = serial != nullptr;
  while (drawn && (drawn = BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1)
         && BN_is_zero(serial.get())) {
  }
  if (!drawn || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
    return fail("draw a random serial number");
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -backdate_seconds)
      || !X509_time_adj_ex(X509_getm_notAfter(cert.get()), validity_days, 0, nullptr))
    return fail("set the validity period");
  if (issuer && ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(issuer)) > 0
      && X509_set1_notAfter(cert.get(), X509_get0_notAfter(issuer)) != 1)
    return fail("limit the validity period to the CA's");
  auto* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                 -1, -1, 0)
        != 1
      || X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject) != 1
      || X509_set_pubkey(cert.get(), subject_key) != 1)
    return fail("set the names of the certificate for " + common_name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  // Key identifiers on every certificate: verifiers then pick a node certificate's CA by
  // its key, not only by its name.
  auto all_extensions = extensions;
  all_extensions.push_back({NID_subject_key_identifier, "hash"});
  all_extensions.push_back({NID_authority_key_identifier, "keyid:always"});
  for (const auto& ext : all_extensions) {
    auto* made = X509V3_EXT_conf_nid(nullptr, &ctx, ext.nid, ext.value);
    bool added = made && X509_add_ext(cert.get(), made, -1) == 1;
    X509_EXTENSION_free(made);
    if (!added)
      return fail(std::string("add the extension ") + OBJ_nid2sn(ext.nid) + "=" + ext.value);
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0)
    return fail("sign the certificate for " + common_name);
  return cert;
}

/// Writes a freshly made certificate with its key; the files, or why not.
std::variant<certificate_files, std::string>
written(const certificate_files& files, const or_failure<owned<X509>>& cert, EVP_PKEY* key) {
  if (auto err = std::get_if<failure>(&cert))
    return err->message;
  if (auto err = write_pair(files, std::get<owned<X509>>(cert).get(), key); !err.empty())
    return err;
  return files;
}

bool present(const fs::path& path) {
  std::error_code ec;
  return fs::symlink_status(path, ec).type() != fs::file_type::not_found;
}

certificate_files files_of(const fs::path& dir, const std::string& stem) {
  return {dir / (stem + ".pem"), dir / (stem + ".key")};
}

std::string refuse_existing(const certificate_files& files, const char* what,
                            const char* consequence) {
  for (const auto& path : {files.certificate, files.key})
    if (present(path))
      return path.string() + " already exists; " + what + " replaces it only with --force ("
             + consequence + ")";
  return {};
}

} // namespace

std::variant<certificate_files, std::string> cert_init(const fs::path& dir, bool force) {
  auto files = files_of(dir, "ca");
  if (!force)
    if (auto err = refuse_existing(files, "cert init",
                                   "every node certificate it issued would stop working");
        !err.empty())
      return err;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (!fs::create_directories(dir, ec) && ec)
      return "cannot create the folder " + dir.string() + ": " + ec.message();
    // The folder holds the CA's private key.
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  auto key = generate_key();
  if (!key)
    return with_openssl_reason("cannot generate the CA key");
  // A random suffix tells the CAs of two clusters apart in every log and error message.
  auto common_name = "Convoy cluster CA " + random_hex(4);
  auto cert = make_certificate(key.get(), common_name, nullptr, key.get(), ca_validity_days,
                               {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                {NID_key_usage, "critical,keyCertSign,cRLSign"}});
  return written(files, cert, key.get());
}

std::string check_node_name(const std::string& node_name) {
  if (!persistence::valid_name(node_name))
    return "'" + node_name + "' is not a valid node name ([A-Za-z0-9._:-], 1-128)";
  if (node_name == "ca")
    return "'ca' cannot be a node name: its files would replace the cluster CA's";
  if (node_name.front() == '.')
    return "'" + node_name + "' cannot be a node name: its files would be hidden";
  return {};
}

std::variant<certificate_files, std::string>
cert_issue(const fs::path& dir, const std::string& node_name, bool force) {
  if (auto err = check_node_name(node_name); !err.empty())
    return err;
  auto ca_files = files_of(dir, "ca");
  if (!present(ca_files.certificate) && !present(ca_files.key))
    return "no cluster CA in " + dir.string() + " (create one with: convoy cert init --dir "
           + dir.string() + ")";
  auto ca_cert = load_certificate(ca_files.certificate, "CA certificate");
  if (auto err = std::get_if<failure>(&ca_cert))
    return std::move(err->message);
  auto ca_key = load_private_key(ca_files.key, "CA key");
  if (auto err = std::get_if<failure>(&ca_key))
    return std::move(err->message);
  auto* issuer = std::get<owned<X509>>(ca_cert).get();
  auto* issuer_key = std::get<owned<EVP_PKEY>>(ca_key).get();
  if (X509_check_ca(issuer) == 0)
    return ca_files.certificate.string() + " is not a CA certificate (no CA:TRUE)";
  if (X509_check_private_key(issuer, issuer_key) != 1) {
    openssl_errors();
    return "CA key " + ca_files.key.string() + " does not belong to CA certificate "
           + ca_files.certificate.string();
  }
  if (X509_cmp_current_time(X509_get0_notAfter(issuer)) <= 0)
    return "CA certificate " + ca_files.certificate.string()
           + " has expired; create a new CA with convoy cert init --force";
  auto files = files_of(dir, node_name);
  if (!force)
    if (auto err = refuse_existing(files, "cert issue",
                                   "the node must then be restarted with the new pair");
        !err.empty())
      return err;
  auto key = generate_key();
  if (!key)
    return with_openssl_reason("cannot generate a key for node " + node_name);
  auto alt_names = "DNS:" + node_name + ",IP:127.0.0.1";
  auto cert = make_certificate(key.get(), node_name, issuer, issuer_key, node_validity_days,
                               {{NID_basic_constraints, "critical,CA:FALSE"},
                                {NID_key_usage, "critical,digitalSignature"},
                                {NID_ext_key_usage, "serverAuth,clientAuth"},
                                {NID_subject_alt_name, alt_names.c_str()}});
  return written(files, cert, key.get());
}

std::string check_node_credentials(const fs::path& certificate, const fs::path& key,
                                   const fs::path& ca) {
  for (auto [path, what] : {std::pair{&certificate, "certificate"}, std::pair{&key, "key"},
                            std::pair{&ca, "CA certificate"}})
    if (path->empty())
      return std::string("no ") + what + " file configured: nodes only talk mutual TLS";
  auto cert = load_certificate(certificate, "node certificate");
  if (auto err = std::get_if<failure>(&cert))
    return std::move(err->message);
  auto pkey = load_private_key(key, "node key");
  if (auto err = std::get_if<failure>(&pkey))
    return std::move(err->message);
  auto ca_bytes = read_file(ca, "CA certificate");
  if (auto err = std::get_if<failure>(&ca_bytes))
    return std::move(err->message);
  auto* node_cert = std::get<owned<X509>>(cert).get();
  if (X509_check_private_key(node_cert, std::get<owned<EVP_PKEY>>(pkey).get()) != 1) {
    openssl_errors();
    return "node key " + key.string() + " does not belong to certificate " + certificate.string();
  }
  // CAF trusts every certificate in the CA file, as SSL_CTX_load_verify_locations does.
  owned<X509_STORE> store{X509_STORE_new()};
  auto bio = memory_bio(std::get<std::string>(ca_bytes));
  int trusted = 0;
  while (owned<X509> ca_cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store.get(), ca_cert.get()) != 1)
      return with_openssl_reason("cannot use CA certificate " + ca.string());
    ++trusted;
  }
  openssl_errors(); // the end of the file reads as a "no start line" error
  if (trusted == 0)
    return "CA certificate " + ca.string() + " holds no PEM certificate";
  owned<X509_STORE_CTX> verify{X509_STORE_CTX_new()};
  if (!verify || X509_STORE_CTX_init(verify.get(), store.get(), node_cert, nullptr) != 1)
    return with_openssl_reason("cannot verify certificate " + certificate.string());
  if (X509_verify_cert(verify.get()) != 1) {
    auto why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(verify.get()));
    openssl_errors();
    return "certificate " + certificate.string() + " is not valid under the CA in " + ca.string()
           + ": " + why;
  }
  // Each node is TLS server to some peers and client to others, and OpenSSL checks the
  // matching purpose on each side: a certificate lacking one would fail half the links.
  if (X509_check_purpose(node_cert, X509_PURPOSE_SSL_SERVER, 0) != 1
      || X509_check_purpose(node_cert, X509_PURPOSE_SSL_CLIENT, 0) != 1)
    return "certificate " + certificate.string()
           + " is not valid for both TLS server and client use (extendedKeyUsage serverAuth, "
             "clientAuth)";
  return {};
}

} // namespace convoy::runtime
