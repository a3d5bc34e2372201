// Every part of the programming model against a real Redis, run by real (in-process) nodes:
// each awaitable survives dehydration and node restarts mid-wait with the same result.

#include "convoy/actors/orchestration.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"
#include "examples.hpp"

#include <boost/test/unit_test.hpp>

#include <mutex>

using namespace convoy;
using namespace std::chrono_literals;

namespace {

/// A real Redis and a way to run nodes against it.
struct cluster {
  test::temp_dir dir;
  test::redis_server redis = test::redis_server::start(dir.path());
  std::unique_ptr<persistence::message_box> box;

  cluster() {
    persistence::message_box_config cfg;
    cfg.endpoint.port = redis.port();
    box = std::make_unique<persistence::message_box>(cfg);
  }

  runtime::node_config config(const std::string& name, std::chrono::milliseconds dehydrate) const {
    runtime::node_config cfg;
    cfg.name = name;
    cfg.redis.port = redis.port();
    cfg.reclaim_idle = 500ms;
    cfg.poll_block = 100ms;
    cfg.timer_poll = 20ms;
    cfg.dehydrate_after = dehydrate;
    cfg.log_level = "warn";
    return cfg;
  }

  instance_record wait_final(const std::string& id, std::chrono::milliseconds deadline = 30s) {
    instance_record rec;
    test::wait_until(
      [&] {
        rec = box->describe(id).record;
        return is_final(rec.status);
      },
      deadline);
    return rec;
  }

  bool wait_status(const std::string& id, instance_status status, std::chrono::milliseconds deadline = 20s) {
    return test::wait_until([&] { return box->describe(id).record.status == status; }, deadline);
  }

  void submit(const std::string& id, const std::string& type, const json& input) {
    BOOST_TEST_REQUIRE(box->submit("receive", type, input.dump(), id).empty());
  }

  void publish(const std::string& type, const json& body, std::map<std::string, std::string> props,
               const std::string& id = "") {
    BOOST_TEST_REQUIRE(box->submit_message("receive", type, body.dump(), props, id).empty());
  }

  void signal(const std::string& id, const std::string& name, const json& payload) {
    BOOST_TEST_REQUIRE(test::wait_until(
      [&] { return box->send_to_instance(id, "signal", name, payload.dump()).empty(); }, 10s));
  }
};

registry examples_registry() {
  registry reg;
  examples::register_all(reg);
  return reg;
}

/// How a scenario run is disturbed.
enum class disturbance { none, dehydrate_always, restart_mid_wait };

/// Runs every example scenario; returns instance id -> final status and result.
std::map<std::string, std::string> run_examples(disturbance how) {
  cluster c;
  auto reg = examples_registry();
  auto dehydrate = how == disturbance::dehydrate_always ? 1ms : 0ms;
  auto node = std::make_unique<runtime::node>(c.config("node-1", dehydrate), reg);
  BOOST_TEST_REQUIRE(node->start().empty());
  c.submit("hello-1", "hello", "world");
  c.publish("order", json{{"id", "1001"}, {"customer", "ada"}, {"amount", 250.0}},
            {{"order-id", "1001"}}, "order-1001");
  c.publish("order", json{{"id", "1003"}, {"customer", "eve"}, {"amount", 10.0}},
            {{"order-id", "1003"}}, "order-1003"); // never paid: times out
  c.publish("item", json{{"batch", "b1"}, {"seq", 1}, {"value", 1}}, {{"batch-id", "b1"}}, "batch-b1");
  c.submit("quote-1", "best-quote", json{{"item", "widget"}, {"suppliers", {"acme", "globex"}}});
  c.submit("trip-1", "trip", json{{"to", "Lisbon"}, {"unavailable", "car"}});
  c.submit("counter-1", "counter", json::object());
  c.submit("greet-1", "greet-all", json{"Ada", "Grace"});
  // Let everything reach its first wait, then disturb.
  BOOST_TEST_REQUIRE(c.wait_status("order-1001", instance_status::waiting));
  BOOST_TEST_REQUIRE(c.wait_status("batch-b1", instance_status::waiting));
  BOOST_TEST_REQUIRE(c.wait_status("counter-1", instance_status::waiting));
  if (how == disturbance::restart_mid_wait) {
    node.reset(); // stop: everything in memory is gone
    node = std::make_unique<runtime::node>(c.config("node-2", 0ms), reg);
    BOOST_TEST_REQUIRE(node->start().empty());
  }
  c.publish("payment", json{{"amount", 250.0}}, {{"order-id", "1001"}});
  c.publish("item", json{{"batch", "b1"}, {"seq", 2}, {"value", 2}}, {{"batch-id", "b1"}});
  c.publish("item", json{{"batch", "b1"}, {"seq", 3}, {"value", 3}, {"last", true}}, {{"batch-id", "b1"}});
  for (auto n : {5, 7, 9})
    c.signal("counter-1", "add", n);
  // The third signal makes the counter continue_as_new; the next ones reach its second run.
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] { return c.box->describe("counter-1").record.generation == 1; }, 20s));
  if (how == disturbance::restart_mid_wait) {
    node.reset();
    node = std::make_unique<runtime::node>(c.config("node-3", 0ms), reg);
    BOOST_TEST_REQUIRE(node->start().empty());
  }
  c.signal("counter-1", "add", 1);
  c.signal("counter-1", "add", "stop");
  std::map<std::string, std::string> results;
  for (auto id : {"hello-1", "order-1001", "order-1003", "batch-b1", "quote-1", "trip-1",
                  "counter-1", "greet-1", "greet-1.0", "greet-1.1"}) {
    auto rec = c.wait_final(id);
    results[id] = std::string(to_string(rec.status)) + " " + rec.result + rec.error;
    BOOST_TEST_MESSAGE(id << ": " << results[id]);
  }
  return results;
}

} // namespace

BOOST_AUTO_TEST_SUITE(programming_model)

BOOST_AUTO_TEST_CASE(every_wait_kind_survives_dehydration_and_restarts_with_the_same_result) {
  auto plain = run_examples(disturbance::none);
  BOOST_TEST(plain["hello-1"] == "completed \"HELLO, WORLD!\"");
  BOOST_TEST(plain["order-1001"].find("\"status\":\"shipped\"") != std::string::npos, plain["order-1001"]);
  BOOST_TEST(plain["order-1003"].find("payment-timeout") != std::string::npos, plain["order-1003"]);
  BOOST_TEST(plain["batch-b1"].find("\"order\":[1,2,3]") != std::string::npos, plain["batch-b1"]);
  BOOST_TEST(plain["batch-b1"].find("\"sum\":6.0") != std::string::npos, plain["batch-b1"]);
  BOOST_TEST(plain["trip-1"].find("rolled-back") != std::string::npos, plain["trip-1"]);
  BOOST_TEST(plain["counter-1"] == "completed {\"runs\":2,\"total\":22}");
  BOOST_TEST(plain["greet-1"].find("HELLO, GRACE!") != std::string::npos, plain["greet-1"]);
  auto dehydrated = run_examples(disturbance::dehydrate_always);
  auto restarted = run_examples(disturbance::restart_mid_wait);
  // "First response wins" is decided by arrival order. After a restart the faster reply may
  // sit on the dead consumer until it is reclaimed, so either carrier may legitimately win;
  // everything else must match exactly.
  for (auto* run : {&plain, &dehydrated, &restarted}) {
    auto& quote = (*run)["quote-1"];
    for (const char* carrier : {"\"fast-freight\"", "\"slow-post\""})
      if (auto at = quote.find(carrier); at != std::string::npos)
        quote.replace(at, std::string(carrier).size(), "\"<either carrier>\"");
  }
  BOOST_TEST(plain["quote-1"].find("<either carrier>") != std::string::npos, plain["quote-1"]);
  for (const auto& [id, result] : plain) {
    BOOST_TEST(dehydrated[id] == result, id << " after dehydration");
    BOOST_TEST(restarted[id] == result, id << " after restarts");
  }
}

// -- orchestrations used only by the tests below ----------------------------------------------

orchestration<std::string> greet_v1(context& ctx, std::string name) {
  auto g = co_await ctx.call<std::string>("greet", name);
  co_await ctx.sleep(60s);
  co_return g;
}

/// Changed code under the same version: it shouts before the timer.
orchestration<std::string> greet_v1_changed(context& ctx, std::string name) {
  auto g = co_await ctx.call<std::string>("shout", name);
  co_await ctx.sleep(60s);
  co_return g;
}

orchestration<std::string> greet_v2(context& ctx, std::string name) {
  auto g = co_await ctx.call<std::string>("shout", name);
  co_return g + " (v2)";
}

orchestration<std::string> wait_for_signal(context& ctx, json) {
  try {
    auto v = co_await ctx.signal<std::string>("go");
    co_return v;
  } catch (const cancelled_error&) {
    throw; // let the cancellation end the instance as cancelled
  }
}

struct attempts_log {
  std::mutex mtx;
  std::vector<std::chrono::steady_clock::time_point> at;
};

attempts_log flaky_attempts;

activity_result flaky(const activity_context& actx, const json&) {
  {
    std::lock_guard<std::mutex> guard(flaky_attempts.mtx);
    flaky_attempts.at.push_back(std::chrono::steady_clock::now());
  }
  if (actx.attempt < 3)
    return activity_result::failure("transient failure " + std::to_string(actx.attempt), "transient");
  return activity_result::success(actx.attempt);
}

activity_result always_fatal(const activity_context&, const json&) {
  return activity_result::failure("bad request", "fatal");
}

orchestration<json> retrying(context& ctx, json) {
  call_options opts;
  opts.retry.max_attempts = 5;
  opts.retry.initial_backoff = 200ms;
  opts.retry.multiplier = 2.0;
  opts.retry.non_retryable = {"fatal"};
  auto attempt = co_await ctx.call<int>("flaky", nullptr, opts);
  std::string fatal;
  try {
    co_await ctx.call<int>("always-fatal", nullptr, opts);
  } catch (const activity_error& e) {
    fatal = e.reason();
  }
  call_options hurry;
  hurry.total_timeout = 100ms;
  std::string late;
  try {
    co_await ctx.call<std::string>("carrier-slow", "x", hurry);
  } catch (const activity_error& e) {
    late = e.reason();
  }
  co_return json{{"attempt", attempt}, {"fatal", fatal}, {"late", late}};
}

BOOST_AUTO_TEST_CASE(an_instance_whose_store_fell_behind_restarts_and_resumes_from_the_store) {
  cluster c;
  auto reg = examples_registry();
  runtime::node node(c.config("node-1", 0ms), reg);
  BOOST_TEST_REQUIRE(node.start().empty());
  c.submit("rb-1", "counter", json::object());
  BOOST_TEST_REQUIRE(c.wait_status("rb-1", instance_status::waiting));
  c.signal("rb-1", "add", 5);
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] { return c.box->describe("rb-1").record.query_state.find("\"total\":5") != std::string::npos; },
    10s));
  // The store loses the last acknowledged persistence point's sequence number, as a failover
  // to a lagging replica would; the node's actor still believes it holds it.
  auto seq = c.box->describe("rb-1").record.seq;
  BOOST_TEST_REQUIRE(seq >= 2u);
  c.redis.command({"HSET", "convoy:inst:rb-1", "seq", std::to_string(seq - 1)});
  // Its next point is refused as rolled back: the actor restarts, replays what the store
  // holds, and the signal it was handling comes back to it (it was never acknowledged).
  c.signal("rb-1", "add", 7);
  // (The signal comes back after reclaim_idle, so a later one could overtake it: wait.)
  BOOST_TEST_REQUIRE(test::wait_until(
    [&] { return c.box->describe("rb-1").record.query_state.find("\"total\":12") != std::string::npos; },
    10s));
  c.signal("rb-1", "add", "stop");
  auto rec = c.wait_final("rb-1");
  BOOST_TEST(std::string(to_string(rec.status)) == "completed");
  BOOST_TEST(rec.result == "{\"runs\":1,\"total\":12}"); // 7 counted once, not lost
}

BOOST_AUTO_TEST_CASE(changed_code_suspends_the_instance_with_an_error_naming_the_step) {
  cluster c;
  registry before;
  examples::register_hello(before);
  before.add_orchestration("greeter", 1, &greet_v1);
  {
    runtime::node n(c.config("old-code", 0ms), before);
    BOOST_TEST_REQUIRE(n.start().empty());
    c.submit("g-1", "greeter", "Ada");
    BOOST_TEST_REQUIRE(test::wait_until(
      [&] { return c.box->describe("g-1").record.steps == 2; }, 20s)); // waiting on the timer
  }
  registry after;
  examples::register_hello(after);
  after.add_orchestration("greeter", 1, &greet_v1_changed);
  runtime::node n(c.config("new-code", 0ms), after);
  BOOST_TEST_REQUIRE(n.start().empty());
  BOOST_TEST_REQUIRE(c.box->send_to_instance("g-1", "signal", "poke", "null").empty()); // wake it
  auto rec = c.wait_final("g-1");
  BOOST_TEST((rec.status == instance_status::suspended));
  BOOST_TEST(rec.error.find("non-determinism (not resumable)") == 0u, rec.error);
  BOOST_TEST(rec.error.find("step 0") != std::string::npos, rec.error);
  BOOST_TEST(rec.error.find("greet") != std::string::npos, rec.error);
  BOOST_TEST(rec.error.find("shout") != std::string::npos, rec.error);
}

BOOST_AUTO_TEST_CASE(an_instance_keeps_its_version_while_new_instances_get_the_newest) {
  cluster c;
  registry v1;
  examples::register_hello(v1);
  v1.add_orchestration("greeter", 1, &greet_v1);
  {
    runtime::node n(c.config("v1-node", 0ms), v1);
    BOOST_TEST_REQUIRE(n.start().empty());
    c.submit("old", "greeter", "Ada");
    BOOST_TEST_REQUIRE(test::wait_until([&] { return c.box->describe("old").record.steps == 2; }, 20s));
  }
  registry both;
  examples::register_hello(both);
  both.add_orchestration("greeter", 1, &greet_v1);
  both.add_orchestration("greeter", 2, &greet_v2);
  runtime::node n(c.config("v2-node", 0ms), both);
  BOOST_TEST_REQUIRE(n.start().empty());
  c.submit("new", "greeter", "Bob");
  auto fresh = c.wait_final("new");
  BOOST_TEST(fresh.version == 2u);
  BOOST_TEST(fresh.result == "\"BOB (v2)\"");
  auto old = c.box->describe("old").record;
  BOOST_TEST(old.version == 1u);
  BOOST_TEST((old.status == instance_status::waiting)); // still on its v1 timer, not suspended
}

BOOST_AUTO_TEST_CASE(cancellation_ends_an_instance_as_cancelled_not_failed) {
  cluster c;
  registry reg;
  reg.add_orchestration("waiter", 1, &wait_for_signal);
  runtime::node n(c.config("node", 0ms), reg);
  BOOST_TEST_REQUIRE(n.start().empty());
  c.submit("w-1", "waiter", nullptr);
  BOOST_TEST_REQUIRE(c.wait_status("w-1", instance_status::waiting));
  BOOST_TEST_REQUIRE(c.box->send_to_instance("w-1", "cancel", "cancel", "null").empty());
  auto rec = c.wait_final("w-1");
  BOOST_TEST((rec.status == instance_status::cancelled));
  BOOST_TEST(rec.error.find("cancelled") != std::string::npos, rec.error);
  auto again = c.box->send_to_instance("w-1", "signal", "go", "\"late\"");
  BOOST_TEST(again.find("CONVOY_FINAL") == 0u, again);
}

BOOST_AUTO_TEST_CASE(a_retry_policy_is_honoured_with_durable_backoff_and_timeouts) {
  cluster c;
  registry reg;
  examples::register_scatter_gather(reg);
  reg.add_activity("flaky", &flaky);
  reg.add_activity("always-fatal", &always_fatal);
  reg.add_orchestration("retrying", 1, &retrying);
  flaky_attempts.at.clear();
  runtime::node n(c.config("node", 0ms), reg);
  BOOST_TEST_REQUIRE(n.start().empty());
  c.submit("r-1", "retrying", nullptr);
  auto rec = c.wait_final("r-1");
  BOOST_TEST_REQUIRE((rec.status == instance_status::completed), rec.error);
  auto result = json::parse(rec.result);
  BOOST_TEST(result["attempt"] == 3);
  BOOST_TEST(result["fatal"] == "bad request"); // non-retryable: one attempt
  BOOST_TEST(result["late"].get<std::string>().find("timed out") != std::string::npos);
  std::lock_guard<std::mutex> guard(flaky_attempts.mtx);
  BOOST_TEST_REQUIRE(flaky_attempts.at.size() == 3u);
  auto gap1 = flaky_attempts.at[1] - flaky_attempts.at[0];
  auto gap2 = flaky_attempts.at[2] - flaky_attempts.at[1];
  BOOST_TEST(gap1 >= 200ms);
  BOOST_TEST(gap2 >= 400ms);
}

BOOST_AUTO_TEST_CASE(late_and_unwanted_messages_are_kept_as_zombies_and_unrouted) {
  cluster c;
  auto reg = examples_registry();
  runtime::node n(c.config("node", 0ms), reg);
  BOOST_TEST_REQUIRE(n.start().empty());
  c.publish("item", json{{"batch", "z"}, {"seq", 1}, {"value", 1}, {"last", true}},
            {{"batch-id", "z"}}, "batch-z");
  BOOST_TEST_REQUIRE((c.wait_final("batch-z").status == instance_status::completed));
  c.publish("item", json{{"batch", "z"}, {"seq", 2}, {"value", 2}}, {{"batch-id", "z"}});
  c.publish("invoice", json{{"n", 1}}, {{"customer", "x"}});
  BOOST_TEST(test::wait_until(
    [&] { return c.box->list_stream(c.box->key_schema().zombies(), 10).entries.size() == 1; }, 10s));
  BOOST_TEST(test::wait_until(
    [&] { return c.box->list_stream(c.box->key_schema().unrouted(), 10).entries.size() == 1; }, 10s));
  auto zombie = c.box->list_stream(c.box->key_schema().zombies(), 10).entries.at(0);
  BOOST_TEST(zombie.field("instance") == "batch-z");
  BOOST_TEST(zombie.field("correlation") == "batch-id=z");
}

BOOST_AUTO_TEST_SUITE_END()
