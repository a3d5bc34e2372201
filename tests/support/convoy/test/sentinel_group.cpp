#include "convoy/test/sentinel_group.hpp"

#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/wait_until.hpp"

#include <signal.h>

#include <charconv>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace convoy::test {

namespace {

using namespace std::chrono_literals;

namespace fs = std::filesystem;

/// Timeout for one probe while polling: short, so a dead or stopped process cannot stall a
/// wait much past its deadline.
constexpr auto probe_timeout = 500ms;

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> result;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    result.emplace_back(line);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
  }
  return result;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

/// A flat field/value reply (`SENTINEL master`, rendered one element per line) as a map.
std::map<std::string, std::string> parse_fields(const std::string& reply) {
  std::map<std::string, std::string> result;
  if (reply.rfind("ERR:", 0) == 0)
    return result;
  auto lines = split_lines(reply);
  for (size_t i = 0; i + 1 < lines.size(); i += 2)
    result[lines[i]] = lines[i + 1];
  return result;
}

/// The value of `field` in an INFO reply, or an empty string.
std::string info_field(const std::string& info, std::string_view field) {
  for (const auto& line : split_lines(info))
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0
        && line[field.size()] == ':')
      return line.substr(field.size() + 1);
  return {};
}

/// The port in a `SENTINEL get-master-addr-by-name` reply (`IP\nPORT`).
std::optional<std::uint16_t> master_addr_port(const std::string& reply) {
  auto lines = split_lines(reply);
  if (lines.size() != 2 || reply.rfind("ERR:", 0) == 0)
    return std::nullopt;
  return parse_port(lines[1]);
}

bool role_is_master(std::uint16_t port) {
  auto lines = split_lines(redis_command(port, {"ROLE"}, probe_timeout));
  return !lines.empty() && lines.front() == "master";
}

/// The last `lines` lines of `file`, indented, or a note that it is empty.
std::string tail(const fs::path& file, size_t lines = 15) {
  std::ifstream in{file};
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    kept.push_back(std::move(line));
    if (kept.size() > lines)
      kept.erase(kept.begin());
  }
  std::string result = file.string() + ":\n";
  if (kept.empty())
    return result + "  (empty)\n";
  for (const auto& line : kept)
    result += "  | " + line + '\n';
  return result;
}

/// A value for a Redis config file, quoted so paths with spaces survive.
std::string quoted(const std::string& value) {
  std::string result = "\"";
  for (char ch : value) {
    if (ch == '"' || ch == '\\')
      result += '\\';
    result += ch;
  }
  return result + '"';
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("convoy::test::sentinel_group: " + what);
}

} // namespace

// -- constructors, destructors, and assignment operators ------------------------

sentinel_group sentinel_group::start(const fs::path& dir) {
  return start(dir, options{});
}

sentinel_group sentinel_group::start(const fs::path& dir, options opts) {
  if (opts.replicas < 0 || opts.sentinels < 1 || opts.quorum < 1
      || opts.quorum > opts.sentinels || opts.down_after_ms <= 0
      || opts.failover_timeout_ms <= 0 || opts.master_name.empty()
      || opts.master_name.find_first_of(" \t\r\n\"") != std::string::npos)
    throw std::invalid_argument("convoy::test::sentinel_group::start: invalid options");
  // Everything started below belongs to `group`: if anything throws, its destructor
  // stops what is already running.
  sentinel_group group;
  group.opts_ = std::move(opts);
  fs::create_directories(dir);
  const auto root = fs::absolute(dir);

  auto node_dir = root / "node-0";
  auto where = group.place("redis-0");
  group.nodes_.push_back(
    {node_dir, redis_server::start(node_dir, group.data_node_args(), where), where});
  const auto master = group.nodes_.front().server.port();
  for (int i = 1; i <= group.opts_.replicas; ++i) {
    node_dir = root / ("node-" + std::to_string(i));
    where = group.place("redis-" + std::to_string(i));
    group.nodes_.push_back(
      {node_dir, redis_server::start(node_dir, group.data_node_args(master), where), where});
  }

  auto link_status = [](const redis_server& node) {
    return info_field(redis_command(node.port(), {"INFO", "replication"}, probe_timeout),
                      "master_link_status");
  };
  const bool linked = wait_until(
    [&] {
      for (size_t i = 1; i < group.nodes_.size(); ++i)
        if (link_status(group.nodes_[i].server) != "up")
          return false;
      return true;
    },
    15s, 50ms);
  if (!linked) {
    std::string report = "replicas of " + address_of(master)
                         + " did not all report master_link_status:up within 15 s\n";
    for (size_t i = 1; i < group.nodes_.size(); ++i) {
      const auto& node = group.nodes_[i].server;
      report += node.address() + ": master_link_status=" + link_status(node) + '\n'
                + tail(node.log_file());
    }
    fail(report + tail(group.nodes_.front().server.log_file()));
  }

  for (int i = 0; i < group.opts_.sentinels; ++i)
    group.start_sentinel(root / ("sentinel-" + std::to_string(i)), master,
                         group.place("sentinel-" + std::to_string(i)));

  const auto& name = group.opts_.master_name;
  auto settled = [&](const sentinel& sen, std::string* why) {
    auto addr = redis_command(sen.port, {"SENTINEL", "get-master-addr-by-name", name},
                              probe_timeout);
    auto fields = parse_fields(redis_command(sen.port, {"SENTINEL", "master", name},
                                             probe_timeout));
    const bool ok = master_addr_port(addr) == master && fields["flags"] == "master"
                    && fields["num-slaves"] == std::to_string(group.opts_.replicas)
                    && fields["num-other-sentinels"]
                         == std::to_string(group.opts_.sentinels - 1);
    if (why != nullptr)
      *why = "sentinel " + address_of(sen.port) + ": master "
             + std::string{addr == "(nil)" ? "(nil)" : addr.substr(addr.find('\n') + 1)}
             + ", flags " + fields["flags"] + ", num-slaves " + fields["num-slaves"]
             + ", num-other-sentinels " + fields["num-other-sentinels"] + '\n';
    return ok;
  };
  const bool agreed = wait_until(
    [&] {
      for (const auto& sen : group.sentinels_)
        if (!settled(sen, nullptr))
          return false;
      return true;
    },
    20s, 50ms);
  if (!agreed) {
    std::string report = "Sentinels did not agree within 20 s on master "
                         + address_of(master) + " with "
                         + std::to_string(group.opts_.replicas) + " replicas and "
                         + std::to_string(group.opts_.sentinels - 1)
                         + " other Sentinels each\n";
    for (const auto& sen : group.sentinels_) {
      std::string why;
      settled(sen, &why);
      report += why + tail(sen.dir / "sentinel.log");
    }
    fail(report);
  }
  return group;
}

sentinel_group& sentinel_group::operator=(sentinel_group&& other) noexcept {
  if (this != &other) {
    stop();
    opts_ = std::move(other.opts_);
    nodes_ = std::move(other.nodes_);
    sentinels_ = std::move(other.sentinels_);
  }
  return *this;
}

sentinel_group::~sentinel_group() {
  stop();
}

// -- properties -------------------------------------------------------------------

std::uint16_t sentinel_group::master_port() const {
  std::string answers;
  for (const auto& sen : sentinels_) {
    auto reply = redis_command(
      sen.port, {"SENTINEL", "get-master-addr-by-name", opts_.master_name}, 1s);
    if (auto port = master_addr_port(reply))
      return *port;
    answers += "\n  " + address_of(sen.port) + ": " + reply;
  }
  fail("no Sentinel named the master" + answers);
}

std::vector<std::string> sentinel_group::sentinel_addresses() const {
  std::vector<std::string> result;
  for (const auto& sen : sentinels_)
    result.push_back(address_of(sen.port));
  return result;
}

std::vector<std::uint16_t> sentinel_group::sentinel_ports() const {
  std::vector<std::uint16_t> result;
  for (const auto& sen : sentinels_)
    result.push_back(sen.port);
  return result;
}

std::vector<std::uint16_t> sentinel_group::redis_ports() const {
  std::vector<std::uint16_t> result;
  for (const auto& node : nodes_)
    result.push_back(node.server.port());
  return result;
}

redis_server& sentinel_group::node_on_port(std::uint16_t port) {
  for (auto& node : nodes_)
    if (node.server.port() == port)
      return node.server;
  throw std::out_of_range("convoy::test::sentinel_group: no data node on port "
                          + std::to_string(port));
}

const redis_server& sentinel_group::node_on_port(std::uint16_t port) const {
  return const_cast<sentinel_group*>(this)->node_on_port(port);
}

// -- control ----------------------------------------------------------------------

std::uint16_t sentinel_group::kill9_master() {
  const auto port = master_port();
  node_on_port(port).kill9();
  return port;
}

void sentinel_group::restart(std::uint16_t port) {
  for (auto& node : nodes_) {
    if (node.server.port() != port)
      continue;
    if (node.server.running())
      throw std::logic_error("convoy::test::sentinel_group::restart: the node on port "
                             + std::to_string(port) + " is still running");
    node.server = redis_server::start_on_port(node.dir, port, data_node_args(), node.where);
    return;
  }
  throw std::out_of_range("convoy::test::sentinel_group: no data node on port "
                          + std::to_string(port));
}

bool sentinel_group::wait_for_failover(std::uint16_t old_master_port,
                                       std::chrono::milliseconds deadline) {
  return wait_until(
    [&] {
      auto agreed = agreed_master();
      return agreed && *agreed != old_master_port && role_is_master(*agreed);
    },
    deadline, 50ms);
}

void sentinel_group::stop() noexcept {
  // Everything of one kind is asked to stop at once, which keeps teardown short. A
  // process that has not been reaped still owns its PID, so signalling it by PID cannot
  // hit anything else. SIGTERM is repeated because Redis drops a shutdown request it
  // cannot serve right now ("Writing initial AOF, can't exit") instead of deferring it.
  auto terminate_all = [](auto& items, auto&& process_of) {
    wait_until(
      [&] {
        bool any = false;
        for (auto& item : items) {
          auto& proc = process_of(item);
          if (proc.running()) {
            any = true;
            ::kill(proc.pid(), SIGTERM);
          }
        }
        return !any;
      },
      5s, 100ms);
  };
  try {
    terminate_all(sentinels_, [](sentinel& sen) -> child_process& { return sen.process; });
    terminate_all(nodes_, [](data_node& node) -> redis_server& { return node.server; });
  } catch (...) {
    // wait_until's std::function may throw bad_alloc; the SIGKILLs below still run.
  }
  for (auto& sen : sentinels_)
    sen.process.kill();
  for (auto& node : nodes_)
    node.server.kill9();
}

// -- assertion helpers --------------------------------------------------------------

std::string sentinel_group::command(std::uint16_t port, std::initializer_list<std::string> args,
                                    std::chrono::milliseconds timeout) {
  return redis_command(port, args, timeout);
}

std::vector<std::string>
sentinel_group::commands(std::uint16_t port,
                         std::initializer_list<std::vector<std::string>> commands,
                         std::chrono::milliseconds timeout) {
  return redis_commands(port, commands, timeout);
}

// -- private ----------------------------------------------------------------------

std::vector<std::string> sentinel_group::data_node_args(std::uint16_t replica_of) const {
  std::vector<std::string> args{"--repl-diskless-sync-delay", "0"};
  if (opts_.appendonly) {
    args.emplace_back("--appendonly");
    args.emplace_back("yes");
  }
  if (replica_of != 0) {
    args.emplace_back("--replicaof");
    args.push_back(host_of(replica_of));
    args.push_back(std::to_string(replica_of));
  }
  args.insert(args.end(), opts_.extra_redis_args.begin(), opts_.extra_redis_args.end());
  return args;
}

std::optional<std::uint16_t> sentinel_group::agreed_master() const {
  std::optional<std::uint16_t> result;
  for (const auto& sen : sentinels_) {
    auto port = master_addr_port(redis_command(
      sen.port, {"SENTINEL", "get-master-addr-by-name", opts_.master_name}, probe_timeout));
    if (!port)
      continue;
    if (result && *result != *port)
      return std::nullopt;
    result = port;
  }
  return result;
}

placement sentinel_group::place(const std::string& member) const {
  return opts_.place ? opts_.place(member) : placement{};
}

void sentinel_group::start_sentinel(const fs::path& dir, std::uint16_t master_port,
                                    const placement& where) {
  fs::create_directories(dir);
  const auto conf = dir / "sentinel.conf";
  const auto log = dir / "sentinel.log";
  const auto out = dir / "sentinel.out";
  const auto& name = opts_.master_name;
  constexpr int max_attempts = 3;
  std::string failure;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    sentinel sen{dir, free_loopback_port(), {}};
    register_host(sen.port, where.host);
    {
      // Written fresh on every attempt: Sentinel rewrites the file (its id, the replicas
      // and Sentinels it found), so each Sentinel needs a writable file of its own.
      std::ofstream file{conf, std::ios::trunc};
      file << "port " << sen.port << '\n'
           << "bind " << where.host << '\n'
           // Off loopback (a namespace of our own) Sentinel would refuse unauthenticated peers.
           << (where.loopback() ? "" : "protected-mode no\n")
           << "daemonize no\n"
           << "dir " << quoted(dir.string()) << '\n'
           << "logfile " << quoted(log.string()) << '\n'
           << "sentinel monitor " << name << ' ' << host_of(master_port) << ' '
           << master_port << ' '
           << opts_.quorum << '\n'
           << "sentinel down-after-milliseconds " << name << ' ' << opts_.down_after_ms
           << '\n'
           << "sentinel failover-timeout " << name << ' ' << opts_.failover_timeout_ms << '\n'
           << "sentinel parallel-syncs " << name << " 1\n";
      if (!file.flush())
        fail("cannot write " + conf.string());
    }
    sen.process =
      child_process::start(where.command({"redis-sentinel", conf.string()}), {}, out.string());
    const bool up = wait_until(
      [&sen] {
        return !sen.process.running() || redis_command(sen.port, {"PING"}, 200ms) == "PONG";
      },
      10s);
    if (up && sen.process.running()) {
      sentinels_.push_back(std::move(sen));
      return;
    }
    const bool exited = !sen.process.running();
    sen.process.stop();
    const auto log_tail = tail(log);
    const auto out_tail = tail(out);
    failure = "redis-sentinel on port " + std::to_string(sen.port)
              + (exited ? " exited during startup\n" : " did not answer PING within 10 s\n")
              + log_tail + out_tail;
    // Only a port lost to another process between probe and bind is worth another try.
    if (!exited || (log_tail + out_tail).find("in use") == std::string::npos)
      break;
  }
  fail(failure);
}

} // namespace convoy::test
