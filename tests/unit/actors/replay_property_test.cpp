// Properties of the replay engine under the weather of production: outcomes delivered twice,
// outcomes for steps that do not exist (or no longer exist), and crashes that lose any suffix
// of the journal, in any interleaving. However disturbed, a run ends with the result of an
// undisturbed run and a journal that records each step's issue and outcome exactly once.
// Plus: journal entries and journal files survive encode -> decode unchanged.

#include "replay/harness.hpp"

#include "convoy/actors/orchestration.hpp"
#include "examples.hpp"

#include <boost/test/unit_test.hpp>

#include <rapidcheck.h>

#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

using namespace convoy;
using namespace convoy::replay;
using namespace std::chrono_literals;

namespace {

// -- an orchestration of calls and sleeps, defined here ---------------------------------------

/// Each round: a call, a durable sleep, a call and a sleep in parallel (their outcomes may
/// arrive in either order), and a call that fails for odd rounds (caught).
orchestration<json> calls_and_sleeps(context& ctx, int rounds) {
  json log = json::array();
  for (int i = 0; i < rounds; ++i) {
    // Arguments in a named variable: g++ 12 and initializer lists inside co_await.
    json args = {{"i", i}};
    auto square = co_await ctx.call<int>("square", args);
    log.push_back(square);
    co_await ctx.sleep(std::chrono::milliseconds(10 * (i + 1)));
    json more = {{"i", i + 100}};
    auto parallel_call = ctx.call<int>("square", more);
    auto parallel_timer = ctx.sleep(5ms);
    auto both = co_await when_all(parallel_call, parallel_timer);
    log.push_back(std::get<0>(both));
    try {
      auto even = co_await ctx.call<int>("fails-when-odd", i);
      log.push_back(even);
    } catch (const activity_error& e) {
      log.push_back("step " + std::to_string(e.step()) + " failed");
    }
  }
  co_return log;
}

activity_result square(const activity_context&, const json& args) {
  auto i = args.at("i").get<int>();
  return activity_result::success(i * i);
}

activity_result fails_when_odd(const activity_context&, const json& i) {
  if (i.get<int>() % 2 != 0)
    return activity_result::failure("odd input " + i.dump());
  return activity_result::success(i);
}

const registry& test_registry() {
  static const registry reg = [] {
    registry r;
    examples::register_all(r);
    r.add_orchestration("calls-and-sleeps", 1, &calls_and_sleeps);
    r.add_activity("square", &square);
    r.add_activity("fails-when-odd", &fails_when_odd);
    return r;
  }();
  return reg;
}

// -- disturbances -----------------------------------------------------------------------------

enum class disturbance : uint8_t {
  deliver,   ///< The real outcome of one open step arrives.
  duplicate, ///< An outcome arrives again (with any payload) for a step that has one.
  unknown,   ///< An outcome arrives for a step that was never issued.
  crash,     ///< The node dies; only a prefix of the journal was persisted.
};

struct action {
  disturbance what = disturbance::deliver;
  uint32_t pick = 0; ///< Chooses the step, or the prefix length of a crash.
  bool ok = true;    ///< Of a forged outcome (duplicate, unknown).
  std::string payload;
};

void showValue(const action& a, std::ostream& os) {
  static constexpr const char* names[] = {"deliver", "duplicate", "unknown", "crash"};
  os << names[static_cast<int>(a.what)] << "(pick " << a.pick << ", " << (a.ok ? "ok" : "failed")
     << " '" << a.payload << "')";
}

rc::Gen<action> arbitrary_action() {
  return rc::gen::build<action>(
    rc::gen::set(&action::what,
                 rc::gen::weightedElement<disturbance>({{6, disturbance::deliver},
                                                        {2, disturbance::duplicate},
                                                        {2, disturbance::unknown},
                                                        {2, disturbance::crash}})),
    rc::gen::set(&action::pick, rc::gen::arbitrary<uint32_t>()),
    rc::gen::set(&action::ok, rc::gen::arbitrary<bool>()),
    rc::gen::set(&action::payload,
                 rc::gen::element<std::string>("0", "null", "\"forged\"", "4096", "not json")));
}

bool opens(const journal_entry& e) {
  auto x = effect_of(e.event);
  return x == step_effect::opens || x == step_effect::opens_and_closes;
}

bool closes(const journal_entry& e) {
  auto x = effect_of(e.event);
  return x == step_effect::closes || x == step_effect::opens_and_closes;
}

/// Entries by step, in journal order; entries about no step are left out.
std::map<uint32_t, std::vector<journal_entry>> by_step(const std::vector<journal_entry>& journal) {
  std::map<uint32_t, std::vector<journal_entry>> out;
  for (const auto& e : journal)
    if (effect_of(e.event) != step_effect::none)
      out[e.step].push_back(e);
  return out;
}

/// Each step of `journal` is issued once and answered once, and says what the undisturbed
/// run's journal says about that step.
void check_each_step_recorded_once(const std::vector<journal_entry>& journal,
                                   const std::vector<journal_entry>& undisturbed) {
  auto steps = by_step(journal);
  auto expected = by_step(undisturbed);
  RC_ASSERT(steps.size() == expected.size());
  for (const auto& [step, entries] : steps) {
    auto opened = std::count_if(entries.begin(), entries.end(), opens);
    auto closed = std::count_if(entries.begin(), entries.end(), closes);
    RC_ASSERT(opened == 1);
    RC_ASSERT(closed == 1);
    RC_ASSERT(opens(entries.front())); // issued before answered
    RC_ASSERT(expected.count(step) == 1u);
    RC_ASSERT(entries == expected[step]);
  }
}

/// After a restart on `survived`, the replay issued again only steps the journal had lost.
void check_reissues_only_lost_steps(const runner& r, const std::vector<journal_entry>& survived) {
  std::set<uint32_t> issued;
  for (const auto& e : survived)
    if (opens(e))
      issued.insert(e.step);
  for (const auto& e : r.written())
    if (opens(e))
      RC_ASSERT(issued.count(e.step) == 0u);
  for (const auto& c : r.activities())
    RC_ASSERT(issued.count(c.step) == 0u);
  for (const auto& t : r.timers())
    RC_ASSERT(issued.count(t.step) == 0u);
}

/// Runs `type` undisturbed, then again under `actions`, and compares the two.
void check_disturbed_run(const std::string& type, const json& input,
                         const std::vector<action>& actions) {
  const auto& reg = test_registry();
  auto factory = reg.find(type, 1);
  RC_ASSERT(factory != nullptr);
  auto outcomes = real_outcomes(reg);
  runner undisturbed(*factory, input, "inst-1");
  undisturbed.run(outcomes);
  RC_ASSERT(undisturbed.done());
  RC_ASSERT(!undisturbed.nondeterminism());

  runner r(*factory, input, "inst-1");
  bool chose = false, duplicated = false, strayed = false, crashed = false;
  for (const auto& a : actions) {
    switch (a.what) {
      case disturbance::deliver: {
        auto open = r.pending();
        if (open.empty())
          break;
        auto step = open[a.pick % open.size()];
        chose = chose || open.size() > 1;
        RC_ASSERT(r.deliver(step, outcomes(*r.scheduled(step), r.instance_id())));
        break;
      }
      case disturbance::duplicate: {
        auto finished = r.finished_steps();
        if (finished.empty())
          break;
        auto step = finished[a.pick % finished.size()];
        RC_ASSERT(!r.deliver(step, make_outcome(a.ok, a.payload)));
        duplicated = true;
        break;
      }
      case disturbance::unknown: {
        auto step = a.pick % 8 == 0 ? UINT32_MAX : r.step_horizon() + a.pick % 1000;
        RC_ASSERT(!r.deliver(step, make_outcome(a.ok, a.payload)));
        strayed = true;
        break;
      }
      case disturbance::crash: {
        auto keep = a.pick % (r.journal().size() + 1);
        std::vector<journal_entry> survived(r.journal().begin(), r.journal().begin() + keep);
        r.crash(keep);
        check_reissues_only_lost_steps(r, survived);
        crashed = true;
        break;
      }
    }
    RC_ASSERT(!r.nondeterminism());
  }
  // The distribution rapidcheck prints shows that the disturbances really happen.
  RC_CLASSIFY(chose, "outcomes in a chosen order");
  RC_CLASSIFY(duplicated, "duplicates");
  RC_CLASSIFY(strayed, "unknown steps");
  RC_CLASSIFY(crashed, "crashes");
  r.run(outcomes);
  RC_ASSERT(!r.nondeterminism());
  RC_ASSERT(r.done());
  RC_ASSERT(r.result() == undisturbed.result());
  RC_ASSERT(r.failure() == undisturbed.failure());
  check_each_step_recorded_once(r.journal(), undisturbed.journal());
}

rc::Gen<journal_entry> arbitrary_entry() {
  return rc::gen::build<journal_entry>(
    rc::gen::set(&journal_entry::step, rc::gen::arbitrary<uint32_t>()),
    rc::gen::set(&journal_entry::event, rc::gen::elementOf(decodable_events())),
    rc::gen::set(&journal_entry::op, rc::gen::elementOf(decodable_op_kinds())),
    rc::gen::set(&journal_entry::op_hash, rc::gen::arbitrary<uint64_t>()),
    rc::gen::set(&journal_entry::payload, rc::gen::arbitrary<std::string>()));
}

} // namespace

namespace convoy {

// For rapidcheck's counterexamples.
static void showValue(const journal_entry& e, std::ostream& os) {
  os << replay::to_json(e).dump();
}

} // namespace convoy

BOOST_AUTO_TEST_SUITE(replay_property)

BOOST_AUTO_TEST_CASE(every_decodable_event_has_a_step_effect) {
  for (auto event : decodable_events())
    BOOST_CHECK_NO_THROW(effect_of(event));
}

BOOST_AUTO_TEST_CASE(steps_example_ends_the_same_whatever_duplicates_strays_and_crashes_hit_it) {
  auto ok = rc::check("steps: disturbed run == undisturbed run", [] {
    json input = {{"count", *rc::gen::inRange(0, 7)},
                  {"pause_ms", *rc::gen::element(0, 0, 25)}};
    auto actions = *rc::gen::container<std::vector<action>>(arbitrary_action());
    check_disturbed_run("steps", input, actions);
  });
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_CASE(calls_and_sleeps_end_the_same_whatever_duplicates_strays_and_crashes_hit_them) {
  auto ok = rc::check("calls-and-sleeps: disturbed run == undisturbed run", [] {
    json input = *rc::gen::inRange(0, 5);
    auto actions = *rc::gen::container<std::vector<action>>(arbitrary_action());
    check_disturbed_run("calls-and-sleeps", input, actions);
  });
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_CASE(replay_from_every_prefix_of_a_journal_then_live_ends_with_the_same_journal) {
  auto ok = rc::check("every prefix replays, then continues live, to the same end", [] {
    auto type = *rc::gen::element<std::string>("steps", "calls-and-sleeps");
    json input = type == "steps" ? json{{"count", *rc::gen::inRange(0, 6)}, {"pause_ms", 10}}
                                 : json(*rc::gen::inRange(0, 4));
    const auto& reg = test_registry();
    auto outcomes = real_outcomes(reg);
    runner undisturbed(*reg.find(type, 1), input, "inst-1");
    undisturbed.run(outcomes);
    RC_ASSERT(undisturbed.done());
    const auto& full = undisturbed.journal();
    for (size_t keep = 0; keep <= full.size(); ++keep) {
      std::vector<journal_entry> prefix(full.begin(), full.begin() + keep);
      runner r(*reg.find(type, 1), input, "inst-1", prefix);
      RC_ASSERT(!r.nondeterminism());
      check_reissues_only_lost_steps(r, prefix);
      r.run(outcomes);
      RC_ASSERT(r.done());
      RC_ASSERT(r.result() == undisturbed.result());
      RC_ASSERT(r.failure() == undisturbed.failure());
      RC_ASSERT(r.journal() == full);
    }
  });
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_CASE(encode_then_decode_is_identity_for_arbitrary_entries_of_every_known_kind) {
  auto ok = rc::check("decode(encode(e)) == e", [](void) {
    auto entry = *arbitrary_entry();
    auto decoded = decode_journal_entry(encode(entry));
    RC_ASSERT(std::holds_alternative<journal_entry>(decoded));
    RC_ASSERT(std::get<journal_entry>(decoded) == entry);
  });
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_CASE(a_journal_file_of_arbitrary_entries_decodes_to_the_same_entries) {
  auto ok = rc::check("decode_journal_file(encode_journal_file(es)) == es", [] {
    auto entries = *rc::gen::container<std::vector<journal_entry>>(arbitrary_entry());
    auto bytes = encode_journal_file(entries);
    auto decoded = decode_journal_file(bytes);
    RC_ASSERT(std::holds_alternative<std::vector<journal_entry>>(decoded));
    RC_ASSERT(std::get<std::vector<journal_entry>>(decoded) == entries);
    // Any shorter file is an error or a prefix of the entries; never a crash, never more.
    auto cut = *rc::gen::inRange<size_t>(0, bytes.size());
    auto shorter = decode_journal_file(std::string_view(bytes).substr(0, cut));
    if (auto* some = std::get_if<std::vector<journal_entry>>(&shorter)) {
      RC_ASSERT(some->size() < entries.size());
      RC_ASSERT(std::equal(some->begin(), some->end(), entries.begin()));
    } else {
      RC_ASSERT(!std::get<failure>(shorter).message.empty());
    }
  });
  BOOST_TEST(ok);
}

BOOST_AUTO_TEST_SUITE_END()
