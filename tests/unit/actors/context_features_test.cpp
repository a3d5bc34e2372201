// The context's awaitables beyond call and sleep, driven by hand (no actors, no Redis):
// each live run's journal must replay to the same outcome without issuing anything again.

#include "convoy/actors/context.hpp"
#include "convoy/actors/orchestration.hpp"
#include "convoy/actors/saga.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>

using namespace convoy;
using namespace std::chrono_literals;

namespace {

/// Runs an orchestration by hand, as the instance actor does, collecting what it persists.
struct harness {
  std::unique_ptr<context> ctx;
  orchestration_frame frame;
  std::vector<journal_entry> journal;
  context::output commands;

  template <class R, class In>
  harness(orchestration<R> (*fn)(context&, In), In input, std::vector<journal_entry> history = {})
    : ctx(std::make_unique<context>("i", history)), journal(std::move(history)) {
    frame = fn(*ctx, std::move(input)).release();
    ctx->set_clock(5000);
    frame.handle.resume();
    persist();
  }
  ~harness() {
    if (frame.handle)
      frame.handle.destroy();
  }

  void persist() {
    auto out = ctx->take_output();
    journal.insert(journal.end(), out.entries.begin(), out.entries.end());
    auto append = [](auto& to, auto& from) { to.insert(to.end(), from.begin(), from.end()); };
    append(commands.activities, out.activities);
    append(commands.timers, out.timers);
    append(commands.cancelled_timers, out.cancelled_timers);
    append(commands.children, out.children);
    append(commands.subscriptions, out.subscriptions);
  }
  void run(context::delivery d) {
    if (d.resume)
      d.resume.resume();
    persist();
  }
  void ok(uint32_t step, std::string payload) { run(ctx->deliver(step, outcome::success(std::move(payload)))); }
  void fail(uint32_t step, std::string why) { run(ctx->deliver(step, outcome::failure(std::move(why)))); }
  void message(const std::string& channel, std::string payload) {
    run(ctx->deliver_message(channel, std::move(payload)));
  }
  bool done() const { return frame.handle.done(); }
  std::string result() const {
    if (frame.promise->failure())
      return "failure: " + *frame.promise->failure();
    return frame.promise->result().value_or("<none>");
  }
  /// Replays this journal into a fresh run and checks it ends the same, issuing nothing.
  template <class R, class In>
  void check_replay(orchestration<R> (*fn)(context&, In), In input) {
    harness again(fn, std::move(input), journal);
    BOOST_TEST(again.done());
    BOOST_TEST(again.result() == result());
    BOOST_TEST(again.commands.activities.empty());
    BOOST_TEST(again.commands.timers.empty());
    BOOST_TEST(!again.ctx->nondeterminism().has_value());
  }
};

orchestration<std::string> first_answer(context& ctx, int) {
  auto a = ctx.call<std::string>("mirror-a");
  auto b = ctx.call<std::string>("mirror-b");
  auto t = ctx.sleep(10s);
  auto winner = co_await when_any(a, b, t);
  if (winner == 2)
    co_return std::string("timeout");
  std::string value;
  if (winner == 0)
    value = co_await a;
  else
    value = co_await b;
  co_return value;
}

orchestration<int> sum_all(context& ctx, int n) {
  std::vector<call_awaiter<int>> parts;
  for (int i = 0; i < n; ++i)
    parts.push_back(ctx.call<int>("part", i));
  auto values = co_await when_all(parts);
  int sum = 0;
  for (auto v : values)
    sum += v;
  co_return sum;
}

orchestration<std::string> convoy_of_three(context& ctx, int) {
  co_await ctx.call<int>("prepare"); // messages arriving meanwhile wait in the mailbox
  std::string seen;
  for (int i = 0; i < 3; ++i) {
    auto m = co_await ctx.receive<std::string>(correlate("k", "1"));
    seen += m;
  }
  co_return seen;
}

orchestration<std::string> receive_or_timeout(context& ctx, int) {
  auto m = co_await ctx.receive<std::string>(correlate("k", "1"), 1s);
  co_return m.value_or("none");
}

orchestration<std::string> values_of_the_world(context& ctx, int) {
  auto t = ctx.now();
  auto r = ctx.random();
  auto u = ctx.uuid();
  co_await ctx.sleep(1s);
  co_return std::to_string(t.time_since_epoch().count()) + "/" + std::to_string(r) + "/" + u;
}

orchestration<std::string> cancellable(context& ctx, int) {
  try {
    co_await ctx.signal<std::string>("go");
  } catch (const cancelled_error&) {
    // compensate: an activity can still be called after a cancellation
  }
  auto undo = co_await ctx.call<std::string>("undo");
  co_return "undone " + undo;
}

orchestration<json> three_bookings(context& ctx, int fail_at) {
  saga s(ctx);
  std::optional<activity_error> failure;
  try {
    for (int i = 0; i < 3; ++i) {
      auto ref = co_await ctx.call<std::string>("book", i);
      s.add_compensation("cancel", ref);
    }
  } catch (const activity_error& e) {
    failure = e;
  }
  (void) fail_at;
  if (!failure)
    co_return json("booked");
  auto undone = co_await s.compensate();
  co_return json(undone);
}

orchestration<int> restarts(context& ctx, int left) {
  co_await ctx.sleep(1s);
  if (left > 0)
    co_return ctx.continue_as_new(left - 1);
  co_return 42;
}

} // namespace

BOOST_AUTO_TEST_SUITE(context_features)

BOOST_AUTO_TEST_CASE(when_any_takes_the_first_outcome_and_replay_picks_the_same_winner) {
  harness h(&first_answer, 0);
  BOOST_TEST(h.commands.activities.size() == 2u); // both scheduled at once
  BOOST_TEST(h.commands.timers.size() == 1u);
  h.ok(1, "\"from b\"");
  BOOST_TEST(h.done());
  BOOST_TEST(h.result() == "\"from b\"");
  BOOST_TEST(h.commands.cancelled_timers.size() == 1u); // the losing timer is cancelled
  h.ok(0, "\"from a\"");                                // a late loser changes nothing
  h.check_replay(&first_answer, 0);
}

BOOST_AUTO_TEST_CASE(when_all_gathers_every_result_in_order) {
  harness h(&sum_all, 4);
  BOOST_TEST(h.commands.activities.size() == 4u);
  for (uint32_t s : {3u, 1u, 0u, 2u})
    h.ok(s, std::to_string(10 * (s + 1)));
  BOOST_TEST(h.result() == "100");
  h.check_replay(&sum_all, 4);
}

BOOST_AUTO_TEST_CASE(messages_that_arrive_early_wait_in_the_mailbox_in_order) {
  harness h(&convoy_of_three, 0);
  h.message("corr:k=1", "\"a\""); // nobody waits yet: mailbox
  h.message("corr:k=1", "\"b\"");
  h.ok(0, "1");                    // receives 1 and 2 take a and b at once
  BOOST_TEST(h.commands.subscriptions.size() == 1u);
  BOOST_TEST(h.commands.subscriptions[0].first == "k=1");
  BOOST_TEST(!h.done());
  h.message("corr:k=1", "\"c\""); // receive 3 waits: delivered directly
  BOOST_TEST(h.done());
  BOOST_TEST(h.result() == "\"abc\"");
  h.check_replay(&convoy_of_three, 0);
}

BOOST_AUTO_TEST_CASE(a_receive_timeout_yields_nothing_and_a_later_message_is_not_lost) {
  harness h(&receive_or_timeout, 0);
  BOOST_TEST(h.commands.timers.size() == 1u);
  h.ok(1, "null"); // the timer fires first
  BOOST_TEST(h.result() == "\"none\"");
  h.check_replay(&receive_or_timeout, 0);
}

BOOST_AUTO_TEST_CASE(now_random_and_uuid_are_recorded_and_replayed) {
  harness h(&values_of_the_world, 0);
  h.ok(3, "null");
  BOOST_TEST_REQUIRE(h.done());
  // system_clock counts nanoseconds: 5000 ms on the clock the host set
  BOOST_TEST(h.result().find("5000000000/") == 1u, h.result());
  h.check_replay(&values_of_the_world, 0);
}

BOOST_AUTO_TEST_CASE(cancellation_raises_at_the_pending_await_and_replays_the_same_way) {
  harness h(&cancellable, 0);
  h.run(h.ctx->cancel());
  BOOST_TEST_REQUIRE(h.commands.activities.size() == 1u);
  BOOST_TEST(h.commands.activities[0].activity == "undo");
  bool journaled = false;
  for (const auto& e : h.journal)
    journaled = journaled || e.event == entry_event::cancelled;
  BOOST_TEST(journaled);
  h.ok(1, "\"ok\"");
  BOOST_TEST(h.result() == "\"undone ok\"");
  h.check_replay(&cancellable, 0);
}

BOOST_AUTO_TEST_CASE(compensations_run_in_reverse_order_and_report_their_outcome) {
  harness h(&three_bookings, 2);
  h.ok(0, "\"b0\"");
  h.ok(1, "\"b1\"");
  h.fail(2, "sold out");
  BOOST_TEST_REQUIRE(h.commands.activities.size() == 4u);
  BOOST_TEST(h.commands.activities[3].activity == "cancel");
  BOOST_TEST(h.commands.activities[3].args == "\"b1\""); // newest first
  h.fail(3, "already cancelled");
  BOOST_TEST(h.commands.activities[4].args == "\"b0\"");
  h.ok(4, "null");
  BOOST_TEST(h.result()
             == R"([{"activity":"cancel","error":"already cancelled","ok":false},{"activity":"cancel","ok":true}])");
  h.check_replay(&three_bookings, 2);
}

BOOST_AUTO_TEST_CASE(continue_as_new_hands_its_input_to_the_next_run) {
  harness h(&restarts, 1);
  h.ok(0, "null");
  BOOST_TEST(h.done());
  BOOST_TEST(h.frame.promise->continue_input().value_or("") == "0");
  BOOST_TEST(!h.frame.promise->result().has_value());
}

BOOST_AUTO_TEST_CASE(retry_backoff_grows_by_the_multiplier_up_to_its_cap) {
  retry_policy p;
  p.max_attempts = 6;
  p.initial_backoff = 100ms;
  p.multiplier = 3.0;
  p.max_backoff = 1000ms;
  p.non_retryable = {"fatal"};
  // The schedule of a failing call, on a test clock that starts at 0.
  std::vector<int64_t> attempt_at{0};
  for (uint32_t next = 2; p.retries(next - 1, "transient"); ++next)
    attempt_at.push_back(attempt_at.back() + p.delay_before(next).count());
  BOOST_TEST(attempt_at == (std::vector<int64_t>{0, 100, 400, 1300, 2300, 3300}));
  BOOST_TEST(!p.retries(1, "fatal"));
  BOOST_TEST(!p.retries(6, "transient"));
  auto round_trip = retry_policy::from_json(p.to_json());
  BOOST_TEST(round_trip.delay_before(4).count() == 900);
  BOOST_TEST(round_trip.non_retryable == p.non_retryable);
}

BOOST_AUTO_TEST_SUITE_END()
