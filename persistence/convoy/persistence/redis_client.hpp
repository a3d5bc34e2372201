#pragma once

#include "convoy/persistence/redis_value.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace convoy::persistence {

/// Where a Redis server is and how to authenticate. Passwords come from configuration or
/// the environment, never from the command line.
struct redis_endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string user;
  std::string password;
  /// When not empty, `host:port` is ignored: the master of `master_name` is asked of these
  /// Sentinels ("host:port" each) on every (re)connect, and its ROLE is checked before use.
  std::vector<std::string> sentinels;
  std::string master_name = "convoy";
  /// A connection whose oldest command has had no reply for this long, beyond the command's
  /// own blocking time (XREADGROUP BLOCK, WAIT), is dropped: its commands fail as connection
  /// errors (outcome unknown) and the next one connects again (through the Sentinels, so to
  /// the promoted master). A server that stops answering without closing its sockets — frozen,
  /// or cut off by a network partition — would otherwise hold the connection until the
  /// kernel gives up on it, many minutes later.
  std::chrono::milliseconds stall_timeout{5000};

  std::string address() const {
    if (sentinels.empty())
      return host + ":" + std::to_string(port);
    std::string out = "master '" + master_name + "' via Sentinels";
    for (const auto& s : sentinels)
      out += " " + s;
    return out;
  }
};

/// Asks the Sentinels for the current master of `ep.master_name` and checks that it answers
/// ROLE as a master (a restarted old master can serve, empty, for seconds before Sentinel
/// demotes it). Blocking, with short timeouts. Returns the master, or an error message.
std::variant<redis_endpoint, std::string> resolve_master(const redis_endpoint& ep);

/// Parses "host:port" (or ":port", or "host"); returns false on a malformed value.
bool parse_address(const std::string& text, redis_endpoint& out);

/// A thread running a libevent loop that owns hiredis async connections.
///
/// The rule this enforces: no Redis call ever blocks a CAF worker thread. Commands are handed
/// to the loop thread; their replies come back through callbacks that run on the loop thread
/// and must only do cheap work (typically: send a CAF message to an actor).
class redis_loop {
public:
  redis_loop();
  ~redis_loop();
  redis_loop(const redis_loop&) = delete;
  redis_loop& operator=(const redis_loop&) = delete;

  /// Runs `fn` on the loop thread. Thread-safe.
  void post(std::function<void()> fn);

  struct impl;
  impl& internals() noexcept { return *impl_; }

private:
  std::unique_ptr<impl> impl_;
};

/// One hiredis async connection. Connects lazily and reconnects after a loss on the next
/// command; commands in flight when the connection drops fail with a `CONNECTION` error,
/// which callers must treat as "outcome unknown". Replies arrive in command order
/// (pipelining comes for free: commands are written without waiting for replies).
class redis_connection {
public:
  using callback = std::function<void(redis_value)>;

  redis_connection(redis_loop& loop, redis_endpoint endpoint);
  ~redis_connection();
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// Sends one command; `done` runs on the loop thread with the reply. Thread-safe.
  void command(std::vector<std::string> argv, callback done);

  /// Like `command`, but only from the loop thread itself (from a reply callback or a task
  /// posted to the loop): the command is queued at once, in order, without a hop.
  void command_in_loop(std::vector<std::string> argv, callback done);

  /// Commands to send first on every new connection (after AUTH), before anything queued
  /// behind them; `done` runs on the loop thread with their replies, before the reply of any
  /// later command. For checks that must see each server this connection ends up on (after a
  /// failover, a different one). Set it before the first command; not thread-safe.
  void set_handshake(std::vector<std::vector<std::string>> commands,
                     std::function<void(std::vector<redis_value>, const redis_endpoint& server)> done);

  /// Sends one command and waits for its reply or the timeout, whichever comes first.
  /// Blocks the calling thread: for the CLI, start-up and tests, never on a CAF worker.
  redis_value run(std::vector<std::string> argv,
                  std::chrono::milliseconds timeout = std::chrono::seconds(3));

  /// Sends several commands pipelined and waits for all replies (or the timeout).
  std::vector<redis_value> run_all(std::vector<std::vector<std::string>> commands,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(3));

  const redis_endpoint& endpoint() const noexcept { return endpoint_; }

  struct state;

private:
  redis_loop& loop_;
  redis_endpoint endpoint_;
  std::shared_ptr<state> state_;
};

} // namespace convoy::persistence
