#pragma once

/// @file
/// What the end-to-end benchmarks (B7, B8, B13) share on top of `redis_bench.hpp`:
///
/// - one real `convoy node` process (receive, processing and send hosts; the binary built
///   with this tree, or $CONVOY_BINARY) on a redis-server of tests/support;
/// - the 3-step flow: the `steps` example with count 3 (three sequential `ctx.call`s of the
///   `record` activity, no sink, no sleeps), submitted through `message_box::submit`;
/// - a completion observer: one thread reading a tracking stream (XREAD BLOCK) and time-
///   stamping every instance's "completed" event, so ours and the peers are measured by the
///   same code when the peer writes the same event;
/// - "ideal Redis" (B7's peer): the same flow as the minimum Redis round trips it needs,
///   issued by raw hiredis clients, one thread per host (see `ideal_flow`).

#include "child_output.hpp"
#include "redis_bench.hpp"

#include "convoy/test/process.hpp"
#include "convoy/test/wait_until.hpp"

#include <fstream>
#include <map>
#include <numeric>
#include <unordered_map>

#ifndef CONVOY_BINARY
#error "CONVOY_BINARY (path of the convoy executable) must be defined by the build"
#endif

namespace convoy::bench {

namespace fs = std::filesystem;

inline std::string convoy_node_binary() {
  if (const char* env = std::getenv("CONVOY_BINARY"); env != nullptr && *env != '\0')
    return env;
  return CONVOY_BINARY;
}

/// The input of one 3-step flow (the `steps` example).
inline std::string flow_input(int steps = 3) {
  return "{\"count\":" + std::to_string(steps) + ",\"sink\":\"\",\"pause_ms\":0}";
}

/// One `convoy node` on `redis` with every host, its log in `dir`; killed by PID when it goes.
class node_process {
public:
  node_process(const fs::path& dir, const test::redis_server& redis,
               std::vector<std::string> settings = {})
    : log_(dir / "node.log") {
    std::vector<std::string> argv{convoy_node_binary(), "node"};
    std::vector<std::string> all{"node.name=bench-node", "node.log_level=warn",
                                 "messagebox.address=" + redis.address()};
    all.insert(all.end(), settings.begin(), settings.end());
    for (const auto& kv : all) {
      argv.push_back("--set");
      argv.push_back(kv);
    }
    settings_ = all;
    proc_ = test::child_process::start(argv, {}, log_.string());
    persistence::message_box_config cfg;
    cfg.endpoint = loopback(redis.port());
    box_ = std::make_unique<persistence::message_box>(cfg);
    bool up = test::wait_until(
      [&] {
        auto view = box_->list_nodes(1s);
        for (const auto& n : view.nodes)
          if (n.name == "bench-node" && n.status == "alive")
            return true;
        return false;
      },
      60s, 50ms);
    if (!up)
      give_up("the node did not join within 60 s");
  }

  ~node_process() { proc_.kill(); }
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  persistence::message_box& box() { return *box_; }
  pid_t pid() const { return proc_.pid(); }
  const std::vector<std::string>& settings() const { return settings_; }

  [[noreturn]] void give_up(const std::string& why) {
    std::ifstream in(log_);
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (text.size() > 3000)
      text = text.substr(text.size() - 3000);
    std::cerr << why << "\n---- node log ----\n" << text << std::endl;
    fail(why + " (node log on stderr)");
  }

private:
  fs::path log_;
  std::vector<std::string> settings_;
  test::child_process proc_;
  std::unique_ptr<persistence::message_box> box_;
};

/// The redis-server's CPU seconds so far (INFO cpu: used_cpu_sys + used_cpu_user).
inline double redis_cpu_s(raw_redis& r) {
  auto rep = r.run({"INFO", "cpu"});
  if (!rep || rep->type != REDIS_REPLY_STRING)
    fail("INFO cpu: " + reply_text(rep.get()));
  std::string text(rep->str, rep->len);
  double total = 0;
  for (const char* name : {"used_cpu_sys:", "used_cpu_user:"}) {
    auto at = text.find(name);
    if (at != std::string::npos)
      total += std::strtod(text.c_str() + at + std::strlen(name), nullptr);
  }
  return total;
}

/// CPU per flow of a window, both sides: the Redis server's and the client's (ours: the node
/// process; ideal Redis: this process; BullMQ: its Node.js process, start included).
struct cpu_per_flow {
  std::vector<double> redis_us;
  std::vector<double> client_us;

  void add(double redis_s, double client_s, size_t flows) {
    redis_us.push_back(redis_s * 1e6 / static_cast<double>(flows));
    client_us.push_back(client_s * 1e6 / static_cast<double>(flows));
  }

  ojson json() const {
    return ojson{{"redis_cpu_us_per_flow", round4(summarize(redis_us).median)},
                 {"client_cpu_us_per_flow", round4(summarize(client_us).median)}};
  }
};

/// The CPU-per-flow view of a case (medians over its windows).
inline ojson cpu_view(const cpu_per_flow& ours, const cpu_per_flow& peer, const char* client) {
  return ojson{{"unit", std::string("CPU µs per flow; client = ") + client},
               {"ours", ours.json()},
               {"peer", peer.json()}};
}

// -- completion observer --------------------------------------------------------------------

/// Reads `stream` (a tracking stream: fields instance, event, detail) from its end on, on its
/// own connection and thread, and stamps the first `event` of every instance.
class event_observer {
public:
  event_observer(uint16_t port, std::string stream, std::string event = "completed")
    : stream_(std::move(stream)), event_(std::move(event)) {
    if (!conn_.connect("127.0.0.1", port, 2s, 5s))
      fail("observer: " + conn_.error());
    auto last = conn_.run({"XREVRANGE", stream_, "+", "-", "COUNT", "1"});
    if (last && last->type == REDIS_REPLY_ARRAY && last->elements == 1)
      last_id_ = std::string(last->element[0]->element[0]->str, last->element[0]->element[0]->len);
    thread_ = std::thread([this] { loop(); });
  }

  ~event_observer() {
    stop_ = true;
    thread_.join();
  }

  /// When `instance` had the event, if it has.
  std::optional<clock_type::time_point> when(const std::string& instance) {
    std::lock_guard<std::mutex> guard(mtx_);
    auto i = seen_.find(instance);
    if (i == seen_.end())
      return std::nullopt;
    return i->second;
  }

  size_t count() const { return count_.load(std::memory_order_acquire); }

  /// Waits until `n` events were seen in all, at most `limit`; returns whether they were.
  bool wait_count(size_t n, std::chrono::milliseconds limit) {
    return test::wait_until([&] { return count() >= n; }, limit, 2ms);
  }

  /// Forgets what was seen (between windows).
  void clear() {
    std::lock_guard<std::mutex> guard(mtx_);
    seen_.clear();
    count_ = 0;
  }

  std::string error() {
    std::lock_guard<std::mutex> guard(mtx_);
    return error_;
  }

private:
  void loop() {
    while (!stop_) {
      auto r = conn_.run({"XREAD", "COUNT", "2000", "BLOCK", "100", "STREAMS", stream_, last_id_});
      if (!r) {
        std::lock_guard<std::mutex> guard(mtx_);
        error_ = "observer read: " + conn_.error();
        return;
      }
      if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        continue;
      auto now = clock_type::now();
      const auto* entries = r->element[0]->element[1];
      std::lock_guard<std::mutex> guard(mtx_);
      for (size_t i = 0; i < entries->elements; ++i) {
        const auto* e = entries->element[i];
        last_id_.assign(e->element[0]->str, e->element[0]->len);
        const auto* f = e->element[1];
        std::string_view instance, event;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
          std::string_view name(f->element[k]->str, f->element[k]->len);
          std::string_view value(f->element[k + 1]->str, f->element[k + 1]->len);
          if (name == "instance")
            instance = value;
          else if (name == "event")
            event = value;
        }
        if (event == event_ && seen_.emplace(std::string(instance), now).second)
          count_.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }

  std::string stream_;
  std::string event_;
  raw_redis conn_;
  std::string last_id_ = "0-0";
  std::atomic<bool> stop_{false};
  std::atomic<size_t> count_{0};
  std::mutex mtx_;
  std::unordered_map<std::string, clock_type::time_point> seen_;
  std::string error_;
  std::thread thread_;
};

// -- ideal Redis: the flow's minimum round trips ----------------------------------------------

/// The 3-step flow as raw hiredis clients do it with the fewest Redis round trips that keep
/// the same durable steps: one thread per host, each with its own connection, reading its
/// queue with XREADGROUP (COUNT 256, BLOCK 50) and answering a whole read with one pipeline
/// of MULTI/EXEC transactions, one per entry:
/// - receive: HSET the record (pending) + XADD start to processing + XACK;
/// - processing: on start or a result, HSET status + RPUSH a journal entry + XADD the next
///   activity to send + XACK; after the last result, HSET completed + RPUSH + XACK + XADD
///   "completed" to its tracking stream;
/// - send: run the activity (returns its step) and XADD the result to processing + XACK.
/// Submission is one XADD to its receive queue, as `message_box::submit` does. It does
/// none of the checks ours does (owner epochs, sequence numbers, dedupe, leases).
class ideal_flow {
public:
  ideal_flow(uint16_t port, std::string prefix, int steps = 3)
    : port_(port), k_(std::move(prefix)), steps_(steps) {
    raw_redis admin("127.0.0.1", port);
    for (const char* host : {"receive", "processing", "send"}) {
      auto r = admin.run({"XGROUP", "CREATE", k_.queue(host), host, "$", "MKSTREAM"});
      if (!r || (r->type == REDIS_REPLY_ERROR
                 && std::string_view(r->str, r->len).find("BUSYGROUP") == std::string_view::npos))
        fail(std::string("ideal: XGROUP CREATE ") + host + ": " + reply_text(r.get()));
    }
    if (!submitter_.connect("127.0.0.1", port, 2s, 5s))
      fail("ideal submitter: " + submitter_.error());
    for (const char* host : {"receive", "processing", "send"})
      threads_.emplace_back([this, h = std::string(host)] { serve(h); });
  }

  ~ideal_flow() {
    stop_ = true;
    for (auto& t : threads_)
      t.join();
  }

  std::string tracking() const { return k_.tracking(); }

  /// Submits one flow (one round trip); returns an error or "".
  std::string submit(const std::string& id) {
    auto input = flow_input(steps_);
    auto r = submitter_.run({"XADD", k_.queue("receive"), "*", "v", "1", "kind", "submit", "type",
                             "steps", "input", input, "id", id});
    return r && r->type == REDIS_REPLY_STRING ? std::string{} : "XADD: " + reply_text(r.get());
  }

  std::string error() {
    std::lock_guard<std::mutex> guard(mtx_);
    return error_;
  }

private:
  static std::string field(const redisReply* fields, std::string_view name) {
    for (size_t k = 0; k + 1 < fields->elements; k += 2)
      if (std::string_view(fields->element[k]->str, fields->element[k]->len) == name)
        return std::string(fields->element[k + 1]->str, fields->element[k + 1]->len);
    return {};
  }

  void set_error(std::string e) {
    std::lock_guard<std::mutex> guard(mtx_);
    if (error_.empty())
      error_ = std::move(e);
  }

  /// Appends the transaction for one entry of `host`'s queue; returns the replies it adds.
  int append_step(raw_redis& c, const std::string& host, const std::string& msg_id,
                  const redisReply* f) {
    auto id = field(f, "instance");
    const auto q = k_.queue(host);
    c.append({"MULTI"});
    int replies = 2;
    if (host == "receive") {
      id = field(f, "id");
      c.append({"HSET", k_.instance(id), "type", "steps", "input", field(f, "input"), "status",
                "pending", "host", "processing"});
      c.append({"XADD", k_.queue("processing"), "*", "kind", "start", "instance", id});
      replies += 2;
    } else if (host == "processing") {
      int next = field(f, "kind") == "start" ? 0 : std::stoi(field(f, "step")) + 1;
      auto n = std::to_string(next);
      if (next < steps_) {
        c.append({"HSET", k_.instance(id), "status", "waiting", "seq", n});
        c.append({"RPUSH", k_.journal(id), "scheduled " + n});
        c.append({"XADD", k_.queue("send"), "*", "kind", "activity", "instance", id, "step", n,
                  "activity", "record", "args", "{\"sink\":\"\",\"step\":" + n + "}"});
        replies += 3;
      } else {
        c.append({"HSET", k_.instance(id), "status", "completed", "seq", n, "result", "3"});
        c.append({"RPUSH", k_.journal(id), "completed"});
        c.append({"XADD", k_.tracking(), "MAXLEN", "~", "10000", "*", "instance", id, "event",
                  "completed", "detail", ""});
        replies += 3;
      }
    } else { // send: the activity returns its step
      auto step = field(f, "step");
      c.append({"XADD", k_.queue("processing"), "*", "kind", "result", "instance", id, "step",
                step, "ok", "1", "payload", step});
      replies += 1;
    }
    c.append({"XACK", q, host, msg_id});
    c.append({"EXEC"});
    return replies + 1;
  }

  void serve(const std::string& host) {
    raw_redis c;
    if (!c.connect("127.0.0.1", port_, 2s, 5s)) {
      set_error("ideal " + host + ": " + c.error());
      return;
    }
    const auto q = k_.queue(host);
    while (!stop_) {
      auto r = c.run({"XREADGROUP", "GROUP", host, "ideal", "COUNT", "256", "BLOCK", "50",
                      "STREAMS", q, ">"});
      if (!r) {
        set_error("ideal " + host + " read: " + c.error());
        return;
      }
      if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        continue;
      const auto* entries = r->element[0]->element[1];
      int replies = 0;
      for (size_t i = 0; i < entries->elements; ++i) {
        const auto* e = entries->element[i];
        replies += append_step(c, host, std::string(e->element[0]->str, e->element[0]->len),
                               e->element[1]);
      }
      for (int i = 0; i < replies; ++i) {
        auto rep = c.get();
        if (!rep) {
          set_error("ideal " + host + ": " + c.error());
          return;
        }
        if (rep->type == REDIS_REPLY_ERROR)
          set_error("ideal " + host + ": " + reply_text(rep.get()));
      }
    }
  }

  uint16_t port_;
  persistence::keys k_;
  int steps_;
  raw_redis submitter_;
  std::atomic<bool> stop_{false};
  std::mutex mtx_;
  std::string error_;
  std::vector<std::thread> threads_;
};

/// Submits `n` flows named `stem<i>` with `submit(id)` (returns an error or ""), open loop at
/// `rate` per second (0: as fast as it goes); returns the instant of the first submission.
template <class Submit>
clock_type::time_point submit_paced(size_t n, double rate, const std::string& stem,
                                    Submit submit) {
  auto t0 = clock_type::now();
  for (size_t i = 0; i < n; ++i) {
    if (rate > 0)
      std::this_thread::sleep_until(due_at(t0, i, rate));
    if (auto err = submit(stem + std::to_string(i)); !err.empty())
      fail("submit: " + err);
  }
  return t0;
}

/// Completed flows per second of a window: `n` flows named `stem<i>` submitted from `t0`,
/// completions seen by `obs` within `drain` after the last submission. Returns the rate
/// (completed / (last completion - t0)) and fills `latencies_ms` (submission due time to
/// completion) when given.
inline double completed_rate(event_observer& obs, size_t n, const std::string& stem,
                             clock_type::time_point t0, double rate,
                             std::chrono::milliseconds drain,
                             std::vector<double>* latencies_ms = nullptr) {
  obs.wait_count(n, drain);
  size_t done = 0;
  clock_type::time_point last = t0;
  for (size_t i = 0; i < n; ++i) {
    if (auto t = obs.when(stem + std::to_string(i))) {
      ++done;
      last = std::max(last, *t);
      if (latencies_ms != nullptr)
        latencies_ms->push_back(ms_between(rate > 0 ? due_at(t0, i, rate) : t0, *t));
    }
  }
  if (done == 0)
    return 0;
  return static_cast<double>(done) / std::chrono::duration<double>(last - t0).count();
}

} // namespace convoy::bench
