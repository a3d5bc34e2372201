#pragma once

#include "convoy/test/process.hpp"

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
  static redis_server start(const std::filesystem::path& dir,
                            std::vector<std::string> extra_args = {});

  redis_server(redis_server&&) noexcept = default;

  redis_server& operator=(redis_server&&) noexcept = default;

  redis_server(const redis_server&) = delete;

  redis_server& operator=(const redis_server&) = delete;

  ~redis_server() = default;

  // -- properties ------------------------------------------------------------

  /// Always `127.0.0.1`.
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

  std::string host_ = "127.0.0.1";
  std::uint16_t port_ = 0;
  std::filesystem::path log_file_;
  child_process process_;
};

} // namespace convoy::test
