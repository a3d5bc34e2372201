#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convoy::test {

/// Where a server that a support class starts runs, and the address it is reached at.
///
/// The default is what every test uses: 127.0.0.1 in the caller's own network namespace.
/// convoy-chaos' `--network netns` gives each Redis server and Sentinel a network namespace
/// and an address of its own and runs it through `ip netns exec NS` (which execs, so the PID
/// we hold and stop is the server's own).
struct placement {
  std::string host = "127.0.0.1";
  std::vector<std::string> exec_prefix;

  /// On 127.0.0.1 in our own namespace (Redis' protected mode is fine there).
  [[nodiscard]] bool loopback() const { return host == "127.0.0.1"; }

  /// `argv` as it runs here: behind `exec_prefix`.
  [[nodiscard]] std::vector<std::string> command(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), exec_prefix.begin(), exec_prefix.end());
    return argv;
  }
};

/// Records that the server listening on `port` is reached at `host` (process-wide: ports are
/// unique among the servers one process starts, because every one comes from
/// `free_loopback_port`).
void register_host(std::uint16_t port, std::string host);

/// The host the server on `port` was registered with, else `127.0.0.1`.
[[nodiscard]] std::string host_of(std::uint16_t port);

/// `host_of(port) + ":" + port`.
[[nodiscard]] std::string address_of(std::uint16_t port);

} // namespace convoy::test
