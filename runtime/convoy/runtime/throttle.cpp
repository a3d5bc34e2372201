#include "convoy/runtime/throttle.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/actors/json.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <unistd.h>

namespace convoy::runtime {

std::string throttle_cause(const std::string& host, const throttle_limits& limits,
                           const throttle_inputs& now) {
  if (now.max_instances > 0 && now.instances >= now.max_instances)
    return "in-flight instances: " + std::to_string(now.instances) + " in memory, the limit "
           "(processing.max_instances) is " + std::to_string(now.max_instances);
  if (limits.memory_mb > 0 && now.resident_mb > limits.memory_mb)
    return "memory: the node uses " + std::to_string(now.resident_mb) + " MiB, over "
           "throttling.memory_mb = " + std::to_string(limits.memory_mb);
  if (limits.persistence_latency.count() > 0
      && now.write_latency_us > limits.persistence_latency.count() * 1000)
    return "persistence latency: " + std::to_string(now.write_latency_us / 1000) + " ms per "
           "persistence point (average), over throttling.persistence_latency_ms = "
           + std::to_string(limits.persistence_latency.count());
  if (host == "receive" && limits.backlog > 0 && now.backlog > limits.backlog)
    return "backlog: the processing queue holds " + std::to_string(now.backlog) + " messages, "
           "over throttling.backlog = " + std::to_string(limits.backlog);
  return {};
}

size_t resident_memory_mb() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident))
    return 0;
  auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return resident * page / (1024 * 1024);
}

void throttle_board::update(const std::string& host, const std::string& cause) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = hosts_.find(host);
  auto before = i == hosts_.end() ? std::string{} : i->second.cause;
  if (before == cause)
    return;
  if (cause.empty()) {
    hosts_.erase(i);
    spdlog::info("host {}: no longer throttled", host);
    return;
  }
  // A change of cause while throttled is the same episode.
  auto episodes = before.empty() ? ++episodes_[host] : episodes_[host];
  hosts_[host] = state{cause, wall_clock_ms(), episodes};
  spdlog::warn("host {}: throttled ({}); it reads less, less often, until that clears", host,
               cause);
}

std::string throttle_board::cause(const std::string& host) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = hosts_.find(host);
  return i == hosts_.end() ? std::string{} : i->second.cause;
}

void throttle_board::set_backlog(int64_t n) {
  std::lock_guard<std::mutex> guard(mtx_);
  backlog_ = n;
}

int64_t throttle_board::backlog() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return backlog_;
}

size_t throttle_board::resident_mb() {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> guard(mtx_);
  if (now - sampled_ >= std::chrono::milliseconds(200)) {
    resident_mb_ = resident_memory_mb();
    sampled_ = now;
  }
  return resident_mb_;
}

std::string throttle_board::to_json() const {
  json out = json::object();
  for (const auto& [host, s] : snapshot())
    out[host] = {{"cause", s.cause}, {"since_ms", s.since_ms}, {"episodes", s.episodes}};
  return out.dump();
}

std::map<std::string, throttle_board::state> throttle_board::snapshot() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return hosts_;
}

} // namespace convoy::runtime
