// B13 scale-soak: 1 M dehydrated instances in Redis and a real node waking some of them
// periodically for a bounded time: node RSS, Redis bytes per instance, wake-up latency p99
// per time window and its drift; Erlang holding 1 M idle processes is the memory reference.
//
// Ours:
// - Bulk creation through the MessageBox API, before any node runs: per instance of the
//   `steps` example (count 1, no sink), `message_box::activate` (record + instances index +
//   start message), `claim` (owner "bench-writer") and `write` of its first persistence point
//   as the instance itself writes it on its `ctx.call("record", {"sink":"","step":0})`:
//   status waiting, one `scheduled` journal entry, and no activity command (so nothing runs
//   it). In chunks with many in flight. The start messages are then trimmed from the
//   processing queue (XTRIM MAXLEN 0): every instance is dehydrated, waiting for the result of
//   step 0. Redis bytes per instance = (INFO used_memory after - before) / N.
// - One `convoy node` (flow_bench.hpp) then starts with nothing in memory. A wake-up is the
//   result of step 0 put on the processing queue (the same entry `complete_activity` adds):
//   the node rehydrates the instance (claim + replay), delivers the result, and the instance
//   completes; latency = from the XADD to the "completed" event on the tracking stream. Wake-ups
//   run at a fixed rate on distinct instances, in windows of fixed length; p99 per window.
// - Drift = median p99 of the second half of the windows / median p99 of the first half - 1
//   (after one unrecorded warm-up window); target <= 0.2. Node RSS is sampled after each
//   window.
// - Peer (memory reference): bench/peers/processes.erl holding N idle processes (RSS delta /
//   N), one run between consecutive windows of ours (5 rounds alternating).

#include "flow_bench.hpp"

#include "convoy/actors/journal.hpp"
#include "convoy/test/temp_dir.hpp"

namespace {

using namespace convoy;
using namespace convoy::bench;

const std::string wake_args = "{\"sink\":\"\",\"step\":0}";

int64_t used_memory(raw_redis& r) {
  auto rep = r.run({"INFO", "memory"});
  if (!rep || rep->type != REDIS_REPLY_STRING)
    fail("INFO memory: " + reply_text(rep.get()));
  std::string_view text(rep->str, rep->len);
  auto at = text.find("used_memory:");
  if (at == std::string_view::npos)
    fail("INFO memory has no used_memory");
  return std::stoll(std::string(text.substr(at + 12, 32)));
}

/// The first persistence point of a `steps` instance (count 1) as the instance writes it.
checkpoint first_point(const std::string& id, uint64_t epoch) {
  checkpoint cp;
  cp.instance_id = id;
  cp.host = "processing";
  cp.epoch = epoch;
  cp.seq = 1;
  cp.status = instance_status::waiting;
  cp.steps = 1;
  cp.entries.push_back(journal_entry{0, entry_event::scheduled, op_kind::call,
                                     operation_hash(op_kind::call, "record", wake_args),
                                     wake_args});
  return cp;
}

std::string instance_id(size_t i) {
  return "s" + std::to_string(i);
}

/// Creates instances [0, n) in chunks: activate all of a chunk, claim them, write their point.
void create_dehydrated(persistence::message_box& box, size_t n) {
  const size_t chunk = 4096;
  const auto input = flow_input(1);
  std::mutex mtx;
  std::string error;
  countdown cd;
  auto note = [&](const std::string& what, const std::string& err) {
    if (!err.empty()) {
      std::lock_guard<std::mutex> guard(mtx);
      error = what + ": " + err;
    }
    cd.arrive();
  };
  auto wait = [&](const char* what) {
    if (!cd.wait_until(clock_type::now() + 60s))
      fail(std::string(what) + ": no answer within 60 s");
    std::lock_guard<std::mutex> guard(mtx);
    if (!error.empty())
      fail(error);
  };
  std::vector<uint64_t> epochs(chunk);
  for (size_t base = 0; base < n; base += chunk) {
    auto m = std::min(chunk, n - base);
    cd.reset(m);
    for (size_t i = 0; i < m; ++i)
      box.activate("receive", "", instance_id(base + i), "steps", 1, input, "processing",
                   [&](std::string err) { note("activate", err); });
    wait("activate");
    cd.reset(m);
    for (size_t i = 0; i < m; ++i)
      box.claim(instance_id(base + i), "bench-writer", [&, i](claim_result r) {
        epochs[i] = r.record.epoch;
        note("claim", r.status == store_status::ok ? std::string{}
                                                   : "status " + std::to_string(int(r.status)) + " "
                                                       + r.error);
      });
    wait("claim");
    cd.reset(m);
    for (size_t i = 0; i < m; ++i)
      box.write(first_point(instance_id(base + i), epochs[i]),
                [&](store_status s, std::string err) {
                  note("write", s == store_status::ok ? std::string{} : "status " + err);
                });
    wait("write");
  }
}

struct window_result {
  double p99_ms = 0;
  double p50_ms = 0;
  size_t woken = 0;
  size_t completed = 0;
};

} // namespace

int main(int argc, char** argv) {
  auto opts = parse_options(argc, argv);
  start_bench("B13", "scale-soak", opts.quick ? 150s : 1500s);
  const size_t instances = opts.quick ? 50'000 : 1'000'000;
  const double wake_rate = opts.quick ? 100 : 200; // per second
  const double window_s = opts.quick ? 2 : 10;
  const int windows = opts.quick ? 6 : 8; // recorded, after one warm-up window
  const int peer_rounds = 5;

  test::temp_dir dir;
  auto redis = test::redis_server::start(dir.path());
  raw_redis admin("127.0.0.1", redis.port());
  persistence::message_box_config cfg;
  cfg.endpoint = loopback(redis.port());
  auto box = std::make_unique<persistence::message_box>(cfg);
  if (auto err = box->prepare({"receive", "processing", "send"}); !err.empty())
    fail("prepare: " + err);
  const auto keys = box->key_schema();

  auto mem0 = used_memory(admin);
  auto t_create = clock_type::now();
  create_dehydrated(*box, instances);
  auto create_s = std::chrono::duration<double>(clock_type::now() - t_create).count();
  admin.run({"XTRIM", keys.queue("processing"), "MAXLEN", "0"});
  admin.run({"XTRIM", keys.tracking(), "MAXLEN", "0"});
  auto mem1 = used_memory(admin);
  const double redis_bytes_per = static_cast<double>(mem1 - mem0) / static_cast<double>(instances);
  box.reset();

  node_process node(dir.path(), redis);
  event_observer obs(redis.port(), keys.tracking());
  auto redis_version = node.box().server_version();
  const auto rss_idle = rss_bytes_of(node.pid());

  // Distinct instances in a scattered order: i -> i * stride mod N (stride coprime with N).
  size_t stride = 7919;
  while (std::gcd(stride, instances) != 1)
    stride += 2;
  size_t next_wake = 0;
  raw_redis waker("127.0.0.1", redis.port());
  auto window = [&]() {
    auto n = static_cast<size_t>(wake_rate * window_s);
    std::vector<std::pair<std::string, clock_type::time_point>> sent;
    sent.reserve(n);
    auto t0 = clock_type::now();
    for (size_t i = 0; i < n; ++i) {
      std::this_thread::sleep_until(due_at(t0, i, wake_rate));
      auto id = instance_id((next_wake++ * stride) % instances);
      auto at = clock_type::now();
      auto r = waker.run({"XADD", keys.queue("processing"), "*", "v", "1", "kind", "result",
                          "instance", id, "step", "0", "ok", "1", "payload", "0", "gen", "0"});
      if (!r || r->type != REDIS_REPLY_STRING)
        fail("wake XADD: " + reply_text(r.get()));
      sent.emplace_back(std::move(id), at);
    }
    obs.wait_count(n, 30s);
    window_result w;
    w.woken = n;
    std::vector<double> lat;
    for (const auto& [id, at] : sent)
      if (auto t = obs.when(id))
        lat.push_back(ms_between(at, *t));
    w.completed = lat.size();
    if (w.completed < n)
      node.give_up("only " + std::to_string(w.completed) + " of " + std::to_string(n)
                   + " woken instances completed within 30 s of their window");
    w.p99_ms = percentile(lat, 0.99);
    w.p50_ms = percentile(lat, 0.5);
    obs.clear();
    return w;
  };

  const auto otp = otp_release();
  std::string erlang_error = otp.empty() ? "erl not found (Debian package erlang-base)" : "";
  std::vector<double> erlang_bytes, erlang_rss;
  auto erlang_round = [&] {
    if (!erlang_error.empty())
      return;
    auto e = run_child({"escript", bench_source_dir() + "/peers/processes.erl", "idle",
                        std::to_string(instances)},
                       240s);
    auto j = last_json_line(e.out);
    if (!e.ok() || !j.is_object()) {
      erlang_error = e.error.empty() ? "no result from processes.erl" : e.error;
      return;
    }
    erlang_bytes.push_back(j.at("bytes_per_process").get<double>());
    erlang_rss.push_back(static_cast<double>(j.at("rss_delta").get<int64_t>()));
  };

  window(); // warm-up
  std::vector<window_result> results;
  std::vector<double> node_rss;
  for (int k = 0; k < windows; ++k) {
    results.push_back(window());
    node_rss.push_back(static_cast<double>(rss_bytes_of(node.pid())));
    if (k < peer_rounds)
      erlang_round();
  }

  std::vector<double> p99s, first, second;
  ojson per_window = ojson::array();
  for (size_t k = 0; k < results.size(); ++k) {
    p99s.push_back(results[k].p99_ms);
    (k < results.size() / 2 ? first : second).push_back(results[k].p99_ms);
    per_window.push_back(ojson{{"p50_ms", round4(results[k].p50_ms)},
                               {"p99_ms", round4(results[k].p99_ms)},
                               {"node_rss_mb", round4(node_rss[k] / 1048576.0)}});
  }
  auto first_med = summarize(first).median;
  auto drift = first_med > 0 ? summarize(second).median / first_med - 1 : 0.0;

  ojson cases = ojson::array();
  auto erlang_name = "Erlang/OTP " + otp + ", " + std::to_string(instances) + " idle processes";
  auto info_or_error = [&](ojson params, const summary& ours, const std::vector<double>& peer,
                           const char* unit) {
    ojson c = erlang_error.empty() ? make_info_case(std::move(params), ours, erlang_name,
                                                    summarize(peer))
                                   : make_solo_case(std::move(params), ours, "");
    if (!erlang_error.empty())
      c["peer"] = ojson{{"name", "Erlang/OTP idle processes"}, {"error", erlang_error}};
    c["unit"] = unit;
    return c;
  };
  summary redis_bytes{redis_bytes_per, redis_bytes_per, redis_bytes_per, 1};
  cases.push_back(info_or_error(ojson{{"instances", instances}, {"what", "Redis bytes per "
                                                                         "dehydrated instance"}},
                                redis_bytes, erlang_bytes, "bytes/instance"));
  cases.push_back(info_or_error(ojson{{"instances", instances},
                                      {"what", "node RSS (whole process) while all are "
                                               "dehydrated and being woken"}},
                                summarize(node_rss), erlang_rss, "bytes"));
  auto drift_case = make_solo_case(ojson{{"what", "p99 wake-up latency drift (second half of "
                                                  "the windows / first half - 1)"},
                                         {"windows", windows},
                                         {"window_s", window_s},
                                         {"wake_ups_per_s", wake_rate}},
                                   summary{drift, drift, drift, 1}, "<= 0.2");
  drift_case["unit"] = "fraction";
  drift_case["p99_ms"] = to_json(summarize(p99s));
  drift_case["windows"] = std::move(per_window);
  cases.push_back(std::move(drift_case));

  ojson result{
    {"id", "B13"},
    {"name", "scale-soak"},
    {"unit", "bytes/instance"},
    {"higher_is_better", false},
    {"what",
     "instances of the steps example (count 1) created through message_box activate + claim + "
     "write of their first point (waiting for step 0, no activity queued), all dehydrated; "
     "Redis bytes = INFO used_memory delta / instances. A real convoy node then wakes distinct "
     "instances at wake_ups_per_s (the step-0 result XADDed to the processing queue) in "
     "windows; latency XADD -> completed event; p99 per window, drift = median p99 of the "
     "second half / first half - 1; node RSS after each window. Peer: Erlang holding as many "
     "idle processes (RSS delta / count), one run between consecutive windows (5)."},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version},
                              {"hiredis", hiredis_version()},
                              {"erlang_otp", otp}},
                        ojson{{"quick", opts.quick},
                              {"creation_s", round4(create_s)},
                              {"creation_per_s", round4(instances / create_s)},
                              {"node_rss_before_wakeups_mb", round4(rss_idle / 1048576.0)},
                              {"node_settings", node.settings()}})}};
  std::cout << result.dump() << std::endl;
  return 0;
}
