#include <boost/test/unit_test.hpp>

#include "convoy/test/sentinel_group.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

using namespace convoy::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> result;
  std::string::size_type start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    result.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return result;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// The old and the new master's ports, and how long the failover took from the kill.
struct failover_result {
  std::uint16_t old_master = 0;
  std::uint16_t new_master = 0;
  std::chrono::milliseconds took{0};
};

/// Writes `key` on the master, waits for both replicas to acknowledge it, kills the master
/// with SIGKILL and waits (at most 15 s) for the failover.
failover_result acknowledged_write_then_kill_master(sentinel_group& group,
                                                    const std::string& key) {
  const auto master = group.master_port();
  // One connection for both: WAIT only counts the writes of its own connection.
  const auto replies
    = sentinel_group::commands(master, {{"SET", key, "survives"}, {"WAIT", "2", "1000"}});
  BOOST_TEST_REQUIRE(replies.size() == 2u);
  BOOST_TEST_REQUIRE(replies[0] == "OK");
  BOOST_TEST_REQUIRE(replies[1] == "2");
  const auto killed_at = std::chrono::steady_clock::now();
  const auto killed = group.kill9_master();
  BOOST_TEST_REQUIRE(killed == master);
  BOOST_TEST_REQUIRE(!group.node_on_port(killed).running());
  BOOST_TEST_REQUIRE(group.wait_for_failover(killed, 15s));
  failover_result result;
  result.took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed_at);
  result.old_master = killed;
  result.new_master = group.master_port();
  return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(sentinel_group_suite)

BOOST_AUTO_TEST_CASE(a_sentinel_group_starts_with_replicas_and_agreeing_sentinels) {
  temp_dir dir;
  auto group = sentinel_group::start(dir.path());
  const auto ports = group.redis_ports();
  BOOST_TEST_REQUIRE(ports.size() == 3u);
  const auto master = group.master_port();
  BOOST_TEST(master == ports.front());
  BOOST_TEST(lines_of(sentinel_group::command(master, {"ROLE"})).front() == "master");
  for (size_t i = 1; i < ports.size(); ++i) {
    const auto role = lines_of(group.node_on_port(ports[i]).command({"ROLE"}));
    BOOST_TEST_REQUIRE(role.size() >= 4u);
    BOOST_TEST(role[0] == "slave");
    BOOST_TEST(role[2] == std::to_string(master));
    BOOST_TEST(role[3] == "connected");
  }
  const auto addresses = group.sentinel_addresses();
  BOOST_TEST_REQUIRE(addresses.size() == 3u);
  for (size_t i = 0; i < addresses.size(); ++i) {
    const auto port = group.sentinel_ports()[i];
    BOOST_TEST(addresses[i] == "127.0.0.1:" + std::to_string(port));
    BOOST_TEST(sentinel_group::command(port, {"SENTINEL", "get-master-addr-by-name", "convoy"})
               == "127.0.0.1\n" + std::to_string(master));
    BOOST_TEST(contains(sentinel_group::command(port, {"SENTINEL", "ckquorum", "convoy"}),
                        "OK 3 usable Sentinels"));
  }
  BOOST_TEST(sentinel_group::command(master, {"CONFIG", "GET", "appendonly"})
             == "appendonly\nyes");
  BOOST_CHECK_THROW((void) group.node_on_port(1), std::out_of_range);
  // `commands` sends everything over one connection (what WAIT needs); `command` does not.
  const auto ids = sentinel_group::commands(master, {{"CLIENT", "ID"}, {"CLIENT", "ID"}});
  BOOST_TEST_REQUIRE(ids.size() == 2u);
  BOOST_TEST(ids[0] == ids[1]);
  BOOST_TEST(sentinel_group::command(master, {"CLIENT", "ID"})
             != sentinel_group::command(master, {"CLIENT", "ID"}));

  // Everything it started is gone after stop().
  std::vector<pid_t> pids;
  for (auto port : ports)
    pids.push_back(group.node_on_port(port).pid());
  group.stop();
  for (auto port : ports)
    BOOST_TEST(!group.node_on_port(port).running());
  for (const auto& address : addresses) {
    const auto port = static_cast<std::uint16_t>(std::stoi(address.substr(10)));
    BOOST_TEST(sentinel_group::command(port, {"PING"}, 200ms).rfind("ERR:", 0) == 0u);
  }
}

BOOST_AUTO_TEST_CASE(killing_the_master_promotes_a_replica_within_the_deadline) {
  temp_dir dir;
  auto group = sentinel_group::start(dir.path());
  const auto result = acknowledged_write_then_kill_master(group, "acknowledged");
  BOOST_TEST_MESSAGE("sentinel_group: failover after kill -9 of the master took "
                     << result.took.count() << " ms");
  BOOST_TEST(result.new_master != result.old_master);
  const auto ports = group.redis_ports();
  BOOST_TEST((std::find(ports.begin(), ports.end(), result.new_master) != ports.end()));
  BOOST_TEST(lines_of(sentinel_group::command(result.new_master, {"ROLE"})).front()
             == "master");
  BOOST_TEST(sentinel_group::command(result.new_master, {"GET", "acknowledged"})
             == "survives");
  // The new master takes writes.
  BOOST_TEST(sentinel_group::command(result.new_master, {"SET", "after", "failover"}) == "OK");
}

BOOST_AUTO_TEST_CASE(a_restarted_old_master_rejoins_as_a_replica) {
  temp_dir dir;
  auto group = sentinel_group::start(dir.path());
  const auto result = acknowledged_write_then_kill_master(group, "acknowledged");
  const auto old_pid = group.node_on_port(result.old_master).pid();
  const auto restarted_at = std::chrono::steady_clock::now();
  group.restart(result.old_master);
  auto& old_master = group.node_on_port(result.old_master);
  BOOST_TEST(old_master.running());
  BOOST_TEST(old_master.pid() != old_pid);
  BOOST_CHECK_THROW(group.restart(result.old_master), std::logic_error);
  std::vector<std::string> role;
  const bool rejoined = wait_until(
    [&] {
      // The master as the Sentinels see it now: on a loaded machine they may have failed
      // over once more since the kill (seen once in CI), which changes nothing asserted here.
      role = lines_of(old_master.command({"ROLE"}));
      return role.size() >= 4u && role[0] == "slave"
             && role[2] == std::to_string(group.master_port()) && role[3] == "connected";
    },
    // Sentinel converts a returning master on its ~10 s reconfiguration cycle; a busy machine
    // can miss one cycle (seen once in CI: still "slave", not yet "connected", at 20 s).
    45s, 100ms);
  BOOST_TEST_MESSAGE("sentinel_group: the restarted old master was a connected replica after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - restarted_at)
                          .count()
                     << " ms");
  std::string role_text;
  for (const auto& line : role)
    role_text += line + " ";
  BOOST_TEST_REQUIRE(rejoined, "ROLE of the restarted old master: "
                                 << (role.empty() ? std::string{"(none)"} : role_text));
  const auto master = group.master_port();
  BOOST_TEST(master != result.old_master);
  // Replication brings it the new master's data set, written after it died included. The
  // third server is re-pointed at the new master by the Sentinels on their own schedule and
  // may still be in its full sync (seen once in CI: WAIT 2 answered 1 after 5 s), so the write
  // is repeated until both replicas acknowledge it, within a bound.
  std::vector<std::string> replies;
  const bool both_acknowledged = wait_until(
    [&] {
      replies = sentinel_group::commands(master,
                                         {{"SET", "after", "rejoin"}, {"WAIT", "2", "2000"}});
      return replies.size() == 2u && replies[0] == "OK" && replies[1] == "2";
    },
    45s, 100ms);
  BOOST_TEST_REQUIRE(both_acknowledged,
                     "SET then WAIT 2 on the new master answered: "
                       << (replies.size() == 2u ? replies[0] + " " + replies[1]
                                                : std::string{"(no reply)"}));
  BOOST_TEST(old_master.command({"GET", "after"}) == "rejoin");
  BOOST_TEST(old_master.command({"GET", "acknowledged"}) == "survives");
}

BOOST_AUTO_TEST_CASE(a_sentinel_group_rejects_options_that_cannot_work) {
  temp_dir dir;
  auto with = [](auto change) {
    sentinel_group::options opts;
    change(opts);
    return opts;
  };
  BOOST_CHECK_THROW(sentinel_group::start(dir.path(), with([](auto& o) { o.quorum = 4; })),
                    std::invalid_argument);
  BOOST_CHECK_THROW(sentinel_group::start(dir.path(), with([](auto& o) { o.sentinels = 0; })),
                    std::invalid_argument);
  BOOST_CHECK_THROW(sentinel_group::start(dir.path(),
                                          with([](auto& o) { o.master_name = "two words"; })),
                    std::invalid_argument);
  BOOST_TEST(std::filesystem::is_empty(dir.path()));
}

BOOST_AUTO_TEST_SUITE_END()
