// Throttling decisions: which threshold a host instance is past, named in its cause.

#include "convoy/runtime/throttle.hpp"

#include <boost/test/unit_test.hpp>

using namespace convoy::runtime;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(throttling)

BOOST_AUTO_TEST_CASE(no_threshold_set_means_never_throttled) {
  throttle_inputs heavy{1 << 20, 1'000'000, 10'000'000, 0, 0};
  BOOST_TEST(throttle_cause("processing", throttle_limits{}, heavy).empty());
  BOOST_TEST(throttle_cause("receive", throttle_limits{}, heavy).empty());
}

BOOST_AUTO_TEST_CASE(each_threshold_is_named_when_passed_and_quiet_at_the_limit) {
  throttle_limits limits;
  limits.memory_mb = 100;
  limits.backlog = 50;
  limits.persistence_latency = 20ms;
  throttle_inputs at_limit{100, 50, 20'000, 9, 10};
  BOOST_TEST(throttle_cause("receive", limits, at_limit).empty());

  auto memory = at_limit;
  memory.resident_mb = 101;
  auto cause = throttle_cause("send", limits, memory);
  BOOST_TEST_INFO(cause);
  BOOST_TEST(contains(cause, "memory: the node uses 101 MiB, over throttling.memory_mb = 100"));

  auto slow = at_limit;
  slow.write_latency_us = 35'000;
  cause = throttle_cause("processing", limits, slow);
  BOOST_TEST_INFO(cause);
  BOOST_TEST(contains(cause, "persistence latency: 35 ms"));

  auto full = at_limit;
  full.instances = 10;
  cause = throttle_cause("processing", limits, full);
  BOOST_TEST_INFO(cause);
  BOOST_TEST(contains(cause, "in-flight instances: 10 in memory"));
}

BOOST_AUTO_TEST_CASE(the_backlog_throttles_the_receive_host_only) {
  throttle_limits limits;
  limits.backlog = 50;
  throttle_inputs deep{10, 51, 0, 0, 0};
  BOOST_TEST(contains(throttle_cause("receive", limits, deep),
                      "backlog: the processing queue holds 51 messages"));
  BOOST_TEST(throttle_cause("processing", limits, deep).empty());
  BOOST_TEST(throttle_cause("send", limits, deep).empty());
}

BOOST_AUTO_TEST_CASE(the_board_lists_throttled_hosts_and_counts_episodes) {
  throttle_board board;
  BOOST_TEST(board.to_json() == "{}");
  board.update("receive", "backlog: x");
  board.update("receive", "memory: y"); // another cause, same episode
  auto snap = board.snapshot();
  BOOST_TEST_REQUIRE(snap.count("receive") == 1u);
  BOOST_TEST(snap["receive"].cause == "memory: y");
  BOOST_TEST(snap["receive"].episodes == 1u);
  board.update("receive", "");
  BOOST_TEST(board.snapshot().empty());
  board.update("receive", "memory: y");
  BOOST_TEST(board.snapshot()["receive"].episodes == 2u);
  BOOST_TEST(contains(board.to_json(), "\"receive\":{\"cause\":\"memory: y\""));
  BOOST_TEST(resident_memory_mb() > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
