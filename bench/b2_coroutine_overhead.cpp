// B2 coroutine-overhead: resuming a coroutine on a reply vs the same logic written by hand as a
// CAF `become()` state machine. Everything runs inside CAF actors of one actor system.
//
// The logic: N sequential calls `r = call(i)` to an echo actor, summing the replies.
// Every variant sends the same request message `(call, step, "i")` to the same echo actor and
// gets the same reply message `(result, step, "i")` back (a plain response, no request id).
//
// - ours, `convoy-context`: a plain CAF actor owns a `convoy::context` and the frame of an
//   `orchestration<int64_t>` doing `co_await ctx.call<int>("echo", i)`, and drives it like
//   tests/unit/actors/replay_test.cpp's driver: on a reply, `ctx.deliver` -> resume ->
//   `take_output` -> send the new activity command. This is Convoy's replay engine without
//   the instance actor (B1 measures that) and without any store: journal entries produced at
//   each step are taken and dropped.
// - ours, `bare-coroutine` (diagnostic): the same actor with a minimal coroutine type (same
//   frame ownership rules as orchestration<T>: suspend_always at both ends, owner destroys)
//   whose awaiter sends the request and parks the handle; the reply handler resumes it. It
//   isolates the cost of the coroutine mechanism itself from the context's bookkeeping.
// - peer, `hand-written become()`: per step, send the request and `become()` a behaviour that
//   waits for that step's reply, adds it, and moves on.
//
// ns per step = (time of the last reply handled - time of the first request sent) / N, taken
// inside the actors. `scheduler.max-threads` is pinned to 1 so the ratio measures CPU cost per
// step and not cross-thread wake-ups.

#include "bench_common.hpp"

#include "convoy/actors/context.hpp"
#include "convoy/actors/orchestration.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <charconv>
#include <coroutine>
#include <future>
#include <memory>

namespace {

using namespace convoy;
using namespace convoy::bench;
using namespace std::chrono_literals;

using call_atom = caf::atom_constant<caf::atom("call")>;
using result_atom = caf::atom_constant<caf::atom("result")>;
using start_atom = caf::atom_constant<caf::atom("start")>;

[[noreturn]] void fail(const std::string& why);

struct run_result {
  clock_type::time_point first;
  clock_type::time_point last;
  int64_t cpu_first = 0; ///< worker thread CPU time at `first`
  int64_t cpu_last = 0;
  std::string value;
};

using result_promise = std::shared_ptr<std::promise<run_result>>;

/// Wall-clock and CPU nanoseconds per step of one run.
struct per_step {
  double wall_ns;
  double cpu_ns;
};

int parse_int(const std::string& text) {
  int v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

/// Builds the successful outcome of a step, whatever shape `outcome` has in this tree
/// (`{ok, payload}` or `outcome::success(payload)`).
template <class O = outcome>
O success(std::string payload) {
  if constexpr (requires { O::success(std::string{}); })
    return O::success(std::move(payload));
  else
    return O{true, std::move(payload)};
}

/// The echo activity: answers `(result, step, args)` to whoever sent `(call, step, args)`.
caf::behavior echo(caf::event_based_actor*) {
  return {[](call_atom, uint32_t step, std::string& args) {
    return caf::make_message(result_atom::value, step, std::move(args));
  }};
}

// -- ours: convoy::context + orchestration<T> inside a plain CAF actor --------------------------

orchestration<int64_t> echo_loop(context& ctx, int n) {
  int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    auto r = co_await ctx.call<int>("echo", i);
    sum += r;
  }
  co_return sum;
}

/// How one run is split: `instances` orchestrations of `steps` calls, one after the other.
struct workload {
  int instances = 1;
  int steps = 1;
  int64_t expected() const { return int64_t{instances} * steps * (steps - 1) / 2; }
};

struct context_driver_state {
  caf::actor echo;
  workload load;
  int started = 0;
  int64_t sum = 0;
  std::unique_ptr<context> ctx;
  orchestration_frame frame;
  run_result out;
  result_promise done;
  static inline const char* name = "bench.context-driver";

  ~context_driver_state() {
    if (frame.handle)
      frame.handle.destroy();
  }
};

using context_driver = caf::stateful_actor<context_driver_state>;

/// Sends what the last resume asked for (the persistence point, minus the store).
void flush(context_driver* self) {
  auto out = self->state.ctx->take_output();
  for (auto& a : out.activities)
    self->send(self->state.echo, call_atom::value, a.step, std::move(a.args));
}

/// Starts the next orchestration: a fresh context and frame, as a rehydrating actor would.
void start_instance(context_driver* self) {
  auto& st = self->state;
  if (st.frame.handle)
    st.frame.handle.destroy(); // the finished one; before its context goes
  st.frame = {};
  st.ctx = std::make_unique<context>("b2-" + std::to_string(st.started++),
                                     std::vector<journal_entry>{});
  st.frame = echo_loop(*st.ctx, st.load.steps).release();
  st.frame.handle.resume();
  flush(self);
}

caf::behavior context_driver_fn(context_driver* self, caf::actor echo_actor, workload load,
                                result_promise done) {
  auto& init = self->state;
  init.echo = std::move(echo_actor);
  init.load = load;
  init.done = std::move(done);
  init.out.first = clock_type::now();
  init.out.cpu_first = thread_cpu_ns();
  start_instance(self);
  return {[=](result_atom, uint32_t step, std::string& payload) {
    auto& st = self->state;
    auto d = st.ctx->deliver(step, success(std::move(payload)));
    if (d.resume)
      d.resume.resume();
    if (!st.frame.handle.done()) {
      flush(self);
      return;
    }
    st.sum += std::stoll(st.frame.promise->result().value_or("0"));
    if (st.started < st.load.instances) {
      start_instance(self);
      return;
    }
    st.out.last = clock_type::now();
    st.out.cpu_last = thread_cpu_ns();
    st.out.value = std::to_string(st.sum);
    st.done->set_value(st.out);
    self->quit();
  }};
}

// -- ours, diagnostic: a bare coroutine ---------------------------------------------------------

/// A minimal lazy coroutine with the orchestration<T> frame rules.
class bare_task {
public:
  struct promise_type {
    bare_task get_return_object() noexcept {
      return bare_task{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }
  bare_task(bare_task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  ~bare_task() {
    if (h_)
      h_.destroy();
  }

private:
  explicit bare_task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

/// Where the bare coroutine and its actor meet: the actor, the awaited step and its reply.
struct bare_channel {
  caf::event_based_actor* self = nullptr;
  caf::actor echo;
  uint32_t step = 0;
  std::string reply;
  std::coroutine_handle<> waiter;
  int64_t sum = 0;
};

class bare_call {
public:
  bare_call(bare_channel& ch, int arg) noexcept : ch_(&ch), arg_(arg) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    ch_->waiter = h;
    ch_->self->send(ch_->echo, call_atom::value, ch_->step, std::to_string(arg_));
  }
  int await_resume() { return parse_int(ch_->reply); }

private:
  bare_channel* ch_;
  int arg_;
};

bare_task bare_loop(bare_channel& ch, int n) {
  for (int i = 0; i < n; ++i) {
    ch.step = static_cast<uint32_t>(i);
    auto r = co_await bare_call(ch, i);
    ch.sum += r;
  }
}

struct bare_driver_state {
  bare_channel ch;
  workload load;
  int started = 0;
  std::coroutine_handle<> frame;
  run_result out;
  result_promise done;
  static inline const char* name = "bench.bare-driver";

  ~bare_driver_state() {
    if (frame)
      frame.destroy();
  }
};

using bare_driver = caf::stateful_actor<bare_driver_state>;

void start_bare(bare_driver* self) {
  auto& st = self->state;
  if (st.frame)
    st.frame.destroy();
  ++st.started;
  st.frame = bare_loop(st.ch, st.load.steps).release();
  st.frame.resume();
}

caf::behavior bare_driver_fn(bare_driver* self, caf::actor echo_actor, workload load,
                             result_promise done) {
  auto& init = self->state;
  init.ch.self = self;
  init.ch.echo = std::move(echo_actor);
  init.load = load;
  init.done = std::move(done);
  init.out.first = clock_type::now();
  init.out.cpu_first = thread_cpu_ns();
  start_bare(self);
  return {[=](result_atom, uint32_t step, std::string& payload) {
    auto& st = self->state;
    if (step != st.ch.step || !st.ch.waiter)
      return;
    st.ch.reply = std::move(payload);
    std::exchange(st.ch.waiter, {}).resume();
    if (!st.frame.done())
      return;
    if (st.started < st.load.instances) {
      start_bare(self);
      return;
    }
    st.out.last = clock_type::now();
    st.out.cpu_last = thread_cpu_ns();
    st.out.value = std::to_string(st.ch.sum);
    st.done->set_value(st.out);
    self->quit();
  }};
}

// -- peer: hand-written become() state machine --------------------------------------------------

struct fsm_state {
  caf::actor echo;
  workload load;
  int started = 0;
  int64_t sum = 0;
  run_result out;
  result_promise done;
  static inline const char* name = "bench.fsm";
};

using fsm_actor = caf::stateful_actor<fsm_state>;

caf::behavior awaiting(fsm_actor* self, uint32_t step);

/// Issues call `step` and waits for its reply in a dedicated state.
void issue(fsm_actor* self, uint32_t step) {
  self->send(self->state.echo, call_atom::value, step, std::to_string(step));
  self->become(awaiting(self, step));
}

caf::behavior awaiting(fsm_actor* self, uint32_t step) {
  return {[=](result_atom, uint32_t s, const std::string& payload) {
    if (s != step)
      return; // not the reply this state waits for
    auto& st = self->state;
    st.sum += parse_int(payload);
    if (static_cast<int>(step) + 1 < st.load.steps) {
      issue(self, step + 1);
      return;
    }
    if (st.started < st.load.instances) { // the next "instance" starts over at step 0
      ++st.started;
      issue(self, 0);
      return;
    }
    st.out.last = clock_type::now();
    st.out.cpu_last = thread_cpu_ns();
    st.out.value = std::to_string(st.sum);
    st.done->set_value(st.out);
    self->quit();
  }};
}

caf::behavior fsm_fn(fsm_actor* self, caf::actor echo_actor, workload load, result_promise done) {
  auto& st = self->state;
  st.echo = std::move(echo_actor);
  st.load = load;
  st.done = std::move(done);
  st.out.first = clock_type::now();
  st.out.cpu_first = thread_cpu_ns();
  st.started = 1;
  issue(self, 0);
  return awaiting(self, 0);
}

// -- diagnostic: the context's bookkeeping alone, no actors -----------------------------------------

/// Drives `echo_loop` by hand on the calling thread (deliver -> resume -> take_output), the
/// echo answered in place: what the context + coroutine cost per step without any messaging.
per_step context_alone(workload load) {
  auto c0 = thread_cpu_ns();
  auto t0 = clock_type::now();
  int64_t sum = 0;
  for (int k = 0; k < load.instances; ++k) {
    context ctx("b2-alone-" + std::to_string(k), std::vector<journal_entry>{});
    auto frame = echo_loop(ctx, load.steps).release();
    frame.handle.resume();
    auto out = ctx.take_output();
    while (!frame.handle.done()) {
      if (out.activities.size() != 1)
        fail("context alone: expected one command per step");
      auto& a = out.activities.front();
      auto d = ctx.deliver(a.step, success(std::move(a.args)));
      if (d.resume)
        d.resume.resume();
      out = ctx.take_output();
    }
    sum += std::stoll(frame.promise->result().value_or("0"));
    frame.handle.destroy();
  }
  auto t1 = clock_type::now();
  auto c1 = thread_cpu_ns();
  if (sum != load.expected())
    fail("context alone returned " + std::to_string(sum));
  auto n = static_cast<double>(load.instances) * load.steps;
  return {ns_between(t0, t1) / n, static_cast<double>(c1 - c0) / n};
}

// -- the benchmark --------------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& why) {
  abandon("B2", "coroutine-overhead", why, 1);
}

template <class F>
per_step run_once(caf::actor_system& sys, F fn, const caf::actor& echo_actor, workload load,
                  const char* what) {
  auto done = std::make_shared<std::promise<run_result>>();
  auto fut = done->get_future();
  sys.spawn(fn, echo_actor, load, done);
  if (fut.wait_for(60s) != std::future_status::ready)
    fail(std::string(what) + ": no result within 60 s");
  auto r = fut.get();
  if (r.value != std::to_string(load.expected()))
    fail(std::string(what) + " returned " + r.value);
  auto n = static_cast<double>(load.instances) * load.steps;
  return {ns_between(r.first, r.last) / n, static_cast<double>(r.cpu_last - r.cpu_first) / n};
}

/// Wall-clock and CPU samples of one variant.
struct samples {
  std::vector<double> wall;
  std::vector<double> cpu;
  void add(per_step x) {
    wall.push_back(x.wall_ns);
    cpu.push_back(x.cpu_ns);
  }
};

} // namespace

int main(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  start_watchdog("B2", "coroutine-overhead", opts.quick ? 120s : 300s);
  const int total = opts.quick ? 20000 : 100000; // steps per round and variant
  const int per_instance = 1000;
  const int rounds = opts.quick ? 5 : 11;
  const int threads = 1;
  const workload typical{total / per_instance, per_instance};
  const workload long_lived{1, total};

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", threads);
  caf::actor_system sys{cfg};
  auto echo_actor = sys.spawn(echo);

  samples ctx, bare, fsm, ctx_long, fsm_long, alone;
  // One unrecorded warm-up of each, then all variants in turn, round after round.
  run_once(sys, context_driver_fn, echo_actor, typical, "convoy context");
  run_once(sys, bare_driver_fn, echo_actor, typical, "bare coroutine");
  run_once(sys, fsm_fn, echo_actor, typical, "hand-written become()");
  context_alone(typical);
  for (int round = 0; round < rounds; ++round) {
    ctx.add(run_once(sys, context_driver_fn, echo_actor, typical, "convoy context"));
    fsm.add(run_once(sys, fsm_fn, echo_actor, typical, "hand-written become()"));
    bare.add(run_once(sys, bare_driver_fn, echo_actor, typical, "bare coroutine"));
    ctx_long.add(run_once(sys, context_driver_fn, echo_actor, long_lived, "convoy context (long)"));
    fsm_long.add(run_once(sys, fsm_fn, echo_actor, long_lived, "hand-written become() (long)"));
    alone.add(context_alone(typical));
  }
  caf::anon_send_exit(echo_actor, caf::exit_reason::user_shutdown);

  const std::string peer_name = "hand-written CAF become() state machine";
  auto params = [&](const char* variant, workload w) {
    return ojson{{"variant", variant},
                 {"steps_per_instance", w.steps},
                 {"instances_per_round", w.instances},
                 {"scheduler.max-threads", threads}};
  };
  auto compare = [&](ojson p, const samples& ours, const samples& peer) {
    auto c = make_case(std::move(p), summarize(ours.wall), peer_name, summarize(peer.wall),
                       "<= 1.2");
    c["cpu"] = cpu_comparison(summarize(ours.cpu), summarize(peer.cpu));
    return c;
  };
  ojson cases = ojson::array();
  cases.push_back(compare(params("convoy-context", typical), ctx, fsm));
  cases.push_back(compare(params("bare-coroutine (diagnostic)", typical), bare, fsm));
  cases.push_back(compare(params("convoy-context, one long instance (diagnostic)", long_lived),
                          ctx_long, fsm_long));
  auto alone_case = make_solo_case(params("context alone, no actors (diagnostic)", typical),
                                   summarize(alone.wall), "");
  alone_case["params"].erase("scheduler.max-threads");
  alone_case["cpu"] = ojson{{"unit", "CPU ns/step (this thread)"},
                            {"ours", to_json(summarize(alone.cpu))}};
  cases.push_back(std::move(alone_case));

  ojson result{
    {"id", "B2"},
    {"name", "coroutine-overhead"},
    {"unit", "ns/step"},
    {"higher_is_better", false},
    {"what",
     "Sequential calls to an echo actor, summing the replies, inside CAF actors with one "
     "scheduler thread; identical request (call, step, \"i\") and reply (result, step, \"i\") "
     "messages for every variant; each round runs the same number of steps per variant, split "
     "into instances of steps_per_instance calls run one after the other. convoy-context: a "
     "plain CAF actor owns convoy::context + orchestration<int64_t> (co_await ctx.call<int>) "
     "and drives it like replay_test's driver (deliver -> resume -> take_output -> send "
     "command), a fresh context and frame per instance; journal entries are produced and "
     "dropped, no store, no instance actor (B1 measures those). bare-coroutine (diagnostic): "
     "same actor, a minimal suspend_always coroutine whose awaiter sends the request and parks "
     "the handle. One long instance (diagnostic): convoy-context with all steps in one "
     "instance, against the peer doing the same. context alone (diagnostic, no peer): the "
     "convoy-context loop driven by hand on one thread with the echo answered in place, i.e. "
     "the context + coroutine bookkeeping per step without messaging. Peer: per step send the "
     "request and become() a behaviour awaiting that step's reply. Clock inside the actors "
     "from the first request to the last reply, divided by the steps; rounds cycle through "
     "the variants after one unrecorded warm-up each. \"cpu\" per case: the single worker "
     "thread's CPU time over the same window (insensitive to other load on the machine)."},
    {"cases", std::move(cases)},
    {"env", environment({}, ojson{{"rounds", rounds},
                                  {"steps_per_round_and_variant", total},
                                  {"warmup_rounds", 1},
                                  {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
}
