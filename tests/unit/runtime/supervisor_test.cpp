// OTP-style supervisors with real actors in a real actor system: strategies, restart types,
// intensity and escalation, ordered start and reverse stop, shutdown timeouts, dynamic
// children and the live description of a nested tree.
//
// Workers report "started:<id>" (from their start function, inside the supervisor) and
// "stopped:<id>" (from their state's destructor, which runs before their exit reaches the
// supervisor) to an observer; the order of these events is the order of starts and stops.

#include "convoy/runtime/supervisor.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace rt = convoy::runtime;
using namespace std::chrono_literals;

namespace {

using event_atom = caf::atom_constant<caf::atom("event")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;

constexpr auto patience = 5s;

struct worker_state {
  caf::actor observer;
  std::string id;
  caf::local_actor* self = nullptr;

  ~worker_state() {
    if (observer)
      caf::anon_send(observer, event_atom::value, std::string("stopped"), id, caf::actor{},
                     rt::reason_text(self->fail_state()));
  }
};

/// crash: exits abnormally; finish: exits normally; leave: exits with user_shutdown.
/// A stubborn worker ignores exit messages (only a kill stops it).
caf::behavior worker(caf::stateful_actor<worker_state>* self, caf::actor observer, std::string id,
                     bool stubborn) {
  self->state.observer = observer;
  self->state.id = id;
  self->state.self = self;
  if (stubborn)
    self->set_exit_handler([self](caf::exit_msg& em) {
      caf::anon_send(self->state.observer, event_atom::value, std::string("ignored"),
                     self->state.id, caf::actor{}, rt::reason_text(em.reason));
    });
  return {
    [self](crash_atom) { self->quit(caf::exit_reason::unhandled_exception); },
    [self](finish_atom) { self->quit(); },
    [self](leave_atom) { self->quit(caf::exit_reason::user_shutdown); },
  };
}

struct worker_options {
  rt::restart_type restart = rt::restart_type::permanent;
  bool stubborn = false;
  std::chrono::milliseconds shutdown{5000};
};

rt::child_spec worker_child(caf::actor observer, std::string id, worker_options opts = {}) {
  rt::child_spec spec;
  spec.id = id;
  spec.restart = opts.restart;
  spec.shutdown = opts.shutdown;
  spec.start = [observer, id, stubborn = opts.stubborn](const rt::child_context& ctx) {
    auto a = ctx.system.spawn(worker, observer, id, stubborn);
    if (observer)
      caf::anon_send(observer, event_atom::value, std::string("started"), id, a, std::string());
    return a;
  };
  return spec;
}

rt::supervisor_spec sup(std::string name, rt::restart_strategy strategy,
                        std::vector<rt::child_spec> children, int intensity = 3,
                        std::chrono::milliseconds period = 60s) {
  rt::supervisor_spec spec;
  spec.name = std::move(name);
  spec.strategy = strategy;
  spec.intensity = intensity;
  spec.period = period;
  spec.children = std::move(children);
  return spec;
}

struct event {
  std::string what; // "started:<id>", "stopped:<id>", "ignored:<id>"
  caf::actor actor; // the started actor
  std::string reason;
};

/// An actor system per test, an observer for worker events and a client for requests.
struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor observer{sys};
  caf::scoped_actor client{sys};
  std::vector<caf::actor> roots;

  ~fixture() {
    // A test that failed half-way must not leave a tree that keeps the system alive.
    for (auto& r : roots)
      caf::anon_send_exit(r, caf::exit_reason::kill);
  }

  caf::actor spawn(rt::supervisor_spec spec) {
    auto r = rt::spawn_supervisor(sys, std::move(spec));
    roots.push_back(r);
    return r;
  }

  event next_event() {
    event ev;
    bool got = false;
    observer->receive(
      [&](event_atom, std::string& what, std::string& id, caf::actor& a, std::string& reason) {
        ev = {what + ":" + id, std::move(a), std::move(reason)};
        got = true;
      },
      caf::after(patience) >> [] {});
    BOOST_REQUIRE_MESSAGE(got, "no worker event within 5 s");
    return ev;
  }

  /// The next `expected.size()` events must be exactly these; returns them.
  std::vector<event> expect_events(const std::vector<std::string>& expected) {
    std::vector<event> got;
    std::vector<std::string> names;
    for (size_t i = 0; i < expected.size(); ++i) {
      got.push_back(next_event());
      names.push_back(got.back().what);
    }
    BOOST_TEST(names == expected, boost::test_tools::per_element());
    return got;
  }

  /// No event is waiting (call after something that proves the supervisor has acted).
  void expect_no_event() {
    bool got = false;
    std::string what;
    observer->receive(
      [&](event_atom, std::string& w, std::string& id, caf::actor&, std::string&) {
        got = true;
        what = w + ":" + id;
      },
      caf::after(0ms) >> [] {});
    BOOST_TEST(!got, "unexpected event " << what);
  }

  rt::supervisor_description describe(const caf::actor& s, int64_t budget_ms = 1000) {
    rt::supervisor_description out;
    client->request(s, patience, rt::describe_atom::value, budget_ms)
      .receive([&](rt::supervisor_description& d) { out = std::move(d); },
               [&](caf::error& e) { BOOST_FAIL("describe failed: " << rt::reason_text(e)); });
    return out;
  }

  /// Describes `s` until `done(description)` holds, for at most five seconds.
  template <class Predicate>
  rt::supervisor_description describe_until(const caf::actor& s, Predicate done) {
    auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
      auto d = describe(s);
      if (done(d))
        return d;
      if (std::chrono::steady_clock::now() > deadline) {
        BOOST_FAIL("condition not reached within 5 s; last: " << rt::to_json(d).dump());
      }
      std::this_thread::sleep_for(1ms);
    }
  }

  /// Sends a request that answers with ok_atom; returns the error text, "" on ok.
  template <class... Ts>
  std::string request_ok(const caf::actor& s, Ts&&... xs) {
    std::string result = "no answer";
    client->request(s, patience, std::forward<Ts>(xs)...)
      .receive([&](caf::ok_atom) { result.clear(); },
               [&](caf::error& e) { result = rt::reason_text(e); });
    return result;
  }

  /// Sends a start_child or restart_child request that must succeed; returns the child.
  template <class... Ts>
  caf::actor start(const caf::actor& s, Ts&&... xs) {
    caf::actor child;
    client->request(s, patience, std::forward<Ts>(xs)...)
      .receive([&](caf::actor& a) { child = std::move(a); },
               [&](caf::error& e) { BOOST_FAIL("start failed: " << rt::reason_text(e)); });
    return child;
  }

  /// The reason `a` exits with, waiting at most five seconds.
  caf::error wait_down(const caf::actor& a) {
    caf::scoped_actor waiter{sys};
    waiter->monitor(a);
    caf::error reason;
    bool got = false;
    waiter->receive(
      [&](caf::down_msg& dm) {
        reason = dm.reason;
        got = true;
      },
      caf::after(patience) >> [] {});
    BOOST_REQUIRE_MESSAGE(got, "actor did not exit within 5 s");
    return reason;
  }
};

const rt::child_description* child_of(const rt::supervisor_description& d, const std::string& id) {
  for (auto& c : d.children)
    if (c.id == id)
      return &c;
  return nullptr;
}

const rt::child_description& require_child(const rt::supervisor_description& d,
                                           const std::string& id) {
  auto c = child_of(d, id);
  BOOST_REQUIRE_MESSAGE(c, "no child '" << id << "' in " << rt::to_json(d).dump());
  return *c;
}

bool has_exit(const rt::supervisor_description& d, const std::string& id,
              const std::string& action) {
  for (auto& e : d.recent_exits)
    if (e.child == id && e.action.find(action) != std::string::npos)
      return true;
  return false;
}

bool is_supervisor_error(const caf::error& e, rt::supervisor_errc code) {
  return e && e.category() == rt::supervisor_error_category
         && e.code() == static_cast<uint8_t>(code);
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(supervisor, fixture)

BOOST_AUTO_TEST_CASE(a_tree_starts_in_order_and_stops_in_reverse_order) {
  auto obs = caf::actor{observer};
  // b may start only once the nested supervisor's children all run.
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "a"),
                         rt::supervisor_child(sup("inner", rt::restart_strategy::one_for_one,
                                                  {worker_child(obs, "x"), worker_child(obs, "y")})),
                         worker_child(obs, "b")}));
  expect_events({"started:a", "started:x", "started:y", "started:b"});
  BOOST_TEST(request_ok(root, rt::await_started_atom::value) == "");
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  auto stops = expect_events({"stopped:b", "stopped:y", "stopped:x", "stopped:a"});
  for (auto& e : stops)
    BOOST_TEST(e.reason == "user_shutdown");
  BOOST_TEST((wait_down(root) == caf::exit_reason::user_shutdown));
}

BOOST_AUTO_TEST_CASE(one_for_one_restarts_only_the_failed_child) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "a"), worker_child(obs, "b"), worker_child(obs, "c")}));
  auto started = expect_events({"started:a", "started:b", "started:c"});
  caf::anon_send(started[1].actor, crash_atom::value);
  auto again = expect_events({"stopped:b", "started:b"});
  BOOST_TEST(again[0].reason == "unhandled_exception");
  BOOST_TEST((again[1].actor != started[1].actor));
  auto d = describe(root);
  BOOST_TEST(require_child(d, "a").restarts == 0u);
  BOOST_TEST(require_child(d, "b").restarts == 1u);
  BOOST_TEST(require_child(d, "c").restarts == 0u);
  BOOST_TEST(d.restarts_in_period == 1);
  for (auto& c : d.children)
    BOOST_TEST(rt::to_string(c.state) == "running");
  expect_no_event();
}

BOOST_AUTO_TEST_CASE(one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_all,
                        {worker_child(obs, "a"), worker_child(obs, "b"), worker_child(obs, "c")}));
  auto started = expect_events({"started:a", "started:b", "started:c"});
  caf::anon_send(started[1].actor, crash_atom::value);
  expect_events(
    {"stopped:b", "stopped:c", "stopped:a", "started:a", "started:b", "started:c"});
  auto d = describe(root);
  for (auto id : {"a", "b", "c"})
    BOOST_TEST(require_child(d, id).restarts == 1u);
  BOOST_TEST(d.restarts_in_period == 1); // one failure, one restart of the group
}

BOOST_AUTO_TEST_CASE(rest_for_one_restarts_the_failed_child_and_those_started_after_it) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::rest_for_one,
                        {worker_child(obs, "a"), worker_child(obs, "b"), worker_child(obs, "c"),
                         worker_child(obs, "d")}));
  auto started = expect_events({"started:a", "started:b", "started:c", "started:d"});
  caf::anon_send(started[1].actor, crash_atom::value);
  expect_events(
    {"stopped:b", "stopped:d", "stopped:c", "started:b", "started:c", "started:d"});
  auto d = describe(root);
  BOOST_TEST(require_child(d, "a").restarts == 0u);
  for (auto id : {"b", "c", "d"})
    BOOST_TEST(require_child(d, id).restarts == 1u);
}

BOOST_AUTO_TEST_CASE(permanent_children_are_restarted_after_normal_and_abnormal_exits) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one, {worker_child(obs, "p")}));
  auto first = expect_events({"started:p"});
  caf::anon_send(first[0].actor, finish_atom::value);
  auto second = expect_events({"stopped:p", "started:p"});
  BOOST_TEST(second[0].reason == "normal");
  caf::anon_send(second[1].actor, crash_atom::value);
  expect_events({"stopped:p", "started:p"});
  BOOST_TEST(require_child(describe(root), "p").restarts == 2u);
}

BOOST_AUTO_TEST_CASE(transient_children_are_restarted_only_after_abnormal_exits) {
  auto obs = caf::actor{observer};
  worker_options transient{rt::restart_type::transient};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "t1", transient), worker_child(obs, "t2", transient)}));
  auto started = expect_events({"started:t1", "started:t2"});
  caf::anon_send(started[0].actor, crash_atom::value);
  auto again = expect_events({"stopped:t1", "started:t1"});
  // A normal exit and a shutdown exit are both final for a transient child.
  caf::anon_send(again[1].actor, finish_atom::value);
  BOOST_TEST(expect_events({"stopped:t1"})[0].reason == "normal");
  caf::anon_send(started[1].actor, leave_atom::value);
  BOOST_TEST(expect_events({"stopped:t2"})[0].reason == "user_shutdown");
  auto stopped = [](const rt::supervisor_description& d) {
    return rt::to_string(require_child(d, "t1").state) == "stopped"
           && rt::to_string(require_child(d, "t2").state) == "stopped";
  };
  auto d = describe_until(root, stopped);
  BOOST_TEST(has_exit(d, "t1", "not restarted"));
  BOOST_TEST(has_exit(d, "t2", "not restarted"));
  BOOST_TEST(require_child(d, "t1").restarts == 1u);
  expect_no_event();
}

BOOST_AUTO_TEST_CASE(temporary_children_are_never_restarted_and_are_forgotten) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "keep"),
                         worker_child(obs, "tmp", {rt::restart_type::temporary})}));
  auto started = expect_events({"started:keep", "started:tmp"});
  caf::anon_send(started[1].actor, crash_atom::value);
  auto d = describe_until(root, [](auto& d) { return child_of(d, "tmp") == nullptr; });
  BOOST_TEST(has_exit(d, "tmp", "not restarted"));
  BOOST_TEST(d.restarts_in_period == 0);
  expect_events({"stopped:tmp"});
  expect_no_event();
}

BOOST_AUTO_TEST_CASE(exceeding_the_intensity_escalates_to_the_parent_supervisor) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {rt::supervisor_child(sup("inner", rt::restart_strategy::one_for_one,
                                                  {worker_child(obs, "w"), worker_child(obs, "v")},
                                                  2, 60s))}));
  auto w = expect_events({"started:w", "started:v"})[0].actor;
  for (int i = 0; i < 2; ++i) {
    caf::anon_send(w, crash_atom::value);
    w = expect_events({"stopped:w", "started:w"})[1].actor;
  }
  // The third restart within the period is one too many: inner stops v and gives up; root
  // restarts inner, which starts fresh children.
  caf::anon_send(w, crash_atom::value);
  expect_events({"stopped:w", "stopped:v", "started:w", "started:v"});
  auto d = describe_until(root, [](auto& d) {
    auto inner = child_of(d, "inner");
    return inner && inner->state == rt::child_state::running && !inner->supervisor.empty();
  });
  auto& inner = require_child(d, "inner");
  BOOST_TEST(inner.restarts == 1u);
  BOOST_REQUIRE_EQUAL(d.recent_exits.size(), 1u);
  BOOST_TEST(d.recent_exits[0].child == "inner");
  BOOST_TEST(d.recent_exits[0].reason.rfind("escalated: supervisor 'inner'", 0) == 0,
             d.recent_exits[0].reason);
  BOOST_TEST(d.recent_exits[0].action == "restarting");
  BOOST_TEST(inner.supervisor[0].restarts_in_period == 0);
  BOOST_TEST(require_child(inner.supervisor[0], "w").restarts == 0u);
}

BOOST_AUTO_TEST_CASE(a_root_that_exceeds_its_intensity_exits_with_escalated) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "a"), worker_child(obs, "w")}, 0));
  auto started = expect_events({"started:a", "started:w"});
  caf::anon_send(started[1].actor, crash_atom::value);
  expect_events({"stopped:w", "stopped:a"});
  auto reason = wait_down(root);
  BOOST_TEST(is_supervisor_error(reason, rt::supervisor_errc::escalated),
             rt::reason_text(reason));
}

BOOST_AUTO_TEST_CASE(a_restart_that_fails_is_tried_again_and_counts_toward_the_intensity) {
  auto obs = caf::actor{observer};
  auto starts = std::make_shared<std::atomic<int>>(0);
  rt::child_spec flaky = worker_child(obs, "flaky");
  flaky.start = [starts, inner = flaky.start](const rt::child_context& ctx) {
    if (++*starts > 1)
      throw std::runtime_error("resource gone");
    return inner(ctx);
  };
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one, {flaky}, 2));
  auto w = expect_events({"started:flaky"})[0].actor;
  caf::anon_send(w, crash_atom::value);
  auto reason = wait_down(root);
  BOOST_TEST(is_supervisor_error(reason, rt::supervisor_errc::escalated),
             rt::reason_text(reason));
  // The first start, then two failed restarts; the third restart exceeds intensity 2.
  BOOST_TEST(starts->load() == 3);
}

BOOST_AUTO_TEST_CASE(a_child_that_ignores_the_shutdown_is_killed_after_its_timeout) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "stubborn", {rt::restart_type::permanent, true, 200ms})}));
  expect_events({"started:stubborn"});
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(request_ok(root, rt::terminate_child_atom::value, std::string("stubborn")) == "");
  auto elapsed = std::chrono::steady_clock::now() - t0;
  BOOST_TEST((elapsed >= 200ms));
  BOOST_TEST((elapsed < patience));
  auto events = expect_events({"ignored:stubborn", "stopped:stubborn"});
  BOOST_TEST(events[0].reason == "user_shutdown");
  BOOST_TEST(events[1].reason == "kill");
  auto d = describe(root);
  BOOST_TEST(rt::to_string(require_child(d, "stubborn").state) == "stopped");
  BOOST_TEST(has_exit(d, "stubborn", "killed after shutdown timeout of 200 ms"));
  BOOST_TEST(d.restarts_in_period == 0);
}

BOOST_AUTO_TEST_CASE(a_start_failure_stops_the_started_children_in_reverse_and_fails) {
  auto obs = caf::actor{observer};
  rt::child_spec bad;
  bad.id = "bad";
  bad.start = [](const rt::child_context&) { return caf::actor{}; };
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "a"), worker_child(obs, "b"), bad,
                         worker_child(obs, "c")}));
  expect_events({"started:a", "started:b", "stopped:b", "stopped:a"});
  auto reason = wait_down(root);
  BOOST_TEST(is_supervisor_error(reason, rt::supervisor_errc::start_failed),
             rt::reason_text(reason));
  BOOST_TEST(rt::reason_text(reason).find("child 'bad'") != std::string::npos,
             rt::reason_text(reason));
  expect_no_event();
}

BOOST_AUTO_TEST_CASE(a_nested_start_failure_fails_the_parent_start) {
  auto obs = caf::actor{observer};
  rt::child_spec bad;
  bad.id = "bad";
  bad.start = [](const rt::child_context&) -> caf::actor { throw std::runtime_error("no"); };
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "a"),
                         rt::supervisor_child(sup("inner", rt::restart_strategy::one_for_one,
                                                  {worker_child(obs, "x"), bad})),
                         worker_child(obs, "b")}));
  expect_events({"started:a", "started:x", "stopped:x", "stopped:a"});
  auto reason = wait_down(root);
  BOOST_TEST(is_supervisor_error(reason, rt::supervisor_errc::start_failed),
             rt::reason_text(reason));
  BOOST_TEST(rt::reason_text(reason).find("child 'inner'") != std::string::npos,
             rt::reason_text(reason));
  expect_no_event();
}

BOOST_AUTO_TEST_CASE(dynamic_children_are_started_terminated_and_forgotten) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("host", rt::restart_strategy::one_for_one, {worker_child(obs, "reader")}));
  expect_events({"started:reader"});
  auto d1 = start(root, rt::start_child_atom::value,
                  worker_child(obs, "d1", {rt::restart_type::transient}));
  BOOST_TEST((expect_events({"started:d1"})[0].actor == d1));
  caf::error duplicate;
  client->request(root, patience, rt::start_child_atom::value, worker_child(obs, "d1"))
    .receive([&](caf::actor&) {}, [&](caf::error& e) { duplicate = e; });
  BOOST_TEST(is_supervisor_error(duplicate, rt::supervisor_errc::already_present));
  auto d = describe(root);
  BOOST_REQUIRE_EQUAL(d.children.size(), 2u);
  BOOST_TEST(d.children[1].id == "d1");
  BOOST_TEST(d.children[1].dynamic);

  BOOST_TEST(request_ok(root, rt::terminate_child_atom::value, std::string("d1")) == "");
  expect_events({"stopped:d1"});
  BOOST_TEST(child_of(describe(root), "d1") == nullptr);

  // A dynamic child that completes is forgotten as well.
  start(root, rt::start_child_atom::value, worker_child(obs, "d2", {rt::restart_type::transient}));
  auto d2 = expect_events({"started:d2"})[0].actor;
  caf::anon_send(d2, finish_atom::value);
  describe_until(root, [](auto& d) { return child_of(d, "d2") == nullptr; });
  expect_events({"stopped:d2"});

  // A child of the spec stays listed when terminated, can be restarted, and deleted.
  BOOST_TEST(request_ok(root, rt::terminate_child_atom::value, std::string("reader")) == "");
  expect_events({"stopped:reader"});
  BOOST_TEST(rt::to_string(require_child(describe(root), "reader").state) == "stopped");
  start(root, rt::restart_child_atom::value, std::string("reader"));
  expect_events({"started:reader"});
  BOOST_TEST(request_ok(root, rt::delete_child_atom::value, std::string("reader")).rfind(
               "not_stopped", 0)
             == 0);
  BOOST_TEST(request_ok(root, rt::terminate_child_atom::value, std::string("reader")) == "");
  BOOST_TEST(request_ok(root, rt::delete_child_atom::value, std::string("reader")) == "");
  expect_events({"stopped:reader"});
  BOOST_TEST(describe(root).children.empty());
  BOOST_TEST(request_ok(root, rt::terminate_child_atom::value, std::string("reader")).rfind(
               "no_such_child", 0)
             == 0);
}

namespace {

/// Like a host actor: adds an instance to its own supervisor as soon as it runs.
caf::behavior instance_starter(caf::event_based_actor* self, caf::actor supervisor,
                               rt::child_spec instance) {
  self->request(supervisor, patience, rt::start_child_atom::value, std::move(instance))
    .then([](caf::actor&) {}, [self](caf::error& e) { self->quit(e); });
  return {[](finish_atom) {}};
}

} // namespace

BOOST_AUTO_TEST_CASE(a_child_adds_instances_to_its_own_supervisor) {
  auto obs = caf::actor{observer};
  rt::child_spec host;
  host.id = "host";
  host.start = [obs](const rt::child_context& ctx) {
    auto a = ctx.system.spawn(instance_starter, ctx.supervisor,
                              worker_child(obs, "instance-1", {rt::restart_type::transient}));
    caf::anon_send(obs, event_atom::value, std::string("started"), ctx.id, a, std::string());
    return a;
  };
  auto root = spawn(sup("host:processing", rt::restart_strategy::one_for_one, {host}));
  auto instance = expect_events({"started:host", "started:instance-1"})[1].actor;
  auto d = describe_until(root, [](auto& d) { return child_of(d, "instance-1") != nullptr; });
  BOOST_TEST(require_child(d, "instance-1").dynamic);
  // A crashed instance is restarted; its host is left alone.
  caf::anon_send(instance, crash_atom::value);
  expect_events({"stopped:instance-1", "started:instance-1"});
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  expect_events({"stopped:instance-1"});
  BOOST_TEST((wait_down(root) == caf::exit_reason::user_shutdown));
}

BOOST_AUTO_TEST_CASE(thousands_of_dynamic_children_start_and_stop) {
  constexpr int n = 3000;
  auto spec = sup("host", rt::restart_strategy::one_for_one, {});
  spec.stop_dynamic = rt::dynamic_stop::all_at_once;
  auto root = spawn(std::move(spec));
  for (int i = 0; i < n; ++i)
    BOOST_REQUIRE(start(root, rt::start_child_atom::value,
                        worker_child(caf::actor{}, "instance-" + std::to_string(i),
                                     {rt::restart_type::transient})));
  auto d = describe(root);
  BOOST_REQUIRE_EQUAL(d.children.size(), static_cast<size_t>(n));
  BOOST_TEST(d.children.back().id == "instance-" + std::to_string(n - 1));
  BOOST_TEST(request_ok(root, rt::terminate_child_atom::value, std::string("instance-7")) == "");
  BOOST_TEST(describe(root).children.size() == static_cast<size_t>(n - 1));
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  BOOST_TEST((wait_down(root) == caf::exit_reason::user_shutdown));
}

BOOST_AUTO_TEST_CASE(describe_lists_the_nested_tree_with_restart_counts_and_recent_exits) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("node", rt::restart_strategy::rest_for_one,
                        {worker_child(obs, "a"),
                         rt::supervisor_child(sup("host:processing",
                                                  rt::restart_strategy::one_for_one,
                                                  {worker_child(obs, "w")}, 4, 10s))}));
  auto w = expect_events({"started:a", "started:w"})[1].actor;
  caf::anon_send(w, crash_atom::value);
  expect_events({"stopped:w", "started:w"});
  auto j = rt::to_json(describe(root));
  BOOST_TEST(j["name"] == "node");
  BOOST_TEST(j["strategy"] == "rest_for_one");
  BOOST_TEST(j["intensity"] == 3);
  BOOST_TEST(j["restarts_in_period"] == 0);
  BOOST_TEST(j["period_ms"] == 60000);
  BOOST_REQUIRE_EQUAL(j["children"].size(), 2u);
  BOOST_TEST(j["children"][0]["id"] == "a");
  BOOST_TEST(j["children"][0]["kind"] == "worker");
  BOOST_TEST(j["children"][0]["restart"] == "permanent");
  BOOST_TEST(j["children"][0]["state"] == "running");
  auto& host = j["children"][1];
  BOOST_TEST(host["kind"] == "supervisor");
  BOOST_TEST(host["restarts"] == 0);
  BOOST_REQUIRE(host.contains("supervisor"));
  auto& inner = host["supervisor"];
  BOOST_TEST(inner["name"] == "host:processing");
  BOOST_TEST(inner["strategy"] == "one_for_one");
  BOOST_TEST(inner["intensity"] == 4);
  BOOST_TEST(inner["restarts_in_period"] == 1);
  BOOST_TEST(inner["period_ms"] == 10000);
  BOOST_TEST(inner["children"][0]["id"] == "w");
  BOOST_TEST(inner["children"][0]["restarts"] == 1);
  BOOST_REQUIRE_EQUAL(inner["recent_exits"].size(), 1u);
  auto& exit = inner["recent_exits"][0];
  BOOST_TEST(exit["child"] == "w");
  BOOST_TEST(exit["reason"] == "unhandled_exception");
  BOOST_TEST(exit["action"] == "restarting");
  BOOST_TEST(exit["at_ms"].get<int64_t>() > 1'600'000'000'000);
}

namespace {

/// Starts like a supervisor but never describes itself.
caf::behavior mute_supervisor(caf::event_based_actor* self) {
  return {
    [](rt::await_started_atom) { return caf::ok_atom::value; },
    [self](rt::describe_atom, int64_t) { self->make_response_promise(); },
  };
}

} // namespace

BOOST_AUTO_TEST_CASE(a_child_supervisor_that_does_not_answer_is_listed_as_unresponsive) {
  auto obs = caf::actor{observer};
  rt::child_spec mute;
  mute.id = "mute";
  mute.kind = rt::child_kind::supervisor;
  mute.shutdown = rt::infinity;
  mute.start = [](const rt::child_context& ctx) { return ctx.system.spawn(mute_supervisor); };
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {rt::supervisor_child(sup("inner", rt::restart_strategy::one_for_one,
                                                  {worker_child(obs, "w")})),
                         mute}));
  expect_events({"started:w"});
  BOOST_TEST(request_ok(root, rt::await_started_atom::value) == "");
  auto t0 = std::chrono::steady_clock::now();
  auto d = describe(root, 200);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 1s));
  auto& m = require_child(d, "mute");
  BOOST_TEST(m.unresponsive);
  BOOST_TEST(m.supervisor.empty());
  BOOST_TEST(rt::to_json(d)["children"][1]["unresponsive"] == true);
  auto& inner = require_child(d, "inner");
  BOOST_TEST(!inner.unresponsive);
  BOOST_REQUIRE_EQUAL(inner.supervisor.size(), 1u);
  BOOST_TEST((require_child(inner.supervisor[0], "w").state == rt::child_state::running));
}

BOOST_AUTO_TEST_CASE(children_die_with_a_supervisor_that_is_killed) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one, {worker_child(obs, "a")}));
  auto a = expect_events({"started:a"})[0].actor;
  caf::anon_send_exit(root, caf::exit_reason::kill);
  BOOST_TEST((wait_down(a) == caf::exit_reason::kill));
}

BOOST_AUTO_TEST_CASE(an_invalid_spec_fails_the_supervisor) {
  auto obs = caf::actor{observer};
  auto root = spawn(sup("root", rt::restart_strategy::one_for_one,
                        {worker_child(obs, "a"), worker_child(obs, "a")}));
  auto reason = wait_down(root);
  BOOST_TEST(is_supervisor_error(reason, rt::supervisor_errc::invalid_spec),
             rt::reason_text(reason));
  expect_no_event();
}

BOOST_AUTO_TEST_CASE(a_description_crosses_the_wire_once_its_types_are_added) {
  caf::actor_system_config net_cfg;
  rt::add_supervisor_message_types(net_cfg);
  caf::actor_system net{net_cfg};
  rt::supervisor_description inner{"host:send", rt::restart_strategy::one_for_all, 2, 1, 500,
                                   {}, {{"w", "unhandled_exception", 1'700'000'000'000, "restarting"}}};
  inner.children.push_back({"w", rt::child_kind::worker, rt::restart_type::transient,
                            rt::child_state::restarting, 3, true, false, {}});
  rt::supervisor_description d{"node", rt::restart_strategy::rest_for_one, 3, 0, 5000, {}, {}};
  d.children.push_back({"host:send", rt::child_kind::supervisor, rt::restart_type::permanent,
                        rt::child_state::running, 0, false, false, {inner}});
  d.children.push_back({"mute", rt::child_kind::supervisor, rt::restart_type::permanent,
                        rt::child_state::running, 0, false, true, {}});
  // BASP serialises whole messages, which needs the type registered by name.
  std::vector<char> buf;
  caf::binary_serializer sink{net, buf};
  auto msg = caf::make_message(d);
  BOOST_REQUIRE_MESSAGE(!sink(msg), "serialising failed");
  caf::message back;
  caf::binary_deserializer source{net, buf};
  BOOST_REQUIRE_MESSAGE(!source(back), "deserialising failed");
  BOOST_REQUIRE(back.match_elements<rt::supervisor_description>());
  BOOST_TEST(rt::to_json(back.get_as<rt::supervisor_description>(0)) == rt::to_json(d));
  BOOST_TEST(rt::to_json(d)["children"][0]["supervisor"]["children"][0]["state"] == "restarting");
}

BOOST_AUTO_TEST_SUITE_END()
