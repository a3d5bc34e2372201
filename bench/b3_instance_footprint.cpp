// B3 instance-footprint: how fast orchestration instances are created and finished in memory,
// and how many bytes an idle live instance costs, against plain CAF actors and Erlang
// processes.
//
// Ours: `convoy::spawn_instance` (the real instance actor, its context and the coroutine of an
// `orchestration<int64_t>`) over an in-memory `instance_store` (memory_instances.hpp, as B1):
// - rate: 2^20 instances of `finish` (`co_return 0`: claim, start, completed persistence
//   point, quit) spawned from the main thread with at most `window` in flight; instances per
//   second from the first spawn until the store has seen the last completed point.
// - idle bytes: in a fresh process of this program (`--child idle-ours N`), N instances of
//   `idle` (`co_await ctx.sleep(24 h)`) spawned until every one has written its waiting
//   point (the timer's), then (RSS now - RSS before the spawns) / N; afterwards each is woken
//   (its timer message) and finishes.
// Peers, same machine, same run, rounds alternating ours / CAF / Erlang:
// - CAF 0.17: an event-based actor that counts itself and quits (rate); an event-based actor
//   waiting with a behaviour (idle bytes, `--child idle-caf N`); same window, same 2 threads.
// - Erlang/OTP (Debian erlang-base; bench/peers/processes.erl, 2 schedulers): processes that
//   exit at once (same window), and processes waiting in `receive` (RSS delta / N).
// Both C++ sides keep one handle per idle actor in a vector filled before the baseline; the
// Erlang side keeps a list of pids (16 bytes per process, inside its figure).

#include "bench_common.hpp"
#include "child_output.hpp"
#include "memory_instances.hpp"

#include "convoy/actors/orchestration.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>

namespace {

using namespace convoy;
using namespace convoy::bench;
using namespace std::chrono_literals;

constexpr const char* finish_type = "bench.finish";
constexpr const char* idle_type = "bench.idle";
constexpr int threads = 2;
constexpr size_t window = 4096;

orchestration<int64_t> finish(context&, int) {
  co_return 0;
}

orchestration<int64_t> idle(context& ctx, int) {
  co_await ctx.sleep(std::chrono::hours(24));
  co_return 1;
}

[[noreturn]] void fail(const std::string& why) {
  abandon("B3", "instance-footprint", why, 1);
}

/// Counts what the instances report: finished (a final persistence point) and waiting (any
/// other point, i.e. suspended at an await). Waiters are woken at multiples of `wake_every`.
class counter {
public:
  void finished() { bump(finished_); }
  void waiting() { bump(waiting_); }

  size_t finished_count() const { return finished_.load(std::memory_order_acquire); }
  size_t waiting_count() const { return waiting_.load(std::memory_order_acquire); }

  /// Waits until `pred(finished, waiting)` holds, at most `limit`.
  template <class Pred>
  bool wait(Pred pred, std::chrono::seconds limit) {
    auto deadline = clock_type::now() + limit;
    std::unique_lock<std::mutex> guard(mtx_);
    while (!pred(finished_count(), waiting_count())) {
      if (clock_type::now() > deadline)
        return false;
      cv_.wait_for(guard, 1ms);
    }
    return true;
  }

private:
  void bump(std::atomic<size_t>& c) {
    if ((c.fetch_add(1, std::memory_order_acq_rel) + 1) % 256 == 0)
      cv_.notify_one();
  }

  std::atomic<size_t> finished_{0};
  std::atomic<size_t> waiting_{0};
  std::mutex mtx_;
  std::condition_variable cv_;
};

/// The MessageBox replaced by memory: every claim hands out a fresh record of `type`, every
/// persistence point is acknowledged at once and counted.
class counting_store final : public instance_store {
public:
  counting_store(std::string type, counter& c) : type_(std::move(type)), counter_(c) {}

  void claim(const std::string& instance_id, const std::string& owner,
             std::function<void(claim_result)> done) override {
    done(memory_claim(instance_id, owner, type_, "0"));
  }

  void write(checkpoint cp, std::function<void(store_status, std::string)> done) override {
    auto final_point = is_final(cp.status);
    done(store_status::ok, {});
    if (final_point)
      counter_.finished();
    else
      counter_.waiting();
  }

  void ack(const std::string&, std::vector<std::string>) override {}
  void release(const std::string&, std::vector<std::string>) override {}

private:
  std::string type_;
  counter& counter_;
};

/// What an in-memory run needs besides its actor system (which it must outlive): the
/// configuration, the count, a store handing out instances of one type, the orchestrations.
struct memory_world {
  explicit memory_world(const char* type) : store(type, count) {
    cfg.set("scheduler.max-threads", threads);
    reg.add_orchestration(finish_type, 1, &finish);
    reg.add_orchestration(idle_type, 1, &idle);
  }
  caf::actor_system_config cfg;
  counter count;
  counting_store store;
  registry reg;
};

/// Spawns `n` with `spawn_one(i)`, at most `window` not yet finished; returns per second.
template <class Spawn>
double windowed_rate(size_t n, counter& c, Spawn spawn_one) {
  auto base = c.finished_count();
  auto t0 = clock_type::now();
  for (size_t i = 0; i < n; ++i) {
    if (i - (c.finished_count() - base) >= window
        && !c.wait([&](size_t f, size_t) { return i - (f - base) < window / 2; }, 60s))
      fail("instances stopped finishing (window full for 60 s)");
    spawn_one(i);
  }
  if (!c.wait([&](size_t f, size_t) { return f - base >= n; }, 120s))
    fail("not all " + std::to_string(n) + " finished within 120 s");
  return static_cast<double>(n) / std::chrono::duration<double>(clock_type::now() - t0).count();
}

// -- the CAF peer ------------------------------------------------------------------------------

void finishing_actor(caf::event_based_actor* self, counter* c) {
  c->finished();
  self->quit();
}

caf::behavior idle_actor(caf::event_based_actor*) {
  return {[](int) {}};
}

// -- rates (this process) ---------------------------------------------------------------------

struct rates {
  std::vector<double> ours, caf, erlang;
  std::string erlang_error;
};

/// A round of each side per round, after one unrecorded warm-up each.
void measure_rates(size_t n, int rounds, rates& out, bool with_erlang) {
  memory_world w(finish_type);
  auto& c = w.count;
  {
    caf::actor_system sys{w.cfg};
    auto svc = memory_services(w.reg, w.store);
    size_t serial = 0;
    auto ours = [&](size_t count) {
      return windowed_rate(count, c, [&](size_t) {
        spawn_instance(sys, svc, "b3-" + std::to_string(serial++));
      });
    };
    auto caf_side = [&](size_t count) {
      return windowed_rate(count, c, [&](size_t) { sys.spawn(finishing_actor, &c); });
    };
    auto erlang = [&]() -> double {
      if (!with_erlang)
        return 0;
      auto r = run_child({"escript", bench_source_dir() + "/peers/processes.erl", "rate",
                          std::to_string(n), std::to_string(window)},
                         120s);
      auto j = last_json_line(r.out);
      if (!r.ok() || !j.is_object()) {
        out.erlang_error = r.error.empty() ? "no result from processes.erl" : r.error;
        return 0;
      }
      return j.at("rate_per_s").get<double>();
    };
    ours(n / 4); // warm-up: a quarter round each
    caf_side(n / 4);
    for (int round = 0; round < rounds; ++round) {
      out.ours.push_back(ours(n));
      out.caf.push_back(caf_side(n));
      if (out.erlang_error.empty())
        if (auto e = erlang(); e > 0)
          out.erlang.push_back(e);
    }
  }
}

// -- idle bytes (a fresh child process per sample) ---------------------------------------------

/// `--child idle-ours N` / `--child idle-caf N`: prints {"bytes_per": ..., "rss_delta": ...}.
int idle_child(const std::string& side, size_t n) {
  memory_world w(idle_type);
  auto& c = w.count;
  double per = 0;
  int64_t delta = 0;
  {
    caf::actor_system sys{w.cfg};
    auto svc = memory_services(w.reg, w.store);
    std::vector<caf::actor> handles(n); // touched before the baseline
    // Warm-up: one of each kind, so lazily built state is in the baseline.
    handles[0] = ("ours" == side) ? spawn_instance(sys, svc, "warm") : sys.spawn(idle_actor);
    if (side == "ours" && !c.wait([](size_t, size_t w) { return w >= 1; }, 30s))
      fail("warm-up instance did not wait");
    std::this_thread::sleep_for(50ms);
    auto before = rss_bytes();
    for (size_t i = 1; i < n; ++i)
      handles[i] = side == "ours" ? spawn_instance(sys, svc, "idle-" + std::to_string(i))
                                  : sys.spawn(idle_actor);
    if (side == "ours") {
      if (!c.wait([n](size_t, size_t w) { return w >= n; }, 120s))
        fail("only " + std::to_string(c.waiting_count()) + " of " + std::to_string(n)
             + " instances reached their await within 120 s");
    } else {
      // An idle actor has nothing to report; a message round through each proves it runs.
      std::this_thread::sleep_for(200ms);
    }
    auto after = rss_bytes();
    delta = after - before;
    per = static_cast<double>(delta) / static_cast<double>(n - 1);
    // Finish them: ours by their timer, the CAF actors by an exit.
    for (auto& h : handles) {
      if (side == "ours") {
        instance_message m;
        m.message_id = "t";
        m.what = instance_message::kind::timer;
        m.step = 0;
        caf::anon_send(h, std::move(m));
      } else {
        caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
      }
    }
    if (side == "ours" && !c.wait([n](size_t f, size_t) { return f >= n; }, 120s))
      fail("woken instances did not all finish within 120 s");
    handles.clear();
  }
  std::cout << ojson{{"bytes_per", per}, {"rss_delta", delta}, {"count", n}}.dump() << std::endl;
  return 0;
}

double idle_sample(const std::string& side, size_t n) {
  char self[4096];
  auto len = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0)
    fail("cannot read /proc/self/exe");
  self[len] = '\0';
  auto r = run_child({self, "--child", "idle-" + side, std::to_string(n)}, 180s);
  auto j = last_json_line(r.out);
  if (!r.ok() || !j.is_object())
    fail("idle child (" + side + "): " + (r.error.empty() ? "no result" : r.error));
  return j.at("bytes_per").get<double>();
}

} // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::err); // the instance actor logs start and finish at info
  if (argc == 4 && std::string_view(argv[1]) == "--child") {
    start_watchdog("B3", "instance-footprint", 300s);
    std::string mode = argv[2];
    return idle_child(mode == "idle-ours" ? "ours" : "caf", std::stoul(argv[3]));
  }
  auto opts = parse_options(argc, argv);
  start_watchdog("B3", "instance-footprint", opts.quick ? 120s : 900s);
  // Per round and side: 5 rounds of 2^18 = 1.3 M (> 2^20) created and finished in all.
  const size_t created = opts.quick ? (1u << 15) : (1u << 18);
  const size_t idle_count = opts.quick ? (1u << 13) : (1u << 17);
  const int rounds = 5;

  auto otp = otp_release();
  rates r;
  if (otp.empty())
    r.erlang_error = "erl not found (Debian package erlang-base; scripts/install-deps)";
  measure_rates(created, rounds, r, !otp.empty());

  std::vector<double> ours_idle, caf_idle, erlang_idle;
  std::string erlang_idle_error = r.erlang_error;
  idle_sample("ours", 1024); // warm-up (page cache of the binary)
  for (int round = 0; round < rounds; ++round) {
    ours_idle.push_back(idle_sample("ours", idle_count));
    caf_idle.push_back(idle_sample("caf", idle_count));
    if (erlang_idle_error.empty()) {
      auto e = run_child({"escript", bench_source_dir() + "/peers/processes.erl", "idle",
                          std::to_string(idle_count)},
                         120s);
      auto j = last_json_line(e.out);
      if (!e.ok() || !j.is_object())
        erlang_idle_error = e.error.empty() ? "no result from processes.erl" : e.error;
      else
        erlang_idle.push_back(j.at("bytes_per_process").get<double>());
    }
  }

  ojson rate_params{{"instances", created}, {"in_flight_window", window},
                    {"scheduler.max-threads", threads}};
  ojson idle_params{{"idle_instances", idle_count}, {"scheduler.max-threads", threads}};
  ojson cases = ojson::array();
  auto with_unit = [](ojson c, const char* unit, bool higher) {
    c["unit"] = unit;
    c["higher_is_better"] = higher;
    return c;
  };
  auto erlang_case = [&](ojson params, const std::vector<double>& ours,
                         const std::vector<double>& peer, const std::string& error) {
    if (!error.empty()) {
      auto c = make_solo_case(std::move(params), summarize(ours), "");
      c["peer"] = ojson{{"name", "Erlang/OTP processes"}, {"error", error}};
      return c;
    }
    return make_info_case(std::move(params), summarize(ours), "Erlang/OTP " + otp + " processes",
                          summarize(peer));
  };
  cases.push_back(with_unit(make_case(rate_params, summarize(r.ours),
                                      "CAF 0.17 event-based actor spawn + quit",
                                      summarize(r.caf), ">= 0.5"),
                            "instances/s", true));
  cases.push_back(
    with_unit(erlang_case(rate_params, r.ours, r.erlang, r.erlang_error), "instances/s", true));
  cases.push_back(with_unit(make_case_on_ours(idle_params, summarize(ours_idle),
                                              "CAF 0.17 idle event-based actor",
                                              summarize(caf_idle), "<= 2048"),
                            "bytes/idle instance", false));
  cases.push_back(with_unit(erlang_case(idle_params, ours_idle, erlang_idle, erlang_idle_error),
                            "bytes/idle instance", false));

  ojson versions = ojson::object();
  if (!otp.empty())
    versions["erlang_otp"] = otp;
  ojson result{
    {"id", "B3"},
    {"name", "instance-footprint"},
    {"unit", "instances/s"},
    {"higher_is_better", true},
    {"what",
     "rate: instances created and finished per second (ours: convoy::spawn_instance of an "
     "orchestration that returns at once, over an in-memory store acknowledging every point; "
     "CAF: an event-based actor that quits in its init; Erlang: a process that exits), at most "
     "in_flight_window unfinished at a time, spawned from one thread. idle bytes: a fresh "
     "process spawns idle_instances instances suspended at co_await ctx.sleep(24h) (CAF: actors "
     "waiting with a behaviour; Erlang: processes in receive), RSS delta / count. Rounds "
     "alternate ours / CAF / Erlang after one unrecorded warm-up. The rate target is on ours / "
     "CAF; the bytes target (<= 2048) is on ours."},
    {"cases", std::move(cases)},
    {"env", environment(versions, ojson{{"rounds", rounds}, {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
}
