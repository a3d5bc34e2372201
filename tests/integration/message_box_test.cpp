// The MessageBox's Redis Functions against a real redis-server.

#include "convoy/persistence/message_box.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include "convoy/test/wait_until.hpp"

#include <future>
#include <mutex>

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
  // The writer believes point 2 was acknowledged; the store never saw it: memory is ahead.
  auto [gap, why] = write(step("i2", c.record.epoch, 3));
  BOOST_TEST((gap == store_status::rolled_back));
  BOOST_TEST(why.find("CONVOY_ROLLED_BACK") == 0u, why);
  BOOST_TEST((write(step("i2", c.record.epoch, 2)).first == store_status::ok));
  BOOST_TEST((write(step("i2", c.record.epoch, 3)).first == store_status::ok));
  auto [behind, why2] = write(step("i2", c.record.epoch, 1)); // older than the store holds
  BOOST_TEST((behind == store_status::rejected));
  BOOST_TEST(why2.find("CONVOY_SEQ") == 0u, why2);
  BOOST_TEST(redis.command_int({"LLEN", "t:journal:i2"}) == 3);
}

BOOST_AUTO_TEST_CASE(every_persistence_point_gets_the_next_commit_number_of_the_store) {
  create("c1");
  create("c2");
  auto a = claim("c1", "node-a");
  auto b = claim("c2", "node-a");
  BOOST_TEST((write(step("c1", a.record.epoch, 1)).first == store_status::ok));
  BOOST_TEST((write(step("c2", b.record.epoch, 1)).first == store_status::ok));
  BOOST_TEST((write(step("c1", a.record.epoch, 2)).first == store_status::ok));
  BOOST_TEST(redis.command_int({"HGET", "t:store", "commits"}) == 3);
  BOOST_TEST(redis.command_int({"HGET", "t:inst:c1", "commit"}) == 3);
  BOOST_TEST(redis.command_int({"HGET", "t:inst:c2", "commit"}) == 2);
  BOOST_TEST(redis.command({"HGET", "t:store", "id"}) == box->store_id());
  BOOST_TEST(box->store_id().size() == 32u);
  // A second node preparing the same store adopts its identity.
  message_box_config cfg;
  cfg.endpoint.port = redis.port();
  cfg.prefix = "t:";
  message_box other(cfg);
  BOOST_TEST_REQUIRE(other.prepare({"processing"}).empty());
  BOOST_TEST(other.store_id() == box->store_id());
}

BOOST_AUTO_TEST_CASE(a_server_without_our_store_identity_refuses_persistence_points) {
  create("s1");
  auto c = claim("s1", "node-a");
  BOOST_TEST_REQUIRE((write(step("s1", c.record.epoch, 1)).first == store_status::ok));
  // What a master restarted empty looks like once something recreated the instance: no
  // store identity (its functions may survive in a replica's copy, so test that case).
  redis.command({"DEL", "t:store"});
  auto [refused, why] = write(step("s1", c.record.epoch, 2));
  BOOST_TEST((refused == store_status::rejected));
  BOOST_TEST(why.find("CONVOY_STORE_CHANGED") == 0u, why);
  BOOST_TEST(why.find("restarted empty") != std::string::npos, why);
  BOOST_TEST(box->stats().store_changes == 1);
  BOOST_TEST(redis.command_int({"LLEN", "t:journal:s1"}) == 1); // nothing of it landed
  // Entirely empty (data and functions gone): refused too, with the server's own words.
  redis.command({"FUNCTION", "FLUSH"});
  redis.command({"FLUSHALL"});
  auto [gone, why2] = write(step("s1", c.record.epoch, 2));
  BOOST_TEST((gone == store_status::rejected));
  BOOST_TEST(why2.find("CONVOY_STORE_CHANGED") == 0u, why2);
  BOOST_TEST(why2.find("Function not found") != std::string::npos, why2);
  BOOST_TEST(box->stats().store_changes == 2);
  BOOST_TEST(redis.command_int({"DBSIZE"}) == 0);
}

BOOST_AUTO_TEST_CASE(a_store_found_behind_on_reconnect_is_reported_as_a_rollback) {
  std::mutex mtx;
  std::vector<rollback_report> reports;
  box->on_rollback([&](const rollback_report& r) {
    std::lock_guard<std::mutex> guard(mtx);
    reports.push_back(r);
  });
  create("r1");
  create("r2");
  auto a = claim("r1", "node-a");
  auto b = claim("r2", "node-a");
  for (uint64_t seq = 1; seq <= 3; ++seq)
    BOOST_TEST_REQUIRE((write(step("r1", a.record.epoch, seq)).first == store_status::ok));
  BOOST_TEST_REQUIRE((write(step("r2", b.record.epoch, 1)).first == store_status::ok));
  // Commits 1..4 were acknowledged. Make the store look like a replica that only got the
  // first one before it was promoted, and drop our connection as a failover does.
  redis.command({"HSET", "t:store", "commits", "1"});
  redis.command({"HSET", "t:inst:r1", "seq", "1"});
  redis.command({"CLIENT", "KILL", "TYPE", "normal"});
  auto reported = test::wait_until(
    [&] {
      box->server_version(); // any command: the reconnect's handshake finds the store behind
      std::lock_guard<std::mutex> guard(mtx);
      return !reports.empty();
    },
    5s);
  BOOST_TEST_REQUIRE(reported);
  {
    std::lock_guard<std::mutex> guard(mtx);
    BOOST_TEST(reports.size() == 1u);
    BOOST_TEST(reports[0].acknowledged == 4);
    BOOST_TEST(reports[0].held == 1);
    BOOST_TEST(reports[0].lost() == 3);
    BOOST_TEST(reports[0].unidentified == 0);
    BOOST_TEST((reports[0].instances == std::vector<std::string>{"r1", "r2"}));
  }
  BOOST_TEST(box->stats().rollbacks_detected == 1);
  BOOST_TEST(box->stats().points_lost == 3);
  // Recorded in the store too (sent right behind the report).
  BOOST_TEST(test::wait_until([&] { return redis.command_int({"XLEN", "t:rollbacks"}) == 1; }, 5s));
  BOOST_TEST(redis.command({"XREVRANGE", "t:rollbacks", "+", "-"}).find("r1 r2")
             != std::string::npos);
  // The instance's next point finds the store behind its memory: it must restart.
  auto [status, why] = write(step("r1", a.record.epoch, 4));
  BOOST_TEST((status == store_status::rolled_back), why);
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

BOOST_AUTO_TEST_CASE(an_orchestration_types_durability_overrides_the_nodes) {
  // This server has no replicas: a `replicated` point can never be acknowledged, which shows
  // which points went through WAIT. The box's own level is `local`.
  create("d1");
  auto c = claim("d1", "node-a");
  auto cp = step("d1", c.record.epoch, 1);
  cp.durability = durability_level::replicated;
  auto [status, why] = write(cp);
  BOOST_TEST((status == store_status::unavailable)); // written, but not acknowledged
  BOOST_TEST(why.find("NOREPLICAS not acknowledged: WAIT saw 0 of 1 replicas") == 0u, why);
  BOOST_TEST(box->stats().group_commits == 1);
  cp.durability = durability_level::local; // the retry, as a local point: the same one
  BOOST_TEST((write(cp).first == store_status::ok));
  BOOST_TEST(redis.command_int({"LLEN", "t:journal:d1"}) == 1);
  BOOST_TEST((write(step("d1", c.record.epoch, 2)).first == store_status::ok)); // node default
  BOOST_TEST(box->stats().group_commits == 1);
}

BOOST_AUTO_TEST_CASE(values_over_the_size_limit_are_refused_when_written_and_when_read_back) {
  std::string huge(max_payload_bytes + 1, 'x');
  auto refused = box->submit("receive", "hello", "\"" + huge + "\"", "big-1");
  BOOST_TEST(refused.find("over the limit of 16777216") != std::string::npos, refused);
  BOOST_TEST(redis.command_int({"XLEN", "t:q:receive"}) == 0);
  // Written behind Convoy's back: a queue entry with a huge field is an error, not a payload.
  redis.command({"XADD", "t:q:processing", "*", "kind", "start", "instance", "big-2", "junk", huge});
  auto entries = read("processing", "c1");
  BOOST_TEST_REQUIRE(entries.size() == 1u);
  BOOST_TEST(entries[0].fields.empty());
  BOOST_TEST(entries[0].error.find("field 'junk' of 16777217 bytes") != std::string::npos,
             entries[0].error);
  // An instance record with a huge field: claimed (so an owner can suspend it), not loaded.
  create("big-3");
  redis.command({"HSET", "t:inst:big-3", "input", huge});
  auto c = claim("big-3", "node-a");
  BOOST_TEST((c.status == store_status::rejected));
  BOOST_TEST(c.record.epoch == 1u);
  BOOST_TEST(c.error.find("field 'input' of instance big-3 is 16777217 bytes") != std::string::npos,
             c.error);
  BOOST_TEST(box->describe("big-3").error.find("over the limit") != std::string::npos);
  // An activity result too large to store reaches the orchestration as a failure.
  redis.command({"XADD", "t:q:send", "*", "kind", "activity", "instance", "big-3", "step", "0"});
  auto req = read("send", "worker-1");
  BOOST_TEST_REQUIRE(req.size() == 1u);
  std::promise<std::string> p;
  box->complete_activity("send", req[0].id, "big-3", 0, 0, true, huge, "processing",
                         [&p](std::string e) { p.set_value(std::move(e)); });
  BOOST_TEST(p.get_future().get().empty());
  auto results = read("processing", "c1");
  BOOST_TEST_REQUIRE(results.size() == 2u); // big-3's start, then the result
  BOOST_TEST(results[1].field("ok") == "0");
  BOOST_TEST(results[1].field("payload").find("result of 16777217 bytes is over the limit")
             != std::string::npos);
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

BOOST_AUTO_TEST_SUITE(message_box_auth)

/// A server with an ACL user limited to Convoy's keys; the default user stays open so the
/// fixture can check the server is up, which makes a silent fallback to it observable.
struct acl_fixture {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(
    dir.path(), {"--user", "convoy", "on", ">s3cret", "~t:*", "&*", "+@all"});

  message_box_config config(const std::string& user, const std::string& password) const {
    message_box_config cfg;
    cfg.endpoint.port = redis.port();
    cfg.endpoint.user = user;
    cfg.endpoint.password = password;
    cfg.prefix = "t:";
    return cfg;
  }
};

BOOST_FIXTURE_TEST_CASE(an_acl_user_with_its_password_runs_persistence_points, acl_fixture) {
  message_box box(config("convoy", "s3cret"));
  auto err = box.prepare({"receive", "processing", "send"});
  BOOST_TEST_REQUIRE(err.empty(), err);
  std::promise<std::string> created;
  box.activate("receive", "", "a1", "hello", 1, "\"x\"", "processing",
               [&created](std::string e) { created.set_value(std::move(e)); });
  BOOST_TEST(created.get_future().get().empty());
  std::promise<claim_result> claimed;
  box.claim("a1", "node-a", [&claimed](claim_result r) { claimed.set_value(std::move(r)); });
  auto c = claimed.get_future().get();
  BOOST_TEST_REQUIRE((c.status == store_status::ok), c.error);
  // Every command ran as `convoy`: the server's ACL log of who ran what is not needed, the
  // key pattern is enough: `convoy` may only touch t:*, and everything is there.
  BOOST_TEST(redis.command_int({"EXISTS", "t:inst:a1"}) == 1);
  BOOST_TEST(redis.command({"ACL", "WHOAMI"}) == "default");
}

BOOST_FIXTURE_TEST_CASE(a_wrong_password_is_a_clear_error_and_nothing_runs_as_default,
                        acl_fixture) {
  message_box box(config("convoy", "wrong"));
  auto err = box.prepare({"processing"}, 3s);
  BOOST_TEST(err.find("AUTH as convoy failed") != std::string::npos, err);
  BOOST_TEST(err.find("WRONGPASS") != std::string::npos, err);
  // Pipelined behind the failed AUTH, prepare's commands would have run as the open
  // default user; they were held back instead.
  BOOST_TEST(redis.command_int({"EXISTS", "t:q:processing"}) == 0);
  BOOST_TEST(redis.command({"FUNCTION", "LIST"}).find("convoy") == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(an_acl_user_cannot_reach_outside_its_keys, acl_fixture) {
  auto cfg = config("convoy", "s3cret");
  cfg.prefix = "other:"; // outside ~t:*
  message_box box(cfg);
  auto err = box.prepare({"processing"}, 3s);
  BOOST_TEST(err.find("NOPERM") != std::string::npos, err);
}

BOOST_AUTO_TEST_SUITE_END()
