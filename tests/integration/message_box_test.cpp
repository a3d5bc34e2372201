// The MessageBox's Redis Functions against a real redis-server.

#include "convoy/persistence/message_box.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <future>

using namespace convoy;
using namespace convoy::persistence;
using namespace std::chrono_literals;

namespace {

/// A real Redis with a prepared MessageBox on it.
struct box_fixture {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path());
  std::unique_ptr<message_box> box;

  box_fixture() {
    message_box_config cfg;
    cfg.endpoint.port = redis.port();
    cfg.prefix = "t:";
    box = std::make_unique<message_box>(cfg);
    auto err = box->prepare({"receive", "processing", "send"});
    BOOST_TEST_REQUIRE(err.empty(), err);
  }

  /// Creates an instance the way the receive host does.
  void create(const std::string& id) {
    std::promise<std::string> p;
    box->activate("receive", "", id, "hello", 1, "\"x\"", "processing",
                  [&p](std::string e) { p.set_value(std::move(e)); });
    auto err = p.get_future().get();
    BOOST_TEST_REQUIRE(err.empty(), err);
  }

  claim_result claim(const std::string& id, const std::string& owner) {
    std::promise<claim_result> p;
    box->claim(id, owner, [&p](claim_result r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  std::pair<store_status, std::string> write(checkpoint cp) {
    std::promise<std::pair<store_status, std::string>> p;
    box->write(std::move(cp), [&p](store_status s, std::string e) { p.set_value({s, e}); });
    return p.get_future().get();
  }

  std::vector<queue_entry> read(const std::string& host, const std::string& consumer) {
    std::promise<std::vector<queue_entry>> p;
    box->read_queue(host, consumer, 100, 100ms, false,
                    [&p](std::vector<queue_entry> es, std::string) { p.set_value(std::move(es)); });
    return p.get_future().get();
  }

  checkpoint step(const std::string& id, uint64_t epoch, uint64_t seq) {
    checkpoint cp;
    cp.instance_id = id;
    cp.host = "processing";
    cp.epoch = epoch;
    cp.seq = seq;
    cp.steps = static_cast<uint32_t>(seq);
    cp.entries.push_back(journal_entry{static_cast<uint32_t>(seq - 1), entry_event::scheduled,
                                       op_kind::call, 42, "{}"});
    return cp;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(message_box_functions, box_fixture)

BOOST_AUTO_TEST_CASE(stale_epoch_write_is_rejected) {
  create("i1");
  auto first = claim("i1", "node-a");
  BOOST_TEST_REQUIRE((first.status == store_status::ok));
  BOOST_TEST(first.record.epoch == 1u);
  auto second = claim("i1", "node-b"); // node-b takes over: node-a is fenced
  BOOST_TEST(second.record.epoch == 2u);
  BOOST_TEST(second.record.owner == "node-b");
  auto [stale, why] = write(step("i1", first.record.epoch, 1));
  BOOST_TEST((stale == store_status::stale_epoch));
  BOOST_TEST(why.find("CONVOY_STALE_EPOCH") == 0u, why);
  BOOST_TEST(redis.command_int({"LLEN", "t:journal:i1"}) == 0); // nothing of it landed
  auto [ok, none] = write(step("i1", second.record.epoch, 1));
  BOOST_TEST((ok == store_status::ok), none);
  BOOST_TEST(redis.command_int({"LLEN", "t:journal:i1"}) == 1);
}

BOOST_AUTO_TEST_CASE(a_retried_persistence_point_is_applied_once_and_a_gap_is_refused) {
  create("i2");
  auto c = claim("i2", "node-a");
  BOOST_TEST((write(step("i2", c.record.epoch, 1)).first == store_status::ok));
  BOOST_TEST((write(step("i2", c.record.epoch, 1)).first == store_status::ok)); // retry
  BOOST_TEST(redis.command_int({"LLEN", "t:journal:i2"}) == 1);
  auto [gap, why] = write(step("i2", c.record.epoch, 3));
  BOOST_TEST((gap == store_status::rejected));
  BOOST_TEST(why.find("CONVOY_SEQ") == 0u, why);
}

BOOST_AUTO_TEST_CASE(a_persistence_point_enqueues_activities_timers_and_acks_atomically) {
  create("i3");
  auto start = read("processing", "c1");
  BOOST_TEST_REQUIRE(start.size() == 1u);
  BOOST_TEST(start[0].field("kind") == "start");
  auto c = claim("i3", "node-a");
  auto cp = step("i3", c.record.epoch, 1);
  cp.activities.push_back(activity_command{0, "greet", "\"x\"", "i3/0", ""});
  cp.timers.push_back(timer_command{1, 12345});
  cp.acks.push_back(start[0].id);
  BOOST_TEST((write(cp).first == store_status::ok));
  auto sent = read("send", "c1");
  BOOST_TEST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].field("activity") == "greet");
  BOOST_TEST(sent[0].field("key") == "i3/0");
  BOOST_TEST(sent[0].field("reply") == "processing");
  BOOST_TEST(redis.command({"ZSCORE", "t:timers", "processing|i3|1|0"}) == "12345");
  BOOST_TEST(redis.command_int({"XLEN", "t:q:processing"}) == 0); // acked and deleted
  auto record = redis.command({"HGET", "t:inst:i3", "status"});
  BOOST_TEST(record == "waiting");
}

BOOST_AUTO_TEST_CASE(a_due_timer_fires_exactly_once) {
  redis.command({"ZADD", "t:timers", "100", "processing|i4|3|0"});
  redis.command({"ZADD", "t:timers", "999999999999999", "processing|i4|5|0"});
  std::promise<int64_t> p1, p2;
  box->fire_timers(1000, 10, [&p1](int64_t n, std::string) { p1.set_value(n); });
  box->fire_timers(1000, 10, [&p2](int64_t n, std::string) { p2.set_value(n); });
  BOOST_TEST(p1.get_future().get() == 1);
  BOOST_TEST(p2.get_future().get() == 0);
  auto fired = read("processing", "c1");
  BOOST_TEST_REQUIRE(fired.size() == 1u);
  BOOST_TEST(fired[0].field("kind") == "timer");
  BOOST_TEST(fired[0].field("instance") == "i4");
  BOOST_TEST(fired[0].field("step") == "3");
  BOOST_TEST(redis.command_int({"ZCARD", "t:timers"}) == 1); // the future one stays
}

BOOST_AUTO_TEST_CASE(a_duplicate_activity_execution_publishes_no_second_result) {
  redis.command({"XADD", "t:q:send", "*", "kind", "activity", "instance", "i5", "step", "0"});
  auto req = read("send", "worker-1");
  BOOST_TEST_REQUIRE(req.size() == 1u);
  for (int i = 0; i < 2; ++i) { // e.g. the request was reclaimed and ran again
    std::promise<std::string> p;
    box->complete_activity("send", req[0].id, "i5", 0, 0, true, "7", "processing",
                           [&p](std::string e) { p.set_value(std::move(e)); });
    BOOST_TEST(p.get_future().get().empty());
  }
  auto results = read("processing", "c1");
  BOOST_TEST_REQUIRE(results.size() == 1u);
  BOOST_TEST(results[0].field("payload") == "7");
}

BOOST_AUTO_TEST_CASE(activation_is_idempotent_per_instance_id) {
  create("i6");
  create("i6");
  BOOST_TEST(redis.command_int({"ZCARD", "t:instances"}) == 1);
  BOOST_TEST(read("processing", "c1").size() == 1u); // one start message
}

BOOST_AUTO_TEST_CASE(a_dead_consumers_entries_are_taken_over_after_the_idle_time) {
  create("i7");
  BOOST_TEST(read("processing", "dead-node").size() == 1u); // read, never acknowledged
  std::promise<std::vector<queue_entry>> early, late;
  box->reclaim_queue("processing", "survivor", 60s, 10,
                     [&early](std::vector<queue_entry> es, std::string) { early.set_value(es); });
  BOOST_TEST(early.get_future().get().empty()); // not idle long enough
  box->reclaim_queue("processing", "survivor", 0ms, 10,
                     [&late](std::vector<queue_entry> es, std::string) { late.set_value(es); });
  auto taken = late.get_future().get();
  BOOST_TEST_REQUIRE(taken.size() == 1u);
  BOOST_TEST(taken[0].field("instance") == "i7");
}

BOOST_AUTO_TEST_CASE(a_corrupt_journal_entry_is_a_clear_error_not_a_crash) {
  create("i8");
  redis.command({"RPUSH", "t:journal:i8", "garbage"});
  auto c = claim("i8", "node-a");
  BOOST_TEST((c.status == store_status::rejected));
  BOOST_TEST(c.error.find("journal entry 0 of i8 is corrupt") != std::string::npos, c.error);
  auto d = box->describe("i8");
  BOOST_TEST(d.error.find("corrupt") != std::string::npos, d.error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(an_unreachable_redis_is_reported_as_unavailable_without_hanging) {
  message_box_config cfg;
  cfg.endpoint.port = 1; // nothing listens on port 1 of loopback
  message_box box(cfg);
  auto err = box.prepare({"processing"}, 2s);
  BOOST_TEST(err.find("cannot reach Redis at 127.0.0.1:1") == 0u, err);
  std::promise<claim_result> p;
  box.claim("x", "n", [&p](claim_result r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(5s) == std::future_status::ready));
  BOOST_TEST((f.get().status == store_status::unavailable));
}
