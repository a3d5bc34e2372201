#include "netns.hpp"

#include "convoy/test/process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace convoy::chaos {

namespace {

using namespace std::chrono_literals;

/// Runs `ip ARGS...`; throws with the command and its output when it fails.
void ip(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  auto r = test::run_command(args, 10s);
  if (r.exit_code != 0) {
    std::string line;
    for (const auto& a : args)
      line += (line.empty() ? "" : " ") + a;
    throw std::runtime_error("network namespaces: `" + line + "` failed (exit "
                             + std::to_string(r.exit_code) + "): " + r.output);
  }
}

} // namespace

netns_fabric::netns_fabric(std::string tag) : tag_(std::move(tag)), hub_(tag_ + "-hub") {
  if (::geteuid() != 0)
    throw std::runtime_error("--network netns needs root (it creates network namespaces)");
  ip({"netns", "add", hub_});
  try {
    ip({"-n", hub_, "link", "set", "lo", "up"});
    ip({"-n", hub_, "link", "add", "br0", "type", "bridge"});
    ip({"-n", hub_, "addr", "add", std::string(hub_address) + "/24", "dev", "br0"});
    ip({"-n", hub_, "link", "set", "br0", "up"});
  } catch (...) {
    teardown();
    throw;
  }
}

netns_fabric::~netns_fabric() {
  teardown();
}

void netns_fabric::enter_hub() {
  const auto path = "/run/netns/" + hub_;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("network namespaces: cannot open " + path + ": "
                             + std::strerror(errno));
  const int rc = ::setns(fd, CLONE_NEWNET);
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    throw std::runtime_error("network namespaces: setns into " + hub_ + ": "
                             + std::strerror(err));
}

test::placement netns_fabric::member(const std::string& name) {
  auto it = members_.find(name);
  if (it == members_.end()) {
    const auto index = members_.size() + 2; // .1 is the hub
    if (index > 250)
      throw std::runtime_error("network namespaces: too many members");
    member_ns m{tag_ + "-" + name, "198.18.0." + std::to_string(index)};
    const auto peer = "v" + std::to_string(index); // the member's veth end in the hub
    ip({"netns", "add", m.ns});
    members_.emplace(name, m); // from here on, teardown deletes it
    ip({"-n", m.ns, "link", "set", "lo", "up"});
    ip({"link", "add", "eth0", "netns", m.ns, "type", "veth", "peer", "name", peer, "netns",
        hub_});
    ip({"-n", m.ns, "addr", "add", m.address + "/24", "dev", "eth0"});
    ip({"-n", m.ns, "link", "set", "eth0", "up"});
    ip({"-n", hub_, "link", "set", peer, "master", "br0"});
    ip({"-n", hub_, "link", "set", peer, "up"});
    it = members_.find(name);
  }
  test::placement p;
  p.host = it->second.address;
  p.exec_prefix = {"ip", "netns", "exec", it->second.ns};
  return p;
}

const std::string& netns_fabric::address(const std::string& name) const {
  return members_.at(name).address;
}

void netns_fabric::cut(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const auto& x : a)
    for (const auto& y : b) {
      if (x == y)
        continue;
      const auto& mx = members_.at(x);
      const auto& my = members_.at(y);
      ip({"-n", mx.ns, "route", "add", "blackhole", my.address + "/32"});
      ip({"-n", my.ns, "route", "add", "blackhole", mx.address + "/32"});
      cuts_.emplace_back(x, y);
    }
}

void netns_fabric::heal() {
  std::string failed;
  for (const auto& [x, y] : cuts_) {
    const auto& mx = members_.at(x);
    const auto& my = members_.at(y);
    for (const auto& [ns, to] : {std::pair{mx.ns, my.address}, std::pair{my.ns, mx.address}})
      try {
        ip({"-n", ns, "route", "del", "blackhole", to + "/32"});
      } catch (const std::exception& e) {
        failed = e.what();
      }
  }
  cuts_.clear();
  if (!failed.empty())
    throw std::runtime_error(failed);
}

std::vector<std::string> netns_fabric::cuts() const {
  std::vector<std::string> out;
  for (const auto& [x, y] : cuts_)
    out.push_back(x + "-" + y);
  return out;
}

void netns_fabric::teardown() noexcept {
  if (torn_down_)
    return;
  torn_down_ = true;
  for (const auto& [name, m] : members_)
    try {
      ip({"netns", "del", m.ns});
    } catch (...) {
    }
  try {
    ip({"netns", "del", hub_});
  } catch (...) {
  }
}

} // namespace convoy::chaos
