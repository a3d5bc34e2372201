#pragma once

#include "convoy/test/placement.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace convoy::chaos {

/// The private network of one `--network netns` run (root only), so that partitions can be
/// cut (F5, F6) without touching the machine's own interfaces.
///
/// A hub namespace holds a bridge with 198.18.0.1/24 (RFC 2544's benchmarking range): this
/// tool moves into it, so its sink and its probes live there. Every member (a Redis server,
/// a Sentinel, a node) gets a namespace of its own with a veth on the bridge, an address
/// 198.18.0.N, loopback up and no default route: nothing in the fabric can reach beyond it.
/// A cut adds blackhole routes between the two sides in each member's namespace (sends fail
/// at once with EINVAL instead of timing out: a clean, immediate partition); the hub keeps
/// reaching everyone, as an operator's network would. The destructor deletes every
/// namespace it created (the members' processes must be stopped first).
class netns_fabric {
public:
  /// Creates the hub. Throws `std::runtime_error` naming the `ip` command that failed (not
  /// root, no bridge support in the kernel, ...).
  explicit netns_fabric(std::string tag);
  ~netns_fabric();

  netns_fabric(const netns_fabric&) = delete;
  netns_fabric& operator=(const netns_fabric&) = delete;

  /// Moves the calling thread into the hub (threads it starts later inherit it). Call it
  /// before the process starts any other thread.
  void enter_hub();

  /// The hub's own address on the bridge.
  static constexpr const char* hub_address = "198.18.0.1";

  /// The placement of `member` (its namespace is created on first use): its address and
  /// `ip netns exec NS` as the prefix of its command line.
  test::placement member(const std::string& name);

  /// The address of a member created before (throws `std::out_of_range` otherwise).
  const std::string& address(const std::string& name) const;

  /// Cuts every path between a member of `a` and a member of `b`, both directions.
  void cut(const std::vector<std::string>& a, const std::vector<std::string>& b);

  /// Removes every cut.
  void heal();

  /// The cuts now in place, as "member-member" pairs (for the report).
  std::vector<std::string> cuts() const;

  /// Deletes every namespace (idempotent). The members' processes must be stopped first.
  void teardown() noexcept;

private:
  struct member_ns {
    std::string ns;
    std::string address;
  };

  std::string tag_;
  std::string hub_;
  std::map<std::string, member_ns> members_;
  std::vector<std::pair<std::string, std::string>> cuts_;
  bool torn_down_ = false;
};

} // namespace convoy::chaos
