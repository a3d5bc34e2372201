#pragma once

#include "convoy/actors/registry.hpp"
#include "convoy/runtime/adapter.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node_config.hpp"

#include <caf/actor.hpp>

#include <memory>
#include <string>
#include <vector>

namespace convoy::runtime {

/// One Convoy node: an actor system running the configured host instances against one
/// MessageBox. Everything it holds in memory is a cache of the MessageBox.
class node {
public:
  node(node_config config, const registry& orchestrations);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Adds an adapter (a receive location) the node starts after its hosts and stops before
  /// them. @pre the node has not started.
  void add_adapter(std::unique_ptr<adapter> a);

  /// Connects to the MessageBox, loads its functions and starts the hosts.
  /// Returns an error message, or "" once the node runs.
  std::string start();

  /// Stops the hosts and every instance they run, then waits for them. Idempotent.
  /// In-flight work is not lost: whatever was not persisted is still in the queues.
  void stop();

  const node_config& config() const noexcept { return config_; }

  /// False once the node supervisor has exited on its own (it gave up after too many
  /// restarts): the node no longer serves and should be stopped.
  bool serving() const noexcept;

  /// Why `host` is throttled on this node now, or "" (see throttle.hpp). Thread-safe.
  std::string throttle_cause(const std::string& host) const;

  /// The actor of `host` running on this node now (invalid if none): for operators' tools
  /// and fault-injection tests. A host restarted by its supervisor is a new actor.
  caf::actor host_actor(const std::string& host) const;
  persistence::message_box& message_box() noexcept { return *box_; }

private:
  /// Publishes this node over mutual TLS and records its address and link settings.
  std::string open_link();

  struct impl;
  node_config config_;
  const registry& orchestrations_;
  std::unique_ptr<persistence::message_box> box_;
  std::vector<std::unique_ptr<adapter>> adapters_;
  std::unique_ptr<impl> impl_;
};

} // namespace convoy::runtime
