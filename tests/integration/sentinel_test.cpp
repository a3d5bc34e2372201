// The MessageBox behind Redis Sentinel: a node follows a failover of the Redis master without
// a restart, and every orchestration finishes with the right result.

#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "convoy/test/sentinel_group.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"
#include "examples.hpp"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>

using namespace convoy;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(sentinel)

BOOST_AUTO_TEST_CASE(a_node_follows_a_master_failover_without_restart_and_finishes_every_instance) {
  test::temp_dir dir;
  auto group = test::sentinel_group::start(dir.path());
  runtime::node_config cfg;
  cfg.name = "follower";
  cfg.redis.sentinels = group.sentinel_addresses();
  cfg.redis.master_name = "convoy";
  cfg.durability = "replicated";
  cfg.replicas = 1;
  cfg.wait_timeout = 500ms;
  cfg.reclaim_idle = 1000ms;
  cfg.poll_block = 100ms;
  cfg.timer_poll = 50ms;
  cfg.dehydrate_after = 0ms;
  registry reg;
  examples::register_all(reg);
  runtime::node node(cfg, reg);
  BOOST_TEST_REQUIRE(node.start().empty());

  persistence::message_box_config bcfg;
  bcfg.endpoint = cfg.redis;
  persistence::message_box box(bcfg);
  auto sink = dir.path() / "effects.log";
  constexpr int instances = 10, steps = 6;
  for (int i = 0; i < instances; ++i) {
    auto input = json{{"count", steps}, {"sink", sink.string()}, {"pause_ms", 200}}.dump();
    BOOST_TEST_REQUIRE(box.submit("receive", "steps", input, "s-" + std::to_string(i)).empty());
  }
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] { return box.describe("s-" + std::to_string(instances - 1)).record.steps >= 2; }, 30s));

  auto old_master = group.master_port();
  auto killed_at = std::chrono::steady_clock::now();
  group.kill9_master();
  BOOST_TEST_REQUIRE(group.wait_for_failover(old_master, 30s));
  auto failover = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed_at);
  BOOST_TEST(group.master_port() != old_master);

  std::set<std::string> unfinished;
  BOOST_TEST(test::wait_until(
    [&] {
      unfinished.clear();
      for (int i = 0; i < instances; ++i) {
        auto rec = box.describe("s-" + std::to_string(i)).record;
        if (rec.status != instance_status::completed)
          unfinished.insert(rec.id.empty() ? "s-" + std::to_string(i) : rec.id);
      }
      return unfinished.empty();
    },
    60s));
  auto recovered = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed_at);
  BOOST_TEST_MESSAGE("Sentinel failover took " << failover.count() << " ms; all " << instances
                                               << " instances completed " << recovered.count()
                                               << " ms after the kill, on the same node");
  for (const auto& id : unfinished)
    BOOST_TEST_ERROR("instance " << id << " did not complete");
  for (int i = 0; i < instances; ++i) {
    auto rec = box.describe("s-" + std::to_string(i)).record;
    BOOST_TEST(rec.result == std::to_string(steps * (steps - 1) / 2), rec.id);
  }
  // Every effect happened (at least once; keys make them idempotent downstream).
  std::set<std::string> keys;
  std::ifstream in(sink);
  for (std::string line; std::getline(in, line);)
    keys.insert(line);
  BOOST_TEST(keys.size() == size_t{instances * steps});
}

BOOST_AUTO_TEST_CASE(an_unreachable_sentinel_group_is_a_clear_error) {
  persistence::message_box_config cfg;
  cfg.endpoint.sentinels = {"127.0.0.1:1", "127.0.0.1:2"};
  persistence::message_box box(cfg);
  auto err = box.prepare({"processing"}, 3s);
  BOOST_TEST(err.find("no Sentinel named a usable master for 'convoy'") != std::string::npos, err);
  BOOST_TEST(err.find("127.0.0.1:1") != std::string::npos, err);
}

BOOST_AUTO_TEST_SUITE_END()
