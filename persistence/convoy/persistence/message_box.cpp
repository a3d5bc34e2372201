#include "convoy/persistence/message_box.hpp"

#include "convoy/persistence/internal/function_library.hpp"
#include "convoy/persistence/internal/replies.hpp"
#include "convoy/actors/clock.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <future>
#include <random>

namespace convoy::persistence {

namespace {

template <class T>
T to_number(const std::string& text, T fallback = 0) {
  T value = fallback;
  auto res = std::from_chars(text.data(), text.data() + text.size(), value);
  return res.ec == std::errc{} ? value : fallback;
}

} // namespace

namespace internal {

store_status classify(const redis_value& v) {
  if (!v.is_error())
    return store_status::ok;
  if (v.outcome_unknown())
    return store_status::unavailable;
  if (v.str.rfind("CONVOY_STALE_EPOCH", 0) == 0)
    return store_status::stale_epoch;
  if (v.str.rfind("CONVOY_ROLLED_BACK", 0) == 0)
    return store_status::rolled_back;
  return store_status::rejected;
}

std::vector<queue_entry> parse_entries(const redis_value& list) {
  std::vector<queue_entry> out;
  if (!list.is_array())
    return out;
  for (const auto& e : list.elements) {
    if (!e.is_array() || e.elements.size() != 2)
      continue;
    queue_entry entry;
    entry.id = e.elements[0].str;
    const auto& kv = e.elements[1];
    for (size_t i = 0; kv.is_array() && i + 1 < kv.elements.size(); i += 2) {
      const auto& value = kv.elements[i + 1].str;
      if (value.size() > max_payload_bytes) {
        entry.error = "has a field '" + kv.elements[i].str.substr(0, 64) + "' of "
                      + std::to_string(value.size()) + " bytes, over the limit of "
                      + std::to_string(max_payload_bytes);
        entry.fields.clear();
        break;
      }
      entry.fields[kv.elements[i].str] = value;
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::string decode_journal(const redis_value& list, const std::string& instance_id,
                           std::vector<journal_entry>& out) {
  if (list.elements.size() > max_journal_entries)
    return "the journal of " + instance_id + " has " + std::to_string(list.elements.size())
           + " entries, over the limit of " + std::to_string(max_journal_entries);
  size_t bytes = 0;
  for (const auto& e : list.elements)
    bytes += e.str.size();
  if (bytes > max_journal_bytes)
    return "the journal of " + instance_id + " holds " + std::to_string(bytes)
           + " bytes, over the limit of " + std::to_string(max_journal_bytes);
  out.reserve(list.elements.size());
  for (size_t i = 0; i < list.elements.size(); ++i) {
    auto decoded = decode_journal_entry(list.elements[i].str);
    if (auto err = std::get_if<decode_error>(&decoded))
      return "journal entry " + std::to_string(i) + " of " + instance_id + " is corrupt: "
             + err->message;
    out.push_back(std::get<journal_entry>(std::move(decoded)));
  }
  return {};
}

} // namespace internal

using internal::classify;
using internal::decode_journal;
using internal::parse_entries;

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == ':' || c == '-';
  });
}

const std::string& queue_entry::field(const std::string& name) const {
  static const std::string empty;
  auto i = fields.find(name);
  return i == fields.end() ? empty : i->second;
}

std::string check_record_size(const std::string& id, const redis_value& flat) {
  for (size_t i = 0; flat.is_array() && i + 1 < flat.elements.size(); i += 2)
    if (flat.elements[i + 1].str.size() > max_payload_bytes)
      return "field '" + flat.elements[i].str.substr(0, 64) + "' of instance " + id + " is "
             + std::to_string(flat.elements[i + 1].str.size()) + " bytes, over the limit of "
             + std::to_string(max_payload_bytes);
  return {};
}

instance_record parse_instance_record(const std::string& id, const redis_value& flat) {
  instance_record rec;
  rec.id = id;
  for (size_t i = 0; flat.is_array() && i + 1 < flat.elements.size(); i += 2) {
    const auto& k = flat.elements[i].str;
    const auto& v = flat.elements[i + 1].str;
    if (k == "type")
      rec.type = v;
    else if (k == "version")
      rec.version = to_number<uint32_t>(v);
    else if (k == "host")
      rec.host = v;
    else if (k == "status")
      rec.status = parse_instance_status(v).value_or(instance_status::suspended);
    else if (k == "epoch")
      rec.epoch = to_number<uint64_t>(v);
    else if (k == "seq")
      rec.seq = to_number<uint64_t>(v);
    else if (k == "owner")
      rec.owner = v;
    else if (k == "steps")
      rec.steps = to_number<uint32_t>(v);
    else if (k == "input")
      rec.input = v;
    else if (k == "result")
      rec.result = v;
    else if (k == "error")
      rec.error = v;
    else if (k == "created")
      rec.created_ms = to_number<int64_t>(v);
    else if (k == "updated")
      rec.updated_ms = to_number<int64_t>(v);
    else if (k == "query")
      rec.query_state = v;
    else if (k == "generation")
      rec.generation = to_number<uint32_t>(v);
    else if (k == "parent")
      rec.parent = v;
  }
  return rec;
}

/// Replicated durability's group commit. Loop thread only.
struct message_box::group_commit {
  struct waiting_write {
    std::vector<std::string> argv;
    std::function<void(redis_value)> done;
  };
  std::deque<waiting_write> waiting;
  /// One group at a time: while its WAIT is out, the next group gathers.
  bool in_flight = false;
  bool closing = false;
  std::atomic<int64_t> groups{0};
  std::atomic<int64_t> writes{0};
  std::atomic<int64_t> largest{0};
};

/// What rollback detection knows. `mtx` guards everything but the counters.
struct message_box::rollback_watch {
  std::mutex mtx;
  std::string store_id;
  int64_t highest_acknowledged = 0;
  /// (commit number, instance) of recent acknowledged persistence points, oldest first.
  std::deque<std::pair<int64_t, std::string>> recent;
  std::function<void(const rollback_report&)> listener;
  std::atomic<int64_t> rollbacks{0};
  std::atomic<int64_t> points_lost{0};
  std::atomic<int64_t> store_changes{0};
  /// See message_box_stats::write_latency_us. Updated on the loop thread only.
  std::atomic<int64_t> write_latency_us{0};
  /// The latency histogram: one counter per bucket of latency_bounds_ms, then +Inf.
  std::vector<std::atomic<int64_t>> latency_buckets =
    std::vector<std::atomic<int64_t>>(latency_bounds_ms.size() + 1);
  std::atomic<int64_t> latency_sum_us{0};
  /// The server the last new connection found (under mtx), and how often that changed.
  std::string last_server;
  std::atomic<int64_t> servers_changed{0};

  void record_latency(int64_t us) {
    size_t i = 0;
    while (i < latency_bounds_ms.size() && static_cast<double>(us) > latency_bounds_ms[i] * 1000)
      ++i;
    latency_buckets[i].fetch_add(1, std::memory_order_relaxed);
    latency_sum_us.fetch_add(us, std::memory_order_relaxed);
  }
};

message_box::message_box(message_box_config config)
  : config_(std::move(config)),
    keys_(config_.prefix),
    group_(std::make_unique<group_commit>()),
    watch_(std::make_unique<rollback_watch>()),
    commands_(std::make_unique<redis_connection>(loop_, config_.endpoint)) {
  // Every server the writing connection lands on is asked who it is and how much it holds.
  commands_->set_handshake({{"HMGET", keys_.store(), "id", "commits"}},
                           [this](std::vector<redis_value> replies, const redis_endpoint& server) {
                             on_store_seen(replies, server);
                           });
}

message_box::~message_box() {
  // Connections go before the loop that runs them; a group still gathering fails.
  loop_.post([this] { group_->closing = true; });
  {
    std::lock_guard<std::mutex> guard(readers_mtx_);
    readers_.clear();
  }
  commands_.reset();
  std::promise<void> drained;
  loop_.post([this, &drained] {
    for (auto& w : group_->waiting)
      w.done(redis_value::error(std::string(connection_error_prefix) + "the MessageBox client closed"));
    group_->waiting.clear();
    drained.set_value();
  });
  drained.get_future().wait();
}

void message_box::on_rollback(std::function<void(const rollback_report&)> listener) {
  std::lock_guard<std::mutex> guard(watch_->mtx);
  watch_->listener = std::move(listener);
}

int64_t message_box::write_latency_us() const noexcept {
  return watch_->write_latency_us.load(std::memory_order_relaxed);
}

message_box_stats message_box::stats() const {
  message_box_stats out;
  out.rollbacks_detected = watch_->rollbacks.load();
  out.points_lost = watch_->points_lost.load();
  out.store_changes = watch_->store_changes.load();
  out.group_commits = group_->groups.load();
  out.grouped_writes = group_->writes.load();
  out.largest_group = group_->largest.load();
  out.write_latency_us = watch_->write_latency_us.load();
  int64_t cumulative = 0;
  for (const auto& bucket : watch_->latency_buckets) {
    cumulative += bucket.load(std::memory_order_relaxed);
    out.latency_le.push_back(cumulative);
  }
  out.points_acknowledged = cumulative;
  out.latency_sum_us = watch_->latency_sum_us.load(std::memory_order_relaxed);
  out.servers_changed = watch_->servers_changed.load();
  return out;
}

void message_box::remember_commit(int64_t commit, const std::string& instance) {
  std::lock_guard<std::mutex> guard(watch_->mtx);
  watch_->highest_acknowledged = std::max(watch_->highest_acknowledged, commit);
  watch_->recent.emplace_back(commit, instance);
  while (watch_->recent.size() > config_.rollback_window)
    watch_->recent.pop_front();
}

void message_box::on_store_seen(const std::vector<redis_value>& replies,
                                const redis_endpoint& server) {
  rollback_report report;
  std::function<void(const rollback_report&)> listener;
  {
    std::lock_guard<std::mutex> guard(watch_->mtx);
    if (!watch_->last_server.empty() && watch_->last_server != server.address())
      watch_->servers_changed += 1;
    watch_->last_server = server.address();
    if (watch_->store_id.empty())
      return; // not prepared yet: nothing acknowledged to lose
    const auto& fields = replies.front();
    if (fields.is_error() || !fields.is_array() || fields.elements.size() != 2)
      return; // the connection failed again; the next one asks again
    if (fields.elements[0].str != watch_->store_id) {
      // Writes are refused by the functions themselves (CONVOY_STORE_CHANGED); say it once
      // per connection, loudly.
      spdlog::error("MessageBox: the master {} holds store '{}', not '{}' that this node "
                    "prepared: it may have restarted empty; its persistence points are refused",
                    server.address(), fields.elements[0].is_nil() ? "none" : fields.elements[0].str,
                    watch_->store_id);
      return;
    }
    auto held = to_number<int64_t>(fields.elements[1].str);
    if (held >= watch_->highest_acknowledged)
      return;
    report.server = server.address();
    report.acknowledged = watch_->highest_acknowledged;
    report.held = held;
    std::vector<std::string> ids;
    int64_t identified = 0;
    while (!watch_->recent.empty() && watch_->recent.back().first > held) {
      ids.push_back(std::move(watch_->recent.back().second));
      watch_->recent.pop_back();
      ++identified;
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    report.instances = std::move(ids);
    report.unidentified = report.lost() - identified;
    // Commit numbers continue from what the store holds.
    watch_->highest_acknowledged = held;
    listener = watch_->listener;
  }
  watch_->rollbacks += 1;
  watch_->points_lost += report.lost();
  std::string ids;
  for (const auto& id : report.instances)
    ids += (ids.empty() ? "" : " ") + id;
  spdlog::error("MessageBox ROLLBACK: the master {} holds {} persistence points but {} were "
                "acknowledged: {} lost, in instances [{}]{}; they resume from what the store holds",
                report.server, report.held, report.acknowledged, report.lost(), ids,
                report.unidentified > 0
                  ? " and " + std::to_string(report.unidentified) + " older points not identified"
                  : std::string{});
  auto now = std::to_string(wall_clock_ms());
  commands_->command_in_loop({"XADD", keys_.rollbacks(), "MAXLEN", "~", "1000", "*", "server",
                              report.server, "acknowledged", std::to_string(report.acknowledged),
                              "held", std::to_string(report.held), "lost",
                              std::to_string(report.lost()), "instances", ids, "at", now},
                             [](redis_value) {});
  for (const auto& id : report.instances)
    commands_->command_in_loop({"XADD", keys_.tracking(), "MAXLEN", "~", "10000", "*", "instance",
                                id, "event", "rolled-back", "detail",
                                "acknowledged persistence points lost in a failover"},
                               [](redis_value) {});
  if (listener)
    listener(report);
}

void message_box::durable(std::vector<std::string> argv, std::function<void(redis_value)> done,
                          durability_level level) {
  bool replicated = level == durability_level::node_default
                      ? config_.level == durability::replicated
                      : level == durability_level::replicated;
  if (!replicated) {
    commands_->command(std::move(argv), std::move(done));
    return;
  }
  loop_.post([this, argv = std::move(argv), done = std::move(done)]() mutable {
    if (group_->closing) {
      done(redis_value::error(std::string(connection_error_prefix) + "the MessageBox client closed"));
      return;
    }
    group_->waiting.push_back({std::move(argv), std::move(done)});
    if (!group_->in_flight)
      flush_group();
  });
}

void message_box::flush_group() {
  auto& g = *group_;
  struct member {
    std::function<void(redis_value)> done;
    redis_value reply;
  };
  auto n = std::min(g.waiting.size(), std::max<size_t>(config_.max_group, 1));
  auto group = std::make_shared<std::vector<member>>();
  group->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto w = std::move(g.waiting.front());
    g.waiting.pop_front();
    group->push_back({std::move(w.done), {}});
    commands_->command_in_loop(std::move(w.argv),
                               [group, i](redis_value v) { (*group)[i].reply = std::move(v); });
  }
  g.in_flight = true;
  g.groups += 1;
  g.writes += static_cast<int64_t>(n);
  if (static_cast<int64_t>(n) > g.largest)
    g.largest = static_cast<int64_t>(n);
  auto replicas = config_.replicas;
  auto timeout = config_.wait_timeout.count();
  // WAIT counts every earlier write of this connection: one for the whole group.
  commands_->command_in_loop(
    {"WAIT", std::to_string(replicas), std::to_string(timeout)},
    [this, group, replicas, timeout](redis_value w) {
      std::string short_count;
      if (w.is_error())
        short_count = w.outcome_unknown() ? w.str : "NOREPLICAS WAIT failed: " + w.str;
      else if (w.integer < replicas)
        short_count = "NOREPLICAS not acknowledged: WAIT saw " + std::to_string(w.integer)
                      + " of " + std::to_string(replicas) + " replicas within "
                      + std::to_string(timeout) + " ms";
      for (auto& m : *group)
        m.done(m.reply.is_error() || short_count.empty() ? std::move(m.reply)
                                                         : redis_value::error(short_count));
      group_->in_flight = false;
      if (group_->closing)
        return;
      if (!group_->waiting.empty())
        flush_group();
    });
}

redis_value message_box::run_durable(std::vector<std::string> argv,
                                     std::chrono::milliseconds timeout) {
  auto reply = std::make_shared<std::promise<redis_value>>();
  auto future = reply->get_future();
  durable(std::move(argv), [reply](redis_value v) { reply->set_value(std::move(v)); });
  if (future.wait_for(timeout) != std::future_status::ready)
    return redis_value::error(std::string(connection_error_prefix) + "no answer from "
                              + config_.endpoint.address() + " within "
                              + std::to_string(timeout.count()) + " ms");
  return future.get();
}

std::string message_box::prepare(const std::vector<std::string>& hosts,
                                  std::chrono::milliseconds timeout) {
  auto version = commands_->run({"FCALL", "convoy_version", "0"}, timeout);
  if (version.outcome_unknown())
    return "cannot reach Redis at " + config_.endpoint.address() + ": "
           + version.str.substr(connection_error_prefix.size());
  if (version.is_error() || version.integer != internal::function_library_version) {
    auto loaded
      = commands_->run({"FUNCTION", "LOAD", "REPLACE", std::string(internal::function_library)},
                       timeout);
    if (loaded.is_error())
      return "cannot load Convoy's Redis functions into " + config_.endpoint.address() + ": "
             + loaded.str;
  }
  for (const auto& host : hosts) {
    auto made = commands_->run(
      {"XGROUP", "CREATE", keys_.queue(host), host, "0", "MKSTREAM"}, timeout);
    if (made.is_error() && made.str.rfind("BUSYGROUP", 0) != 0)
      return "cannot create the queue of host '" + host + "': " + made.str;
  }
  // The store's identity: made once by the first node to prepare it, then only read. A
  // server that later lacks it (restarted empty) is not trusted with persistence points.
  std::random_device entropy;
  std::mt19937_64 gen((static_cast<uint64_t>(entropy()) << 32) ^ entropy());
  char fresh[33];
  std::snprintf(fresh, sizeof fresh, "%016llx%016llx", static_cast<unsigned long long>(gen()),
                static_cast<unsigned long long>(gen()));
  auto made = commands_->run_all(
    {{"HSETNX", keys_.store(), "id", fresh},
     {"HSETNX", keys_.store(), "created", std::to_string(wall_clock_ms())},
     {"HSETNX", keys_.store(), "fmt", std::to_string(record_format_version)},
     {"HGET", keys_.store(), "id"}},
    timeout);
  for (const auto& r : made)
    if (r.is_error())
      return "cannot read or create the store identity at " + config_.endpoint.address() + ": "
             + r.str;
  if (made.back().str.empty())
    return "the store identity at " + config_.endpoint.address() + " is empty";
  store_id_ = made.back().str;
  std::lock_guard<std::mutex> guard(watch_->mtx);
  watch_->store_id = store_id_;
  return {};
}

void message_box::claim(const std::string& instance_id, const std::string& owner,
                        std::function<void(claim_result)> done) {
  // A claim grants an owner epoch, so it is as durable as a persistence point: with replicated
  // durability it waits for the replicas too. Otherwise a master that stalled, was replaced and
  // still answers its old connections for a few seconds grants an epoch the new master grants
  // again to another node: two owners with one epoch (found by convoy chaos, fault F4). A short
  // WAIT is "outcome unknown" (NOREPLICAS): the instance claims again, later, wherever the
  // master then is.
  durable(
    {"FCALL", "convoy_claim", "2", keys_.instance(instance_id), keys_.journal(instance_id), owner,
     std::to_string(wall_clock_ms())},
    [instance_id, done = std::move(done)](redis_value v) {
      claim_result out;
      out.status = classify(v);
      if (out.status != store_status::ok) {
        out.error = v.str;
        done(std::move(out));
        return;
      }
      if (!v.is_array() || v.elements.size() != 2) {
        out.status = store_status::rejected;
        out.error = "convoy_claim answered with an unexpected reply";
        done(std::move(out));
        return;
      }
      out.record = parse_instance_record(instance_id, v.elements[0]);
      out.error = check_record_size(instance_id, v.elements[0]);
      if (out.error.empty())
        out.error = decode_journal(v.elements[1], instance_id, out.journal);
      // On a corrupt journal the record (with its new epoch) stays, so the owner can
      // suspend the instance.
      if (!out.error.empty())
        out.status = store_status::rejected;
      done(std::move(out));
    });
}

namespace {

/// Moves a field out of a checkpoint the store may consume, copies it from one it may not.
template <class Checkpoint, class T>
decltype(auto) take_field(T& field) {
  if constexpr (std::is_const_v<Checkpoint>)
    return static_cast<const T&>(field);
  else
    return std::move(field);
}

/// The FCALL convoy_checkpoint of a persistence point (without the trailing store id).
template <class Checkpoint>
std::vector<std::string> checkpoint_argv(const keys& keys_, Checkpoint& cp) {
  using C = Checkpoint;
  std::vector<std::string> argv{"FCALL",
                                "convoy_checkpoint",
                                "6",
                                keys_.instance(cp.instance_id),
                                keys_.journal(cp.instance_id),
                                keys_.timers(),
                                keys_.tracking(),
                                keys_.queue(cp.host),
                                keys_.store(),
                                std::to_string(cp.epoch),
                                std::to_string(cp.seq),
                                std::to_string(wall_clock_ms()),
                                std::string(to_string(cp.status)),
                                std::to_string(cp.steps),
                                cp.result,
                                cp.error,
                                cp.host,
                                keys_.prefix(),
                                std::to_string(cp.generation),
                                cp.reset ? "1" : "0",
                                cp.new_input,
                                cp.query_state ? *cp.query_state : std::string(1, '\0')};
  argv.reserve(argv.size() + 8 + cp.entries.size() + 6 * cp.activities.size() + cp.acks.size()
               + 2 * cp.timers.size() + cp.cancelled_timers.size() + 6 * cp.children.size()
               + 2 * cp.subscriptions.size());
  argv.push_back(std::to_string(cp.entries.size()));
  for (const auto& e : cp.entries)
    argv.push_back(encode(e));
  argv.push_back(std::to_string(cp.activities.size()));
  for (auto& a : cp.activities) {
    argv.push_back("send");
    argv.push_back(std::to_string(a.step));
    argv.push_back(take_field<C>(a.activity));
    argv.push_back(take_field<C>(a.args));
    argv.push_back(take_field<C>(a.idempotency_key));
    argv.push_back(take_field<C>(a.options));
  }
  argv.push_back(std::to_string(cp.timers.size()));
  for (const auto& t : cp.timers) {
    argv.push_back(std::to_string(t.due_ms));
    argv.push_back(std::to_string(t.step));
  }
  argv.push_back(std::to_string(cp.cancelled_timers.size()));
  for (const auto& t : cp.cancelled_timers)
    argv.push_back(std::to_string(t.step));
  argv.push_back(std::to_string(cp.children.size()));
  for (auto& c : cp.children) {
    argv.push_back(std::to_string(c.step));
    argv.push_back(take_field<C>(c.child_id));
    argv.push_back(take_field<C>(c.type));
    argv.push_back(take_field<C>(c.input));
    argv.push_back(c.awaited ? "1" : "0");
    argv.push_back(std::to_string(c.version));
  }
  argv.push_back(std::to_string(cp.subscriptions.size()));
  for (const auto& [key, shape] : cp.subscriptions) {
    argv.push_back(key);
    argv.push_back(shape);
  }
  argv.push_back(std::to_string(cp.acks.size()));
  for (auto& id : cp.acks)
    argv.push_back(take_field<C>(id));
  return argv;
}

} // namespace

void message_box::write(checkpoint cp, std::function<void(store_status, std::string)> done) {
  send_checkpoint(checkpoint_argv(keys_, cp), cp.instance_id, cp.durability, std::move(done));
}

void message_box::write_kept(const checkpoint& cp,
                             std::function<void(store_status, std::string)> done) {
  send_checkpoint(checkpoint_argv(keys_, cp), cp.instance_id, cp.durability, std::move(done));
}

void message_box::send_checkpoint(std::vector<std::string> argv, const std::string& instance_id,
                                  durability_level level,
                                  std::function<void(store_status, std::string)> done) {
  argv.push_back(store_id_);
  auto sent = std::chrono::steady_clock::now();
  durable(std::move(argv), [this, sent, id = instance_id, done = std::move(done)](redis_value v) mutable {
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - sent).count();
    auto& ewma = watch_->write_latency_us;
    ewma.store(ewma.load(std::memory_order_relaxed) + (took - ewma.load(std::memory_order_relaxed)) / 8,
               std::memory_order_relaxed);
    auto status = classify(v);
    if (status == store_status::ok)
      watch_->record_latency(took);
    if (status == store_status::ok && v.kind == redis_value::type::integer)
      remember_commit(v.integer, id);
    if (v.is_error() && v.str.find("Function not found") != std::string::npos)
      v.str = "CONVOY_STORE_CHANGED the server has no Convoy functions: it may have restarted "
              "empty (" + v.str + ")";
    if (v.is_error() && v.str.rfind("CONVOY_STORE_CHANGED", 0) == 0)
      watch_->store_changes += 1;
    done(status, v.is_error() ? v.str : std::string{});
  }, level);
}

void message_box::ack(const std::string& host, std::vector<std::string> message_ids) {
  if (message_ids.empty())
    return;
  std::vector<std::string> xack{"XACK", keys_.queue(host), host};
  std::vector<std::string> xdel{"XDEL", keys_.queue(host)};
  for (auto& id : message_ids) {
    xack.push_back(id);
    xdel.push_back(std::move(id));
  }
  commands_->command(std::move(xack), [](redis_value) {});
  commands_->command(std::move(xdel), [](redis_value) {});
}

void message_box::release(const std::string& host, std::vector<std::string> message_ids) {
  if (message_ids.empty())
    return;
  std::vector<std::string> argv{"FCALL", "convoy_requeue", "1", keys_.queue(host), host};
  for (auto& id : message_ids)
    argv.push_back(std::move(id));
  auto n = message_ids.size();
  durable(std::move(argv), [host, n](redis_value v) {
    if (v.is_error())
      spdlog::warn("MessageBox: giving messages back to the {} queue failed ({}); they return "
                   "after reclaim_idle",
                   host, v.str);
    else
      spdlog::debug("MessageBox: gave {} of {} messages back to the {} queue", v.integer, n,
                    host);
  });
}

void message_box::park(const std::string& host, const std::string& instance_id,
                       std::vector<std::string> message_ids) {
  if (message_ids.empty())
    return;
  std::vector<std::string> argv{"FCALL", "convoy_park", "3", keys_.queue(host),
                                keys_.instance(instance_id), keys_.parked(instance_id), host};
  for (auto& id : message_ids)
    argv.push_back(std::move(id));
  durable(std::move(argv), [host, instance_id](redis_value v) {
    if (v.is_error())
      spdlog::warn("MessageBox: parking messages of suspended instance {} failed ({}); they "
                   "return after reclaim_idle",
                   instance_id, v.str);
  });
}

redis_connection& message_box::reader(const std::string& host, const std::string& consumer) {
  std::lock_guard<std::mutex> guard(readers_mtx_);
  auto& conn = readers_[host + "/" + consumer];
  if (!conn)
    conn = std::make_unique<redis_connection>(loop_, config_.endpoint);
  return *conn;
}

void message_box::read_queue(const std::string& host, const std::string& consumer, size_t count,
                             std::chrono::milliseconds block, bool own_pending,
                             entries_callback done) {
  std::vector<std::string> argv{"XREADGROUP", "GROUP", host, consumer, "COUNT",
                                std::to_string(count)};
  if (!own_pending) {
    argv.push_back("BLOCK");
    argv.push_back(std::to_string(block.count()));
  }
  argv.push_back("STREAMS");
  argv.push_back(keys_.queue(host));
  argv.push_back(own_pending ? "0" : ">");
  reader(host, consumer).command(std::move(argv), [done = std::move(done)](redis_value v) {
    if (v.is_error()) {
      done({}, v.str);
      return;
    }
    if (v.is_nil() || v.elements.empty() || v.elements[0].elements.size() != 2) {
      done({}, {});
      return;
    }
    done(parse_entries(v.elements[0].elements[1]), {});
  });
}

void message_box::reclaim_queue(const std::string& host, const std::string& consumer,
                                std::chrono::milliseconds min_idle, size_t count,
                                entries_callback done) {
  commands_->command({"XAUTOCLAIM", keys_.queue(host), host, consumer,
                      std::to_string(min_idle.count()), "0-0", "COUNT", std::to_string(count)},
                     [done = std::move(done)](redis_value v) {
                       if (v.is_error()) {
                         done({}, v.str);
                         return;
                       }
                       if (!v.is_array() || v.elements.size() < 2) {
                         done({}, {});
                         return;
                       }
                       done(parse_entries(v.elements[1]), {});
                     });
}

void message_box::activate(const std::string& receive_host, const std::string& message_id,
                           const std::string& instance_id, const std::string& type,
                           uint32_t version, const std::string& input,
                           const std::string& processing_host, done_callback done) {
  durable({"FCALL", "convoy_activate", "5", keys_.instance(instance_id),
                      keys_.instances(), keys_.queue(processing_host), keys_.queue(receive_host),
                      keys_.tracking(), instance_id, type, std::to_string(version), input,
                      processing_host, std::to_string(wall_clock_ms()), receive_host, message_id,
                      keys_.prefix()},
                     [done = std::move(done)](redis_value v) {
                       done(v.is_error() ? v.str : std::string{});
                     });
}

void message_box::complete_activity(const std::string& send_host, const std::string& message_id,
                                    const std::string& instance_id, uint32_t step,
                                    uint32_t generation, bool ok, const std::string& payload,
                                    const std::string& reply_host, done_callback done) {
  // A result too large to store becomes a failure the orchestration can see and handle.
  bool fits = payload.size() <= max_payload_bytes;
  durable({"FCALL", "convoy_complete_activity", "2", keys_.queue(send_host),
                      keys_.queue(reply_host), send_host, message_id, instance_id,
                      std::to_string(step), ok && fits ? "1" : "0",
                      fits ? payload
                           : "the activity's " + std::string(ok ? "result" : "error") + " of "
                               + std::to_string(payload.size()) + " bytes is over the limit of "
                               + std::to_string(max_payload_bytes) + " bytes",
                      std::to_string(generation)},
                     [done = std::move(done)](redis_value v) {
                       done(v.is_error() ? v.str : std::string{});
                     });
}

void message_box::retry_activity(const std::string& send_host, const std::string& message_id,
                                 int64_t due_ms, const std::map<std::string, std::string>& next,
                                 done_callback done) {
  auto fields = json::array();
  for (const auto& [k, v] : next) {
    fields.push_back(k);
    fields.push_back(v);
  }
  auto member = json{{"q", send_host}, {"f", fields}}.dump();
  durable({"FCALL", "convoy_retry_activity", "2", keys_.queue(send_host),
                      keys_.delayed(), send_host, message_id, std::to_string(due_ms), member},
                     [done = std::move(done)](redis_value v) {
                       done(v.is_error() ? v.str : std::string{});
                     });
}

void message_box::suspend_activity(const std::string& send_host, const std::string& message_id,
                                   const std::string& suspension_id,
                                   const std::map<std::string, std::string>& fields,
                                   const std::string& reason, done_callback done) {
  auto flat = json::array();
  for (const auto& [k, v] : fields) {
    flat.push_back(k);
    flat.push_back(v);
  }
  auto record = json{{"q", send_host},
                     {"f", flat},
                     {"reason", reason},
                     {"at", wall_clock_ms()},
                     {"activity", fields.count("activity") ? fields.at("activity") : ""},
                     {"instance", fields.count("instance") ? fields.at("instance") : ""}};
  durable({"FCALL", "convoy_suspend_activity", "3", keys_.queue(send_host), keys_.suspended(),
           keys_.tracking(), send_host, message_id, suspension_id, record.dump()},
          [done = std::move(done)](redis_value v) { done(v.is_error() ? v.str : std::string{}); });
}

void message_box::adapter_lease(const std::string& name, const std::string& holder,
                                std::chrono::milliseconds ttl,
                                std::function<void(bool held, std::string error)> done) {
  commands_->command({"FCALL", "convoy_adapter_lease", "1", keys_.adapter_lease(name), holder,
                      std::to_string(ttl.count())},
                     [done = std::move(done)](redis_value v) {
                       if (v.is_error())
                         done(false, v.str);
                       else
                         done(v.integer == 1, {});
                     });
}

void message_box::publish(const std::string& receive_host, const std::string& message_id,
                          const std::string& type, const std::string& body,
                          const std::map<std::string, std::string>& properties,
                          const std::optional<activation>& act,
                          std::function<void(publish_outcome)> done) {
  std::vector<std::string> argv{"FCALL",
                                "convoy_publish",
                                "2",
                                keys_.queue(receive_host),
                                keys_.tracking(),
                                keys_.prefix(),
                                receive_host,
                                message_id,
                                body,
                                type,
                                std::to_string(wall_clock_ms()),
                                act ? act->orchestration_type : "",
                                act ? std::to_string(act->version) : "0",
                                act ? act->instance_id : "",
                                act ? act->host : "processing",
                                act ? act->correlation_key : "",
                                act ? act->correlation_shape : "",
                                std::to_string(properties.size())};
  for (const auto& [k, v] : properties) {
    argv.push_back(k);
    argv.push_back(v);
  }
  durable(std::move(argv), [done = std::move(done)](redis_value v) {
    publish_outcome out;
    if (v.is_error())
      out.error = v.str;
    else if (v.is_array() && v.elements.size() == 2) {
      out.outcome = v.elements[0].str;
      out.instance = v.elements[1].str;
    } else
      out.error = "convoy_publish answered with an unexpected reply";
    done(std::move(out));
  });
}

void message_box::fire_timers(int64_t now_ms, size_t limit,
                              std::function<void(int64_t, std::string)> done) {
  durable({"FCALL", "convoy_fire_timers", "2", keys_.timers(), keys_.delayed(),
                      std::to_string(now_ms), std::to_string(limit), keys_.prefix()},
                     [done = std::move(done)](redis_value v) {
                       done(v.integer, v.is_error() ? v.str : std::string{});
                     });
}

void message_box::heartbeat(const std::string& node, std::chrono::milliseconds ttl,
                            const std::vector<std::string>& hosts, size_t load,
                            const std::string& throttle,
                            std::function<void(heartbeat_reply)> done,
                            const std::vector<std::string>& stopped) {
  auto joined = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& h : names)
      out += (out.empty() ? "" : ",") + h;
    return out;
  };
  commands_->command(
    {"FCALL", "convoy_heartbeat", "6", keys_.nodes(), keys_.node(node), keys_.tracking(),
     keys_.relocations(node), keys_.queue("processing"), keys_.node_commands(node), node,
     std::to_string(ttl.count()), joined(hosts), std::to_string(load), throttle,
     joined(stopped)},
    [done = std::move(done)](redis_value v) {
      heartbeat_reply out;
      if (v.is_error()) {
        out.error = v.str;
      } else if (!v.is_array() || v.elements.size() < 4) {
        out.error = "convoy_heartbeat answered with an unexpected reply";
      } else {
        out.code = static_cast<int>(v.elements[0].integer);
        out.backlog = v.elements[3].integer;
        for (size_t i = 4; i < v.elements.size(); ++i) {
          const auto& field = v.elements[i].str;
          if (field.rfind("!host:", 0) == 0) {
            if (auto eq = field.find('='); eq != std::string::npos)
              out.host_commands[field.substr(6, eq - 6)] = field.substr(eq + 1);
          } else if (auto bar = field.rfind('|'); bar != std::string::npos)
            out.todo.push_back({field.substr(0, bar), field.substr(bar + 1)});
        }
      }
      done(std::move(out));
    });
}

namespace {

void take_lease(redis_connection& conn, std::string key, const std::string& node,
                std::chrono::milliseconds ttl, message_box::lease_callback done) {
  conn.command({"FCALL", "convoy_cluster_lease", "1", std::move(key), node,
                std::to_string(ttl.count())},
               [done = std::move(done)](redis_value v) {
                 if (v.is_error())
                   done(false, 0, {}, v.str);
                 else if (!v.is_array() || v.elements.size() != 3)
                   done(false, 0, {}, "convoy_cluster_lease answered with an unexpected reply");
                 else
                   done(v.elements[0].integer == 1, v.elements[1].integer, v.elements[2].str, {});
               });
}

} // namespace

void message_box::cluster_lease(const std::string& node, std::chrono::milliseconds ttl,
                                lease_callback done) {
  take_lease(*commands_, keys_.cluster_lease(), node, ttl, std::move(done));
}

void message_box::host_lease(const std::string& host, const std::string& node,
                             std::chrono::milliseconds ttl, lease_callback done) {
  take_lease(*commands_, keys_.host_lease(host), node, ttl, std::move(done));
}

std::string message_box::command_host(const std::string& node, const std::string& host,
                                      const std::string& command,
                                      std::chrono::milliseconds timeout) {
  auto v = run_durable({"HSET", keys_.node_commands(node), "host:" + host, command}, timeout);
  return v.is_error() ? v.str : std::string{};
}

std::string message_box::record_admin(const std::string& node, const std::string& address,
                                      std::chrono::milliseconds timeout) {
  auto v = commands_->run({"HSET", keys_.node(node), "admin", address}, timeout);
  return v.is_error() ? v.str : std::string{};
}

void message_box::publish_tree(const std::string& node, std::string tree_json) {
  commands_->command({"HSET", keys_.node(node), "tree", std::move(tree_json)}, [](redis_value v) {
    if (v.is_error())
      spdlog::debug("MessageBox: recording the supervision tree failed: {}", v.str);
  });
}

void message_box::plan_relocation(const std::string& holder, int64_t epoch,
                                  const std::vector<std::string>& hosts,
                                  std::function<void(std::vector<relocation>, std::string)> done) {
  std::vector<std::string> argv{"FCALL", "convoy_plan_relocation", "3", keys_.nodes(),
                                keys_.cluster_lease(), keys_.tracking(), keys_.prefix(), holder,
                                std::to_string(epoch)};
  for (const auto& h : hosts)
    argv.push_back(h);
  // A plain command, not `durable`: the plan is idempotent and made again at every step, so
  // it need not wait for replicas.
  commands_->command(std::move(argv), [done = std::move(done)](redis_value v) {
    std::vector<relocation> out;
    if (v.is_error()) {
      done(std::move(out), v.str);
      return;
    }
    for (const auto& r : v.elements)
      if (r.is_array() && r.elements.size() == 4)
        out.push_back({r.elements[0].str, r.elements[1].str, r.elements[2].str,
                       r.elements[3].integer});
    done(std::move(out), {});
  });
}

void message_box::take_over(const std::string& host, const std::string& dead,
                            const std::string& consumer, size_t count, entries_callback done) {
  commands_->command({"FCALL", "convoy_take_over", "2", keys_.queue(host),
                      keys_.relocations(consumer), host, dead, consumer, std::to_string(count)},
                     [done = std::move(done)](redis_value v) {
                       if (v.is_error()) {
                         done({}, v.str);
                         return;
                       }
                       done(parse_entries(v), {});
                     });
}

std::string message_box::leave_cluster(const std::string& node,
                                       std::chrono::milliseconds timeout) {
  auto replies = commands_->run_all(
    {{"ZADD", keys_.nodes(), "XX", "0", node}, {"HDEL", keys_.links(), node}}, timeout);
  for (const auto& r : replies)
    if (r.is_error())
      return r.str;
  return {};
}

std::string message_box::register_link(const std::string& node, const std::string& address,
                                       int64_t heartbeat_ms, int64_t connection_timeout_ms,
                                       std::chrono::milliseconds timeout) {
  auto hb = std::to_string(heartbeat_ms);
  auto ct = std::to_string(connection_timeout_ms);
  auto replies = commands_->run_all(
    {{"HSETNX", keys_.cluster_link(), "heartbeat_ms", hb},
     {"HSETNX", keys_.cluster_link(), "connection_timeout_ms", ct},
     {"HMGET", keys_.cluster_link(), "heartbeat_ms", "connection_timeout_ms"}},
    timeout);
  for (const auto& r : replies)
    if (r.is_error())
      return "cannot record the cluster link of node " + node + ": " + r.str;
  const auto& shared = replies.back().elements;
  if (shared.size() != 2)
    return "cannot read the cluster link settings: unexpected reply";
  if (shared[0].str != hb || shared[1].str != ct)
    return "cluster.heartbeat_ms = " + hb + " and cluster.connection_timeout_ms = " + ct
           + " here, but the cluster uses " + shared[0].str + " and " + shared[1].str
           + " (set by its first node): BASP heartbeats and the connection timeout must be the "
             "same on every node, or healthy peers get dropped";
  auto v = commands_->run({"HSET", keys_.links(), node, address}, timeout);
  return v.is_error() ? "cannot record the link of node " + node + ": " + v.str : std::string{};
}

void message_box::links(
  std::function<void(std::map<std::string, std::string>, std::string)> done) {
  commands_->command({"HGETALL", keys_.links()}, [done = std::move(done)](redis_value v) {
    std::map<std::string, std::string> out;
    if (v.is_error()) {
      done(std::move(out), v.str);
      return;
    }
    for (size_t i = 0; i + 1 < v.elements.size(); i += 2)
      out[v.elements[i].str] = v.elements[i + 1].str;
    done(std::move(out), {});
  });
}

void message_box::end_lease(const std::string& node, const std::string& holder, int64_t epoch,
                            const std::string& why, done_callback done) {
  commands_->command({"FCALL", "convoy_end_lease", "3", keys_.nodes(), keys_.cluster_lease(),
                      keys_.tracking(), node, holder, std::to_string(epoch), why},
                     [done = std::move(done)](redis_value v) {
                       done(v.is_error() ? v.str : std::string{});
                     });
}

message_box::cluster_view message_box::list_nodes(std::chrono::milliseconds timeout) {
  cluster_view view;
  auto first = commands_->run_all({{"ZRANGE", keys_.nodes(), "0", "-1", "WITHSCORES"},
                                   {"HMGET", keys_.cluster_lease(), "holder", "epoch", "expires"}},
                                  timeout);
  const auto& names = first[0];
  const auto& lease = first[1];
  if (names.is_error() || lease.is_error()) {
    view.error = names.is_error() ? names.str : lease.str;
    return view;
  }
  if (lease.elements.size() == 3) {
    view.supervisor = lease.elements[0].str;
    view.supervisor_epoch = to_number<int64_t>(lease.elements[1].str);
    view.supervisor_lease_expires_ms = to_number<int64_t>(lease.elements[2].str);
  }
  auto& out = view.nodes;
  for (size_t i = 0; i + 1 < names.elements.size(); i += 2) {
    node_info n;
    n.name = names.elements[i].str;
    n.lease_expires_ms = to_number<int64_t>(names.elements[i + 1].str);
    out.push_back(std::move(n));
  }
  // By name: the sorted set orders by lease expiry, which changes with every heartbeat, so
  // listings would swap rows from one call to the next.
  std::sort(out.begin(), out.end(),
            [](const node_info& a, const node_info& b) { return a.name < b.name; });
  std::vector<std::vector<std::string>> reads;
  for (const auto& n : out) {
    reads.push_back({"HMGET", keys_.node(n.name), "status", "hosts", "heartbeat", "load",
                     "generation", "throttle", "tree", "admin", "stopped"});
  }
  auto records = commands_->run_all(std::move(reads), timeout);
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].is_error() || records[i].elements.size() != 9) {
      view.error = records[i].is_error() ? records[i].str : "unexpected node record";
      out.clear();
      return view;
    }
    const auto& f = records[i].elements;
    out[i].status = f[0].str;
    out[i].hosts = f[1].str;
    out[i].heartbeat_ms = to_number<int64_t>(f[2].str);
    out[i].load = to_number<int64_t>(f[3].str);
    out[i].generation = to_number<int64_t>(f[4].str);
    out[i].throttle = f[5].str;
    out[i].tree = f[6].str;
    out[i].admin = f[7].str;
    out[i].stopped = f[8].str;
  }
  return view;
}

namespace {

/// `field:value` of an INFO section's text, or "".
std::string info_field(const std::string& info, const std::string& field) {
  auto at = info.find(field + ":");
  if (at == std::string::npos || (at > 0 && info[at - 1] != '\n'))
    return {};
  auto start = at + field.size() + 1;
  auto end = info.find_first_of("\r\n", start);
  return info.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

} // namespace

message_box::server_status message_box::status(const std::vector<std::string>& hosts,
                                               std::chrono::milliseconds timeout) {
  server_status out;
  std::vector<std::vector<std::string>> reads{{"ROLE"},
                                              {"INFO", "replication"},
                                              {"INFO", "memory"},
                                              {"INFO", "server"},
                                              {"HGET", keys_.store(), "commits"},
                                              {"XLEN", keys_.rollbacks()},
                                              {"XLEN", keys_.unrouted()},
                                              {"XLEN", keys_.zombies()}};
  for (const auto& h : hosts) {
    reads.push_back({"XLEN", keys_.queue(h)});
    reads.push_back({"XPENDING", keys_.queue(h), h});
  }
  auto r = commands_->run_all(std::move(reads), timeout);
  for (size_t i = 0; i < 4; ++i)
    if (r[i].is_error()) {
      out.error = r[i].str;
      return out;
    }
  out.address = commands_->endpoint().sentinels.empty() ? config_.endpoint.address()
                                                        : "via Sentinel master '"
                                                            + config_.endpoint.master_name + "'";
  out.role = r[0].elements.empty() ? std::string("?") : r[0].elements[0].str;
  const auto& replication = r[1].str;
  out.connected_replicas = to_number<int64_t>(info_field(replication, "connected_slaves"));
  for (int64_t i = 0; i < out.connected_replicas; ++i)
    out.replicas.push_back(info_field(replication, "slave" + std::to_string(i)));
  out.master_repl_offset = to_number<int64_t>(info_field(replication, "master_repl_offset"));
  out.used_memory = to_number<int64_t>(info_field(r[2].str, "used_memory"));
  out.maxmemory = to_number<int64_t>(info_field(r[2].str, "maxmemory"));
  out.version = info_field(r[3].str, "redis_version");
  out.commits = to_number<int64_t>(r[4].str);
  out.rollbacks = r[5].integer;
  out.unrouted = r[6].integer;
  out.zombies = r[7].integer;
  for (size_t i = 0; i < hosts.size(); ++i) {
    auto& q = out.queues[hosts[i]];
    q.length = r[8 + 2 * i].integer;
    const auto& pending = r[9 + 2 * i];
    if (pending.is_array() && !pending.elements.empty())
      q.pending = pending.elements[0].integer;
  }
  return out;
}

std::string message_box::submit(const std::string& receive_host, const std::string& type,
                                const std::string& input_json, const std::string& instance_id,
                                std::chrono::milliseconds timeout) {
  if (input_json.size() > max_payload_bytes)
    return "the input is " + std::to_string(input_json.size()) + " bytes, over the limit of "
           + std::to_string(max_payload_bytes);
  auto v = run_durable({"XADD", keys_.queue(receive_host), "*", "v", "1", "kind", "submit",
                           "type", type, "input", input_json, "id", instance_id},
                          timeout);
  return v.is_error() ? v.str : std::string{};
}

std::string message_box::submit_message(const std::string& receive_host, const std::string& type,
                                        const std::string& body_json,
                                        const std::map<std::string, std::string>& properties,
                                        const std::string& activation_id,
                                        std::chrono::milliseconds timeout) {
  if (body_json.size() > max_payload_bytes)
    return "the message body is " + std::to_string(body_json.size())
           + " bytes, over the limit of " + std::to_string(max_payload_bytes);
  json props = properties;
  auto v = run_durable({"XADD", keys_.queue(receive_host), "*", "v", "1", "kind", "publish",
                           "type", type, "body", body_json, "props", props.dump(), "id",
                           activation_id},
                          timeout);
  return v.is_error() ? v.str : std::string{};
}

message_box::submitted message_box::submit_message_once(
  const std::string& receive_host, const std::string& type, const std::string& body_json,
  const std::map<std::string, std::string>& properties, const std::string& activation_id,
  const std::string& dedupe_key, std::chrono::milliseconds ttl, std::chrono::milliseconds timeout) {
  submitted out;
  if (body_json.size() > max_payload_bytes) {
    out.error = "the message body is " + std::to_string(body_json.size())
                + " bytes, over the limit of " + std::to_string(max_payload_bytes);
    return out;
  }
  json props = properties;
  auto v = run_durable({"FCALL", "convoy_submit_once", "2", keys_.queue(receive_host),
                        keys_.dedupe(dedupe_key), std::to_string(ttl.count()), activation_id,
                        "v", "1", "kind", "publish", "type", type, "body", body_json, "props",
                        props.dump(), "id", activation_id},
                       timeout);
  if (v.is_error())
    out.error = v.str;
  else if (v.elements.size() != 2)
    out.error = "unexpected reply to convoy_submit_once: " + v.to_text();
  else {
    out.id = v.elements[0].str;
    out.duplicate = v.elements[1].integer == 1;
  }
  return out;
}

message_box::suspended_list message_box::list_suspended(std::chrono::milliseconds timeout) {
  suspended_list out;
  auto v = commands_->run({"HGETALL", keys_.suspended()}, timeout);
  if (v.is_error()) {
    out.error = v.str;
    return out;
  }
  for (size_t i = 0; i + 1 < v.elements.size(); i += 2)
    out.entries[v.elements[i].str] = v.elements[i + 1].str;
  return out;
}

std::string message_box::resume_suspended(const std::string& suspension_id,
                                          std::chrono::milliseconds timeout) {
  auto v = run_durable({"FCALL", "convoy_resume_suspended", "2", keys_.suspended(),
                        keys_.tracking(), suspension_id, keys_.prefix()},
                       timeout);
  return v.is_error() ? v.str : std::string{};
}

std::string message_box::send_to_instance(const std::string& instance_id, const std::string& kind,
                                          const std::string& name, const std::string& payload_json,
                                          std::chrono::milliseconds timeout) {
  if (payload_json.size() > max_payload_bytes)
    return "the payload is " + std::to_string(payload_json.size())
           + " bytes, over the limit of " + std::to_string(max_payload_bytes);
  auto v = run_durable({"FCALL", "convoy_send_to_instance", "1", keys_.instance(instance_id),
                           keys_.prefix(), kind, name, payload_json},
                          timeout);
  return v.is_error() ? v.str : std::string{};
}

message_box::message_list message_box::list_stream(const std::string& key, size_t limit,
                                                   std::chrono::milliseconds timeout) {
  message_list out;
  auto v = commands_->run({"XREVRANGE", key, "+", "-", "COUNT", std::to_string(limit)}, timeout);
  if (v.is_error()) {
    out.error = v.str;
    return out;
  }
  out.entries = parse_entries(v);
  return out;
}

message_box::instance_list message_box::list_instances(size_t limit,
                                                       std::chrono::milliseconds timeout) {
  return list_instances(0, limit, timeout);
}

message_box::instance_list message_box::list_instances(size_t skip, size_t limit,
                                                       std::chrono::milliseconds timeout) {
  instance_list out;
  if (limit == 0)
    return out;
  auto ids = commands_->run({"ZREVRANGE", keys_.instances(), std::to_string(skip),
                             std::to_string(skip + limit - 1)},
                            timeout);
  if (ids.is_error()) {
    out.error = ids.str;
    return out;
  }
  std::vector<std::vector<std::string>> reads;
  for (const auto& id : ids.elements)
    reads.push_back({"HGETALL", keys_.instance(id.str)});
  auto records = commands_->run_all(std::move(reads), timeout);
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].is_error()) {
      out.error = records[i].str;
      return out;
    }
    if (auto err = check_record_size(ids.elements[i].str, records[i]); !err.empty()) {
      out.error = err;
      return out;
    }
    if (!records[i].elements.empty())
      out.instances.push_back(parse_instance_record(ids.elements[i].str, records[i]));
  }
  return out;
}

instance_description message_box::describe(const std::string& instance_id,
                                           std::chrono::milliseconds timeout) {
  instance_description out;
  auto replies = commands_->run_all({{"HGETALL", keys_.instance(instance_id)},
                                     {"LRANGE", keys_.journal(instance_id), "0", "-1"}},
                                    timeout);
  for (const auto& r : replies)
    if (r.is_error()) {
      out.error = r.str;
      return out;
    }
  if (replies[0].elements.empty())
    return out;
  out.found = true;
  out.record = parse_instance_record(instance_id, replies[0]);
  out.error = check_record_size(instance_id, replies[0]);
  if (out.error.empty())
    out.error = decode_journal(replies[1], instance_id, out.journal);
  return out;
}

namespace {

message_box::control_outcome control_reply(const redis_value& v) {
  message_box::control_outcome out;
  if (v.is_error())
    out.error = v.str;
  else if (v.kind == redis_value::type::integer)
    out.detail = std::to_string(v.integer);
  else
    out.detail = v.str;
  return out;
}

} // namespace

message_box::control_outcome message_box::suspend(const std::string& instance_id,
                                                  const std::string& reason, const std::string& by,
                                                  std::chrono::milliseconds timeout) {
  return control_reply(run_durable({"FCALL", "convoy_suspend", "2", keys_.instance(instance_id),
                                    keys_.tracking(), keys_.prefix(), reason,
                                    std::to_string(wall_clock_ms()), by},
                                   timeout));
}

message_box::control_outcome message_box::resume(const std::string& instance_id,
                                                 const std::string& reason, const std::string& by,
                                                 std::chrono::milliseconds timeout) {
  return control_reply(run_durable({"FCALL", "convoy_resume", "3", keys_.instance(instance_id),
                                    keys_.parked(instance_id), keys_.tracking(), keys_.prefix(),
                                    reason, std::to_string(wall_clock_ms()), by},
                                   timeout));
}

message_box::control_outcome message_box::terminate(const std::string& instance_id,
                                                    const std::string& reason,
                                                    const std::string& by,
                                                    std::chrono::milliseconds timeout) {
  return control_reply(run_durable({"FCALL", "convoy_terminate", "5", keys_.instance(instance_id),
                                    keys_.parked(instance_id), keys_.timers(), keys_.tracking(),
                                    keys_.zombies(), keys_.prefix(), reason,
                                    std::to_string(wall_clock_ms()), by},
                                   timeout));
}

message_box::control_outcome message_box::purge(const std::string& instance_id,
                                                const std::vector<std::string>& statuses,
                                                int64_t updated_before_ms,
                                                std::chrono::milliseconds timeout) {
  std::string list;
  for (const auto& s : statuses)
    list += (list.empty() ? "" : ",") + s;
  return control_reply(run_durable({"FCALL", "convoy_purge", "3", keys_.instance(instance_id),
                                    keys_.journal(instance_id), keys_.instances(), keys_.prefix(),
                                    instance_id, list, std::to_string(updated_before_ms)},
                                   timeout));
}

std::vector<std::string> message_box::audit_trail(const std::string& instance_id,
                                                  std::chrono::milliseconds timeout) {
  std::vector<std::string> out;
  auto v = commands_->run({"LRANGE", keys_.audit(instance_id), "0", "-1"}, timeout);
  for (const auto& e : v.elements)
    out.push_back(e.str);
  return out;
}

std::string message_box::server_version(std::chrono::milliseconds timeout) {
  auto info = commands_->run({"INFO", "server"}, timeout);
  if (info.is_error())
    return "error: " + info.str;
  auto pos = info.str.find("redis_version:");
  if (pos == std::string::npos)
    return "unknown";
  auto end = info.str.find_first_of("\r\n", pos);
  return info.str.substr(pos + 14, end - pos - 14);
}

} // namespace convoy::persistence
