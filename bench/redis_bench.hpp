#pragma once

/// @file
/// What the Redis benchmarks (B4, B5, B6, B9, B11) share on top of `bench_common.hpp`:
///
/// - the persistence point every one of them writes: one journal entry (`scheduled` of a
///   `ctx.call`) and one outgoing activity. Ours goes through `message_box::write` (the
///   `convoy_checkpoint` Redis Function); the peer writes what that function writes, as a raw
///   `MULTI; HSET record; RPUSH journal; XADD activity; XADD tracking; EXEC`;
/// - a minimal raw hiredis client (the peers), blocking or driven by `ppoll`;
/// - instances created the way a receive host does (activate, then claim for the epoch);
/// - closed-loop groups ("batch" = points in flight at once, one per instance) and an
///   open-loop pacer for latency, for both sides;
/// - percentiles and the Redis server settings.
///
/// Header-only, like `bench_common.hpp`.

#include "bench_common.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/actors/instance_store.hpp"
#include "convoy/actors/journal.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/test/redis_server.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>

#include <poll.h>
#include <sys/resource.h>

namespace convoy::bench {

using namespace std::chrono_literals;

// -- identity and failure -------------------------------------------------------------------

namespace detail {
inline std::string bench_id = "?";
inline std::string bench_name = "?";
} // namespace detail

/// Names the program for `fail`, starts its watchdog and sends Convoy's log (spdlog's default
/// logger: the MessageBox reports rollbacks and refused stores there) to stderr, so stdout
/// holds only the result object.
inline void start_bench(std::string id, std::string name, std::chrono::seconds budget) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("bench-stderr"));
  detail::bench_id = id;
  detail::bench_name = name;
  start_watchdog(std::move(id), std::move(name), budget);
}

/// Gives up: kills our servers by PID, prints an error object, exits 1.
[[noreturn]] inline void fail(const std::string& why) {
  abandon(detail::bench_id, detail::bench_name, why, 1);
}

inline std::string hiredis_version() {
  return std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) + "."
         + std::to_string(HIREDIS_PATCH);
}

// -- a countdown with a deadline ------------------------------------------------------------

/// Callbacks (on the Redis loop thread) count down; one thread waits, with a deadline.
class countdown {
public:
  void reset(size_t n) {
    std::lock_guard<std::mutex> guard(mtx_);
    left_.store(n, std::memory_order_release);
  }

  void arrive() {
    if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> guard(mtx_);
      cv_.notify_all();
    }
  }

  bool wait_until(clock_type::time_point deadline) {
    std::unique_lock<std::mutex> guard(mtx_);
    return cv_.wait_until(guard, deadline,
                          [this] { return left_.load(std::memory_order_acquire) == 0; });
  }

  size_t left() const noexcept { return left_.load(std::memory_order_acquire); }

private:
  std::atomic<size_t> left_{0};
  std::mutex mtx_;
  std::condition_variable cv_;
};

// -- raw hiredis (the peers) ----------------------------------------------------------------

struct reply_free {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_free>;

/// A reply as text, for error messages.
inline std::string reply_text(const redisReply* r) {
  if (r == nullptr)
    return "(no reply)";
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    case REDIS_REPLY_NIL: return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < r->elements; ++i)
        out += (i ? ", " : "") + reply_text(r->element[i]);
      return out + "]";
    }
    default: return "(?)";
  }
}

/// One synchronous hiredis connection: pipelining by `append` then `get`, or driven by
/// `ppoll` (`flush`, `read_some`, `next_buffered`) for an open loop on one thread.
class raw_redis {
public:
  raw_redis() = default;
  raw_redis(const std::string& host, uint16_t port,
            std::chrono::milliseconds connect_timeout = 2s,
            std::chrono::milliseconds io_timeout = 5s) {
    connect(host, port, connect_timeout, io_timeout);
  }
  raw_redis(const raw_redis&) = delete;
  raw_redis& operator=(const raw_redis&) = delete;
  raw_redis(raw_redis&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
  raw_redis& operator=(raw_redis&& other) noexcept {
    if (this != &other) {
      close();
      c_ = std::exchange(other.c_, nullptr);
    }
    return *this;
  }
  ~raw_redis() { close(); }

  /// Connects (closing a previous connection); returns ok().
  bool connect(const std::string& host, uint16_t port, std::chrono::milliseconds connect_timeout,
               std::chrono::milliseconds io_timeout) {
    close();
    auto tv = [](std::chrono::milliseconds d) {
      return timeval{static_cast<time_t>(d.count() / 1000),
                     static_cast<suseconds_t>(d.count() % 1000 * 1000)};
    };
    c_ = redisConnectWithTimeout(host.c_str(), port, tv(connect_timeout));
    if (ok())
      redisSetTimeout(c_, tv(io_timeout));
    return ok();
  }

  void close() {
    if (c_ != nullptr)
      redisFree(std::exchange(c_, nullptr));
  }

  bool ok() const noexcept { return c_ != nullptr && c_->err == 0; }
  std::string error() const { return c_ == nullptr ? "not connected" : std::string(c_->errstr); }
  int fd() const noexcept { return c_->fd; }

  void append(std::initializer_list<std::string_view> argv) {
    const char* args[40];
    size_t lens[40];
    size_t n = 0;
    for (auto a : argv) {
      args[n] = a.data();
      lens[n] = a.size();
      ++n;
    }
    redisAppendCommandArgv(c_, static_cast<int>(n), args, lens);
  }

  void append(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c_, static_cast<int>(args.size()), args.data(), lens.data());
  }

  /// The next reply (flushes what was appended first); null when the connection failed.
  reply_ptr get() {
    void* r = nullptr;
    if (redisGetReply(c_, &r) != REDIS_OK)
      return {};
    return reply_ptr(static_cast<redisReply*>(r));
  }

  /// One command, one reply.
  reply_ptr run(std::initializer_list<std::string_view> argv) {
    append(argv);
    return get();
  }

  /// Writes everything appended so far.
  bool flush() {
    int done = 0;
    while (!done)
      if (redisBufferWrite(c_, &done) != REDIS_OK)
        return false;
    return true;
  }

  /// One read() into hiredis' buffer (call when the socket is readable).
  bool read_some() { return redisBufferRead(c_) == REDIS_OK; }

  /// A reply already in the buffer, or null.
  reply_ptr next_buffered() {
    void* r = nullptr;
    if (redisGetReplyFromReader(c_, &r) != REDIS_OK)
      return {};
    return reply_ptr(static_cast<redisReply*>(r));
  }

private:
  redisContext* c_ = nullptr;
};

// -- servers ---------------------------------------------------------------------------------

/// Extra redis-server arguments for an AOF setting: "off", "everysec" or "always". AOF
/// rewrites are switched off so a rewrite cannot land in one side's window only.
inline std::vector<std::string> aof_args(const std::string& mode) {
  if (mode == "off")
    return {};
  return {"--appendonly", "yes", "--appendfsync", mode, "--auto-aof-rewrite-percentage", "0"};
}

/// Starts a replica of `master_port` and waits until its link is up.
inline test::redis_server start_replica(const std::filesystem::path& dir, uint16_t master_port,
                                        std::vector<std::string> extra) {
  extra.insert(extra.end(), {"--replicaof", "127.0.0.1", std::to_string(master_port),
                             "--repl-diskless-sync-delay", "0"});
  auto replica = test::redis_server::start(dir, std::move(extra));
  auto deadline = clock_type::now() + 15s;
  while (test::redis_command(replica.port(), {"INFO", "replication"}, 1s)
           .find("master_link_status:up")
         == std::string::npos) {
    if (clock_type::now() > deadline)
      fail("replica on port " + std::to_string(replica.port()) + " did not link up in 15 s");
    std::this_thread::sleep_for(20ms);
  }
  return replica;
}

// -- the persistence point ---------------------------------------------------------------------

inline constexpr const char* processing_host = "bench-processing";
inline constexpr const char* receive_host = "bench-receive";
/// `convoy_checkpoint` puts every activity on the queue of the host named "send".
inline constexpr const char* send_host = "send";
inline constexpr const char* activity_name = "charge-card";

/// The arguments of the point's activity call (JSON), distinct per point.
inline std::string point_args(uint64_t seq) {
  return "{\"order\":" + std::to_string(seq) + ",\"amount\":\"99.95\",\"currency\":\"EUR\"}";
}

/// The journal entry of persistence point `seq`: `scheduled` of step seq-1 (so the stored
/// journal says which points it holds).
inline journal_entry point_entry(uint64_t seq) {
  auto args = point_args(seq);
  auto hash = operation_hash(op_kind::call, activity_name, args);
  return journal_entry{static_cast<uint32_t>(seq - 1), entry_event::scheduled, op_kind::call,
                       hash, std::move(args)};
}

/// Ours: persistence point `seq` of an instance as a step writes it: one journal entry and
/// one activity command, status waiting.
inline checkpoint make_point(const std::string& id, uint64_t epoch, uint64_t seq) {
  checkpoint cp;
  cp.instance_id = id;
  cp.host = processing_host;
  cp.epoch = epoch;
  cp.seq = seq;
  cp.status = instance_status::waiting;
  cp.steps = static_cast<uint32_t>(seq);
  auto e = point_entry(seq);
  cp.activities.push_back(activity_command{e.step, activity_name, e.payload,
                                           id + "/" + std::to_string(e.step), ""});
  cp.entries.push_back(std::move(e));
  return cp;
}

namespace detail {
/// Whether the loaded `convoy_checkpoint` also counts commits in the store hash
/// (`HINCRBY {prefix}store commits 1` and the record's `commit` field); see
/// `detect_commit_counter`.
inline bool raw_counts_commits = false;
inline std::atomic<int64_t> raw_commits{0};
} // namespace detail

/// Makes the peer write what the loaded function writes: call after `message_box::prepare`
/// on the same server. A MessageBox that keeps a store identity hash (`{prefix}store`) counts
/// every persistence point there (commit number); the peer then does the same.
inline void detect_commit_counter(raw_redis& admin, const std::string& ours_prefix) {
  auto rep = admin.run({"EXISTS", ours_prefix + "store"});
  if (!rep || rep->type != REDIS_REPLY_INTEGER)
    fail("EXISTS store: " + (rep ? reply_text(rep.get()) : admin.error()));
  detail::raw_counts_commits = rep->integer == 1;
}

/// Whether the peer writes the commit counter too (see `detect_commit_counter`).
inline bool peer_counts_commits() {
  return detail::raw_counts_commits;
}

/// Replies one raw point produces: MULTI, four (five with the commit counter) QUEUED, EXEC.
inline int raw_point_replies() {
  return detail::raw_counts_commits ? 7 : 6;
}

/// The peer: appends what `convoy_checkpoint` writes for `make_point(id, _, seq)` (same
/// keys under `k`'s prefix, same fields and bytes) as one MULTI/EXEC transaction. It does
/// not do the function's reads and checks (store identity, owner epoch, seq).
inline void append_raw_point(raw_redis& r, const persistence::keys& k, const std::string& id,
                             uint64_t seq) {
  auto e = point_entry(seq);
  auto encoded = encode(e);
  auto s = std::to_string(seq);
  auto step = std::to_string(e.step);
  auto now = std::to_string(wall_clock_ms());
  r.append({"MULTI"});
  if (detail::raw_counts_commits) {
    r.append({"HINCRBY", k.prefix() + "store", "commits", "1"});
    r.append({"HSET", k.instance(id), "seq", s, "status", "waiting", "steps", s, "updated", now,
              "commit", std::to_string(++detail::raw_commits)});
  } else {
    r.append({"HSET", k.instance(id), "seq", s, "status", "waiting", "steps", s, "updated", now});
  }
  r.append({"RPUSH", k.journal(id), encoded});
  r.append({"XADD", k.queue(send_host), "*", "v", "1", "kind", "activity", "instance", id,
            "step", step, "activity", activity_name, "args", e.payload, "key", id + "/" + step,
            "options", "", "reply", processing_host, "gen", "0", "attempt", "1"});
  r.append({"XADD", k.tracking(), "MAXLEN", "~", "10000", "*", "instance", id, "event",
            "waiting", "detail", "seq " + s + " steps " + s});
  r.append({"EXEC"});
}

/// True when an EXEC reply applied every command.
inline bool exec_ok(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY)
    return false;
  for (size_t i = 0; i < r->elements; ++i)
    if (r->element[i]->type == REDIS_REPLY_ERROR)
      return false;
  return true;
}

/// The MessageBox's group-commit counters (WAITs sent, writes they covered, largest group),
/// when this tree's MessageBox has them; null otherwise.
template <class Box>
ojson group_commit_stats(const Box& box) {
  if constexpr (requires { box.stats().group_commits; }) {
    auto s = box.stats();
    return ojson{{"group_commits", s.group_commits},
                 {"grouped_writes", s.grouped_writes},
                 {"largest_group", s.largest_group}};
  } else {
    return nullptr;
  }
}

// -- instances -------------------------------------------------------------------------------

/// An instance a benchmark writes persistence points for: its owner epoch and the last
/// persistence point stored (the next one is seq + 1).
struct tracked_instance {
  std::string id;
  uint64_t epoch = 0;
  uint64_t seq = 0;
};

/// A prepared MessageBox (queues of the bench hosts created, functions loaded).
inline std::unique_ptr<persistence::message_box>
make_box(persistence::redis_endpoint endpoint, const std::string& prefix,
         persistence::durability level = persistence::durability::local, int replicas = 1,
         std::chrono::milliseconds wait_timeout = 1000ms) {
  persistence::message_box_config cfg;
  cfg.endpoint = std::move(endpoint);
  cfg.prefix = prefix;
  cfg.level = level;
  cfg.replicas = replicas;
  cfg.wait_timeout = wait_timeout;
  auto mb = std::make_unique<persistence::message_box>(cfg);
  if (auto err = mb->prepare({processing_host, receive_host}); !err.empty())
    fail("prepare: " + err);
  return mb;
}

inline persistence::redis_endpoint loopback(uint16_t port) {
  persistence::redis_endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = port;
  return ep;
}

/// Creates `n` instances `stem0..` the way a receive host does (`activate`) and claims them
/// (the owner epoch every persistence point must carry).
inline std::vector<tracked_instance> create_instances(persistence::message_box& mb,
                                                      const std::string& stem, size_t n) {
  std::vector<tracked_instance> out(n);
  countdown cd;
  std::mutex mtx;
  std::string error;
  cd.reset(n);
  for (size_t i = 0; i < n; ++i) {
    out[i].id = stem + std::to_string(i);
    mb.activate(receive_host, "", out[i].id, "bench.points", 1, "{}", processing_host,
                [&](std::string err) {
                  if (!err.empty()) {
                    std::lock_guard<std::mutex> guard(mtx);
                    error = err;
                  }
                  cd.arrive();
                });
  }
  if (!cd.wait_until(clock_type::now() + 30s))
    fail("activate: no answer in 30 s");
  if (!error.empty())
    fail("activate: " + error);
  cd.reset(n);
  for (size_t i = 0; i < n; ++i)
    mb.claim(out[i].id, "bench-node", [&, i](claim_result r) {
      if (r.status != store_status::ok) {
        std::lock_guard<std::mutex> guard(mtx);
        error = r.error.empty() ? "status " + std::to_string(static_cast<int>(r.status))
                                : r.error;
      } else {
        out[i].epoch = r.record.epoch;
        out[i].seq = r.record.seq;
      }
      cd.arrive();
    });
  if (!cd.wait_until(clock_type::now() + 30s))
    fail("claim: no answer in 30 s");
  if (!error.empty())
    fail("claim: " + error);
  return out;
}

/// The peer's instances: a record like `convoy_activate` creates, under `k`'s prefix.
inline std::vector<tracked_instance> create_raw_instances(raw_redis& r, const persistence::keys& k,
                                                          const std::string& stem, size_t n) {
  std::vector<tracked_instance> out(n);
  auto now = std::to_string(wall_clock_ms());
  for (size_t i = 0; i < n; ++i) {
    out[i].id = stem + std::to_string(i);
    r.append({"HSET", k.instance(out[i].id), "fmt", "1", "type", "bench.points", "version", "1",
              "input", "{}", "host", processing_host, "status", "pending", "epoch", "1", "seq",
              "0", "steps", "0", "generation", "0", "created", now, "updated", now});
  }
  for (size_t i = 0; i < n; ++i) {
    auto rep = r.get();
    if (!rep || rep->type == REDIS_REPLY_ERROR)
      fail("creating the peer's records: " + (rep ? reply_text(rep.get()) : r.error()));
  }
  return out;
}

/// Deletes the journals of `instances` and the "send" queue under `k` (between windows, so
/// Redis' memory stays bounded; the records and their seq stay).
inline void trim(raw_redis& admin, const persistence::keys& k,
                 const std::vector<tracked_instance>& instances) {
  std::vector<std::string> del{"DEL", k.queue(send_host)};
  for (const auto& x : instances)
    del.push_back(k.journal(x.id));
  admin.append(del);
  auto rep = admin.get();
  if (!rep || rep->type == REDIS_REPLY_ERROR)
    fail("DEL: " + (rep ? reply_text(rep.get()) : admin.error()));
}

// -- closed loop: groups of points in flight --------------------------------------------------

/// Ours: writes the next persistence point of each of `instances[0..n)` at once through
/// `message_box::write` and waits for every callback.
class our_groups {
public:
  explicit our_groups(persistence::message_box& mb) : mb_(mb) {}

  void write(std::vector<tracked_instance>& instances, size_t n) {
    failed_.store(false);
    cd_.reset(n);
    for (size_t i = 0; i < n; ++i) {
      auto& x = instances[i];
      mb_.write(make_point(x.id, x.epoch, ++x.seq), [this](store_status s, std::string err) {
        if (s != store_status::ok && !failed_.exchange(true)) {
          std::lock_guard<std::mutex> guard(mtx_);
          error_ = err.empty() ? "status " + std::to_string(static_cast<int>(s)) : err;
        }
        cd_.arrive();
      });
    }
    if (!cd_.wait_until(clock_type::now() + 30s))
      fail("persistence points: " + std::to_string(cd_.left()) + " of " + std::to_string(n)
           + " unanswered after 30 s");
    if (failed_) {
      std::lock_guard<std::mutex> guard(mtx_);
      fail("persistence point not acknowledged: " + error_);
    }
  }

private:
  persistence::message_box& mb_;
  countdown cd_;
  std::atomic<bool> failed_{false};
  std::mutex mtx_;
  std::string error_;
};

/// The peer: the same points as `n` pipelined transactions, plus one `WAIT wait_replicas`
/// after them when `wait_replicas` > 0; reads every reply.
inline void raw_group(raw_redis& r, const persistence::keys& k,
                      std::vector<tracked_instance>& instances, size_t n, int wait_replicas = 0,
                      std::chrono::milliseconds wait_timeout = 1000ms) {
  for (size_t i = 0; i < n; ++i)
    append_raw_point(r, k, instances[i].id, ++instances[i].seq);
  if (wait_replicas > 0)
    r.append({"WAIT", std::to_string(wait_replicas), std::to_string(wait_timeout.count())});
  for (size_t i = 0; i < n; ++i)
    for (int j = 0, m = raw_point_replies(); j < m; ++j) {
      auto rep = r.get();
      if (!rep)
        fail("peer: connection failed: " + r.error());
      if (j + 1 == m && !exec_ok(rep.get()))
        fail("peer: EXEC failed: " + reply_text(rep.get()));
    }
  if (wait_replicas > 0) {
    auto rep = r.get();
    if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer < wait_replicas)
      fail("peer: WAIT answered " + (rep ? reply_text(rep.get()) : r.error()));
  }
}

struct rate_result {
  double rate = 0;  ///< points per second
  size_t points = 0;
};

/// Runs `group` (which writes `batch` points) until `window` has passed or `max_points` were
/// written, at least once.
template <class F>
rate_result measure_rate(size_t batch, std::chrono::milliseconds window, size_t max_points,
                         F&& group) {
  size_t points = 0;
  auto t0 = clock_type::now();
  auto t1 = t0;
  do {
    group();
    points += batch;
    t1 = clock_type::now();
  } while (t1 - t0 < window && points < max_points);
  return {static_cast<double>(points) / std::chrono::duration<double>(t1 - t0).count(), points};
}

// -- open loop: latency at an offered rate ---------------------------------------------------

/// Point i of an open loop at `rate` points/s is due at t0 + i / rate.
inline clock_type::time_point due_at(clock_type::time_point t0, size_t i, double rate) {
  return t0 + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * 1e9 / rate));
}

/// What one open-loop window produced: latency of every point in microseconds, from the call
/// that hands the point over to its acknowledgement, and the rate actually offered.
struct open_loop_result {
  std::vector<double> latency_us;
  double offered_rate = 0;
};

inline double us_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

/// Ours: a pacer (this thread) calls `message_box::write` for point i at its due time (at
/// once when late, never waiting for acknowledgements), round-robin over `instances`; the
/// latency runs from just before the call to the callback (on the Redis loop thread).
inline open_loop_result our_open_loop(persistence::message_box& mb,
                                      std::vector<tracked_instance>& instances, double rate,
                                      std::chrono::milliseconds duration) {
  const auto n = std::max<size_t>(1, static_cast<size_t>(rate * std::chrono::duration<double>(duration).count()));
  std::vector<clock_type::time_point> start(n);
  open_loop_result out;
  out.latency_us.assign(n, 0.0);
  countdown cd;
  cd.reset(n);
  std::atomic<bool> failed{false};
  std::mutex mtx;
  std::string error;
  auto t0 = clock_type::now();
  for (size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(due_at(t0, i, rate)); // returns at once when late
    auto& x = instances[i % instances.size()];
    auto cp = make_point(x.id, x.epoch, ++x.seq);
    start[i] = clock_type::now();
    mb.write(std::move(cp), [&, i](store_status s, std::string err) {
      out.latency_us[i] = us_between(start[i], clock_type::now());
      if (s != store_status::ok && !failed.exchange(true)) {
        std::lock_guard<std::mutex> guard(mtx);
        error = err;
      }
      cd.arrive();
    });
  }
  auto sent = clock_type::now();
  if (!cd.wait_until(sent + 30s))
    fail("open loop: " + std::to_string(cd.left()) + " points unanswered after 30 s");
  if (failed) {
    std::lock_guard<std::mutex> guard(mtx);
    fail("open loop: persistence point not acknowledged: " + error);
  }
  out.offered_rate = n > 1 ? static_cast<double>(n - 1) / std::chrono::duration<double>(sent - t0).count()
                           : rate;
  return out;
}

/// The peer: one thread paces the same points as raw transactions on one connection and,
/// between due times, reads replies (ppoll). With `wait_replicas` > 0 it commits in groups:
/// at most one WAIT outstanding; the points sent while it is out are covered by the next one
/// (a point counts as acknowledged when the WAIT after it confirms).
inline open_loop_result raw_open_loop(raw_redis& r, const persistence::keys& k,
                                      std::vector<tracked_instance>& instances, double rate,
                                      std::chrono::milliseconds duration, int wait_replicas = 0,
                                      std::chrono::milliseconds wait_timeout = 1000ms) {
  const auto n = std::max<size_t>(1, static_cast<size_t>(rate * std::chrono::duration<double>(duration).count()));
  std::vector<clock_type::time_point> start(n);
  open_loop_result out;
  out.latency_us.assign(n, 0.0);
  struct expected {
    bool wait = false;
    size_t from = 0; ///< point, or first point a WAIT covers
    size_t to = 0;   ///< one past the last point a WAIT covers
  };
  std::deque<expected> pending;
  int replies_of_front = 0;
  size_t next = 0, done = 0, covered = 0;
  bool wait_out = false;
  const auto wait_n = std::to_string(wait_replicas);
  const auto wait_ms = std::to_string(wait_timeout.count());
  auto t0 = clock_type::now();
  auto sent_all = t0;
  const auto deadline = t0 + duration + 30s;
  while (done < n) {
    auto now = clock_type::now();
    if (now > deadline)
      fail("peer open loop: " + std::to_string(n - done) + " points unanswered after 30 s");
    bool wrote = false;
    while (next < n && due_at(t0, next, rate) <= now) {
      start[next] = clock_type::now();
      append_raw_point(r, k, instances[next % instances.size()].id,
                       ++instances[next % instances.size()].seq);
      pending.push_back({false, next, next + 1});
      ++next;
      wrote = true;
      if (next == n)
        sent_all = clock_type::now();
    }
    if (wait_replicas > 0 && !wait_out && covered < next) {
      r.append({"WAIT", wait_n, wait_ms});
      pending.push_back({true, covered, next});
      covered = next;
      wait_out = true;
      wrote = true;
    }
    if (wrote && !r.flush())
      fail("peer open loop: write failed: " + r.error());
    // Sleep until the next due time or a reply, whichever comes first.
    auto wake = next < n ? due_at(t0, next, rate) : clock_type::now() + 50ms;
    auto wait_ns = std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(wake - clock_type::now()).count());
    timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
    pollfd pfd{r.fd(), POLLIN, 0};
    int ready = ::ppoll(&pfd, 1, &ts, nullptr);
    if (ready <= 0)
      continue;
    if (!r.read_some())
      fail("peer open loop: read failed: " + r.error());
    auto arrived = clock_type::now();
    while (auto rep = r.next_buffered()) {
      if (pending.empty())
        fail("peer open loop: unexpected reply " + reply_text(rep.get()));
      auto& front = pending.front();
      if (!front.wait) {
        if (++replies_of_front < raw_point_replies())
          continue;
        replies_of_front = 0;
        if (!exec_ok(rep.get()))
          fail("peer open loop: EXEC failed: " + reply_text(rep.get()));
        if (wait_replicas == 0) {
          out.latency_us[front.from] = us_between(start[front.from], arrived);
          ++done;
        }
      } else {
        if (rep->type != REDIS_REPLY_INTEGER || rep->integer < wait_replicas)
          fail("peer open loop: WAIT answered " + reply_text(rep.get()));
        for (auto p = front.from; p < front.to; ++p)
          out.latency_us[p] = us_between(start[p], arrived);
        done += front.to - front.from;
        wait_out = false;
      }
      pending.pop_front();
    }
  }
  out.offered_rate = n > 1 ? static_cast<double>(n - 1) / std::chrono::duration<double>(sent_all - t0).count()
                           : rate;
  return out;
}

// -- statistics ---------------------------------------------------------------------------

/// The q-quantile (0..1) by nearest rank.
inline double percentile(std::vector<double> xs, double q) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(xs.size())));
  return xs[std::min(xs.size() - 1, rank == 0 ? 0 : rank - 1)];
}

/// Jain's fairness index of per-consumer counts: 1 = perfectly even, 1/n = one did all.
inline double jain_index(const std::vector<double>& xs) {
  double sum = 0, squares = 0;
  for (auto x : xs) {
    sum += x;
    squares += x * x;
  }
  return squares == 0 ? 0 : sum * sum / (static_cast<double>(xs.size()) * squares);
}

// -- both sides on one server -----------------------------------------------------------------

/// Ours and the peer writing persistence points to the same server: ours through `box`
/// (prefix "ours:"), the peer on its own connection (prefix "peer:"), `max_instances`
/// instances each, an admin connection for cleaning up between windows.
class point_sides {
public:
  point_sides(persistence::message_box& box, uint16_t port, size_t max_instances,
              int wait_replicas = 0, std::chrono::milliseconds wait_timeout = 1000ms)
    : box_(box),
      peer_("127.0.0.1", port),
      admin_("127.0.0.1", port),
      wait_replicas_(wait_replicas),
      wait_timeout_(wait_timeout),
      groups_(box) {
    if (!peer_.ok() || !admin_.ok())
      fail("peer: cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + peer_.error());
    detect_commit_counter(admin_, box.key_schema().prefix());
    ours_ = create_instances(box, "pt-", max_instances);
    theirs_ = create_raw_instances(admin_, peer_keys_, "pt-", max_instances);
  }

  /// Closed-loop samples of both sides: points per second, and per point the CPU time of the
  /// Redis server (INFO cpu: user + sys of the master process) and of this process (all of
  /// its threads: for ours the caller and the MessageBox' loop thread), in microseconds.
  struct rate_samples {
    std::vector<double> rate[2];
    std::vector<double> server_us[2];
    std::vector<double> client_us[2];

    /// The CPU split as a "detail" object (medians over rounds).
    ojson cpu_detail() const {
      auto side = [](const std::vector<double>& a, const std::vector<double>& b) {
        return ojson{{"ours", round4(summarize(a).median)}, {"peer", round4(summarize(b).median)}};
      };
      return ojson{{"server_cpu_us_per_point", side(server_us[0], server_us[1])},
                   {"client_cpu_us_per_point", side(client_us[0], client_us[1])}};
    }
  };

  /// Closed loop with `batch` in flight over `window`, ours (side 0) or the peer (side 1);
  /// appends to `out`.
  void closed_window(int side, size_t batch, std::chrono::milliseconds window, rate_samples* out) {
    const double server0 = server_cpu_s(), client0 = process_cpu_s();
    auto r = side == 0 ? measure_rate(batch, window, max_points_,
                                      [&] { groups_.write(ours_, batch); })
                       : measure_rate(batch, window, max_points_, [&] {
                           raw_group(peer_, peer_keys_, theirs_, batch, wait_replicas_,
                                     wait_timeout_);
                         });
    const double server1 = server_cpu_s(), client1 = process_cpu_s();
    if (side == 0)
      trim(admin_, box_.key_schema(), ours_);
    else
      trim(admin_, peer_keys_, theirs_);
    if (out == nullptr)
      return;
    const auto points = static_cast<double>(r.points);
    out->rate[side].push_back(r.rate);
    out->server_us[side].push_back((server1 - server0) * 1e6 / points);
    out->client_us[side].push_back((client1 - client0) * 1e6 / points);
  }

  /// One unrecorded warm-up window each, then `rounds` alternating windows.
  rate_samples alternate_rates(size_t batch, int rounds, std::chrono::milliseconds window) {
    closed_window(0, batch, window / 2, nullptr);
    closed_window(1, batch, window / 2, nullptr);
    rate_samples out;
    for (int round = 0; round < rounds; ++round) {
      closed_window(0, batch, window, &out);
      closed_window(1, batch, window, &out);
    }
    return out;
  }

  /// Open loop at `rate` points/s for `duration`.
  open_loop_result ours_open(double rate, std::chrono::milliseconds duration) {
    auto out = our_open_loop(box_, ours_, rate, duration);
    trim(admin_, box_.key_schema(), ours_);
    return out;
  }
  open_loop_result peer_open(double rate, std::chrono::milliseconds duration) {
    auto out = raw_open_loop(peer_, peer_keys_, theirs_, rate, duration, wait_replicas_,
                             wait_timeout_);
    trim(admin_, peer_keys_, theirs_);
    return out;
  }

  /// B5's measurement: for each load (a fraction of `base_rate`), one warm-up, then
  /// `rounds` alternating open-loop windows; per window p50 / p99 / p999. Cases: p50 (target
  /// <= 1.5), p99 (<= 3), p999 (informational), each with the offered rates in "detail".
  ojson latency_cases(double base_rate, const std::vector<double>& loads, int rounds,
                      std::chrono::milliseconds duration, const std::string& peer_name,
                      const ojson& base_params) {
    ojson cases = ojson::array();
    for (auto load : loads) {
      const double rate = load * base_rate;
      ours_open(rate, duration / 4); // warm-up, unrecorded
      peer_open(rate, duration / 4);
      std::vector<double> q[2][3], offered[2];
      const double qs[3] = {0.5, 0.99, 0.999};
      for (int round = 0; round < rounds; ++round) {
        for (int side = 0; side < 2; ++side) {
          auto r = side == 0 ? ours_open(rate, duration) : peer_open(rate, duration);
          for (int k = 0; k < 3; ++k)
            q[side][k].push_back(percentile(r.latency_us, qs[k]));
          offered[side].push_back(r.offered_rate);
        }
      }
      const char* names[3] = {"p50", "p99", "p999"};
      const char* targets[3] = {"<= 1.5", "<= 3", ""};
      for (int k = 0; k < 3; ++k) {
        ojson params = base_params;
        params["load"] = std::to_string(static_cast<int>(load * 100 + 0.5)) + " %";
        params["rate"] = round4(rate);
        params["percentile"] = names[k];
        auto c = *targets[k] ? make_case(params, summarize(q[0][k]), peer_name,
                                         summarize(q[1][k]), targets[k])
                             : make_info_case(params, summarize(q[0][k]), peer_name,
                                              summarize(q[1][k]));
        c["unit"] = "us";
        c["detail"] = ojson{{"points_per_window", static_cast<size_t>(rate * std::chrono::duration<double>(duration).count())},
                            {"offered_rate_ours", to_json(summarize(offered[0]))},
                            {"offered_rate_peer", to_json(summarize(offered[1]))}};
        cases.push_back(std::move(c));
      }
    }
    return cases;
  }

  persistence::message_box& box() { return box_; }

  /// The Redis server's CPU time so far (INFO cpu: used_cpu_user + used_cpu_sys), seconds.
  double server_cpu_s() {
    auto r = admin_.run({"INFO", "cpu"});
    if (!r || r->type != REDIS_REPLY_STRING)
      fail("INFO cpu: " + (r ? reply_text(r.get()) : admin_.error()));
    std::string_view text(r->str, r->len);
    double total = 0;
    for (std::string_view field : {"used_cpu_sys:", "used_cpu_user:"}) {
      auto pos = text.find(field);
      if (pos == std::string_view::npos)
        fail("INFO cpu without " + std::string(field));
      total += std::strtod(std::string(text.substr(pos + field.size(), 24)).c_str(), nullptr);
    }
    return total;
  }

  /// This process' CPU time so far (all threads), seconds.
  static double process_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }

private:
  persistence::message_box& box_;
  raw_redis peer_;
  raw_redis admin_;
  persistence::keys peer_keys_{"peer:"};
  std::vector<tracked_instance> ours_, theirs_;
  int wait_replicas_;
  std::chrono::milliseconds wait_timeout_;
  our_groups groups_;
  size_t max_points_ = 200'000;
};

} // namespace convoy::bench
