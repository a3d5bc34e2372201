#include "convoy/actors/context.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>

namespace convoy {

// -- errors ------------------------------------------------------------------------------------

activity_error::activity_error(std::string activity, uint32_t step, std::string message)
  : std::runtime_error("activity '" + activity + "' (step " + std::to_string(step)
                       + ") failed: " + message),
    activity_(std::move(activity)),
    step_(step),
    reason_(std::move(message)) {
}

cancelled_error::cancelled_error(uint32_t step)
  : std::runtime_error("cancelled while waiting at step " + std::to_string(step)), step_(step) {
}

// -- retry_policy ----------------------------------------------------------------------------------

std::chrono::milliseconds retry_policy::delay_before(uint32_t next_attempt) const noexcept {
  if (next_attempt < 2)
    return std::chrono::milliseconds(0);
  auto delay = static_cast<double>(initial_backoff.count())
               * std::pow(std::max(1.0, multiplier), static_cast<double>(next_attempt - 2));
  return std::chrono::milliseconds(
    static_cast<int64_t>(std::min(delay, static_cast<double>(max_backoff.count()))));
}

bool retry_policy::retries(uint32_t attempt, const std::string& kind) const {
  return attempt < max_attempts
         && std::find(non_retryable.begin(), non_retryable.end(), kind) == non_retryable.end();
}

json retry_policy::to_json() const {
  return json{{"max_attempts", max_attempts},
              {"initial_backoff_ms", initial_backoff.count()},
              {"max_backoff_ms", max_backoff.count()},
              {"multiplier", multiplier},
              {"non_retryable", non_retryable}};
}

retry_policy retry_policy::from_json(const json& j) {
  retry_policy p;
  if (!j.is_object())
    return p;
  p.max_attempts = std::max<uint32_t>(1, j.value("max_attempts", p.max_attempts));
  p.initial_backoff = std::chrono::milliseconds(j.value("initial_backoff_ms", int64_t{1000}));
  p.max_backoff = std::chrono::milliseconds(j.value("max_backoff_ms", int64_t{60000}));
  p.multiplier = j.value("multiplier", 2.0);
  if (auto i = j.find("non_retryable"); i != j.end() && i->is_array())
    for (const auto& k : *i)
      if (k.is_string())
        p.non_retryable.push_back(k.get<std::string>());
  return p;
}

// -- correlation -------------------------------------------------------------------------------------

correlation::correlation(std::string property, std::string value) {
  properties_.emplace(std::move(property), std::move(value));
}

correlation& correlation::and_(std::string property, std::string value) {
  properties_[std::move(property)] = std::move(value);
  return *this;
}

std::string correlation::key() const {
  std::string out;
  for (const auto& [k, v] : properties_) {
    if (!out.empty())
      out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string correlation::shape() const {
  std::string out;
  for (const auto& [k, v] : properties_) {
    if (!out.empty())
      out += '&';
    out += k;
  }
  return out;
}

// -- step_awaiter ----------------------------------------------------------------------------------

bool step_awaiter::await_ready() const noexcept {
  return ctx_->has_outcome(step_) || (race_ && ctx_->has_outcome(*race_));
}

void step_awaiter::await_suspend(std::coroutine_handle<> waiter) noexcept {
  if (race_) {
    const uint32_t steps[2] = {step_, *race_};
    ctx_->park(steps, 2, true, waiter);
  } else {
    ctx_->park(&step_, 1, false, waiter);
  }
}

outcome step_awaiter::take() const {
  return ctx_->take(step_);
}

// -- context: construction and replay ------------------------------------------------------------

namespace {

std::string channel_of(const std::string& scheduled_payload) {
  auto j = json::parse(scheduled_payload, nullptr, false);
  return j.is_object() ? j.value("channel", std::string{}) : std::string{};
}

} // namespace

// -- context: the step table ----------------------------------------------------------------------

namespace {

/// How far past the steps held so far a step number may lie and still grow the vector.
constexpr uint32_t max_step_gap = 65536;

} // namespace

context::step_info* context::find_step(uint32_t step) noexcept {
  return const_cast<step_info*>(std::as_const(*this).find_step(step));
}

const context::step_info* context::find_step(uint32_t step) const noexcept {
  if (!far_steps_.empty())
    if (auto i = far_steps_.find(step); i != far_steps_.end())
      return &i->second;
  if (step < steps_.size() && steps_[step].present)
    return &steps_[step];
  return nullptr;
}

context::step_info& context::step_at(uint32_t step) {
  if (!far_steps_.empty())
    if (auto i = far_steps_.find(step); i != far_steps_.end())
      return i->second;
  if (step >= steps_.size()) {
    if (step - steps_.size() >= max_step_gap) {
      auto& st = far_steps_[step];
      st.present = true;
      return st;
    }
    steps_.resize(static_cast<size_t>(step) + 1);
  }
  auto& st = steps_[step];
  st.present = true;
  return st;
}

context::context(std::string instance_id, const std::vector<journal_entry>& history,
                 uint32_t generation)
  : instance_id_(std::move(instance_id)), generation_(generation) {
  // Rebuild steps, outcomes (in completion order) and the mailbox by walking the journal in
  // order. Nothing here depends on running the code, so the walk is the same on every replay.
  for (const auto& entry : history) {
    has_history_ = true;
    if (entry.event == entry_event::arrived) {
      auto j = json::parse(entry.payload, nullptr, false);
      if (!j.is_object())
        continue;
      auto channel = j.value("channel", std::string{});
      auto body = j.contains("body") ? j["body"].dump() : std::string("null");
      if (j.value("requeue", false)) {
        mailbox_[channel].push_front(body);
        if (auto st = find_step(j.value("step", uint32_t{0})))
          st->requeued = true;
      } else {
        mailbox_[channel].push_back(body);
      }
      continue;
    }
    last_recorded_step_ = std::max(last_recorded_step_, entry.step);
    auto& st = step_at(entry.step);
    switch (entry.event) {
      case entry_event::scheduled:
        st.op = entry.op;
        st.hash = entry.op_hash;
        st.scheduled = true;
        st.payload = entry.payload;
        if (entry.op == op_kind::receive || entry.op == op_kind::signal)
          st.channel = channel_of(entry.payload);
        break;
      case entry_event::recorded:
        st.op = entry.op;
        st.hash = entry.op_hash;
        st.scheduled = true;
        st.result = outcome::success(entry.payload);
        st.order = ++completions_;
        break;
      case entry_event::completed:
      case entry_event::consumed:
        st.result = outcome::success(entry.payload);
        st.order = ++completions_;
        if (entry.event == entry_event::consumed && !st.channel.empty()) {
          auto& box = mailbox_[st.channel];
          if (!box.empty())
            box.pop_front();
        }
        break;
      case entry_event::failed:
        st.result = outcome::failure(entry.payload);
        st.order = ++completions_;
        break;
      case entry_event::cancelled:
        st.result = outcome{outcome::kind::cancelled, entry.payload};
        st.order = ++completions_;
        break;
      case entry_event::arrived:
        break; // handled above
    }
  }
}

bool context::check_recorded(uint32_t step, op_kind op, std::string_view target, uint64_t hash) {
  if (const auto* found = find_step(step)) {
    const auto& recorded = *found;
    if (!recorded.scheduled) {
      nondeterminism_ = "step " + std::to_string(step)
                        + ": journal holds an outcome but no scheduled operation";
    } else if (recorded.op != op || recorded.hash != hash) {
      nondeterminism_ = "step " + std::to_string(step) + ": journal recorded "
                        + std::string(to_string(recorded.op)) + " " + recorded.payload + " (hash "
                        + std::to_string(recorded.hash) + ") but the code now issues "
                        + std::string(to_string(op)) + " '" + std::string(target) + "' (hash "
                        + std::to_string(hash) + ")";
    }
    return true;
  }
  if (has_history_ && step <= last_recorded_step_) {
    nondeterminism_ = "step " + std::to_string(step) + ": code issues "
                      + std::string(to_string(op)) + " '" + std::string(target)
                      + "' but the journal has no such step";
    return true;
  }
  return false;
}

context::scheduled_step context::schedule(op_kind op, std::string_view target, uint64_t hash,
                                          std::string scheduled_payload) {
  auto step = next_step_++;
  if (nondeterminism_ || check_recorded(step, op, target, hash))
    return {step, false};
  auto& st = step_at(step);
  st.op = op;
  st.hash = hash;
  st.scheduled = true;
  // The payload is kept only for journal steps (check_recorded reports it); a live step is
  // never checked again.
  push_entry(journal_entry{step, entry_event::scheduled, op, hash, std::move(scheduled_payload)});
  return {step, true};
}

std::string context::key_for(uint32_t step) const {
  char gen[16];
  char num[16];
  auto gen_end = generation_ == 0 ? gen : std::to_chars(gen, gen + sizeof gen, generation_).ptr;
  auto num_end = std::to_chars(num, num + sizeof num, step).ptr;
  std::string out;
  out.reserve(instance_id_.size() + (gen_end - gen) + (num_end - num) + 2);
  out += instance_id_;
  if (generation_ != 0) {
    out += '~';
    out.append(gen, gen_end);
  }
  out += '/';
  out.append(num, num_end);
  return out;
}

std::pair<uint32_t, std::optional<uint32_t>>
context::schedule_call(const std::string& activity, std::string args, const call_options& options) {
  // Options take part in the hash: a changed retry policy is a changed operation.
  static const retry_policy defaults{};
  std::string opts;
  if (options.retry.max_attempts != defaults.max_attempts
      || options.retry.initial_backoff != defaults.initial_backoff
      || options.retry.max_backoff != defaults.max_backoff
      || options.retry.multiplier != defaults.multiplier
      || !options.retry.non_retryable.empty() || options.attempt_timeout.count() != 0) {
    auto j = json{{"retry", options.retry.to_json()}};
    if (options.attempt_timeout.count() != 0)
      j["attempt_timeout_ms"] = options.attempt_timeout.count();
    opts = j.dump();
  }
  auto hash = opts.empty() ? operation_hash(op_kind::call, activity, args)
                           : operation_hash(op_kind::call, activity, args + opts);
  // The scheduled entry names the activity too, so a journal reads on its own.
  std::string payload;
  payload.reserve(activity.size() + args.size() + 24);
  payload += "{\"activity\":";
  detail::append_json_string(payload, activity);
  payload += ",\"args\":";
  payload += args;
  payload += '}';
  auto [step, live] = schedule(op_kind::call, activity, hash, std::move(payload));
  if (live)
    output_.activities.push_back(
      activity_command{step, activity, std::move(args), key_for(step), std::move(opts)});
  std::optional<uint32_t> deadline;
  if (options.total_timeout.count() > 0)
    deadline = sleep(options.total_timeout).step();
  return {step, deadline};
}

sleep_awaiter context::sleep(std::chrono::milliseconds duration) {
  auto args = json{{"ms", duration.count()}}.dump();
  auto hash = operation_hash(op_kind::sleep, "", args);
  auto due = now_ms_ + duration.count();
  auto [step, live]
    = schedule(op_kind::sleep, "", hash, json{{"ms", duration.count()}, {"due", due}}.dump());
  if (live)
    output_.timers.push_back(timer_command{step, due});
  return sleep_awaiter(*this, step);
}

sleep_awaiter context::sleep_until(std::chrono::system_clock::time_point when) {
  auto due = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  auto args = json{{"until", due}}.dump();
  auto hash = operation_hash(op_kind::sleep, "until", args);
  auto [step, live] = schedule(op_kind::sleep, "until", hash, json{{"due", due}}.dump());
  if (live)
    output_.timers.push_back(timer_command{step, due});
  return sleep_awaiter(*this, step);
}

context::scheduled_step context::schedule_wait(op_kind op, const std::string& channel,
                                               std::string scheduled_payload) {
  auto hash = operation_hash(op, channel, "");
  auto [step, live] = schedule(op, channel, hash, std::move(scheduled_payload));
  if (nondeterminism_)
    return {step, false};
  auto& st = step_at(step);
  st.channel = channel;
  if (st.result)
    return {step, live}; // replayed with its message
  if (live) {
    auto& box = mailbox_[channel];
    if (!box.empty()) {
      // A message that arrived earlier (a convoy's next message): take it now.
      auto body = std::move(box.front());
      box.pop_front();
      push_entry(journal_entry{step, entry_event::consumed, op, hash, body});
      st.result = outcome::success(std::move(body));
      st.order = ++completions_;
      return {step, live};
    }
  }
  channel_waiters_[channel].push_back(step);
  return {step, live};
}

uint32_t context::schedule_channel(op_kind op, const correlation& c) {
  auto channel = "corr:" + c.key();
  auto [step, live] = schedule_wait(op, channel, json{{"channel", channel}}.dump());
  // Subscribe once per run (replayed runs subscribe again: the write is idempotent).
  if (!nondeterminism_ && subscribed_.insert(c.key()).second)
    output_.subscriptions.emplace_back(c.key(), c.shape());
  (void) live;
  return step;
}

uint32_t context::schedule_signal(const std::string& name) {
  auto channel = "signal:" + name;
  return schedule_wait(op_kind::signal, channel, json{{"channel", channel}}.dump()).step;
}

uint32_t context::schedule_child(const std::string& type, std::string input, bool awaited) {
  auto hash = operation_hash(op_kind::child, type, input + (awaited ? "" : "#detached"));
  auto payload = json{{"type", type}, {"awaited", awaited}}.dump();
  auto [step, live] = schedule(op_kind::child, type, hash, std::move(payload));
  if (live)
    output_.children.push_back(child_command{step, child_id(step), type, std::move(input), awaited});
  if (!awaited && !nondeterminism_ && !step_at(step).result) {
    // A detached child completes its step at once: nothing waits for it.
    complete(step, outcome::success(json(child_id(step)).dump()), live);
  }
  return step;
}

std::string context::record(op_kind op, std::string_view target,
                            const std::function<std::string()>& live_value) {
  auto step = next_step_++;
  auto hash = operation_hash(op, target, "");
  if (nondeterminism_)
    return live_value();
  if (check_recorded(step, op, target, hash)) {
    if (!nondeterminism_ && step_at(step).result)
      return step_at(step).result->payload;
    if (!nondeterminism_)
      nondeterminism_ = "step " + std::to_string(step) + ": journal holds no recorded value";
    return live_value();
  }
  auto value = live_value();
  auto& st = step_at(step);
  st.op = op;
  st.hash = hash;
  st.scheduled = true;
  st.result = outcome::success(value);
  st.order = ++completions_;
  push_entry(journal_entry{step, entry_event::recorded, op, hash, value});
  return value;
}

std::chrono::system_clock::time_point context::now() {
  auto text = record(op_kind::now, "now", [this] { return std::to_string(now_ms_); });
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(std::stoll(text)));
}

namespace {

/// The source of `ctx.random()` and `ctx.uuid()`: one generator per thread, seeded once.
/// Replay reads recorded values, so which generator made a value never matters; a generator
/// per instance cost 2.5 KB of every instance and a random-device read at its start (B3).
uint64_t fresh_random() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator();
}

} // namespace

uint64_t context::random() {
  auto text = record(op_kind::random, "random", [] { return std::to_string(fresh_random()); });
  return std::stoull(text);
}

std::string context::uuid() {
  auto text = record(op_kind::random, "uuid", [] {
    auto hi = fresh_random(), lo = fresh_random();
    hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull; // version 4
    lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull; // variant 1
    char buf[37];
    std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                  static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                  static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
    return json(std::string(buf)).dump();
  });
  return json::parse(text).get<std::string>();
}

void context::set_query_state(json state) {
  output_.query_state = state.dump();
}

// -- outcomes -------------------------------------------------------------------------------------

bool context::has_outcome(uint32_t step) const noexcept {
  if (nondeterminism_)
    return false;
  const auto* st = find_step(step);
  return st != nullptr && st->result.has_value();
}

uint64_t context::completion_order(uint32_t step) const noexcept {
  const auto* st = find_step(step);
  return st == nullptr ? 0 : st->order;
}

void context::park(std::vector<uint32_t> steps, bool any, std::coroutine_handle<> waiter) noexcept {
  park(steps.data(), steps.size(), any, waiter);
}

void context::park(const uint32_t* steps, size_t n, bool any,
                   std::coroutine_handle<> waiter) noexcept {
  // After a non-determinism error the coroutine is parked nowhere: it is never resumed and
  // its owner destroys it.
  if (nondeterminism_)
    return;
  parked_.active = true;
  parked_.steps.assign(steps, steps + n);
  parked_.any = any;
  parked_.handle = waiter;
}

bool context::parked_satisfied() const noexcept {
  const auto& p = parked_;
  return p.any ? std::any_of(p.steps.begin(), p.steps.end(),
                             [this](uint32_t s) { return has_outcome(s); })
               : std::all_of(p.steps.begin(), p.steps.end(),
                             [this](uint32_t s) { return has_outcome(s); });
}

outcome context::take(uint32_t step) {
  return peek(step);
}

const outcome& context::peek(uint32_t step) {
  auto* st = find_step(step);
  if (st == nullptr || !st->result) {
    // Kept for the caller to read: the last one asked for.
    missing_ = outcome::failure("internal error: step " + std::to_string(step) + " has no outcome");
    return missing_;
  }
  if (st->result->what == outcome::kind::cancelled)
    throw cancelled_error(step);
  return *st->result;
}

void context::push_entry(journal_entry entry) {
  if (output_.entries.empty())
    output_.entries.reserve(4); // typically an outcome, then the next step's scheduled entry
  output_.entries.push_back(std::move(entry));
}

void context::complete(uint32_t step, outcome result, bool journal) {
  auto& st = step_at(step);
  if (journal) {
    auto event = result.what == outcome::kind::ok       ? entry_event::completed
                 : result.what == outcome::kind::failed ? entry_event::failed
                                                        : entry_event::cancelled;
    push_entry(journal_entry{step, event, st.op, st.hash, result.payload});
  }
  st.result = std::move(result);
  st.order = ++completions_;
}

context::delivery context::deliver(uint32_t step, outcome result) {
  delivery out;
  auto* st = find_step(step);
  if (nondeterminism_ || st == nullptr || !st->scheduled || st->result)
    return out;
  if (st->abandoned && result.what != outcome::kind::cancelled)
    return out; // a when_any loser answering late: nobody wants it, nothing to journal
  if (!st->channel.empty()) {
    auto& waiters = channel_waiters_[st->channel];
    waiters.erase(std::remove(waiters.begin(), waiters.end(), step), waiters.end());
  }
  complete(step, std::move(result), true);
  out.accepted = true;
  if (parked_.active && parked_satisfied()) {
    out.resume = parked_.handle;
    parked_.active = false;
  }
  return out;
}

context::delivery context::deliver_message(const std::string& channel, std::string payload) {
  auto& waiters = channel_waiters_[channel];
  while (!waiters.empty()) {
    auto step = waiters.front();
    const auto* st = find_step(step);
    if (st == nullptr || st->result || st->abandoned) {
      waiters.pop_front();
      continue;
    }
    return deliver(step, outcome::success(std::move(payload)));
  }
  // Nobody waits: keep it (journaled) for the next receive of this channel.
  json body = json::parse(payload, nullptr, false);
  if (body.is_discarded())
    body = payload;
  auto op = channel.rfind("signal:", 0) == 0 ? op_kind::signal : op_kind::receive;
  push_entry(
    journal_entry{0, entry_event::arrived, op, 0, json{{"channel", channel}, {"body", body}}.dump()});
  mailbox_[channel].push_back(std::move(payload));
  return delivery{true, {}};
}

context::delivery context::cancel() {
  delivery out;
  if (!parked_.active)
    return out;
  auto steps = parked_.steps;
  for (auto s : steps)
    if (!has_outcome(s)) {
      if (const auto* st = find_step(s); st != nullptr && st->op == op_kind::sleep)
        output_.cancelled_timers.push_back(timer_command{s, 0}); // no stray timer fires later
      auto d = deliver(s, outcome{outcome::kind::cancelled, "cancelled by request"});
      out.accepted = out.accepted || d.accepted;
      if (d.resume)
        out.resume = d.resume;
    }
  return out;
}

void context::abandon(uint32_t step) {
  auto* found = find_step(step);
  if (found == nullptr || found->abandoned)
    return;
  auto& st = *found;
  st.abandoned = true;
  if (st.op == op_kind::sleep && !st.result) {
    // Replayed or live, the timer may still be in the MessageBox: cancelling twice is harmless.
    output_.cancelled_timers.push_back(timer_command{step, 0});
  }
  if (!st.channel.empty()) {
    auto& waiters = channel_waiters_[st.channel];
    waiters.erase(std::remove(waiters.begin(), waiters.end(), step), waiters.end());
    if (st.result && st.result->ok() && !st.requeued) {
      // The loser had taken a message: give it back so the next receive gets it.
      st.requeued = true;
      json body = json::parse(st.result->payload, nullptr, false);
      push_entry(journal_entry{
        0, entry_event::arrived, st.op, 0,
        json{{"channel", st.channel}, {"body", body}, {"requeue", true}, {"step", step}}.dump()});
      mailbox_[st.channel].push_front(st.result->payload);
    }
  }
}

context::output context::take_output() {
  return std::exchange(output_, output{});
}

void context::check_finished() {
  if (!nondeterminism_ && has_history_ && next_step_ <= last_recorded_step_)
    nondeterminism_ = "the orchestration finished after " + std::to_string(next_step_)
                      + " steps but the journal records step "
                      + std::to_string(last_recorded_step_);
}

std::vector<uint32_t> context::waiting_steps() const {
  std::vector<uint32_t> out;
  if (parked_.active)
    for (auto s : parked_.steps)
      if (!has_outcome(s))
        out.push_back(s);
  return out;
}

// -- when_all / when_any ------------------------------------------------------------------------

namespace detail {

bool group_awaiter::await_ready() const noexcept {
  if (any_)
    return std::any_of(steps_.begin(), steps_.end(), [this](uint32_t s) { return ctx_->has_outcome(s); });
  return std::all_of(steps_.begin(), steps_.end(), [this](uint32_t s) { return ctx_->has_outcome(s); });
}

size_t group_awaiter::first() const noexcept {
  size_t best = 0;
  uint64_t best_order = UINT64_MAX;
  for (size_t i = 0; i < steps_.size(); ++i)
    if (ctx_->has_outcome(steps_[i]) && ctx_->completion_order(steps_[i]) < best_order) {
      best = i;
      best_order = ctx_->completion_order(steps_[i]);
    }
  return best;
}

size_t any_of::await_resume() {
  auto winner = first();
  for (size_t i = 0; i < steps_.size(); ++i)
    if (i != winner)
      ctx_->abandon(steps_[i]);
  return winner;
}

} // namespace detail

} // namespace convoy
