#pragma once

#include "convoy/actors/registry.hpp"
#include "convoy/adapters/credentials.hpp"

#include <string>

namespace convoy::runtime {
class node;
}

namespace convoy::adapters {

/// Sets up the ports the node's configuration declares: each `[send_ports.NAME]` becomes an
/// activity in `reg` (`http-send:NAME`, `file-send:NAME`) that orchestrations call and the
/// send host runs under the port's retry policy; each `[receive_locations.NAME]` is added to
/// `n`, which starts it after its hosts. Returns an error naming the declaration and the key
/// at fault (nothing is set up then), or "".
/// `resolver` looks up the credentials send ports name; without one, a port that names a
/// credential is an error. @pre `n` has not started.
std::string attach(runtime::node& n, registry& reg, credential_resolver resolver = {});

} // namespace convoy::adapters
