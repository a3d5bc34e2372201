#pragma once

#include <cstdint>

namespace convoy::test {

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// Binds 127.0.0.1:0, reads the port the kernel picked and closes the socket again. Another
/// process may take the port before the caller binds it, so callers that can tell a bind
/// failure apart (like `redis_server::start`) retry with a fresh port. Throws
/// `std::system_error` if no socket can be bound.
[[nodiscard]] std::uint16_t free_loopback_port();

} // namespace convoy::test
