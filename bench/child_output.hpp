#pragma once

/// @file
/// Running a peer program (an Erlang escript, a Node.js script, this benchmark again in a
/// fresh process) and reading what it prints: fork + exec with stdout on a pipe, bounded in
/// time, the child registered with the watchdog (`watchdog_owns`) while it runs so a failing
/// benchmark kills it by PID. Header-only, like `bench_common.hpp`.

#include "bench_common.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>

namespace convoy::bench {

/// What a child printed on stdout and how it ended (`status` = exit code, -1 on a signal or
/// a timeout; `error` says which).
struct child_output {
  std::string out;
  int status = -1;
  std::string error;
  double cpu_s = 0; ///< user + system CPU time of the child (wait4)
  bool ok() const { return status == 0 && error.empty(); }
};

/// Runs `argv` (argv[0] searched in PATH), stderr inherited, stdin from /dev/null; kills it
/// (SIGKILL, by PID) after `timeout`.
inline child_output run_child(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                              const std::vector<std::string>& env_extra = {}) {
  child_output r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return r;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      ::dup2(devnull, STDIN_FILENO);
    for (const auto& kv : env_extra)
      ::putenv(const_cast<char*>(kv.c_str()));
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    std::_Exit(127);
  }
  ::close(fds[1]);
  watchdog_owns(pid);
  auto deadline = clock_type::now() + timeout;
  char buf[4096];
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR)
      break;
    if (n <= 0)
      continue;
    auto got = ::read(fds[0], buf, sizeof(buf));
    if (got <= 0)
      break;
    r.out.append(buf, static_cast<size_t>(got));
  }
  ::close(fds[0]);
  if (timed_out)
    ::kill(pid, SIGKILL);
  int wstatus = 0;
  rusage usage{};
  ::wait4(pid, &wstatus, 0, &usage);
  r.cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  watchdog_owns(0);
  if (timed_out)
    r.error = argv[0] + " timed out after " + std::to_string(timeout.count()) + " s";
  else if (WIFEXITED(wstatus))
    r.status = WEXITSTATUS(wstatus);
  else
    r.error = argv[0] + " ended by signal " + std::to_string(WTERMSIG(wstatus));
  if (r.error.empty() && r.status != 0)
    r.error = argv[0] + " exited with status " + std::to_string(r.status);
  return r;
}

/// The last line of `text` that parses as a JSON object, or null.
inline ojson last_json_line(const std::string& text) {
  ojson found;
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    auto line = text.substr(start, end - start);
    if (!line.empty() && line.front() == '{') {
      auto j = ojson::parse(line, nullptr, false);
      if (!j.is_discarded())
        found = std::move(j);
    }
    start = end + 1;
  }
  return found;
}

/// Whether an executable named `name` is on PATH.
inline bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find(':', start);
    if (end == std::string::npos)
      end = p.size();
    auto dir = p.substr(start, end - start);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0)
      return true;
    start = end + 1;
  }
  return false;
}

/// Resident set size of this process in bytes (/proc/self/statm).
inline int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2)
      resident = 0;
    std::fclose(f);
  }
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

/// Resident set size of process `pid` in bytes (/proc/PID/statm), or -1.
inline int64_t rss_bytes_of(pid_t pid) {
  auto path = "/proc/" + std::to_string(pid) + "/statm";
  std::FILE* f = std::fopen(path.c_str(), "r");
  long size = 0, resident = -1;
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2)
      resident = -1;
    std::fclose(f);
  }
  return resident < 0 ? -1 : static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

/// User + system CPU seconds of process `pid` so far (/proc/PID/stat), or -1.
inline double process_cpu_s(pid_t pid) {
  auto path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr)
    return -1;
  char buf[2048];
  auto n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')'); // after the command name
  if (p == nullptr)
    return -1;
  unsigned long utime = 0, stime = 0;
  // Fields after ')': state (3), ..., utime (14), stime (15).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime)
      != 2)
    return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// User + system CPU seconds of this process so far.
inline double self_cpu_s() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// The folder of this repository's bench/ sources (compiled in; $CONVOY_BENCH_SOURCE_DIR
/// overrides it): where the peers' scripts live.
inline std::string bench_source_dir() {
  if (const char* env = std::getenv("CONVOY_BENCH_SOURCE_DIR"); env != nullptr && *env != '\0')
    return env;
#ifdef CONVOY_BENCH_SOURCE_DIR
  return CONVOY_BENCH_SOURCE_DIR;
#else
  return "bench";
#endif
}

/// `erl`'s OTP release ("25"), or "" when Erlang is not installed.
inline std::string otp_release() {
  if (!on_path("erl"))
    return "";
  auto r = run_child({"erl", "-noshell", "-eval",
                      "io:format(\"~s~n\", [erlang:system_info(otp_release)]), halt()."},
                     std::chrono::seconds(30));
  if (!r.ok())
    return "";
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r'))
    r.out.pop_back();
  return r.out;
}

} // namespace convoy::bench
