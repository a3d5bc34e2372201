#include "convoy/test/process.hpp"

#include "convoy/test/wait_until.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace convoy::test {

namespace {

/// The parent's environment with `extra` applied on top, as `NAME=value` strings.
std::vector<std::string> merged_environment(const environment& extra) {
  std::vector<std::string> result;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view var{*entry};
    auto name = var.substr(0, var.find('='));
    bool overridden = false;
    for (const auto& [key, value] : extra)
      overridden = overridden || key == name;
    if (!overridden)
      result.emplace_back(var);
  }
  for (const auto& [key, value] : extra)
    result.push_back(key + '=' + value);
  return result;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> result;
  result.reserve(strings.size() + 1);
  for (auto& str : strings)
    result.push_back(str.data());
  result.push_back(nullptr);
  return result;
}

/// RAII for the two posix_spawn attribute objects.
struct spawn_setup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;

  spawn_setup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }

  ~spawn_setup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }

  spawn_setup(const spawn_setup&) = delete;
  spawn_setup& operator=(const spawn_setup&) = delete;
};

/// Opens a pidfd for `pid`, or returns -1 where the kernel has none (before Linux 5.3).
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void) pid;
  return -1;
#endif
}

} // namespace

// -- child_process ------------------------------------------------------------

child_process child_process::start(std::vector<std::string> argv, environment extra_env,
                                   std::string output_file) {
  if (argv.empty())
    throw std::invalid_argument("convoy::test::child_process::start: empty argv");
  spawn_setup setup;
  posix_spawn_file_actions_addopen(&setup.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (output_file.empty())
    posix_spawn_file_actions_addopen(&setup.actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  else
    posix_spawn_file_actions_addopen(&setup.actions, STDOUT_FILENO, output_file.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&setup.actions, STDOUT_FILENO, STDERR_FILENO);
  // Test runners install handlers or ignore signals (Boost.Test catches SIGTERM, many
  // harnesses ignore SIGPIPE); ignored dispositions and the mask survive exec, so reset
  // them or the child would shrug off our SIGTERM.
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2})
    sigaddset(&defaults, sig);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  posix_spawnattr_setsigdefault(&setup.attr, &defaults);
  posix_spawnattr_setsigmask(&setup.attr, &empty_mask);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  auto env = merged_environment(extra_env);
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);
  pid_t pid = -1;
  // glibc reports exec failures (ENOENT, EACCES) here rather than in the child.
  if (int err = ::posix_spawnp(&pid, c_argv[0], &setup.actions, &setup.attr, c_argv.data(),
                               c_env.data());
      err != 0)
    throw std::system_error(err, std::generic_category(),
                            "convoy::test::child_process::start: cannot start " + argv[0]);
  child_process result;
  result.pid_ = pid;
  return result;
}

child_process::child_process(child_process&& other) noexcept
  : pid_(std::exchange(other.pid_, -1)),
    reaped_(std::exchange(other.reaped_, false)),
    exit_code_(std::exchange(other.exit_code_, std::nullopt)) {
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
    reaped_ = std::exchange(other.reaped_, false);
    exit_code_ = std::exchange(other.exit_code_, std::nullopt);
  }
  return *this;
}

child_process::~child_process() {
  stop();
}

bool child_process::running() {
  if (pid_ <= 0 || reaped_)
    return false;
  int status = 0;
  pid_t res;
  do {
    res = ::waitpid(pid_, &status, WNOHANG);
  } while (res < 0 && errno == EINTR);
  if (res == 0)
    return true;
  if (res == pid_) {
    on_reaped(status);
  } else {
    // ECHILD: someone else reaped it (e.g. SIGCHLD set to SIG_IGN); it is gone either way.
    reaped_ = true;
  }
  return false;
}

void child_process::send_signal(int signal) {
  if (pid_ > 0 && !reaped_)
    ::kill(pid_, signal);
}

std::optional<int> child_process::wait_for_exit(std::chrono::milliseconds timeout) {
  if (!running())
    return exit_code_;
  // Prefer sleeping in poll(2) on a pidfd: it wakes the moment the child exits. Kernels
  // without pidfds fall back to polling waitpid.
  if (int fd = open_pidfd(pid_); fd >= 0) {
    using clock = std::chrono::steady_clock;
    const auto end = clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(end - clock::now());
      pollfd pfd{fd, POLLIN, 0};
      int res = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
      if (res < 0 && errno == EINTR)
        continue;
      if (res != 0 || !running() || clock::now() >= end)
        break;
    }
    ::close(fd);
  } else {
    wait_until([this] { return !running(); }, timeout, std::chrono::milliseconds{5});
  }
  if (running())
    return std::nullopt;
  return exit_code_;
}

void child_process::stop() noexcept {
  if (pid_ <= 0 || reaped_)
    return;
  send_signal(SIGTERM);
  if (!wait_for_exit(std::chrono::seconds{5}))
    kill();
}

void child_process::kill() noexcept {
  if (pid_ <= 0 || reaped_)
    return;
  ::kill(pid_, SIGKILL);
  reap_blocking();
}

void child_process::on_reaped(int status) noexcept {
  reaped_ = true;
  if (WIFEXITED(status))
    exit_code_ = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    exit_code_ = 128 + WTERMSIG(status);
}

void child_process::reap_blocking() noexcept {
  int status = 0;
  pid_t res;
  do {
    res = ::waitpid(pid_, &status, 0);
  } while (res < 0 && errno == EINTR);
  if (res == pid_)
    on_reaped(status);
  else
    reaped_ = true;
}

// -- run_command --------------------------------------------------------------

command_result run_command(std::vector<std::string> argv, std::chrono::milliseconds deadline,
                           environment extra_env) {
  std::filesystem::path base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0')
    base = tmp;
  std::string out_path = (base / "convoy-command-XXXXXX").string();
  int fd = ::mkstemp(out_path.data());
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(),
                            "convoy::test::run_command: mkstemp " + out_path);
  ::close(fd);
  command_result result;
  try {
    auto proc = child_process::start(std::move(argv), std::move(extra_env), out_path);
    if (auto code = proc.wait_for_exit(deadline)) {
      result.exit_code = *code;
    } else {
      proc.kill();
      result.exit_code = -1;
    }
  } catch (const std::system_error& err) {
    ::unlink(out_path.c_str());
    return {127, err.what()};
  }
  std::ifstream in{out_path, std::ios::binary};
  std::ostringstream buf;
  buf << in.rdbuf();
  result.output = std::move(buf).str();
  ::unlink(out_path.c_str());
  return result;
}

} // namespace convoy::test
