#pragma once

#include "convoy/test/placement.hpp"
#include "convoy/test/process.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

namespace convoy::test {

/// A throwaway `redis-server` on a free loopback port, owned by the test.
///
/// Runs in the foreground with persistence off (`--save "" --appendonly no`) and its log at
/// `DIR/redis-PORT.log`; whatever it prints before the log is open lands in
/// `DIR/redis-PORT.out`. It is stopped by its PID only. The destructor calls `stop()`.
class redis_server {
public:
  // -- constructors, destructors, and assignment operators -------------------

  /// Starts `redis-server` (found on `PATH`) with working directory `dir` (created if
  /// missing) and `extra_args` appended to the command line, and waits up to 10 s until it
  /// answers PING. Retries on a fresh port if the chosen one was taken in the meantime.
  /// Throws `std::runtime_error`, with the tail of its log, if it never answers.
  /// `where` places it elsewhere than 127.0.0.1 (see placement.hpp).
  static redis_server start(const std::filesystem::path& dir,
                            std::vector<std::string> extra_args = {}, placement where = {});

  /// Like `start`, but on the given `port` and without retrying elsewhere: for bringing a
  /// killed server back where its clients (and Sentinel) expect it, on the same `dir`.
  /// Throws `std::runtime_error`, with the tail of its log, if it never answers (e.g. the
  /// port is taken).
  static redis_server start_on_port(const std::filesystem::path& dir, std::uint16_t port,
                                    std::vector<std::string> extra_args = {},
                                    placement where = {});

  redis_server(redis_server&&) noexcept = default;

  redis_server& operator=(redis_server&&) noexcept = default;

  redis_server(const redis_server&) = delete;

  redis_server& operator=(const redis_server&) = delete;

  ~redis_server() = default;

  // -- properties ------------------------------------------------------------

  /// `127.0.0.1` unless started with another placement.
  [[nodiscard]] const std::string& host() const noexcept {
    return host_;
  }

  [[nodiscard]] std::uint16_t port() const noexcept {
    return port_;
  }

  /// `host:port`, e.g. `127.0.0.1:40123`.
  [[nodiscard]] std::string address() const;

  /// The server's PID; unchanged after it stopped.
  [[nodiscard]] pid_t pid() const noexcept {
    return process_.pid();
  }

  /// The server's log file.
  [[nodiscard]] const std::filesystem::path& log_file() const noexcept {
    return log_file_;
  }

  /// Returns whether the server process is still alive.
  [[nodiscard]] bool running() {
    return process_.running();
  }

  // -- control ---------------------------------------------------------------

  /// SIGTERM and wait for it to exit; SIGKILL if it has not after 5 s. Idempotent.
  void stop() noexcept {
    process_.stop();
  }

  /// SIGKILL and wait: a crash, for tests of what survives one.
  void kill9() noexcept {
    process_.kill();
  }

  // -- assertion helpers -----------------------------------------------------

  /// Runs one command over a fresh synchronous connection and renders the reply as text.
  ///
  /// Strings, statuses and numbers as their text, nil as `(nil)`, arrays as their
  /// elements joined with `\n`, errors (including a failed connection) prefixed `ERR:`.
  /// Blocks at most 10 s. Arguments are sent binary-safe, one per element.
  std::string command(std::initializer_list<std::string> args) const;

  /// Like `command`, for replies that are integers (or strings holding one).
  /// Throws `std::runtime_error` with the rendered reply if it is not an integer.
  long long command_int(std::initializer_list<std::string> args) const;

private:
  redis_server() = default;

  /// Shared by `start` (no `fixed_port`: free ports, retried) and `start_on_port`.
  static redis_server start_impl(const std::filesystem::path& dir,
                                 std::vector<std::string> extra_args,
                                 std::uint16_t fixed_port, placement where);

  std::string host_ = "127.0.0.1";
  std::uint16_t port_ = 0;
  std::filesystem::path log_file_;
  child_process process_;
};

/// Runs one command against `host_of(port):port` (127.0.0.1 unless placed elsewhere) over a
/// fresh synchronous connection.
///
/// Renders the reply like `redis_server::command` (errors, including a failed connection or
/// a timeout, prefixed `ERR:`) and works for any server on loopback, Sentinels included.
/// Blocks at most about `timeout` for the connect and again for the reply.
std::string redis_command(std::uint16_t port, std::initializer_list<std::string> args,
                          std::chrono::milliseconds timeout = std::chrono::seconds{10});

/// Runs `commands` in order over one connection to `host_of(port):port` and returns their
/// replies, rendered like `redis_command`.
///
/// Needed where the connection matters: `WAIT` only counts the writes of its own
/// connection, so a `WAIT` sent through `redis_command` (a fresh connection each call)
/// returns at once, having nothing to wait for. Once the connection fails, the remaining
/// replies are that error. Each reply takes at most about `timeout`.
std::vector<std::string>
redis_commands(std::uint16_t port, std::initializer_list<std::vector<std::string>> commands,
               std::chrono::milliseconds timeout = std::chrono::seconds{10});

} // namespace convoy::test
