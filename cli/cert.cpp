// `convoy cert init` and `convoy cert issue NODE`: the cluster CA and node certificates
// that nodes present to each other on the BASP link (runtime/convoy/runtime/certs.hpp).

#include "cli.hpp"

#include "convoy/runtime/certs.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

namespace convoy::cli {

namespace {

struct cert_options {
  std::string dir = "convoy-certs";
  bool force = false;
  std::string node;
};

/// Exit code 1: the arguments were fine but the files were not (an existing CA, an
/// unreadable key, ...); the message names the file and the problem.
int report(const std::variant<runtime::certificate_files, std::string>& outcome,
           const std::string& what) {
  if (auto err = std::get_if<std::string>(&outcome)) {
    std::cerr << "convoy: " << *err << "\n";
    return 1;
  }
  const auto& files = std::get<runtime::certificate_files>(outcome);
  std::cout << what << ": " << files.certificate.string() << ", " << files.key.string()
            << "\n";
  return 0;
}

} // namespace

std::function<std::optional<int>()> add_cert_commands(CLI::App& app) {
  auto opts = std::make_shared<cert_options>();
  auto cert = app.add_subcommand(
    "cert", "the cluster CA and node certificates for mutual TLS between nodes\n"
            "example: convoy cert init --dir /etc/convoy/certs");
  cert->require_subcommand(1);

  auto init = cert->add_subcommand(
    "init", "create the cluster CA: ca.pem and ca.key (mode 0600); only nodes holding a\n"
            "certificate it issued can join the cluster\n"
            "example: convoy cert init --dir /etc/convoy/certs");
  init->add_option("--dir", opts->dir, "certificate folder (default ./convoy-certs)");
  init->add_flag("--force", opts->force,
                 "replace an existing CA (every node certificate must then be issued again)");

  auto issue = cert->add_subcommand(
    "issue", "issue a node certificate from the cluster CA: NODE.pem and NODE.key (mode 0600)\n"
             "example: convoy cert issue node-a --dir /etc/convoy/certs");
  issue->add_option("NODE", opts->node, "node name, as in [node] name of its configuration")
    ->required()
    ->check(CLI::Validator([](std::string& name) { return runtime::check_node_name(name); },
                           "NAME"));
  issue->add_option("--dir", opts->dir, "certificate folder holding the CA (default ./convoy-certs)");
  issue->add_flag("--force", opts->force, "replace an existing certificate of this node");

  return [opts, init, issue]() -> std::optional<int> {
    if (init->parsed())
      return report(runtime::cert_init(opts->dir, opts->force), "created the cluster CA");
    if (issue->parsed())
      return report(runtime::cert_issue(opts->dir, opts->node, opts->force),
                    "issued the certificate of node " + opts->node);
    return std::nullopt;
  };
}

} // namespace convoy::cli
