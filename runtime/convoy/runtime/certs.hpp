#pragma once

// The cluster CA and node certificates that nodes present to each other on the BASP link.
//
// Nodes authenticate each other with mutual TLS, and CAF's OpenSSL module accepts ANY
// certificate signed by the configured CA, whatever its name (CAF-0.17-NOTES.md). So the CA
// must be dedicated to one cluster: whoever holds one of its certificates is a node. These
// functions create that CA and issue node certificates from it, with OpenSSL's own API.
//
// Layout of a certificate folder (default ./convoy-certs):
//   ca.pem, ca.key       the cluster CA (key mode 0600; keep it off the nodes if you can)
//   NODE.pem, NODE.key   one pair per node (key mode 0600), issued by `cert_issue`

#include <filesystem>
#include <string>
#include <variant>

namespace convoy::runtime {

/// A certificate and its private key, as written to disk.
struct certificate_files {
  std::filesystem::path certificate;
  std::filesystem::path key;
};

/// Creates the cluster CA in `dir` (created with mode 0700 if missing): an EC P-256 key in
/// `ca.key` (mode 0600) and a self-signed certificate in `ca.pem` (CA:TRUE, keyCertSign,
/// valid 10 years). Refuses when `ca.pem` or `ca.key` already exists unless `force`:
/// replacing the CA invalidates every node certificate it issued.
/// Returns the files written, or an error naming the file and the problem.
std::variant<certificate_files, std::string> cert_init(const std::filesystem::path& dir,
                                                       bool force = false);

/// Issues a certificate for the node `node_name` from the CA in `dir`: `NODE.pem` with
/// CN=node_name, subjectAltName DNS:node_name and IP:127.0.0.1, extendedKeyUsage serverAuth
/// and clientAuth, valid 1 year, a random 128-bit serial; its key in `NODE.key` (0600).
/// Refuses an invalid name (`check_node_name`), a CA key readable by
/// others, a CA certificate that is not a CA or does not match its key, and an existing
/// `NODE.pem`/`NODE.key` unless `force`.
/// Returns the files written, or an error naming the file and the problem.
std::variant<certificate_files, std::string> cert_issue(const std::filesystem::path& dir,
                                                        const std::string& node_name,
                                                        bool force = false);

/// Returns "" when `node_name` can name a node's certificate files, else why not: it must
/// be a persistence::valid_name, must not be "ca" (its files would replace the CA's) and
/// must not start with a dot (they would be hidden).
std::string check_node_name(const std::string& node_name);

/// Checks the files a node presents on the cluster link before CAF sees them (CAF throws
/// from its I/O thread on an unreadable file and falls back to anonymous TLS on an empty
/// path): each file exists and parses, the key is unencrypted, not readable by group or
/// others and belongs to the certificate, and the certificate is currently valid and
/// signed by the CA in `ca`. Returns "" or an error naming the file and the problem.
std::string check_node_credentials(const std::filesystem::path& certificate,
                                   const std::filesystem::path& key,
                                   const std::filesystem::path& ca);

} // namespace convoy::runtime
