#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace convoy::test {

/// Extra environment variables for a child: each pair overrides or adds one `NAME=value`
/// on top of the parent's environment.
using environment = std::vector<std::pair<std::string, std::string>>;

/// A child process started by the test, owned by exactly one object.
///
/// Everything it does targets the PID it started and nothing else: the PID stays ours
/// until `waitpid` reaps it, so signalling it cannot hit an unrelated process, and once it
/// has been reaped no further signal is sent. Nothing is ever looked up or killed by name.
/// The destructor calls `stop()`.
class child_process {
public:
  // -- constructors, destructors, and assignment operators -------------------

  /// Starts `argv[0]` (searched on `PATH` when it has no slash) with `posix_spawnp`.
  ///
  /// stdin reads `/dev/null`; stdout and stderr are appended to `output_file` (created if
  /// missing) or go to `/dev/null` when it is empty. The child gets default dispositions
  /// for the usual signals and an empty signal mask, whatever the test runner installed.
  /// @pre `argv` is not empty.
  /// Throws `std::system_error` if the program cannot be started (e.g. not found).
  static child_process start(std::vector<std::string> argv, environment extra_env = {},
                             std::string output_file = "");

  /// An empty object that owns no process.
  child_process() noexcept = default;

  child_process(child_process&& other) noexcept;

  /// Stops the process this object owned, then takes over `other`'s.
  child_process& operator=(child_process&& other) noexcept;

  child_process(const child_process&) = delete;

  child_process& operator=(const child_process&) = delete;

  ~child_process();

  // -- properties ------------------------------------------------------------

  /// The PID it was started with; still that PID after it exited, -1 if empty.
  [[nodiscard]] pid_t pid() const noexcept {
    return pid_;
  }

  /// Returns whether the process is still alive; reaps it and remembers its exit status
  /// once it has ended.
  [[nodiscard]] bool running();

  /// Exit code once the process has ended and been reaped (see `wait_for_exit`).
  [[nodiscard]] std::optional<int> exit_code() const noexcept {
    return exit_code_;
  }

  // -- control ---------------------------------------------------------------

  /// Sends `signal` to the process; does nothing once it has been reaped.
  void send_signal(int signal);

  /// Waits up to `timeout` for the process to end.
  /// @returns its exit code, or 128 + N when signal N ended it; `std::nullopt` if it is
  ///          still running at the deadline.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);

  /// SIGTERM, up to 5 s for it to exit, then SIGKILL and wait. Safe to call repeatedly.
  void stop() noexcept;

  /// SIGKILL and wait, without the polite SIGTERM first.
  void kill() noexcept;

private:
  /// Records the status `waitpid` reported for our PID.
  void on_reaped(int status) noexcept;

  /// Blocks until the process has been reaped.
  void reap_blocking() noexcept;

  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<int> exit_code_;
};

/// What a command printed and how it ended.
struct command_result {
  /// Exit code (128 + N for signal N); -1 when it was killed for running past its
  /// deadline; 127 when it could not be started at all.
  int exit_code = -1;

  /// stdout and stderr interleaved, as the command wrote them.
  std::string output;
};

/// Runs `argv` to completion and captures its output, like a shell would.
///
/// Output goes through a temporary file rather than a pipe, so a grandchild that keeps
/// the descriptor open cannot hang the caller. A command still running after `deadline`
/// is killed (SIGKILL, by its PID) and reported with exit code -1 plus what it printed so
/// far. A program that cannot be started yields exit code 127 and the reason as output.
command_result run_command(std::vector<std::string> argv, std::chrono::milliseconds deadline,
                           environment extra_env = {});

} // namespace convoy::test
