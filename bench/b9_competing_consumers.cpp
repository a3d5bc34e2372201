// B9 competing-consumers: 1, 2 and 4 host instances (consumers of one consumer group)
// pulling one host queue: throughput, fairness (Jain index of per-consumer counts), and the
// time until a dead consumer's entries are taken over, relative to the configured idle time.
//
// - Queue: a Redis Stream pre-filled with M activity requests (the fields `convoy_checkpoint`
//   writes for an activity), one fresh stream and group per window, on a throwaway
//   redis-server (no AOF), stopped by PID.
// - Ours: one `message_box` per host instance (its own Redis loop thread and connections, as
//   on separate nodes). Each consumer loops on `read_queue(host, consumer, 64, block 100 ms)`
//   and `ack(host, ids)` (XACK + XDEL), all in the read callbacks on its loop thread. The
//   window ends once all M entries were delivered and every box's command connection answered
//   an XLEN behind its acks (checked: XLEN 0 and nothing pending).
// - Peer: one thread per consumer with a synchronous hiredis connection:
//   XREADGROUP COUNT 64 BLOCK 100, then XACK + XDEL pipelined with the next XREADGROUP. The
//   window ends when the last XACK/XDEL reply arrived.
// - Reclaim: a consumer reads 16 entries and never acknowledges them ("dead"). Another polls
//   `reclaim_queue` (XAUTOCLAIM, min idle I) every I/2 (the runtime's cadence), starting at a
//   phase that differs per round but is the same for ours and the peer (raw XAUTOCLAIM).
//   Reported: (time the last entry was taken over - time the dead consumer read them) / I.
//   Target <= 1 + one poll interval / I = 1.5.
// - 5 rounds alternating ours / peer, after one unrecorded warm-up for throughput.

#include "redis_bench.hpp"

#include "convoy/test/temp_dir.hpp"

namespace {

using namespace convoy;
using namespace convoy::bench;

constexpr size_t read_count = 64;
constexpr auto read_block = 100ms;
constexpr size_t reclaim_entries = 16;

/// Creates `host`'s stream and group under `prefix` and fills it with `m` entries.
void fill_queue(raw_redis& admin, const std::string& key, const std::string& group, size_t m) {
  auto made = admin.run({"XGROUP", "CREATE", key, group, "0", "MKSTREAM"});
  if (!made || made->type == REDIS_REPLY_ERROR)
    fail("XGROUP CREATE " + key + ": " + (made ? reply_text(made.get()) : admin.error()));
  constexpr size_t chunk = 1000;
  for (size_t done = 0; done < m;) {
    auto n = std::min(chunk, m - done);
    for (size_t i = 0; i < n; ++i) {
      auto seq = done + i + 1;
      auto id = "q-" + std::to_string(seq % 977);
      auto step = std::to_string(seq);
      admin.append({"XADD", key, "*", "v", "1", "kind", "activity", "instance", id, "step", step,
                    "activity", activity_name, "args", point_args(seq), "key", id + "/" + step,
                    "options", "", "reply", processing_host, "gen", "0", "attempt", "1"});
    }
    for (size_t i = 0; i < n; ++i) {
      auto rep = admin.get();
      if (!rep || rep->type == REDIS_REPLY_ERROR)
        fail("XADD: " + (rep ? reply_text(rep.get()) : admin.error()));
    }
    done += n;
  }
}

void drop_queue(raw_redis& admin, const std::string& key) {
  auto rep = admin.run({"DEL", key});
  if (!rep || rep->type == REDIS_REPLY_ERROR)
    fail("DEL " + key + ": " + (rep ? reply_text(rep.get()) : admin.error()));
}

/// A stream reply of XREADGROUP: the ids of its entries (none for nil).
std::vector<std::string> entry_ids(const redisReply* r) {
  std::vector<std::string> ids;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
    return ids;
  const auto* stream = r->element[0];
  if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2)
    return ids;
  const auto* entries = stream->element[1];
  for (size_t i = 0; i < entries->elements; ++i)
    ids.emplace_back(entries->element[i]->element[0]->str, entries->element[i]->element[0]->len);
  return ids;
}

// -- ours -----------------------------------------------------------------------------------

/// One window of ours: shared by its consumers' callbacks.
struct our_window {
  size_t total = 0;
  std::atomic<size_t> consumed{0};
  std::atomic<bool> stop{false};
  std::atomic<int> reading{0};
  countdown finished;
  std::mutex mtx;
  std::string error;
};

struct our_consumer : std::enable_shared_from_this<our_consumer> {
  persistence::message_box* box = nullptr;
  std::string host;
  std::string name;
  std::shared_ptr<our_window> window;
  std::atomic<size_t> mine{0};

  void poll() {
    window->reading += 1;
    box->read_queue(host, name, read_count, read_block, false,
                    [self = shared_from_this()](std::vector<persistence::queue_entry> entries,
                                                std::string error) {
                      self->on_batch(std::move(entries), std::move(error));
                    });
  }

  void on_batch(std::vector<persistence::queue_entry> entries, std::string error) {
    auto& w = *window;
    if (!error.empty()) {
      {
        std::lock_guard<std::mutex> guard(w.mtx);
        w.error = error;
      }
      if (!w.stop.exchange(true))
        w.finished.arrive();
      w.reading -= 1;
      return;
    }
    if (!entries.empty()) {
      const auto n = entries.size();
      std::vector<std::string> ids;
      ids.reserve(n);
      for (auto& e : entries)
        ids.push_back(std::move(e.id));
      mine += n;
      box->ack(host, std::move(ids));
      auto before = w.consumed.fetch_add(n);
      if (before < w.total && before + n >= w.total && !w.stop.exchange(true))
        w.finished.arrive();
    }
    bool again = !w.stop.load();
    w.reading -= 1;
    if (again)
      poll();
  }
};

struct window_result {
  double rate = 0;
  double fairness = 0;
};

window_result run_ours(std::vector<std::unique_ptr<persistence::message_box>>& boxes,
                       raw_redis& admin, size_t consumers, size_t m, const std::string& host) {
  const auto key = boxes.front()->key_schema().queue(host);
  fill_queue(admin, key, host, m);
  auto w = std::make_shared<our_window>();
  w->total = m;
  w->finished.reset(1);
  std::vector<std::shared_ptr<our_consumer>> cs;
  for (size_t i = 0; i < consumers; ++i) {
    auto c = std::make_shared<our_consumer>();
    c->box = boxes[i].get();
    c->host = host;
    c->name = "c" + std::to_string(i);
    c->window = w;
    // Opens the consumer's reader connection outside the window (own pending: none, no wait).
    countdown opened;
    opened.reset(1);
    c->box->read_queue(host, c->name, 1, 0ms, true,
                       [&opened](std::vector<persistence::queue_entry>, std::string) { opened.arrive(); });
    if (!opened.wait_until(clock_type::now() + 10s))
      fail("ours: opening the reader connection timed out");
    cs.push_back(std::move(c));
  }
  auto t0 = clock_type::now();
  for (auto& c : cs)
    c->poll();
  if (!w->finished.wait_until(t0 + 60s))
    fail("ours: " + std::to_string(w->consumed.load()) + " of " + std::to_string(m)
         + " entries consumed after 60 s");
  {
    std::lock_guard<std::mutex> guard(w->mtx);
    if (!w->error.empty())
      fail("ours: read_queue: " + w->error);
  }
  // Every box's acks went out on its command connection: an XLEN behind them on each.
  long long left = -1;
  for (size_t i = 0; i < consumers; ++i) {
    auto v = boxes[i]->commands().run({"XLEN", key}, 10s);
    if (v.is_error())
      fail("ours: XLEN: " + v.str);
    left = v.integer;
  }
  auto t1 = clock_type::now();
  auto pending = admin.run({"XPENDING", key, host});
  if (left != 0 || !pending || pending->type != REDIS_REPLY_ARRAY || pending->element[0]->integer != 0)
    fail("ours: after the window XLEN is " + std::to_string(left) + ", XPENDING "
         + (pending ? reply_text(pending.get()) : admin.error()));
  // Outstanding blocking reads end within read_block.
  for (auto until = clock_type::now() + 5s; w->reading.load() > 0;) {
    if (clock_type::now() > until)
      fail("ours: blocking reads still outstanding 5 s after the window");
    std::this_thread::sleep_for(5ms);
  }
  std::vector<double> counts;
  for (auto& c : cs)
    counts.push_back(static_cast<double>(c->mine.load()));
  drop_queue(admin, key);
  return {static_cast<double>(m) / std::chrono::duration<double>(t1 - t0).count(),
          jain_index(counts)};
}

// -- peer -----------------------------------------------------------------------------------

window_result run_peer(uint16_t port, raw_redis& admin, size_t consumers, size_t m,
                       const std::string& key, const std::string& group) {
  fill_queue(admin, key, group, m);
  std::atomic<size_t> consumed{0}, acked{0};
  std::atomic<int64_t> end_ns{0};
  std::atomic<bool> go{false};
  std::atomic<int> ready{0};
  std::vector<size_t> mine(consumers, 0);
  std::vector<std::string> errors(consumers);
  const auto count = std::to_string(read_count);
  const auto block = std::to_string(read_block.count());
  const auto deadline = clock_type::now() + 60s;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < consumers; ++i)
    threads.emplace_back([&, i] {
      raw_redis r("127.0.0.1", port);
      ready += 1;
      go.wait(false);
      if (!r.ok()) {
        errors[i] = r.error();
        return;
      }
      const auto name = "c" + std::to_string(i);
      auto read = [&] {
        r.append({"XREADGROUP", "GROUP", group, name, "COUNT", count, "BLOCK", block, "STREAMS",
                  key, ">"});
      };
      read();
      for (;;) {
        auto rep = r.get();
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
          errors[i] = "XREADGROUP: " + (rep ? reply_text(rep.get()) : r.error());
          return;
        }
        auto ids = entry_ids(rep.get());
        const auto n = ids.size();
        if (n > 0) {
          mine[i] += n;
          consumed += n;
          std::vector<std::string> xack{"XACK", key, group}, xdel{"XDEL", key};
          for (auto& id : ids) {
            xack.push_back(id);
            xdel.push_back(std::move(id));
          }
          r.append(xack);
          r.append(xdel);
        }
        const bool more = consumed.load() < m && clock_type::now() < deadline;
        if (more)
          read();
        if (n > 0) {
          for (int k = 0; k < 2; ++k) {
            auto a = r.get();
            if (!a || a->type == REDIS_REPLY_ERROR) {
              errors[i] = "XACK/XDEL: " + (a ? reply_text(a.get()) : r.error());
              return;
            }
          }
          if (acked.fetch_add(n) + n == m)
            end_ns = (clock_type::now().time_since_epoch()).count();
        }
        if (!more)
          return;
      }
    });
  while (ready.load() < static_cast<int>(consumers))
    std::this_thread::sleep_for(1ms);
  auto t0 = clock_type::now();
  go = true;
  go.notify_all();
  for (auto& t : threads)
    t.join();
  for (const auto& e : errors)
    if (!e.empty())
      fail("peer: " + e);
  if (acked.load() != m)
    fail("peer: " + std::to_string(acked.load()) + " of " + std::to_string(m) + " acknowledged");
  auto t1 = clock_type::time_point(clock_type::duration(end_ns.load()));
  std::vector<double> counts(mine.begin(), mine.end());
  drop_queue(admin, key);
  return {static_cast<double>(m) / std::chrono::duration<double>(t1 - t0).count(),
          jain_index(counts)};
}

// -- reclaim --------------------------------------------------------------------------------

/// Polls `poll_once` (which returns how many entries it took over and blocks until answered)
/// at read_at + phase, then every `every`, until all `k` were taken; returns the time the last
/// ones arrived. Bounded by 10 idle times.
template <class F>
clock_type::time_point poll_until_taken(clock_type::time_point read_at,
                                        std::chrono::nanoseconds phase,
                                        std::chrono::milliseconds every,
                                        std::chrono::milliseconds idle, size_t k, F&& poll_once) {
  size_t taken = 0;
  auto next = read_at + phase;
  while (taken < k) {
    if (next > read_at + 10 * idle)
      fail("reclaim: only " + std::to_string(taken) + " of " + std::to_string(k)
           + " entries taken over after 10 idle times");
    std::this_thread::sleep_until(next);
    auto [n, at] = poll_once();
    taken += n;
    if (taken >= k)
      return at;
    next += every;
  }
  return next;
}

double reclaim_ours(std::vector<std::unique_ptr<persistence::message_box>>& boxes,
                    raw_redis& admin, const std::string& host, std::chrono::milliseconds idle,
                    std::chrono::nanoseconds phase) {
  const auto key = boxes.front()->key_schema().queue(host);
  fill_queue(admin, key, host, reclaim_entries);
  countdown cd;
  cd.reset(1);
  clock_type::time_point read_at;
  size_t got = 0;
  boxes[0]->read_queue(host, "dead", reclaim_entries, read_block, false,
                       [&](std::vector<persistence::queue_entry> es, std::string) {
                         read_at = clock_type::now();
                         got = es.size();
                         cd.arrive();
                       });
  if (!cd.wait_until(clock_type::now() + 10s) || got != reclaim_entries)
    fail("ours: the dead consumer read " + std::to_string(got) + " entries");
  auto done = poll_until_taken(read_at, phase, idle / 2, idle, reclaim_entries, [&] {
    countdown answered;
    answered.reset(1);
    size_t n = 0;
    clock_type::time_point at;
    std::string error;
    boxes[1]->reclaim_queue(host, "survivor", idle, 64,
                            [&](std::vector<persistence::queue_entry> es, std::string err) {
                              at = clock_type::now();
                              n = es.size();
                              error = std::move(err);
                              answered.arrive();
                            });
    if (!answered.wait_until(clock_type::now() + 10s))
      fail("ours: reclaim_queue unanswered after 10 s");
    if (!error.empty())
      fail("ours: reclaim_queue: " + error);
    return std::pair<size_t, clock_type::time_point>{n, at};
  });
  drop_queue(admin, key);
  return std::chrono::duration<double>(done - read_at) / std::chrono::duration<double>(idle);
}

double reclaim_peer(uint16_t port, raw_redis& admin, const std::string& key,
                    const std::string& group, std::chrono::milliseconds idle,
                    std::chrono::nanoseconds phase) {
  fill_queue(admin, key, group, reclaim_entries);
  raw_redis dead("127.0.0.1", port), survivor("127.0.0.1", port);
  if (!dead.ok() || !survivor.ok())
    fail("peer: cannot connect: " + dead.error());
  auto rep = dead.run({"XREADGROUP", "GROUP", group, "dead", "COUNT",
                       std::to_string(reclaim_entries), "STREAMS", key, ">"});
  auto read_at = clock_type::now();
  if (entry_ids(rep.get()).size() != reclaim_entries)
    fail("peer: the dead consumer read " + reply_text(rep.get()));
  const auto min_idle = std::to_string(idle.count());
  auto done = poll_until_taken(read_at, phase, idle / 2, idle, reclaim_entries, [&] {
    auto r = survivor.run({"XAUTOCLAIM", key, group, "survivor", min_idle, "0-0", "COUNT", "64"});
    auto at = clock_type::now();
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
      fail("peer: XAUTOCLAIM: " + (r ? reply_text(r.get()) : survivor.error()));
    return std::pair<size_t, clock_type::time_point>{r->element[1]->elements, at};
  });
  drop_queue(admin, key);
  return std::chrono::duration<double>(done - read_at) / std::chrono::duration<double>(idle);
}

} // namespace

int main(int argc, char** argv) try {
  auto opts = parse_options(argc, argv);
  start_bench("B9", "competing-consumers", opts.quick ? 120s : 300s);
  const int rounds = 5;
  const size_t m = opts.quick ? 5000 : 20000;
  const auto idle = opts.quick ? 200ms : 500ms;
  const std::vector<size_t> consumer_counts{1, 2, 4};

  test::temp_dir dir;
  auto server = test::redis_server::start(dir.path() / "redis");
  watchdog_owns(server.pid(), dir.path().c_str());
  ojson cases = ojson::array();
  std::string redis_version;
  {
    std::vector<std::unique_ptr<persistence::message_box>> boxes;
    for (size_t i = 0; i < consumer_counts.back(); ++i)
      boxes.push_back(make_box(loopback(server.port()), "ours:"));
    redis_version = boxes.front()->server_version();
    raw_redis admin(server.host(), server.port());
    if (!admin.ok())
      fail("admin: cannot connect: " + admin.error());
    const persistence::keys peer_keys("peer:");
    int window_no = 0;
    auto ours_window = [&](size_t n, size_t entries) {
      return run_ours(boxes, admin, n, entries, "b9-" + std::to_string(++window_no));
    };
    auto peer_window = [&](size_t n, size_t entries) {
      auto host = "b9-" + std::to_string(++window_no);
      return run_peer(server.port(), admin, n, entries, peer_keys.queue(host), host);
    };
    for (auto n : consumer_counts) {
      ours_window(n, m / 4); // warm-up, unrecorded
      peer_window(n, m / 4);
      std::vector<double> rate[2], fair[2];
      for (int round = 0; round < rounds; ++round) {
        auto a = ours_window(n, m);
        auto b = peer_window(n, m);
        rate[0].push_back(a.rate);
        rate[1].push_back(b.rate);
        fair[0].push_back(a.fairness);
        fair[1].push_back(b.fairness);
      }
      ojson params{{"consumers", n}, {"entries", m}, {"measure", "throughput"}};
      auto c = make_case(params, summarize(rate[0]), "raw XREADGROUP/XACK+XDEL loop (hiredis)",
                         summarize(rate[1]), ">= 0.7");
      c["unit"] = "entries/s";
      cases.push_back(std::move(c));
      if (n > 1) {
        params["measure"] = "fairness (Jain index)";
        auto f = make_case_on_ours(params, summarize(fair[0]),
                                   "raw XREADGROUP/XACK+XDEL loop (hiredis)", summarize(fair[1]),
                                   ">= 0.9");
        f["unit"] = "Jain index";
        cases.push_back(std::move(f));
      }
    }
    std::vector<double> reclaim[2];
    for (int round = 0; round < rounds; ++round) {
      // The survivor's first poll falls at a different phase of its cadence each round.
      auto phase = std::chrono::duration_cast<std::chrono::nanoseconds>(
        (idle / 2) * ((round + 0.5) / rounds));
      auto host = "b9-" + std::to_string(++window_no);
      reclaim[0].push_back(reclaim_ours(boxes, admin, host, idle, phase));
      host = "b9-" + std::to_string(++window_no);
      reclaim[1].push_back(
        reclaim_peer(server.port(), admin, peer_keys.queue(host), host, idle, phase));
    }
    auto r = make_case_on_ours(ojson{{"measure", "reclaim time / configured idle"},
                                     {"idle_ms", idle.count()},
                                     {"poll_every_ms", (idle / 2).count()},
                                     {"entries", reclaim_entries}},
                               summarize(reclaim[0]), "raw XAUTOCLAIM at the same cadence",
                               summarize(reclaim[1]), "<= 1.5");
    r["unit"] = "x idle";
    cases.push_back(std::move(r));
  }
  server.stop();
  watchdog_owns(0);

  ojson result{
    {"id", "B9"},
    {"name", "competing-consumers"},
    {"unit", "entries/s (throughput); Jain index (fairness); x idle (reclaim)"},
    {"higher_is_better", "throughput, fairness: yes; reclaim: no"},
    {"what",
     "1/2/4 consumers of one group drain a stream pre-filled with M activity requests. Ours: a "
     "message_box per consumer, read_queue(count 64, block 100 ms) + ack (XACK+XDEL) in the "
     "read callbacks; peer: a thread per consumer, XREADGROUP then XACK+XDEL pipelined with "
     "the next read. Fairness: Jain index of per-consumer counts (target on ours). Reclaim: 16 "
     "entries read by a consumer that never acks; another polls reclaim_queue / XAUTOCLAIM "
     "(min idle I) every I/2; (last taken over - read) / I, target on ours <= 1 + one poll."},
    {"cases", std::move(cases)},
    {"env", environment(ojson{{"redis", redis_version}, {"hiredis", hiredis_version()}},
                        ojson{{"rounds", rounds},
                              {"entries_per_window", m},
                              {"read_count", read_count},
                              {"read_block_ms", read_block.count()},
                              {"warmup_rounds", 1},
                              {"quick", opts.quick}})}};
  std::cout << result.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  fail(std::string("exception: ") + e.what());
}
