// The schedule receive location: two nodes declaring the same schedule publish each tick
// exactly once between them.

#include "convoy/adapters/attach.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

using namespace convoy;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(adapters_schedule)

BOOST_AUTO_TEST_CASE(two_nodes_publish_each_tick_exactly_once) {
  test::temp_dir dir;
  auto redis = test::redis_server::start(dir.path());
  persistence::message_box_config bcfg;
  bcfg.endpoint.port = redis.port();
  persistence::message_box box(bcfg);
  registry reg; // no subscriber for "probe-tick": every published tick is kept as unrouted
  std::vector<std::unique_ptr<runtime::node>> nodes;
  for (const char* name : {"node-a", "node-b"}) {
    runtime::node_config cfg;
    cfg.name = name;
    cfg.redis.port = redis.port();
    cfg.poll_block = 100ms;
    cfg.log_level = "warn";
    cfg.receive_locations["beat"] = {{"type", "schedule"}, {"every", "200ms"},
                                     {"message_type", "probe-tick"}, {"body", {{"job", "beat"}}}};
    nodes.push_back(std::make_unique<runtime::node>(cfg, reg));
    auto err = adapters::attach(*nodes.back(), reg);
    BOOST_TEST_REQUIRE(err.empty(), err);
    err = nodes.back()->start();
    BOOST_TEST_REQUIRE(err.empty(), err);
  }
  auto ticks = [&] {
    auto keys = box.commands().run({"KEYS", box.key_schema().dedupe("schedule:beat:*")});
    return keys.elements;
  };
  BOOST_TEST_REQUIRE(test::wait_until([&] { return ticks().size() >= 6; }, 20s));
  for (auto& n : nodes)
    n->stop();
  auto published = ticks();
  for (const auto& key : published) {
    auto tick = std::stoll(key.str.substr(key.str.rfind(':') + 1));
    BOOST_TEST(tick % 200 == 0, key.str); // ticks fall on multiples of the interval
  }
  // One queue entry per tick, wherever it is now (routed to unrouted, or still queued).
  auto unrouted = box.list_stream(box.key_schema().unrouted(), 1000).entries;
  auto queued = box.commands().run({"XLEN", box.key_schema().queue("receive")}).integer;
  BOOST_TEST(static_cast<int64_t>(unrouted.size()) + queued
             == static_cast<int64_t>(published.size()));
  for (const auto& e : unrouted)
    BOOST_TEST(e.field("body") == R"({"job":"beat"})");
}

BOOST_AUTO_TEST_SUITE_END()
