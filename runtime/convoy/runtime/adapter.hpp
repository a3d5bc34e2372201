#pragma once

#include <string>

namespace convoy::runtime {

/// Something a node runs beside its hosts and outside the actor system: a receive location
/// (an HTTP listener, a folder poller, a schedule) with threads of its own, because its work
/// blocks (sockets, files, blocking MessageBox calls) and must not occupy CAF workers.
/// The node starts its adapters after its hosts and stops them before its hosts, so nothing
/// they submit finds the node half gone.
class adapter {
public:
  virtual ~adapter() = default;

  /// What the logs and errors call it, e.g. "receive location orders-http".
  virtual std::string describe() const = 0;

  /// Starts it. Returns an error message, or "" once it runs.
  virtual std::string start() = 0;

  /// Stops it and waits for its threads. Whatever it accepted was persisted before it was
  /// acknowledged, so stopping loses nothing. Idempotent.
  virtual void stop() = 0;
};

} // namespace convoy::runtime
