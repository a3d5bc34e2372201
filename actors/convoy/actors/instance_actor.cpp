#include "convoy/actors/instance_actor.hpp"

#include "convoy/actors/orchestration.hpp"
#include "convoy/actors/clock.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <deque>
#include <optional>

namespace convoy {

namespace {

using claimed_atom = caf::atom_constant<caf::atom("claimed")>;
using written_atom = caf::atom_constant<caf::atom("written")>;
using reclaim_atom = caf::atom_constant<caf::atom("reclaim")>;
using rewrite_atom = caf::atom_constant<caf::atom("rewrite")>;
using dehydrate_atom = caf::atom_constant<caf::atom("dehydrate")>;

/// Backoff for retries against an unavailable MessageBox: 50 ms doubling to 2 s.
std::chrono::milliseconds backoff(int attempt) {
  return std::chrono::milliseconds(std::min<int64_t>(2000, 50LL << std::min(attempt, 6)));
}

struct instance_state {
  std::shared_ptr<const instance_services> svc;
  std::string id;
  instance_record record;
  std::unique_ptr<context> ctx;
  orchestration_frame frame;
  bool loaded = false;
  /// A persistence point is in flight; nothing else is written until it is answered, so
  /// the journal never has gaps and a retry can be recognised by its sequence number.
  std::optional<checkpoint> in_flight;
  int attempts = 0;
  /// Messages that arrived while loading or writing; consumed in order afterwards.
  std::deque<instance_message> backlog;
  /// Consumed message ids not yet acknowledged by a persistence point.
  std::vector<std::string> acks;
  /// Final status reached; quit once its persistence point is acknowledged.
  bool finishing = false;
  /// Counts messages; a dehydration timer only fires if none arrived since it was set.
  uint64_t activity = 0;
  /// The host routing messages to this actor (none: quit directly).
  caf::actor host;
  /// Leaving: waiting for the host to stop routing; what arrives meanwhile is given back.
  bool leaving = false;
  std::vector<std::string> give_back;
  caf::error leave_reason;
  /// The durability of this instance's type, looked up once per claim.
  std::optional<durability_level> durability;
  /// A write whose callback ran synchronously, inside `instance_store::write`: handled in
  /// place by `send_write` rather than through the mailbox.
  std::optional<std::pair<store_status, std::string>> written_inline;
  bool handling_inline = false;

  static inline const char* name = "convoy.instance";

  ~instance_state() {
    // Runs in on_exit while the actor is still valid: a suspended frame dies with it.
    if (frame.handle)
      frame.handle.destroy();
  }
};

using instance_actor = caf::stateful_actor<instance_state>;

/// Empties the backlog of an instance that will consume no more messages and returns their
/// ids for acknowledgement. With `report`, says what each was: late outcomes and timers are
/// expected (a when_any loser's reply); a message or signal nobody will consume is a zombie,
/// worth an operator's attention.
std::vector<std::string> take_backlog_ids(instance_state& st, bool report,
                                          std::string_view status) {
  std::vector<std::string> ids;
  for (auto& m : st.backlog) {
    if (report) {
      bool expected = m.what == instance_message::kind::result
                      || m.what == instance_message::kind::timer
                      || m.what == instance_message::kind::start;
      if (expected)
        spdlog::debug("instance {} is {}: late {} for step {} dropped", st.id, status,
                      m.what == instance_message::kind::timer ? "timer" : "outcome", m.step);
      else
        spdlog::warn("instance {} is {}: message {} reported as zombie and acknowledged", st.id,
                     status, m.message_id);
    }
    ids.push_back(std::move(m.message_id));
  }
  st.backlog.clear();
  return ids;
}

/// The ids of messages this actor consumed but no acknowledged persistence point covers: those
/// of the refused point in flight and those gathered for the next one. They go back to the
/// queue when the actor leaves without persisting them.
std::vector<std::string> take_unpersisted_ids(instance_state& st) {
  std::vector<std::string> ids;
  if (st.in_flight)
    ids = std::move(st.in_flight->acks);
  for (auto& id : std::exchange(st.acks, {}))
    ids.push_back(std::move(id));
  return ids;
}

void persist(instance_actor* self, checkpoint cp);

/// Stops this actor without losing a message: see spawn_instance. `give_back` holds ids of
/// messages it holds but did not durably consume.
void leave(instance_actor* self, std::vector<std::string> give_back, caf::error reason = {}) {
  auto& st = self->state;
  for (auto& id : take_backlog_ids(st, false, "leaving"))
    give_back.push_back(std::move(id));
  if (!st.host) {
    st.svc->store->release(st.svc->host, std::move(give_back));
    self->quit(std::move(reason));
    return;
  }
  st.leaving = true;
  st.give_back = std::move(give_back);
  st.leave_reason = std::move(reason);
  self->send(st.host, instance_leaving_atom::value, st.id, is_rolled_back_exit(st.leave_reason));
  // A host that is itself stopping may never answer.
  self->delayed_send(self, std::chrono::seconds(2), instance_left_atom::value);
}

void on_written(instance_actor* self, store_status status, const std::string& error);

/// The write callback that runs synchronously inside `instance_store::write` on this thread,
/// if any: set while the actor is inside that call.
struct inline_write {
  const instance_state* owner = nullptr;
  bool done = false;
  store_status status = store_status::ok;
  std::string error;
};
thread_local inline_write* current_inline_write = nullptr;

void send_write(instance_actor* self) {
  auto& st = self->state;
  auto hdl = caf::actor_cast<caf::actor>(self);
  inline_write slot;
  slot.owner = &st;
  auto outer = std::exchange(current_inline_write, &slot);
  st.svc->store->write_kept(*st.in_flight, [hdl, owner = &st](store_status status,
                                                              std::string error) {
    // A store that answers at once, on the writer's thread, is answered without a message
    // (the mailbox hop would be the most expensive part of an in-memory step); any other
    // callback, on whatever thread, is forwarded as a message.
    if (auto* s = current_inline_write; s != nullptr && s->owner == owner && !s->done) {
      s->done = true;
      s->status = status;
      s->error = std::move(error);
      return;
    }
    caf::anon_send(hdl, written_atom::value, status, std::move(error));
  });
  current_inline_write = outer;
  if (!slot.done)
    return;
  st.written_inline.emplace(slot.status, std::move(slot.error));
  if (st.handling_inline)
    return; // the loop below, further up this stack, takes it: the stack stays flat
  st.handling_inline = true;
  while (st.written_inline) {
    auto [status, error] = std::move(*st.written_inline);
    st.written_inline.reset();
    on_written(self, status, error);
  }
  st.handling_inline = false;
}

void suspend_unrunnable(instance_actor* self, std::string why);

/// "" when every payload of `cp` fits the MessageBox's limit (the journal payload limit),
/// else which one does not.
std::string oversized(const checkpoint& cp) {
  auto over = [](const std::string& what, size_t size) {
    return what + " of " + std::to_string(size) + " bytes is over the limit of "
           + std::to_string(max_journal_payload) + " bytes";
  };
  if (cp.result.size() > max_journal_payload)
    return over("the result", cp.result.size());
  if (cp.new_input.size() > max_journal_payload)
    return over("the continue_as_new input", cp.new_input.size());
  if (cp.query_state && cp.query_state->size() > max_journal_payload)
    return over("the query state", cp.query_state->size());
  for (const auto& e : cp.entries)
    if (e.payload.size() > max_journal_payload)
      return over("the outcome of step " + std::to_string(e.step), e.payload.size());
  for (const auto& a : cp.activities)
    if (a.args.size() > max_journal_payload)
      return over("the arguments of activity '" + a.activity + "' (step "
                    + std::to_string(a.step) + ")",
                  a.args.size());
  for (const auto& c : cp.children)
    if (c.input.size() > max_journal_payload)
      return over("the input of child " + c.child_id, c.input.size());
  return {};
}

void persist(instance_actor* self, checkpoint cp) {
  auto& st = self->state;
  // An error text is for people: keep its head rather than refuse it.
  constexpr size_t max_error = 64 * 1024;
  if (cp.error.size() > max_error)
    cp.error = cp.error.substr(0, max_error) + "... (truncated)";
  if (auto why = oversized(cp); !why.empty()) {
    // Never half-write: the instance stops here, visibly, with what it consumed acknowledged.
    for (auto& id : cp.acks)
      st.acks.push_back(std::move(id));
    suspend_unrunnable(self, why);
    return;
  }
  cp.seq = st.record.seq + 1;
  if (!st.durability) {
    auto configured = st.svc->durability_by_type.find(st.record.type);
    st.durability = configured != st.svc->durability_by_type.end()
                      ? configured->second
                      : st.svc->orchestrations->durability_of(st.record.type);
  }
  cp.durability = *st.durability;
  st.in_flight = std::move(cp);
  st.attempts = 0;
  send_write(self);
}

bool start_run(instance_actor* self, const std::string& input_json,
               const std::vector<journal_entry>& history, uint32_t generation);

/// Builds the persistence point for what happened since the last one, if anything did.
void checkpoint_progress(instance_actor* self) {
  auto& st = self->state;
  checkpoint cp;
  // continue_as_new: the finished run hands over to a fresh one in the same persistence point.
  if (st.frame.handle && st.frame.handle.done() && st.frame.promise->continue_input()
      && !(st.ctx && st.ctx->nondeterminism())) {
    auto input = *st.frame.promise->continue_input();
    auto generation = st.ctx->generation() + 1;
    spdlog::info("instance {}: continue_as_new, run {} starts", st.id, generation);
    st.frame.handle.destroy();
    st.frame = {};
    (void) st.ctx->take_output(); // superseded by the new run's journal
    if (!start_run(self, input, {}, generation))
      return;
    cp.reset = true;
    cp.new_input = std::move(input);
  }
  auto out = st.ctx ? st.ctx->take_output() : context::output{};
  cp.instance_id = st.id;
  cp.host = st.svc->host;
  cp.epoch = st.record.epoch;
  cp.generation = st.ctx ? st.ctx->generation() : st.record.generation;
  cp.steps = st.ctx ? st.ctx->steps() : st.record.steps;
  cp.status = instance_status::waiting;
  if (st.ctx && st.ctx->nondeterminism()) {
    cp.status = instance_status::suspended;
    cp.error = "non-determinism (not resumable): " + *st.ctx->nondeterminism();
  } else if (st.frame.handle && st.frame.handle.done()) {
    st.ctx->check_finished();
    if (st.ctx->nondeterminism()) {
      cp.status = instance_status::suspended;
      cp.error = "non-determinism (not resumable): " + *st.ctx->nondeterminism();
    } else if (st.frame.promise->cancelled()) {
      cp.status = instance_status::cancelled;
      cp.error = *st.frame.promise->failure();
    } else if (st.frame.promise->failure()) {
      cp.status = instance_status::failed;
      cp.error = *st.frame.promise->failure();
    } else {
      cp.status = instance_status::completed;
      cp.result = st.frame.promise->result().value_or("null");
    }
  }
  if (is_final(cp.status)) {
    st.finishing = true;
    // Whatever is still queued for this instance will never be consumed: acknowledge it with
    // the final write.
    for (auto& id : take_backlog_ids(st, true, to_string(cp.status)))
      st.acks.push_back(std::move(id));
  } else if (out.empty() && st.acks.empty() && st.record.status == cp.status && !cp.reset) {
    return; // nothing new to record
  }
  if (!out.entries.empty() || is_final(cp.status))
    spdlog::debug("instance {}: persistence point with {} journal entries, {} activities, {} "
                  "timers, {} children, status {}",
                  st.id, out.entries.size(), out.activities.size(), out.timers.size(),
                  out.children.size(), to_string(cp.status));
  cp.entries = std::move(out.entries);
  cp.activities = std::move(out.activities);
  cp.timers = std::move(out.timers);
  cp.cancelled_timers = std::move(out.cancelled_timers);
  cp.children = std::move(out.children);
  for (auto& c : cp.children)
    c.version = st.svc->orchestrations->newest_version(c.type); // 0: suspends as unknown
  cp.subscriptions = std::move(out.subscriptions);
  cp.query_state = std::move(out.query_state);
  cp.acks = std::exchange(st.acks, {});
  persist(self, std::move(cp));
}

void resume(instance_actor* self, std::coroutine_handle<> h) {
  self->state.ctx->set_clock(wall_clock_ms());
  h.resume();
}

/// Applies one message to the instance; returns false if the instance can take no more.
bool consume(instance_actor* self, instance_message& m) {
  auto& st = self->state;
  st.acks.push_back(std::move(m.message_id));
  context::delivery d;
  switch (m.what) {
    case instance_message::kind::start:
      return true; // the coroutine started when the instance was loaded
    case instance_message::kind::result:
    case instance_message::kind::timer:
      if (m.generation != st.ctx->generation()) {
        spdlog::debug("instance {}: outcome for step {} of run {} dropped (now run {})", st.id,
                      m.step, m.generation, st.ctx->generation());
        return true;
      }
      d = st.ctx->deliver(m.step, m.ok ? outcome::success(std::move(m.payload))
                                       : outcome::failure(std::move(m.payload)));
      break;
    case instance_message::kind::message:
    case instance_message::kind::signal:
      d = st.ctx->deliver_message(m.channel, std::move(m.payload));
      break;
    case instance_message::kind::cancel:
      spdlog::info("instance {}: cancellation requested", st.id);
      d = st.ctx->cancel();
      break;
  }
  if (!d.accepted)
    spdlog::debug("instance {}: duplicate or unknown outcome for step {} dropped", st.id, m.step);
  if (d.resume)
    resume(self, d.resume);
  return !st.ctx->nondeterminism() && !st.frame.handle.done();
}

/// Consumes queued messages, then writes one persistence point for all of them.
void drain(instance_actor* self) {
  auto& st = self->state;
  if (!st.loaded || st.in_flight || st.finishing)
    return;
  while (!st.backlog.empty()) {
    auto m = std::move(st.backlog.front());
    st.backlog.pop_front();
    if (!consume(self, m))
      break;
  }
  checkpoint_progress(self);
}

void start_claim(instance_actor* self) {
  auto hdl = caf::actor_cast<caf::actor>(self);
  self->state.svc->store->claim(self->state.id, self->state.svc->node,
                                [hdl](claim_result r) {
                                  caf::anon_send(hdl, claimed_atom::value, std::move(r));
                                });
}

/// Stops without a coroutine: the instance cannot run here (unknown type, bad input).
void suspend_unrunnable(instance_actor* self, std::string why) {
  auto& st = self->state;
  spdlog::error("instance {}: suspended (not resumable): {}", st.id, why);
  checkpoint cp;
  cp.instance_id = st.id;
  cp.host = st.svc->host;
  cp.epoch = st.record.epoch;
  cp.steps = st.record.steps;
  cp.generation = st.record.generation;
  cp.status = instance_status::suspended;
  cp.error = std::move(why);
  for (auto& id : take_backlog_ids(st, false, "suspended"))
    st.acks.push_back(std::move(id));
  cp.acks = std::exchange(st.acks, {});
  st.finishing = true;
  persist(self, std::move(cp));
}

void on_claimed(instance_actor* self, claim_result& r) {
  auto& st = self->state;
  if (st.leaving)
    return; // evicted while claiming
  if (r.status == store_status::unavailable) {
    self->delayed_send(self, backoff(st.attempts++), reclaim_atom::value);
    return;
  }
  if (r.status == store_status::rejected && r.record.epoch != 0) {
    // Claimed, but its journal does not decode: keep it for an operator, never guess.
    st.record = std::move(r.record);
    suspend_unrunnable(self, r.error);
    return;
  }
  if (r.status != store_status::ok) {
    spdlog::warn("instance {}: cannot claim: {}; its {} queued messages are acknowledged", st.id,
                 r.error, st.backlog.size());
    st.svc->store->ack(st.svc->host, take_backlog_ids(st, false, "unclaimable"));
    self->quit();
    return;
  }
  st.attempts = 0;
  st.record = std::move(r.record);
  st.durability.reset();
  if (is_final(st.record.status)) {
    st.svc->store->ack(st.svc->host,
                       take_backlog_ids(st, true, to_string(st.record.status)));
    leave(self, {});
    return;
  }
  if (st.record.status == instance_status::suspended_resumable) {
    // Suspended by an operator: what came for it waits in the MessageBox until resume.
    spdlog::debug("instance {} is suspended: {} messages parked", st.id, st.backlog.size());
    st.svc->store->park(st.svc->host, st.id, take_backlog_ids(st, false, "suspended"));
    leave(self, {});
    return;
  }
  if (!start_run(self, st.record.input, r.journal, st.record.generation))
    return;
  spdlog::info("instance {} ({} v{}) {} on node {} with epoch {}, {} journal entries", st.id,
               st.record.type, st.record.version, r.journal.empty() ? "started" : "rehydrated",
               st.svc->node, st.record.epoch, r.journal.size());
  drain(self);
}

/// Creates the context and the coroutine of one run and runs it to its first suspension
/// (replaying `history`). Returns false after suspending the instance as unrunnable.
bool start_run(instance_actor* self, const std::string& input_json,
               const std::vector<journal_entry>& history, uint32_t generation) {
  auto& st = self->state;
  auto factory = st.svc->orchestrations->find(st.record.type, st.record.version);
  if (!factory) {
    suspend_unrunnable(self, "orchestration type '" + st.record.type + "' version "
                               + std::to_string(st.record.version) + " is not registered on node "
                               + st.svc->node);
    return false;
  }
  json input;
  try {
    input = json::parse(input_json.empty() ? "null" : input_json);
  } catch (const std::exception& e) {
    suspend_unrunnable(self, std::string("input is not valid JSON: ") + e.what());
    return false;
  }
  st.ctx = std::make_unique<context>(st.id, history, generation);
  try {
    st.frame = (*factory)(*st.ctx, input);
  } catch (const std::exception& e) {
    suspend_unrunnable(self, std::string("input does not fit the orchestration: ") + e.what());
    return false;
  }
  st.loaded = true;
  resume(self, st.frame.handle);
  return true;
}


void on_written(instance_actor* self, store_status status, const std::string& error) {
  auto& st = self->state;
  if (st.leaving)
    return; // evicted meanwhile: what it held is given back (or was persisted)
  switch (status) {
    case store_status::ok: {
      auto cp = std::move(*st.in_flight);
      st.in_flight.reset();
      st.record.seq = cp.seq;
      st.record.status = cp.status;
      st.record.steps = cp.steps;
      st.record.generation = cp.generation;
      if (st.finishing) {
        spdlog::info("instance {} {}{}{}", st.id, to_string(cp.status),
                     cp.status == instance_status::completed ? ": " : "",
                     cp.status == instance_status::completed ? cp.result : cp.error);
        leave(self, {});
        return;
      }
      drain(self);
      if (!st.in_flight && st.backlog.empty() && st.svc->dehydrate_after.count() > 0)
        self->delayed_send(self, st.svc->dehydrate_after, dehydrate_atom::value, st.activity);
      return;
    }
    case store_status::unavailable:
      spdlog::warn("instance {}: persistence point {} outcome unknown ({}); retrying", st.id,
                   st.in_flight->seq, error);
      self->delayed_send(self, backoff(st.attempts++), rewrite_atom::value);
      return;
    case store_status::stale_epoch: {
      // Nothing this actor consumed since its last acknowledged point counts: give those
      // messages back now, for the new owner (they would otherwise wait for reclaim_idle).
      spdlog::warn("instance {}: fenced, a newer owner holds it ({}); stopping here and giving "
                   "its messages back",
                   st.id, error);
      leave(self, take_unpersisted_ids(st));
      return;
    }
    case store_status::rejected:
      spdlog::error("instance {}: persistence point rejected: {}; unloading", st.id, error);
      self->quit();
      return;
    case store_status::rolled_back: {
      // What this actor holds in memory is ahead of the store: drop it all. Its host starts
      // the instance again, and replay resumes it from what the store really holds.
      spdlog::error("instance {}: {}; restarting from the MessageBox", st.id, error);
      leave(self, take_unpersisted_ids(st), rolled_back_exit_reason());
      return;
    }
  }
}

/// An operator suspended or terminated the instance (see instance_message::kind::evict).
void evicted(instance_actor* self, instance_message& m) {
  auto& st = self->state;
  st.svc->store->ack(st.svc->host, {std::move(m.message_id)});
  uint64_t fenced_below = 0;
  try {
    fenced_below = std::stoull(m.payload);
  } catch (const std::exception&) {
  }
  if (st.leaving || (st.loaded && st.record.epoch >= fenced_below))
    return; // claimed after the operator's change: not for this actor
  spdlog::info("instance {}: an operator suspended or terminated it; leaving memory", st.id);
  leave(self, take_unpersisted_ids(st));
}

caf::behavior instance_behavior(instance_actor* self, std::shared_ptr<const instance_services> svc,
                                std::string id, caf::actor host) {
  self->state.svc = std::move(svc);
  self->state.id = std::move(id);
  self->state.host = std::move(host);
  start_claim(self);
  return {
    [=](instance_message& m) {
      auto& st = self->state;
      if (m.what == instance_message::kind::evict) {
        evicted(self, m);
        return;
      }
      if (st.leaving) {
        st.give_back.push_back(std::move(m.message_id));
        return;
      }
      ++st.activity;
      if (st.backlog.empty() && st.loaded && !st.in_flight && !st.finishing) {
        // What drain would do with a backlog of one, without the queue.
        consume(self, m);
        checkpoint_progress(self);
        return;
      }
      st.backlog.push_back(std::move(m));
      drain(self);
    },
    [=](instance_left_atom) {
      auto& st = self->state;
      if (!st.leaving)
        return;
      st.svc->store->release(st.svc->host, std::move(st.give_back));
      self->quit(std::move(st.leave_reason));
    },
    [=](dehydrate_atom, uint64_t activity) {
      auto& st = self->state;
      if (activity != st.activity || st.in_flight || !st.backlog.empty() || st.finishing
          || st.leaving)
        return;
      // Everything is in the MessageBox: leaving memory loses nothing.
      spdlog::debug("instance {} dehydrated after {} ms idle", st.id, st.svc->dehydrate_after.count());
      leave(self, {});
    },
    [=](claimed_atom, claim_result& r) { on_claimed(self, r); },
    [=](reclaim_atom) { start_claim(self); },
    [=](written_atom, store_status status, const std::string& error) {
      on_written(self, status, error);
    },
    [=](rewrite_atom) { send_write(self); },
  };
}

} // namespace

caf::error rolled_back_exit_reason() {
  return caf::error(1, caf::atom("rollback"));
}

bool is_rolled_back_exit(const caf::error& reason) {
  // CAF 0.17: category() of an empty error (a normal exit) dereferences null.
  return static_cast<bool>(reason) && reason.category() == caf::atom("rollback");
}

caf::actor spawn_instance(caf::actor_system& sys, std::shared_ptr<const instance_services> svc,
                          std::string instance_id) {
  return sys.spawn(instance_behavior, std::move(svc), std::move(instance_id), caf::actor{});
}

caf::actor spawn_instance(caf::actor_system& sys, std::shared_ptr<const instance_services> svc,
                          std::string instance_id, const caf::actor& host) {
  return sys.spawn(instance_behavior, std::move(svc), std::move(instance_id), host);
}

} // namespace convoy
