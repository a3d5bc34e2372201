// B12 rehydration: what it costs to bring back an instance with a 10 000-entry journal, and
// how many bytes a dehydrated instance takes in Redis.
//
// The instance: `call_loop` with 5 000 sequential `co_await ctx.call<int>("step", i)`, run
// live once by hand (like tests/unit/actors/replay_test.cpp's driver) to produce a real
// journal: 5 000 `scheduled` + 5 000 `completed` entries, grouped in the persistence points
// the instance actor would write (point k = completed(k-1) + scheduled(k)).
//
// Cases (no peer unless stated):
// - decode: `decode_journal_entry` over the 10 000 encoded entries (informational).
// - replay: construct `convoy::context` from the decoded journal, create the coroutine and
//   resume it once: it re-executes all 5 000 steps from the journal and completes; checked
//   for the right result, no non-determinism and no new command. Target <= 50 ms / 10 k.
// - decode + replay: the two above together (what a node pays after the bytes arrived).
// - claim + replay via MessageBox: `message_box::claim` against a real redis-server (FCALL,
//   LRANGE of the journal over loopback, decode on the Redis loop thread) then replay.
// - dehydrated bytes (peer): the instance written into a real redis-server through
//   `message_box` (activate, claim, then the 5 001 persistence points via the
//   `convoy_checkpoint` function: RPUSH of the encoded entries onto the journal list, HSET of
//   the record); ours = MEMORY USAGE (SAMPLES 0) of the record hash + journal list; peer =
//   MEMORY USAGE of one string key holding the same bytes as one blob (every stored journal
//   entry concatenated, plus the record's fields and values length-prefixed). Target <= 1.5.

#include "bench_common.hpp"

#include "convoy/actors/context.hpp"
#include "convoy/actors/journal.hpp"
#include "convoy/actors/orchestration.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <variant>

namespace {

using namespace convoy;
using namespace convoy::bench;
using namespace std::chrono_literals;

constexpr int call_steps = 5000;
constexpr const char* processing_host = "bench-processing";
constexpr const char* receive_host = "bench-receive";

[[noreturn]] void fail(const std::string& why) {
  abandon("B12", "rehydration", why, 1);
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

orchestration<int64_t> call_loop(context& ctx, int n) {
  int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    auto r = co_await ctx.call<int>("step", i);
    sum += r;
  }
  co_return sum;
}

int64_t expected_sum(int n) {
  return static_cast<int64_t>(n) * (n - 1) / 2;
}

/// Owns a frame the way the instance actor's state does.
struct frame_owner {
  orchestration_frame frame;
  frame_owner() = default;
  frame_owner(const frame_owner&) = delete;
  frame_owner& operator=(const frame_owner&) = delete;
  ~frame_owner() {
    if (frame.handle)
      frame.handle.destroy();
  }
};

/// The live run that produces the journal, persistence point by persistence point.
struct recorded_instance {
  std::vector<std::vector<journal_entry>> points;
  std::vector<journal_entry> journal;
  std::string result;
};

recorded_instance record_live_run(const std::string& id) {
  recorded_instance out;
  context ctx(id, std::vector<journal_entry>{});
  frame_owner owner;
  owner.frame = call_loop(ctx, call_steps).release();
  ctx.set_clock(1'700'000'000'000);
  owner.frame.handle.resume();
  auto persist = [&] {
    auto o = ctx.take_output();
    out.journal.insert(out.journal.end(), o.entries.begin(), o.entries.end());
    out.points.push_back(std::move(o.entries));
  };
  persist();
  for (uint32_t step = 0; !owner.frame.handle.done(); ++step) {
    if (step >= static_cast<uint32_t>(call_steps))
      fail("live run did not finish after " + std::to_string(call_steps) + " steps");
    auto d = ctx.deliver(step, success(std::to_string(step)));
    if (!d.accepted || !d.resume)
      fail("live run: step " + std::to_string(step) + " was not awaited");
    d.resume.resume();
    persist();
  }
  out.result = owner.frame.promise->result().value_or("<none>");
  if (out.result != std::to_string(expected_sum(call_steps)))
    fail("live run returned " + out.result);
  return out;
}

std::vector<journal_entry> decode_all(const std::vector<std::string>& encoded) {
  std::vector<journal_entry> out;
  out.reserve(encoded.size());
  for (const auto& bytes : encoded) {
    auto r = decode_journal_entry(bytes);
    if (auto err = std::get_if<decode_error>(&r))
      fail("decode: " + err->message);
    out.push_back(std::get<journal_entry>(std::move(r)));
  }
  return out;
}

/// Rehydrates from a decoded journal and runs the coroutine through the whole replay.
void replay(const std::string& id, const std::vector<journal_entry>& journal) {
  context ctx(id, journal);
  frame_owner owner;
  owner.frame = call_loop(ctx, call_steps).release();
  ctx.set_clock(1'700'000'000'000);
  owner.frame.handle.resume();
  if (!owner.frame.handle.done())
    fail("replay did not complete (steps " + std::to_string(ctx.steps()) + ")");
  ctx.check_finished();
  if (ctx.nondeterminism())
    fail("replay: " + *ctx.nondeterminism());
  if (owner.frame.promise->result().value_or("") != std::to_string(expected_sum(call_steps)))
    fail("replay returned " + owner.frame.promise->result().value_or("<none>"));
  if (!ctx.take_output().activities.empty())
    fail("replay issued new activity commands");
}

// -- Redis --------------------------------------------------------------------------------

template <class T>
T wait_for(std::future<T>& f, const std::string& what, std::chrono::seconds limit = 30s) {
  if (f.wait_for(limit) != std::future_status::ready)
    fail(what + ": no answer within " + std::to_string(limit.count()) + " s");
  return f.get();
}

long long memory_usage(persistence::message_box& mb, const std::string& key) {
  auto v = mb.commands().run({"MEMORY", "USAGE", key, "SAMPLES", "0"}, 10s);
  if (v.is_error() || v.kind != persistence::redis_value::type::integer)
    fail("MEMORY USAGE " + key + ": " + v.to_text());
  return v.integer;
}

/// Writes the recorded instance into Redis through the MessageBox: activate, claim, then one
/// persistence point per recorded point (pipelined: they are applied in order).
void write_instance(persistence::message_box& mb, const std::string& id,
                    const recorded_instance& rec) {
  std::promise<std::string> activated;
  auto af = activated.get_future();
  mb.activate(receive_host, "", id, "bench.call-loop", 1, std::to_string(call_steps),
              processing_host, [&activated](std::string err) { activated.set_value(err); });
  if (auto err = wait_for(af, "activate"); !err.empty())
    fail("activate: " + err);

  std::promise<claim_result> claimed;
  auto cf = claimed.get_future();
  mb.claim(id, "bench-node", [&claimed](claim_result r) { claimed.set_value(std::move(r)); });
  auto c = wait_for(cf, "claim");
  if (c.status != store_status::ok)
    fail("claim: " + c.error);

  const size_t total = rec.points.size();
  std::atomic<size_t> acknowledged{0};
  std::atomic<bool> failed{false};
  std::promise<void> all_written;
  auto wf = all_written.get_future();
  std::string first_error;
  std::mutex error_mtx;
  uint32_t steps = 0;
  for (size_t k = 0; k < total; ++k) {
    checkpoint cp;
    cp.instance_id = id;
    cp.host = processing_host;
    cp.epoch = c.record.epoch;
    cp.seq = c.record.seq + k + 1;
    for (const auto& e : rec.points[k])
      if (e.event == entry_event::scheduled)
        steps = std::max(steps, e.step + 1);
    cp.steps = steps;
    cp.status = k + 1 == total ? instance_status::completed : instance_status::waiting;
    if (k + 1 == total)
      cp.result = rec.result;
    cp.entries = rec.points[k];
    mb.write(std::move(cp), [&, total](store_status s, std::string err) {
      if (s != store_status::ok && !failed.exchange(true)) {
        std::lock_guard<std::mutex> guard(error_mtx);
        first_error = err.empty() ? "status " + std::to_string(static_cast<int>(s)) : err;
      }
      if (++acknowledged == total)
        all_written.set_value();
    });
  }
  if (wf.wait_for(60s) != std::future_status::ready)
    fail("persistence points: " + std::to_string(acknowledged.load()) + " of "
         + std::to_string(total) + " acknowledged within 60 s");
  if (failed) {
    std::lock_guard<std::mutex> guard(error_mtx);
    fail("persistence point rejected: " + first_error);
  }
}

struct bytes_sample {
  long long ours = 0;
  long long peer = 0;
  size_t journal_len = 0;
  size_t journal_bytes = 0;
  size_t record_bytes = 0;
};

} // namespace

int main(int argc, char** argv) try {
  auto opts = parse_options(argc, argv);
  start_watchdog("B12", "rehydration", opts.quick ? 150s : 300s);
  const int cpu_rounds = opts.quick ? 5 : 21;
  const int redis_rounds = 5;

  // -- CPU: decode and replay ------------------------------------------------------------
  auto rec = record_live_run("b12-live");
  const auto entries = rec.journal.size();
  std::vector<std::string> encoded;
  encoded.reserve(entries);
  size_t encoded_bytes = 0;
  for (const auto& e : rec.journal) {
    encoded.push_back(encode(e));
    encoded_bytes += encoded.back().size();
  }
  const double per10k = 10000.0 / static_cast<double>(entries);

  // Warm-up (unrecorded), then decode / replay alternately.
  replay("b12-warm", decode_all(encoded));
  std::vector<double> decode_ms, replay_ms, total_ms, decode_cpu, replay_cpu, total_cpu;
  auto cpu_ms = [&](int64_t a, int64_t b) { return static_cast<double>(b - a) / 1e6 * per10k; };
  for (int round = 0; round < cpu_rounds; ++round) {
    auto c0 = thread_cpu_ns();
    auto t0 = clock_type::now();
    auto decoded = decode_all(encoded);
    auto c1 = thread_cpu_ns();
    auto t1 = clock_type::now();
    replay("b12-r" + std::to_string(round), decoded);
    auto c2 = thread_cpu_ns();
    auto t2 = clock_type::now();
    decode_ms.push_back(ms_between(t0, t1) * per10k);
    replay_ms.push_back(ms_between(t1, t2) * per10k);
    total_ms.push_back(ms_between(t0, t2) * per10k);
    decode_cpu.push_back(cpu_ms(c0, c1));
    replay_cpu.push_back(cpu_ms(c1, c2));
    total_cpu.push_back(cpu_ms(c0, c2));
  }

  // -- Redis: dehydrated bytes, claim + replay ----------------------------------------------
  convoy::test::temp_dir dir;
  auto server = convoy::test::redis_server::start(dir.path());
  watchdog_owns(server.pid(), dir.path().c_str());
  std::string redis_version;
  std::vector<double> claim_ms, ours_bytes, peer_bytes;
  std::vector<bytes_sample> samples;
  {
    persistence::message_box_config cfg;
    cfg.endpoint.host = server.host();
    cfg.endpoint.port = server.port();
    cfg.prefix = "bench:";
    persistence::message_box mb(cfg);
    if (auto err = mb.prepare({processing_host, receive_host}); !err.empty())
      fail("prepare: " + err);
    redis_version = mb.server_version();
    const auto& keys = mb.key_schema();

    for (int round = 0; round < redis_rounds; ++round) {
      auto id = "b12-inst-" + std::to_string(round);
      write_instance(mb, id, rec);

      // Bring it back: claim (FCALL + LRANGE + decode) and replay.
      auto t0 = clock_type::now();
      std::promise<claim_result> claimed;
      auto cf = claimed.get_future();
      mb.claim(id, "bench-node-2", [&claimed](claim_result r) { claimed.set_value(std::move(r)); });
      auto c = wait_for(cf, "claim for rehydration");
      if (c.status != store_status::ok)
        fail("claim for rehydration: " + c.error);
      if (c.journal.size() != entries)
        fail("claim returned " + std::to_string(c.journal.size()) + " journal entries");
      replay(id, c.journal);
      claim_ms.push_back(ms_between(t0, clock_type::now()) * per10k);

      // A: the instance as the MessageBox stores it.
      bytes_sample s;
      s.ours = memory_usage(mb, keys.instance(id)) + memory_usage(mb, keys.journal(id));
      // B: the same bytes as one string.
      auto stored = mb.commands().run({"LRANGE", keys.journal(id), "0", "-1"}, 10s);
      auto record = mb.commands().run({"HGETALL", keys.instance(id)}, 10s);
      if (!stored.is_array() || !record.is_array())
        fail("reading the stored instance back failed");
      std::string blob;
      for (const auto& e : stored.elements) {
        blob += e.str;
        s.journal_bytes += e.str.size();
      }
      s.journal_len = stored.elements.size();
      for (const auto& f : record.elements) {
        auto n = static_cast<uint32_t>(f.str.size());
        for (int i = 0; i < 4; ++i)
          blob.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
        blob += f.str;
        s.record_bytes += f.str.size();
      }
      auto blob_key = keys.prefix() + "blob:" + id;
      auto set = mb.commands().run({"SET", blob_key, blob}, 10s);
      if (set.is_error())
        fail("SET blob: " + set.str);
      s.peer = memory_usage(mb, blob_key);
      ours_bytes.push_back(static_cast<double>(s.ours));
      peer_bytes.push_back(static_cast<double>(s.peer));
      samples.push_back(s);
      mb.commands().run({"DEL", keys.instance(id), keys.journal(id), blob_key}, 10s);
    }
  }
  server.stop();
  watchdog_owns(0);

  auto with = [&](ojson extra) {
    ojson p{{"entries", entries}};
    p.update(extra);
    return p;
  };
  // The CPU phases run on this thread alone: its CPU time is a load-robust second view.
  auto with_cpu = [](ojson c, const std::vector<double>& cpu) {
    c["cpu"] = ojson{{"unit", "CPU ms per 10k entries (this thread)"}, {"ours", to_json(summarize(cpu))}};
    return c;
  };
  ojson cases = ojson::array();
  cases.push_back(with_cpu(
    make_solo_case(with({{"phase", "decode"}}), summarize(decode_ms), ""), decode_cpu));
  cases.push_back(with_cpu(make_solo_case(with({{"phase", "replay (context + coroutine)"}}),
                                          summarize(replay_ms), "<= 50"),
                           replay_cpu));
  cases.push_back(with_cpu(
    make_solo_case(with({{"phase", "decode + replay"}}), summarize(total_ms), "<= 50"),
    total_cpu));
  cases.push_back(make_solo_case(with({{"phase", "claim via MessageBox (real Redis) + replay"}}),
                                 summarize(claim_ms), "<= 50"));
  auto bytes_case = make_case(with({{"phase", "dehydrated bytes in Redis"}}),
                              summarize(ours_bytes),
                              "one Redis string holding the same bytes (MEMORY USAGE)",
                              summarize(peer_bytes), "<= 1.5");
  bytes_case["unit"] = "bytes";
  bytes_case["detail"] = ojson{{"stored_journal_entries", samples.front().journal_len},
                               {"stored_journal_bytes", samples.front().journal_bytes},
                               {"stored_record_field_bytes", samples.front().record_bytes}};
  cases.push_back(std::move(bytes_case));

  ojson result{
    {"id", "B12"},
    {"name", "rehydration"},
    {"unit", "ms per 10k entries"},
    {"higher_is_better", false},
    {"what",
     "An instance of 5 000 sequential ctx.call<int> steps (10 000 journal entries: scheduled + "
     "completed, small JSON payloads), recorded by running it live by hand. decode = "
     "decode_journal_entry over the encoded entries; replay = construct convoy::context from "
     "the decoded journal + create the coroutine + resume once, which re-executes all steps "
     "and completes (checked: same result, no non-determinism, no new command); claim via "
     "MessageBox = message_box::claim on a throwaway redis-server (FCALL convoy_claim, LRANGE "
     "over loopback, decode) then replay. Times normalised to 10 000 entries. Bytes: the "
     "instance written through message_box (activate, claim, 5 001 convoy_checkpoint "
     "persistence points without activity commands) vs one string key holding the stored "
     "journal entries concatenated plus the record's fields length-prefixed; MEMORY USAGE "
     "with SAMPLES 0 (this case's unit is bytes; lower is better). CPU phases also carry "
     "\"cpu\": this thread's CPU time over the same window (insensitive to other load)."},
    {"workload", ojson{{"call_steps", call_steps},
                       {"journal_entries", entries},
                       {"encoded_bytes", encoded_bytes}}},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version}},
                        ojson{{"cpu_rounds", cpu_rounds},
                              {"redis_rounds", redis_rounds},
                              {"warmup_rounds", 1},
                              {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  fail(std::string("exception: ") + e.what());
}
