#pragma once

/// @file
/// What every benchmark program shares: the `--quick` flag, median/min/max summaries, the
/// result shape of `/work/shared/BENCHMARKS.md` (one JSON object on stdout), the environment
/// block, and a watchdog that bounds the whole program in wall time.
///
/// Header-only on purpose: each benchmark is one translation unit plus this header.

#include <caf/config.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace convoy::bench {

/// Keys keep their insertion order, so results read in the documented order.
using ojson = nlohmann::ordered_json;

using clock_type = std::chrono::steady_clock;

// -- command line -------------------------------------------------------------------------

struct options {
  /// Fewer iterations per round (never fewer than 5 rounds): a smoke run of the suite.
  bool quick = false;
};

inline options parse_options(int argc, char** argv) {
  options out;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--quick") {
      out.quick = true;
    } else {
      std::cerr << "usage: " << argv[0] << " [--quick]\n";
      std::exit(2);
    }
  }
  return out;
}

// -- statistics ---------------------------------------------------------------------------

struct summary {
  double median = 0;
  double min = 0;
  double max = 0;
  size_t runs = 0;
};

/// Median (mean of the two middle values for an even count), min and max.
inline summary summarize(std::vector<double> xs) {
  summary s;
  if (xs.empty())
    return s;
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  s.median = n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
  s.min = xs.front();
  s.max = xs.back();
  s.runs = n;
  return s;
}

/// Rounds to 4 significant digits: the noise on a shared machine is far above that.
inline double round4(double x) {
  if (x == 0)
    return 0;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.4g", x);
  return std::strtod(buf, nullptr);
}

inline ojson to_json(const summary& s) {
  return ojson{{"median", round4(s.median)},
               {"min", round4(s.min)},
               {"max", round4(s.max)},
               {"runs", s.runs}};
}

/// A bound such as "<= 1.5" or ">= 0.7" applied to `value`.
inline bool meets(const std::string& target, double value) {
  if (target.size() < 3)
    return false;
  auto bound = std::strtod(target.c_str() + 2, nullptr);
  if (target.rfind("<=", 0) == 0)
    return value <= bound;
  if (target.rfind(">=", 0) == 0)
    return value >= bound;
  return false;
}

/// One case compared against a peer: ratio = ours / peer (medians), target on the ratio.
inline ojson make_case(ojson params, const summary& ours, const std::string& peer_name,
                       const summary& peer, const std::string& target) {
  auto ratio = peer.median != 0 ? ours.median / peer.median : 0.0;
  ojson peer_json{{"name", peer_name}};
  peer_json.update(to_json(peer));
  return ojson{{"params", std::move(params)},
               {"ours", to_json(ours)},
               {"peer", std::move(peer_json)},
               {"ratio", round4(ratio)},
               {"target", target},
               {"met", meets(target, ratio)}};
}

/// One case compared against a peer where the target bounds ours' own median (a fairness
/// index, a time relative to a configured one, a count), not the ratio: `"target_on":
/// "ours"`. The ratio is still ours / peer (null when the peer's median is 0).
inline ojson make_case_on_ours(ojson params, const summary& ours, const std::string& peer_name,
                               const summary& peer, const std::string& target) {
  auto out = make_case(std::move(params), ours, peer_name, peer, target);
  if (peer.median == 0)
    out["ratio"] = nullptr;
  out["target_on"] = "ours";
  out["met"] = meets(target, ours.median);
  return out;
}

/// One case compared against a peer, informational: no target (`target` and `met` null).
inline ojson make_info_case(ojson params, const summary& ours, const std::string& peer_name,
                            const summary& peer) {
  auto out = make_case(std::move(params), ours, peer_name, peer, "");
  if (peer.median == 0)
    out["ratio"] = nullptr;
  out["target"] = nullptr;
  out["met"] = nullptr;
  return out;
}

/// One case without a peer: the target applies to ours' median. An empty target means the
/// case is informational (`met` is null).
inline ojson make_solo_case(ojson params, const summary& ours, const std::string& target) {
  ojson out{{"params", std::move(params)},
            {"ours", to_json(ours)},
            {"peer", nullptr},
            {"ratio", nullptr},
            {"target", target.empty() ? ojson(nullptr) : ojson(target)},
            {"met", target.empty() ? ojson(nullptr) : ojson(meets(target, ours.median))}};
  return out;
}

// -- environment --------------------------------------------------------------------------

inline std::string caf_version() {
  return std::to_string(CAF_MAJOR_VERSION) + "." + std::to_string(CAF_MINOR_VERSION) + "."
         + std::to_string(CAF_PATCH_VERSION);
}

/// nproc, 1-minute load average (sampled now) and the versions every program knows;
/// `extra` adds program-specific versions and settings.
inline ojson environment(ojson extra_versions = ojson::object(), ojson settings = nullptr) {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 1)
    load[0] = -1;
  ojson versions{{"caf", caf_version()},
                 {"compiler", std::string("g++ ") + __VERSION__},
                 {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "."
                                     + std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "."
                                     + std::to_string(NLOHMANN_JSON_VERSION_PATCH)}};
  if (extra_versions.is_object())
    versions.update(extra_versions);
  ojson env{{"nproc", static_cast<long>(sysconf(_SC_NPROCESSORS_ONLN))},
            {"loadavg", round4(load[0])},
            {"loadavg_5m", round4(load[1])},
            {"versions", std::move(versions)}};
#ifdef NDEBUG
  env["build"] = "optimised (NDEBUG)";
#else
  env["build"] = "assertions on (no NDEBUG)";
#endif
  if (!settings.is_null())
    env["settings"] = std::move(settings);
  return env;
}

// -- bounds -------------------------------------------------------------------------------

namespace detail {
inline std::atomic<pid_t> child_to_kill{0};
inline std::atomic<const char*> dir_to_remove{nullptr};
} // namespace detail

/// A child process (by PID) and its working directory that `abandon` (watchdog or failure)
/// removes before the program gives up, so a failed benchmark leaves nothing behind.
/// `dir` must outlive the registration; 0 / nullptr clears it.
inline void watchdog_owns(pid_t pid, const char* dir = nullptr) {
  detail::child_to_kill = pid;
  detail::dir_to_remove = dir;
}

/// SIGKILLs and reaps every child process of this program that has not been reaped yet, by
/// the PIDs the kernel lists in `/proc/self/task/*/children` (an unreaped child keeps its
/// PID, so nothing else can be hit). For programs that start several servers (a Sentinel
/// group) whose PIDs the test fixtures do not all expose.
inline void kill_own_children() {
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::FILE* f = std::fopen((task.path() / "children").c_str(), "r");
    if (f == nullptr)
      continue;
    long pid = 0;
    while (std::fscanf(f, "%ld", &pid) == 1)
      if (pid > 0) {
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
      }
    std::fclose(f);
  }
}

/// Kills the registered child (by its PID only) and any other child of this program (see
/// `kill_own_children`), removes the registered directory, prints an error object in the
/// result shape and exits with `status`. Never returns.
[[noreturn]] inline void abandon(const std::string& id, const std::string& name,
                                 const std::string& why, int status) {
  if (auto pid = detail::child_to_kill.exchange(0); pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  kill_own_children();
  if (auto dir = detail::dir_to_remove.exchange(nullptr); dir != nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  ojson err{{"id", id}, {"name", name}, {"error", why}};
  std::cout << err.dump() << std::endl;
  std::_Exit(status);
}

/// Bounds the program in wall time: after `budget`, prints an error object in the result
/// shape, kills the registered child (by PID) and exits with status 3 (see `abandon`).
inline void start_watchdog(std::string id, std::string name, std::chrono::seconds budget) {
  std::thread([id = std::move(id), name = std::move(name), budget] {
    std::this_thread::sleep_for(budget);
    abandon(id, name, "watchdog: exceeded " + std::to_string(budget.count()) + " s", 3);
  }).detach();
}

/// CPU time consumed so far by the calling thread, in nanoseconds. With one scheduler thread
/// every actor runs on the same worker, so the difference of two readings taken inside actors
/// is the CPU cost of what ran in between, whatever else the (shared) machine is doing.
inline int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// The supplementary CPU-time comparison attached to a case (one scheduler thread only).
inline ojson cpu_comparison(const summary& ours, const summary& peer) {
  return ojson{{"unit", "CPU ns/step (worker thread)"},
               {"ours", to_json(ours)},
               {"peer", to_json(peer)},
               {"ratio", round4(peer.median != 0 ? ours.median / peer.median : 0.0)}};
}

/// Milliseconds between two instants, as a double.
inline double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// Nanoseconds between two instants, as a double.
inline double ns_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

} // namespace convoy::bench
