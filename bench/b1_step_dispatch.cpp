// B1 step-dispatch: one in-memory orchestration step through the real instance actor,
// against a plain CAF event-based request/response ping-pong of the same count.
//
// Ours: `convoy::spawn_instance` runs `echo_loop` (N sequential `co_await ctx.call<int>`)
// over an in-memory `instance_store`. Every persistence point is acknowledged synchronously
// by the store, which also forwards the checkpoint's activity commands to a "send host"
// actor; that actor answers each with an `instance_message{result}` to the instance actor.
// One step = result message in -> context::deliver -> coroutine resumed -> next
// `co_await` -> persistence point (checkpoint built, store write) -> command out to the send
// host -> send host answers. Per instance, the clock starts when the store sees the command of
// step 0 and stops when it sees the final (completed) checkpoint, i.e. it covers exactly N
// steps; a round runs several instances one after the other and sums their windows.
//
// Peer: as many client actors, one after the other, each doing N sequential
// `request(server, ping, i).then(...)`; the server answers `i`. The clock covers N round trips
// per client.
//
// Both run in the same actor system per case, alternating ours / peer every round.

#include "bench_common.hpp"
#include "memory_instances.hpp"

#include "convoy/actors/instance_actor.hpp"
#include "convoy/actors/orchestration.hpp"
#include "convoy/actors/registry.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <deque>
#include <future>
#include <memory>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(convoy::activity_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const convoy::instance_services>)

namespace {

using namespace convoy;
using namespace convoy::bench;
using namespace std::chrono_literals;

using start_atom = caf::atom_constant<caf::atom("start")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;

constexpr const char* orchestration_type = "bench.echo-loop";

/// The orchestration under test: N sequential activity calls, summing their results.
orchestration<int64_t> echo_loop(context& ctx, int n) {
  int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    auto r = co_await ctx.call<int>("echo", i);
    sum += r;
  }
  co_return sum;
}

int64_t expected_sum(int n) {
  return static_cast<int64_t>(n) * (n - 1) / 2;
}

/// What one timed run reports back to `main`.
struct run_result {
  clock_type::time_point first;
  clock_type::time_point last;
  int64_t cpu_first = 0; ///< thread CPU time at `first` (meaningful with one worker only)
  int64_t cpu_last = 0;
  std::string value; ///< JSON text of the result, or an error.
};

/// The MessageBox replaced by memory: claims hand out a fresh record, persistence points are
/// acknowledged at once (the callback runs synchronously, inside the instance actor's
/// handler), and activity commands go straight to the send host actor.
class memory_store final : public instance_store {
public:
  memory_store(caf::actor send_host, int steps) : send_host_(std::move(send_host)), steps_(steps) {}

  std::future<run_result> result() { return done_.get_future(); }

  void claim(const std::string& instance_id, const std::string& owner,
             std::function<void(claim_result)> done) override {
    done(memory_claim(instance_id, owner, orchestration_type, std::to_string(steps_)));
  }

  void write(checkpoint cp, std::function<void(store_status, std::string)> done) override {
    for (auto& a : cp.activities) {
      if (a.step == 0) {
        out_.first = clock_type::now();
        out_.cpu_first = thread_cpu_ns();
      }
      caf::anon_send(send_host_, std::move(a));
    }
    if (is_final(cp.status) && !finished_) {
      out_.last = clock_type::now();
      out_.cpu_last = thread_cpu_ns();
      out_.value = cp.status == instance_status::completed
                     ? cp.result
                     : std::string("instance ") + std::string(to_string(cp.status)) + ": "
                         + cp.error;
      finished_ = true;
      done(store_status::ok, {});
      done_.set_value(out_);
      return;
    }
    done(store_status::ok, {});
  }

  void ack(const std::string&, std::vector<std::string>) override {}
  void release(const std::string&, std::vector<std::string>) override {}

  /// Drops the send host handle (called before the actor system goes away).
  void release() { send_host_ = caf::actor{}; }

private:
  caf::actor send_host_;
  int steps_;
  run_result out_;
  bool finished_ = false;
  std::promise<run_result> done_;
};

/// The send host: spawns the instance (so it knows its handle before any command can
/// arrive) and answers every activity command with the echoed argument.
struct send_host_state {
  caf::actor instance;
  static inline const char* name = "bench.send-host";
};

caf::behavior send_host(caf::stateful_actor<send_host_state>* self) {
  return {
    [=](start_atom, std::shared_ptr<const instance_services>& svc, std::string& id) {
      self->state.instance = spawn_instance(self->system(), std::move(svc), std::move(id));
    },
    [=](activity_command& cmd) {
      instance_message m;
      m.message_id = std::to_string(cmd.step);
      m.what = instance_message::kind::result;
      m.step = cmd.step;
      m.ok = true;
      m.payload = std::move(cmd.args); // the echo activity returns its argument
      self->send(self->state.instance, std::move(m));
    },
  };
}

// -- peer: plain CAF request/response ---------------------------------------------------------

caf::behavior ping_server(caf::event_based_actor*) {
  return {[](ping_atom, int x) { return x; }};
}

struct ping_client_state {
  caf::actor server;
  int n = 0;
  int64_t sum = 0;
  run_result out;
  std::shared_ptr<std::promise<run_result>> done;
  static inline const char* name = "bench.ping-client";
};

using ping_client_actor = caf::stateful_actor<ping_client_state>;

void ping(ping_client_actor* self, int i) {
  self->request(self->state.server, caf::infinite, ping_atom::value, i).then([=](int r) {
    auto& st = self->state;
    st.sum += r;
    if (i + 1 < st.n) {
      ping(self, i + 1);
      return;
    }
    st.out.last = clock_type::now();
    st.out.cpu_last = thread_cpu_ns();
    st.out.value = std::to_string(st.sum);
    st.done->set_value(st.out);
    self->quit();
  });
}

caf::behavior ping_client(ping_client_actor* self, caf::actor server, int n,
                          std::shared_ptr<std::promise<run_result>> done) {
  self->state.server = std::move(server);
  self->state.n = n;
  self->state.done = std::move(done);
  self->state.out.first = clock_type::now();
  self->state.out.cpu_first = thread_cpu_ns();
  ping(self, 0);
  return {[](ping_atom) {}}; // all work happens in response handlers
}

// -- the benchmark ----------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& why) {
  abandon("B1", "step-dispatch", why, 1);
}

run_result wait_for(std::future<run_result> f, const char* what) {
  if (f.wait_for(60s) != std::future_status::ready)
    fail(std::string(what) + ": no result within 60 s");
  return f.get();
}

struct case_result {
  std::vector<double> ours_ns;
  std::vector<double> peer_ns;
  std::vector<double> ours_cpu_ns;
  std::vector<double> peer_cpu_ns;
};

/// Wall and CPU nanoseconds of one run's timed window.
std::pair<double, double> window(const run_result& r) {
  return {ns_between(r.first, r.last), static_cast<double>(r.cpu_last - r.cpu_first)};
}

/// A round: `instances` runs of `steps` steps each, one after the other; their timed
/// windows are summed (spawning and claiming an instance happen outside the windows).
case_result run_case(int threads, int instances, int steps, int rounds) {
  // Stores outlive the actor system, so no instance can ever outlive the store it points at.
  std::deque<std::unique_ptr<memory_store>> stores;
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", threads);
  caf::actor_system sys{cfg};

  auto reg = std::make_shared<registry>();
  reg->add_orchestration(orchestration_type, 1, &echo_loop);
  auto host = sys.spawn(send_host);
  auto server = sys.spawn(ping_server);
  int spawned = 0;

  auto run_ours = [&] {
    double wall = 0;
    double cpu = 0;
    for (int k = 0; k < instances; ++k) {
      stores.push_back(std::make_unique<memory_store>(host, steps));
      auto& store = *stores.back();
      auto csvc = memory_services(*reg, store);
      auto fut = store.result();
      caf::anon_send(host, start_atom::value, csvc,
                     "b1-" + std::to_string(threads) + "-" + std::to_string(spawned++));
      auto r = wait_for(std::move(fut), "convoy instance");
      if (r.value != std::to_string(expected_sum(steps)))
        fail("convoy instance returned " + r.value);
      auto [w, c] = window(r);
      wall += w;
      cpu += c;
    }
    return std::pair{wall / (instances * steps), cpu / (instances * steps)};
  };
  auto run_peer = [&] {
    double wall = 0;
    double cpu = 0;
    for (int k = 0; k < instances; ++k) {
      auto done = std::make_shared<std::promise<run_result>>();
      auto fut = done->get_future();
      sys.spawn(ping_client, server, steps, done);
      auto r = wait_for(std::move(fut), "CAF ping-pong");
      if (r.value != std::to_string(expected_sum(steps)))
        fail("CAF ping-pong returned " + r.value);
      auto [w, c] = window(r);
      wall += w;
      cpu += c;
    }
    return std::pair{wall / (instances * steps), cpu / (instances * steps)};
  };

  // One unrecorded warm-up round each, then A B A B ...
  run_ours();
  run_peer();
  case_result out;
  for (int round = 0; round < rounds; ++round) {
    auto [ours_wall, ours_cpu] = run_ours();
    auto [peer_wall, peer_cpu] = run_peer();
    out.ours_ns.push_back(ours_wall);
    out.ours_cpu_ns.push_back(ours_cpu);
    out.peer_ns.push_back(peer_wall);
    out.peer_cpu_ns.push_back(peer_cpu);
  }
  caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(server, caf::exit_reason::user_shutdown);
  for (auto& s : stores)
    s->release(); // no actor handle may outlive `sys`
  // `sys` waits for every actor here; the instances quit after their final write.
  return out;
}

} // namespace

int main(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  start_watchdog("B1", "step-dispatch", opts.quick ? 120s : 300s);
  spdlog::set_level(spdlog::level::err); // the instance actor logs start and finish at info
  const int steps = 1000; // per instance: a long orchestration, still a realistic one
  const int instances = opts.quick ? 2 : 20;
  const int rounds = opts.quick ? 5 : 11;

  ojson cases = ojson::array();
  for (int threads : {1, 2}) {
    auto r = run_case(threads, instances, steps, rounds);
    auto c = make_case(ojson{{"steps_per_instance", steps},
                             {"instances_per_round", instances},
                             {"scheduler.max-threads", threads}},
                       summarize(r.ours_ns), "CAF 0.17 event-based request/response",
                       summarize(r.peer_ns), "<= 1.5");
    // With one worker both sides run on one thread: its CPU time is a load-robust second view.
    if (threads == 1)
      c["cpu"] = cpu_comparison(summarize(r.ours_cpu_ns), summarize(r.peer_cpu_ns));
    cases.push_back(std::move(c));
  }

  ojson result{
    {"id", "B1"},
    {"name", "step-dispatch"},
    {"unit", "ns/step"},
    {"higher_is_better", false},
    {"what",
     "ours: mean latency of one orchestration step through convoy::spawn_instance (real instance "
     "actor, context, orchestration<int64_t> coroutine) over an in-memory instance_store that "
     "acknowledges every persistence point synchronously and forwards its activity commands to "
     "a send-host actor, which answers each with instance_message{result}; a step is result in "
     "-> deliver -> coroutine resumed -> next co_await ctx.call<int> -> checkpoint written -> "
     "command out -> answer; clock from the step-0 command to the completed checkpoint of each "
     "instance (spawn and claim excluded), summed over the round's instances and divided by "
     "their steps. Peer: the same number of clients, one after the other, each doing "
     "steps_per_instance sequential request(server, ping, i).then(...) round trips to an "
     "event-based server. Same actor system, rounds alternate ours/peer after one "
     "unrecorded warm-up each. With scheduler.max-threads=1 each case also carries \"cpu\": "
     "the worker thread's CPU time over the same window (insensitive to other load on the "
     "machine)."},
    {"cases", std::move(cases)},
    {"env", environment({}, ojson{{"rounds", rounds},
                                  {"warmup_rounds", 1},
                                  {"spdlog_level", "err"},
                                  {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
}
