// The replay engine without actors or Redis: a coroutine driven by hand through its context.

#include "convoy/actors/context.hpp"
#include "convoy/actors/orchestration.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>

using namespace convoy;
using namespace std::chrono_literals;

namespace {

orchestration<int> add_two_results(context& ctx, int base) {
  auto a = co_await ctx.call<int>("fetch-a", base);
  co_await ctx.sleep(10s);
  auto b = co_await ctx.call<int>("fetch-b", a);
  co_return base + a + b;
}

/// Same first step as add_two_results, but calls another activity second: a code change
/// that must not be replayed over the old journal.
orchestration<int> changed_code(context& ctx, int base) {
  auto a = co_await ctx.call<int>("fetch-a", base);
  co_await ctx.sleep(10s);
  auto b = co_await ctx.call<int>("fetch-c", a);
  co_return base + a + b;
}

orchestration<int> one_step(context& ctx, int base) {
  auto a = co_await ctx.call<int>("fetch-a", base);
  co_return a;
}

orchestration<std::string> catches_failure(context& ctx, int) {
  try {
    co_await ctx.call<int>("flaky", 1);
  } catch (const activity_error& e) {
    co_return std::string("recovered from step ") + std::to_string(e.step());
  }
  co_return std::string("no failure");
}

/// Runs one orchestration by hand, as the instance actor would.
template <class R, class In>
struct driver {
  std::unique_ptr<context> ctx;
  orchestration_frame frame;
  std::vector<journal_entry> journal; // everything written at "persistence points"
  std::vector<activity_command> activities;
  std::vector<timer_command> timers;

  driver(orchestration<R> (*fn)(context&, In), In input, std::vector<journal_entry> history = {})
    : ctx(std::make_unique<context>("inst-1", history)), journal(std::move(history)) {
    frame = fn(*ctx, std::move(input)).release();
    ctx->set_clock(1000);
    frame.handle.resume();
    persist();
  }

  ~driver() {
    if (frame.handle)
      frame.handle.destroy();
  }

  void persist() {
    auto out = ctx->take_output();
    journal.insert(journal.end(), out.entries.begin(), out.entries.end());
    activities.insert(activities.end(), out.activities.begin(), out.activities.end());
    timers.insert(timers.end(), out.timers.begin(), out.timers.end());
  }

  bool deliver(uint32_t step, bool ok, std::string payload) {
    auto d = ctx->deliver(step, ok ? outcome::success(std::move(payload)) : outcome::failure(std::move(payload)));
    if (d.resume)
      d.resume.resume();
    persist();
    return d.accepted;
  }

  bool done() const { return frame.handle.done(); }
  std::string result() const { return frame.promise->result().value_or("<none>"); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(replay)

BOOST_AUTO_TEST_CASE(live_run_issues_one_command_per_step_and_journals_every_outcome) {
  driver d(&add_two_results, 1);
  BOOST_TEST_REQUIRE(d.activities.size() == 1u);
  BOOST_TEST(d.activities[0].activity == "fetch-a");
  BOOST_TEST(d.activities[0].args == "1");
  BOOST_TEST(d.activities[0].idempotency_key == "inst-1/0");
  BOOST_TEST(d.deliver(0, true, "10"));
  BOOST_TEST_REQUIRE(d.timers.size() == 1u);
  BOOST_TEST(d.timers[0].step == 1u);
  BOOST_TEST(d.timers[0].due_ms == 1000 + 10000);
  BOOST_TEST(d.deliver(1, true, "null"));
  BOOST_TEST_REQUIRE(d.activities.size() == 2u);
  BOOST_TEST(d.activities[1].activity == "fetch-b");
  BOOST_TEST(d.activities[1].args == "10");
  BOOST_TEST(!d.done());
  BOOST_TEST(d.deliver(2, true, "100"));
  BOOST_TEST(d.done());
  BOOST_TEST(d.result() == "111");
  BOOST_TEST(d.journal.size() == 6u); // 3 scheduled + 3 completed
}

BOOST_AUTO_TEST_CASE(replay_of_a_full_journal_returns_the_same_result_without_commands) {
  driver live(&add_two_results, 1);
  live.deliver(0, true, "10");
  live.deliver(1, true, "null");
  live.deliver(2, true, "100");
  BOOST_TEST_REQUIRE(live.done());
  driver replayed(&add_two_results, 1, live.journal);
  BOOST_TEST(replayed.done());
  BOOST_TEST(replayed.result() == live.result());
  BOOST_TEST(replayed.activities.empty());
  BOOST_TEST(replayed.timers.empty());
  BOOST_TEST(replayed.journal.size() == live.journal.size()); // nothing new recorded
  BOOST_TEST(!replayed.ctx->nondeterminism());
}

BOOST_AUTO_TEST_CASE(replay_does_not_reissue_a_step_that_was_scheduled_but_not_completed) {
  driver live(&add_two_results, 1);
  live.deliver(0, true, "10"); // the timer of step 1 is scheduled, not fired
  driver resumed(&add_two_results, 1, live.journal);
  BOOST_TEST(resumed.activities.empty());
  BOOST_TEST(resumed.timers.empty()); // the timer already exists in the MessageBox
  BOOST_TEST(!resumed.done());
  BOOST_TEST(resumed.deliver(1, true, "null"));
  BOOST_TEST_REQUIRE(resumed.activities.size() == 1u);
  BOOST_TEST(resumed.activities[0].activity == "fetch-b");
  resumed.deliver(2, true, "100");
  BOOST_TEST(resumed.result() == "111");
}

BOOST_AUTO_TEST_CASE(duplicate_and_unknown_outcomes_are_ignored) {
  driver d(&add_two_results, 1);
  BOOST_TEST(d.deliver(0, true, "10"));
  BOOST_TEST(!d.deliver(0, true, "99"));  // duplicate delivery
  BOOST_TEST(!d.deliver(7, true, "1"));   // a step never issued
  BOOST_TEST(d.journal.size() == 3u);     // scheduled 0, completed 0, scheduled 1
  d.deliver(1, true, "null");
  d.deliver(2, true, "100");
  BOOST_TEST(d.result() == "111");
}

BOOST_AUTO_TEST_CASE(changed_code_is_stopped_with_an_error_naming_the_step_and_both_operations) {
  driver live(&add_two_results, 1);
  live.deliver(0, true, "10");
  live.deliver(1, true, "null");
  driver changed(&changed_code, 1, live.journal);
  BOOST_TEST_REQUIRE(changed.ctx->nondeterminism().has_value());
  const auto& why = *changed.ctx->nondeterminism();
  BOOST_TEST(why.find("step 2") != std::string::npos, why);
  BOOST_TEST(why.find("fetch-b") != std::string::npos, why);
  BOOST_TEST(why.find("fetch-c") != std::string::npos, why);
  BOOST_TEST(!changed.done());
  BOOST_TEST(changed.activities.empty()); // nothing is sent on behalf of the wrong code
}

BOOST_AUTO_TEST_CASE(code_that_finishes_before_the_journal_ends_is_nondeterministic) {
  driver live(&add_two_results, 1);
  live.deliver(0, true, "10");
  live.deliver(1, true, "null");
  driver shorter(&one_step, 1, live.journal);
  BOOST_TEST(shorter.done());
  shorter.ctx->check_finished();
  BOOST_TEST_REQUIRE(shorter.ctx->nondeterminism().has_value());
  BOOST_TEST(shorter.ctx->nondeterminism()->find("journal records step") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_activity_failure_is_an_exception_inside_the_orchestration_only) {
  driver d(&catches_failure, 0);
  BOOST_TEST(d.deliver(0, false, "connection refused"));
  BOOST_TEST(d.done());
  BOOST_TEST(d.result() == "\"recovered from step 0\"");
  BOOST_TEST((d.journal.back().event == entry_event::failed));
  driver replayed(&catches_failure, 0, d.journal);
  BOOST_TEST(replayed.result() == d.result());
}

BOOST_AUTO_TEST_CASE(an_uncaught_activity_failure_fails_the_instance_with_its_message) {
  driver d(&one_step, 5);
  d.deliver(0, false, "out of stock");
  BOOST_TEST(d.done());
  BOOST_TEST_REQUIRE(d.frame.promise->failure().has_value());
  BOOST_TEST(d.frame.promise->failure()->find("out of stock") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
