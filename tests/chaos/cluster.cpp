#include "cluster.hpp"

#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/wait_until.hpp"

#include <httplib.h>

#include <signal.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace convoy::chaos {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

test::sentinel_group start_group(const fs::path& dir, const cluster_options& opts) {
  test::sentinel_group::options g;
  g.replicas = 2;
  g.sentinels = 3;
  g.quorum = 2;
  g.down_after_ms = opts.down_after_ms;
  g.failover_timeout_ms = opts.failover_timeout_ms;
  g.appendonly = true;
  g.place = opts.place;
  if (opts.min_replicas_to_write > 0)
    g.extra_redis_args = {"--min-replicas-to-write", std::to_string(opts.min_replicas_to_write),
                          "--min-replicas-max-lag", "2"};
  return test::sentinel_group::start(dir / "redis", g);
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

/// The server on `PORT` answers 200 to GET `path` within a short timeout.
bool http_ok(std::uint16_t port, const char* path) {
  httplib::Client c(test::host_of(port), port);
  c.set_connection_timeout(0, 300'000);
  c.set_read_timeout(1, 0);
  auto res = c.Get(path);
  return res && res->status == 200;
}

} // namespace

double rss_mb(pid_t pid) {
  if (pid <= 0)
    return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

cluster::cluster(fs::path dir, cluster_options opts)
  : dir_(std::move(dir)), opts_(std::move(opts)), group_(start_group(dir_, opts_)) {
  nodes_.resize(static_cast<size_t>(opts_.nodes));
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto& n = nodes_[i];
    n.name = "node-" + std::to_string(i + 1);
    n.http_port = test::free_loopback_port();
    n.admin_port = test::free_loopback_port();
    n.config = dir_ / (n.name + ".toml");
    n.log = dir_ / (n.name + ".log");
    if (opts_.place)
      n.where = opts_.place(n.name);
    test::register_host(n.http_port, n.where.host);
    test::register_host(n.admin_port, n.where.host);
    write_config(i);
  }
  for (size_t i = 0; i < nodes_.size(); ++i)
    start_node(i);
}

cluster::~cluster() {
  stop();
}

void cluster::write_config(size_t i) {
  const auto& n = nodes_[i];
  std::ostringstream sentinels;
  bool first = true;
  for (const auto& s : group_.sentinel_addresses()) {
    sentinels << (first ? "" : ", ") << quoted(s);
    first = false;
  }
  std::ofstream out(n.config);
  out << "# written by convoy-chaos for one run\n"
      << "[node]\nname = " << quoted(n.name)
      << "\nhosts = [\"receive\", \"processing\", \"send\"]\nlog_level = \"info\"\n\n"
      << "[messagebox]\nsentinels = [" << sentinels.str() << "]\nmaster_name = "
      << quoted(group_.config().master_name)
      << "\ndurability = \"replicated\"\nreplicas = 1\nwait_timeout_ms = 1000\n\n"
      << "[timing]\nheartbeat_ms = " << opts_.heartbeat_ms << "\nlease_ttl_ms = "
      << opts_.lease_ttl_ms << "\nreclaim_idle_ms = 5000\npoll_block_ms = 500\n"
      << "timer_poll_ms = 100\n\n"
      << "[send]\nworkers = 8\n\n"
      << "[throttling]\nmemory_mb = " << opts_.memory_mb << "\nbacklog = " << opts_.backlog
      << "\ndelay_ms = 200\n\n"
      << "[admin]\nlisten = \"" << n.where.host << ":" << n.admin_port << "\"\n\n"
      << "[receive_locations.chaos-in]\ntype = \"http\"\nlisten = \"" << n.where.host << ":"
      << n.http_port
      << "\"\npath = \"/chaos\"\nmessage_type = \"chaos-start\"\nthreads = 4\n"
      << "max_in_flight = 32\nrequest_timeout_ms = 5000\n\n"
      << "[send_ports.chaos-sink]\ntype = \"http\"\nurl = \"http://" << opts_.sink_host << ":"
      << opts_.sink_port
      << "/sink\"\nmethod = \"POST\"\ntimeout_ms = 5000\n"
      << "retry = { max_attempts = 30, initial_backoff_ms = 200, max_backoff_ms = 2000, "
         "multiplier = 2.0 }\n";
  if (!out)
    throw std::runtime_error("cannot write " + n.config.string());
}

void cluster::start_node(size_t i) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto& n = nodes_.at(i);
  n.process = test::child_process::start(
    n.where.command({opts_.convoy_binary, "node", "--config", n.config.string()}), {},
    n.log.string());
  n.stopped = false;
  ++n.starts;
}

bool cluster::wait_ready(std::chrono::milliseconds deadline) {
  return test::wait_until(
    [&] {
      for (auto& n : nodes_)
        if (n.process.running() && !n.stopped && !http_ok(n.admin_port, "/readyz"))
          return false;
      return true;
    },
    deadline, 200ms);
}

void cluster::kill9_node(size_t i) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto& n = nodes_.at(i);
  n.process.kill();
  n.stopped = false;
}

void cluster::stop_node(size_t i) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto& n = nodes_.at(i);
  n.process.send_signal(SIGSTOP);
  n.stopped = true;
}

void cluster::continue_node(size_t i) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto& n = nodes_.at(i);
  n.process.send_signal(SIGCONT);
  n.stopped = false;
}

void cluster::kill9_redis(std::uint16_t port) {
  std::lock_guard<std::mutex> guard(mutex_);
  group_.node_on_port(port).kill9();
}

void cluster::restart_redis(std::uint16_t port) {
  std::lock_guard<std::mutex> guard(mutex_);
  group_.restart(port);
}

void cluster::stop_redis(std::uint16_t port) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto pid = group_.node_on_port(port).pid();
  if (pid > 0 && group_.node_on_port(port).running()) {
    ::kill(pid, SIGSTOP);
    stopped_redis_.push_back(port);
  }
}

void cluster::continue_redis(std::uint16_t port) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto pid = group_.node_on_port(port).pid();
  if (pid > 0)
    ::kill(pid, SIGCONT);
  std::erase(stopped_redis_, port);
}

std::uint16_t cluster::master_port() const {
  try {
    return group_.master_port();
  } catch (const std::exception&) {
    return 0;
  }
}

bool cluster::wait_redis_settled(std::chrono::milliseconds deadline) {
  return test::wait_until(
    [&] {
      auto master = master_port();
      if (master == 0
          || test::sentinel_group::command(master, {"ROLE"}, 500ms).rfind("master", 0) != 0)
        return false;
      for (auto port : group_.redis_ports()) {
        if (port == master)
          continue;
        auto info = test::sentinel_group::command(port, {"INFO", "replication"}, 500ms);
        if (info.find("master_port:" + std::to_string(master)) == std::string::npos
            || info.find("master_link_status:up") == std::string::npos)
          return false;
      }
      return true;
    },
    deadline, 200ms);
}

std::vector<pid_t> cluster::pids() {
  std::lock_guard<std::mutex> guard(mutex_);
  std::vector<pid_t> out;
  for (auto& n : nodes_)
    if (n.process.pid() > 0)
      out.push_back(n.process.pid());
  for (auto port : group_.redis_ports())
    out.push_back(group_.node_on_port(port).pid());
  return out;
}

std::vector<pid_t> cluster::node_pids() {
  std::lock_guard<std::mutex> guard(mutex_);
  std::vector<pid_t> out;
  for (auto& n : nodes_)
    out.push_back(n.process.pid());
  return out;
}

void cluster::stop() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  for (auto port : stopped_redis_)
    try {
      ::kill(group_.node_on_port(port).pid(), SIGCONT);
    } catch (...) {
    }
  stopped_redis_.clear();
  for (auto& n : nodes_) {
    if (n.stopped)
      n.process.send_signal(SIGCONT);
    n.stopped = false;
  }
  for (auto& n : nodes_)
    if (n.process.pid() > 0)
      n.process.send_signal(SIGTERM);
  for (auto& n : nodes_)
    n.process.stop();
  group_.stop();
}

} // namespace convoy::chaos
