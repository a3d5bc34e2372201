#include "convoy/actors/context.hpp"

#include <set>

namespace convoy {

activity_error::activity_error(std::string activity, uint32_t step, std::string message)
  : std::runtime_error("activity '" + activity + "' (step " + std::to_string(step)
                       + ") failed: " + message),
    activity_(std::move(activity)),
    step_(step) {
}

bool step_awaiter::await_ready() const noexcept {
  return ctx_->ready(step_);
}

void step_awaiter::await_suspend(std::coroutine_handle<> waiter) noexcept {
  ctx_->park(step_, waiter);
}

outcome step_awaiter::take() const {
  return ctx_->take(step_);
}

context::context(std::string instance_id, const std::vector<journal_entry>& history)
  : instance_id_(std::move(instance_id)) {
  for (const auto& entry : history) {
    auto& rec = history_[entry.step];
    if (entry.event == entry_event::scheduled)
      rec.scheduled = entry;
    else
      rec.result = outcome{entry.event == entry_event::completed, entry.payload};
    has_history_ = true;
    last_recorded_step_ = std::max(last_recorded_step_, entry.step);
  }
  for (auto& [step, rec] : history_)
    if (rec.result)
      ready_.emplace(step, *rec.result);
}

uint32_t context::schedule_call(const std::string& activity, std::string args) {
  auto hash = operation_hash(op_kind::call, activity, args);
  // The scheduled entry names the activity too, so a journal reads on its own.
  auto [step, live] = schedule(op_kind::call, activity, hash,
                               "{\"activity\":" + json(activity).dump() + ",\"args\":" + args + "}");
  if (live) {
    output_.activities.push_back(activity_command{
      step, activity, std::move(args), instance_id_ + "/" + std::to_string(step)});
  }
  return step;
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

context::scheduled_step context::schedule(op_kind op, std::string_view target, uint64_t hash,
                                          std::string scheduled_payload) {
  auto step = next_step_++;
  if (nondeterminism_)
    return {step, false};
  if (auto i = history_.find(step); i != history_.end()) {
    const auto& recorded = i->second.scheduled;
    if (!recorded) {
      nondeterminism_ = "step " + std::to_string(step) + ": journal holds an outcome but no "
                        "scheduled operation";
    } else if (recorded->op != op || recorded->op_hash != hash) {
      nondeterminism_ = "step " + std::to_string(step) + ": journal recorded "
                        + std::string(to_string(recorded->op)) + " " + recorded->payload
                        + " (hash " + std::to_string(recorded->op_hash) + ") but the code now issues " + std::string(to_string(op)) + " '"
                        + std::string(target) + "' (hash " + std::to_string(hash) + ")";
    }
    return {step, false};
  }
  if (has_history_ && step <= last_recorded_step_) {
    nondeterminism_ = "step " + std::to_string(step) + ": code issues "
                      + std::string(to_string(op)) + " '" + std::string(target)
                      + "' but the journal has no such step";
    return {step, false};
  }
  journal_entry entry{step, entry_event::scheduled, op, hash, std::move(scheduled_payload)};
  history_[step].scheduled = entry;
  output_.entries.push_back(std::move(entry));
  return {step, true};
}

bool context::ready(uint32_t step) const noexcept {
  return !nondeterminism_ && ready_.count(step) > 0;
}

void context::park(uint32_t step, std::coroutine_handle<> waiter) noexcept {
  // After a non-determinism error the coroutine is parked nowhere: it is never resumed and
  // its owner destroys it.
  if (!nondeterminism_)
    waiting_[step] = waiter;
}

outcome context::take(uint32_t step) {
  auto i = ready_.find(step);
  if (i == ready_.end())
    return outcome{false, "internal error: step " + std::to_string(step) + " has no outcome"};
  auto result = std::move(i->second);
  ready_.erase(i);
  return result;
}

context::delivery context::deliver(uint32_t step, outcome result) {
  delivery out;
  auto i = history_.find(step);
  // Unknown steps (not issued yet, or foreign) and steps that already have an outcome are
  // ignored: duplicates are normal with at-least-once delivery.
  if (i == history_.end() || !i->second.scheduled || i->second.result)
    return out;
  auto& rec = i->second;
  rec.result = result;
  output_.entries.push_back(journal_entry{step,
                                          result.ok ? entry_event::completed : entry_event::failed,
                                          rec.scheduled->op, rec.scheduled->op_hash,
                                          result.payload});
  ready_[step] = std::move(result);
  out.accepted = true;
  if (auto w = waiting_.find(step); w != waiting_.end()) {
    out.resume = w->second;
    waiting_.erase(w);
  }
  return out;
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

} // namespace convoy
