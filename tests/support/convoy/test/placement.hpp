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
