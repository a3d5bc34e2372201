#include "convoy/runtime/supervisor.hpp"

#include "convoy/actors/clock.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/response_promise.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/to_string.hpp>

#include <spdlog/spdlog.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace convoy::runtime {

// -- errors and names -------------------------------------------------------------------------

std::string_view to_string(supervisor_errc x) noexcept {
  switch (x) {
    case supervisor_errc::escalated: return "escalated";
    case supervisor_errc::start_failed: return "start_failed";
    case supervisor_errc::no_such_child: return "no_such_child";
    case supervisor_errc::already_present: return "already_present";
    case supervisor_errc::not_stopped: return "not_stopped";
    case supervisor_errc::invalid_spec: return "invalid_spec";
    case supervisor_errc::shutting_down: return "shutting_down";
  }
  return "unknown";
}

caf::error make_error(supervisor_errc code, std::string context) {
  return caf::error(static_cast<uint8_t>(code), supervisor_error_category,
                    caf::make_message(std::move(context)));
}

caf::error make_error(supervisor_errc code) {
  return caf::error(static_cast<uint8_t>(code), supervisor_error_category);
}

std::string reason_text(const caf::error& reason) {
  if (!reason)
    return "normal";
  if (reason.category() == caf::atom("exit"))
    return caf::to_string(static_cast<caf::exit_reason>(reason.code()));
  if (reason.category() == supervisor_error_category) {
    std::string text{to_string(static_cast<supervisor_errc>(reason.code()))};
    auto& ctx = reason.context();
    if (ctx.match_elements<std::string>())
      text += ": " + ctx.get_as<std::string>(0);
    return text;
  }
  return caf::to_string(reason);
}

bool is_normal_exit(const caf::error& reason) {
  return reason == caf::exit_reason::normal || reason == caf::exit_reason::user_shutdown;
}

std::string_view to_string(restart_strategy x) noexcept {
  switch (x) {
    case restart_strategy::one_for_one: return "one_for_one";
    case restart_strategy::one_for_all: return "one_for_all";
    case restart_strategy::rest_for_one: return "rest_for_one";
  }
  return "unknown";
}

std::string_view to_string(restart_type x) noexcept {
  switch (x) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "unknown";
}

std::string_view to_string(child_kind x) noexcept {
  switch (x) {
    case child_kind::worker: return "worker";
    case child_kind::supervisor: return "supervisor";
  }
  return "unknown";
}

std::string_view to_string(child_state x) noexcept {
  switch (x) {
    case child_state::starting: return "starting";
    case child_state::running: return "running";
    case child_state::stopping: return "stopping";
    case child_state::restarting: return "restarting";
    case child_state::stopped: return "stopped";
  }
  return "unknown";
}

json to_json(const supervisor_description& x) {
  json children = json::array();
  for (auto& c : x.children) {
    json child = {{"id", c.id},
                  {"kind", to_string(c.kind)},
                  {"restart", to_string(c.restart)},
                  {"state", to_string(c.state)},
                  {"restarts", c.restarts},
                  {"dynamic", c.dynamic}};
    if (c.unresponsive)
      child["unresponsive"] = true;
    if (!c.supervisor.empty())
      child["supervisor"] = to_json(c.supervisor.front());
    children.push_back(std::move(child));
  }
  json exits = json::array();
  for (auto& e : x.recent_exits)
    exits.push_back(
      {{"child", e.child}, {"reason", e.reason}, {"at_ms", e.at_ms}, {"action", e.action}});
  return {{"name", x.name},
          {"strategy", to_string(x.strategy)},
          {"intensity", x.intensity},
          {"restarts_in_period", x.restarts_in_period},
          {"period_ms", x.period_ms},
          {"children", std::move(children)},
          {"recent_exits", std::move(exits)}};
}

void add_supervisor_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<supervisor_description>("convoy.supervisor_description");
}

child_spec supervisor_child(supervisor_spec spec, restart_type restart) {
  child_spec child;
  child.id = spec.name;
  child.restart = restart;
  child.shutdown = infinity;
  child.kind = child_kind::supervisor;
  child.start = [spec = std::move(spec)](const child_context& ctx) {
    return spawn_supervisor(ctx.system, spec);
  };
  return child;
}

// -- the supervisor actor ---------------------------------------------------------------------

namespace {

using stop_timeout_atom = caf::atom_constant<caf::atom("stoptmo")>;
using try_again_atom = caf::atom_constant<caf::atom("tryagain")>;

constexpr size_t recent_exits_kept = 10;
constexpr int64_t default_describe_budget_ms = 1000;

/// What a child that we stopped becomes.
enum class stop_purpose : uint8_t {
  restart,   // part of a group restart: it starts again later in the same plan
  terminate, // terminate_child: stays stopped (or is forgotten)
  shutdown,  // the supervisor stops
};

struct child {
  child_spec spec;
  bool dynamic = false;
  child_state state = child_state::starting;
  caf::actor actor;
  /// Counts starts: tells a stale timer, acknowledgement or deferred decision from one that is
  /// about the child's current life.
  uint64_t incarnation = 0;
  stop_purpose stopping_for = stop_purpose::shutdown;
  bool killed = false;
};

/// One step of a plan: stop some children (together), start one, or start every child that
/// is not running from a position on, in order.
struct step {
  enum class kind : uint8_t { stop, start_one, start_from } what;
  std::vector<uint64_t> positions; // stop: these, together; start_*: the first position
  stop_purpose purpose = stop_purpose::shutdown;
};

enum class plan_kind : uint8_t {
  initial_start,
  restart,
  start_child,
  restart_child,
  terminate_child,
  shutdown,
};

/// A multi-step operation. Only one runs at a time; it may wait for a child's exit (stops) or
/// for a child supervisor's start acknowledgement between steps. Everything that would change
/// the children meanwhile (restart decisions, requests) waits in `deferred`, as messages wait in
/// an OTP supervisor's mailbox while it is busy in a synchronous start or stop.
struct plan {
  plan_kind kind;
  std::deque<step> steps;
  caf::response_promise promise; // requests
  uint64_t subject = 0;          // the child a request is about
  caf::error reason;             // shutdown: the reason to exit with
};

struct supervisor_state {
  supervisor_spec spec; // without its children, which live in `children`
  /// By position = start order. Static children take 0..n-1, dynamic ones the next numbers;
  /// a restarted child keeps its position.
  std::map<uint64_t, child> children;
  std::unordered_map<std::string, uint64_t> by_id;
  std::unordered_map<caf::actor_addr, uint64_t> by_addr;
  uint64_t next_position = 0;
  /// At most intensity + 1 entries: older ones fall out of the period.
  std::deque<std::chrono::steady_clock::time_point> restart_times;
  std::deque<exit_record> recent_exits;
  std::optional<plan> current;
  std::unordered_set<uint64_t> awaiting_stop;
  std::optional<uint64_t> awaiting_start;
  std::deque<std::function<void()>> deferred;
  std::vector<caf::response_promise> start_waiters;
  bool started = false;
  bool shutting_down = false;
  bool pumping = false;
  bool done = false;

  static inline const char* name = "convoy.supervisor";

  /// Whoever waits for our start hears of it even if we are killed: a parent that never heard
  /// would keep its response handler for ever.
  ~supervisor_state() {
    // Linked children die with us anyway; a child being stopped is no longer linked.
    for (auto& [position, c] : children)
      if (c.actor && c.state == child_state::stopping)
        caf::anon_send_exit(c.actor, caf::exit_reason::kill);
    for (auto& rp : start_waiters)
      if (rp.pending())
        rp.deliver(make_error(supervisor_errc::start_failed,
                              "supervisor '" + spec.name + "' was killed"));
    if (current && current->promise.pending())
      current->promise.deliver(make_error(supervisor_errc::shutting_down,
                                          "supervisor '" + spec.name + "' was killed"));
  }
};

using sup_ptr = caf::stateful_actor<supervisor_state>*;

child* find(supervisor_state& st, uint64_t position) {
  auto i = st.children.find(position);
  return i == st.children.end() ? nullptr : &i->second;
}

void record_exit(supervisor_state& st, const std::string& id, const caf::error& reason,
                 std::string action) {
  st.recent_exits.push_back({id, reason_text(reason), wall_clock_ms(), std::move(action)});
  if (st.recent_exits.size() > recent_exits_kept)
    st.recent_exits.pop_front();
}

void forget(supervisor_state& st, uint64_t position) {
  auto i = st.children.find(position);
  if (i == st.children.end())
    return;
  if (i->second.actor)
    st.by_addr.erase(i->second.actor.address());
  st.by_id.erase(i->second.spec.id);
  st.children.erase(i);
}

/// A child that will not run again: OTP forgets temporary children; we also forget dynamic ones
/// (see the header). Children of the spec stay listed.
void settle_for_good(supervisor_state& st, uint64_t position) {
  auto c = find(st, position);
  if (!c)
    return;
  if (c->dynamic || c->spec.restart == restart_type::temporary)
    forget(st, position);
  else
    c->state = child_state::stopped;
}

bool wants_restart(restart_type type, const caf::error& reason) {
  switch (type) {
    case restart_type::permanent: return true;
    case restart_type::transient: return !is_normal_exit(reason);
    case restart_type::temporary: return false;
  }
  return false;
}

/// Counts a restart; false once more than `intensity` fall within `period`.
bool add_restart(supervisor_state& st) {
  auto now = std::chrono::steady_clock::now();
  st.restart_times.push_back(now);
  while (!st.restart_times.empty() && st.restart_times.front() < now - st.spec.period)
    st.restart_times.pop_front();
  return st.restart_times.size() <= static_cast<size_t>(st.spec.intensity);
}

int32_t restarts_in_period(const supervisor_state& st) {
  auto since = std::chrono::steady_clock::now() - st.spec.period;
  int32_t n = 0;
  for (auto t : st.restart_times)
    if (t >= since)
      ++n;
  return n;
}

/// Steps that stop every child at or after `from` that has an actor, in reverse start order.
/// Dynamic children stop together when the spec asks for it.
std::deque<step> stop_steps(const supervisor_state& st, uint64_t from, stop_purpose purpose) {
  std::deque<step> steps;
  step together{step::kind::stop, {}, purpose};
  for (auto i = st.children.rbegin(); i != st.children.rend() && i->first >= from; ++i) {
    if (!i->second.actor)
      continue;
    if (i->second.dynamic && st.spec.stop_dynamic == dynamic_stop::all_at_once)
      together.positions.push_back(i->first);
    else
      steps.push_back(step{step::kind::stop, {i->first}, purpose});
  }
  // Dynamic children come after all static ones, so they stop first.
  if (!together.positions.empty())
    steps.push_front(std::move(together));
  return steps;
}

void pump(sup_ptr self);

void begin_shutdown(sup_ptr self, caf::error reason) {
  auto& st = self->state;
  if (st.shutting_down)
    return;
  st.shutting_down = true;
  if (st.current && st.current->promise.pending())
    st.current->promise.deliver(make_error(supervisor_errc::shutting_down,
                                           "supervisor '" + st.spec.name + "' is stopping"));
  // A child supervisor we were waiting for is running: the stop steps below stop it.
  st.awaiting_start.reset();
  st.current = plan{plan_kind::shutdown, stop_steps(st, 0, stop_purpose::shutdown), {}, 0,
                    std::move(reason)};
  // Deferred work sees `shutting_down` and only answers its requester.
  auto deferred = std::move(st.deferred);
  st.deferred.clear();
  for (auto& fn : deferred)
    fn();
}

void escalate(sup_ptr self, const std::string& child_id, const caf::error& reason) {
  auto& st = self->state;
  auto why = "supervisor '" + st.spec.name + "' reached its restart intensity ("
             + std::to_string(st.spec.intensity) + " in " + std::to_string(st.spec.period.count())
             + " ms); last exit: child '" + child_id + "' with " + reason_text(reason);
  spdlog::error("{}: stopping its children and escalating", why);
  record_exit(st, child_id, reason, "restart intensity reached: escalating");
  begin_shutdown(self, make_error(supervisor_errc::escalated, std::move(why)));
}

/// Restarts `position` by the strategy (the child has exited or failed to start).
void restart(sup_ptr self, uint64_t position, const caf::error& reason) {
  auto& st = self->state;
  auto c = find(st, position);
  if (!c)
    return;
  if (!add_restart(st))
    return escalate(self, c->spec.id, reason);
  plan p{plan_kind::restart, {}, {}, position, {}};
  switch (st.spec.strategy) {
    case restart_strategy::one_for_one:
      p.steps.push_back(step{step::kind::start_one, {position}});
      break;
    case restart_strategy::one_for_all:
      p.steps = stop_steps(st, 0, stop_purpose::restart);
      p.steps.push_back(step{step::kind::start_from, {0}});
      break;
    case restart_strategy::rest_for_one:
      p.steps = stop_steps(st, position, stop_purpose::restart);
      p.steps.push_back(step{step::kind::start_from, {position}});
      break;
  }
  st.current = std::move(p);
}

/// Runs `fn` now if no plan runs, else once the plans before it are done.
void when_idle(sup_ptr self, std::function<void()> fn) {
  auto& st = self->state;
  if (st.current || st.pumping)
    st.deferred.push_back(std::move(fn));
  else
    fn();
}

/// Restarts the child once no plan runs, unless that is stale by then: a group restart has
/// started it again (OTP ignores such exits too), it was terminated, or we are stopping.
void restart_when_idle(sup_ptr self, uint64_t position, uint64_t incarnation,
                       caf::error reason) {
  when_idle(self, [self, position, incarnation, reason] {
    auto& st = self->state;
    auto c = find(st, position);
    if (st.shutting_down || !c || c->incarnation != incarnation
        || c->state != child_state::restarting)
      return;
    restart(self, position, reason);
  });
}

void start_failed(sup_ptr self, uint64_t position, const caf::error& reason) {
  auto& st = self->state;
  auto c = find(st, position);
  if (!c || !st.current)
    return;
  auto id = c->spec.id;
  auto& p = *st.current;
  p.steps.clear();
  switch (p.kind) {
    case plan_kind::initial_start:
      record_exit(st, id, reason, "failed to start");
      c->state = child_state::stopped;
      spdlog::error("supervisor '{}': child '{}' failed to start: {}", st.spec.name, id,
                    reason_text(reason));
      begin_shutdown(self, make_error(supervisor_errc::start_failed,
                                      "supervisor '" + st.spec.name + "': child '" + id
                                        + "' failed to start: " + reason_text(reason)));
      break;
    case plan_kind::restart: {
      // As OTP: try again through the mailbox, so that requests (a shutdown, say) get a turn;
      // every attempt counts toward the intensity.
      record_exit(st, id, reason, "failed to restart; trying again");
      c->state = child_state::restarting;
      self->send(self, try_again_atom::value, position, c->incarnation);
      break;
    }
    case plan_kind::start_child:
    case plan_kind::restart_child:
      record_exit(st, id, reason, "failed to start");
      p.promise.deliver(make_error(supervisor_errc::start_failed,
                                   "child '" + id + "' failed to start: " + reason_text(reason)));
      settle_for_good(st, position);
      break;
    case plan_kind::terminate_child:
    case plan_kind::shutdown:
      break;
  }
}

void start_now(sup_ptr self, uint64_t position) {
  auto& st = self->state;
  auto c = find(st, position);
  if (!c)
    return;
  caf::actor started;
  caf::error failure;
  try {
    started = c->spec.start(
      child_context{self->system(), caf::actor_cast<caf::actor>(self), c->spec.id});
    if (!started)
      failure = make_error(supervisor_errc::start_failed, "start function returned no actor");
  } catch (const std::exception& ex) {
    failure = make_error(supervisor_errc::start_failed,
                         std::string("start function threw: ") + ex.what());
  } catch (...) {
    failure = make_error(supervisor_errc::start_failed, "start function threw");
  }
  if (failure)
    return start_failed(self, position, failure);
  c->actor = started;
  c->incarnation += 1;
  c->killed = false;
  st.by_addr[started.address()] = position;
  // Linked, as in OTP: if we die unexpectedly (killed, say) our children die with us, also
  // across nodes, and a child supervisor stops its own children first. A child that is already
  // dead yields its exit message at once. (Stopping a child switches to a monitor: stop_now.)
  self->link_to(started);
  if (c->spec.kind == child_kind::worker) {
    c->state = child_state::running;
    return;
  }
  c->state = child_state::starting;
  st.awaiting_start = position;
  auto incarnation = c->incarnation;
  // A failed child supervisor exits: its exit message settles the start (see on_child_exit),
  // so the error reply needs no handling.
  self->request(started, caf::infinite, await_started_atom::value)
    .then(
      [self, position, incarnation](caf::ok_atom) {
        auto& st = self->state;
        auto c = find(st, position);
        if (st.awaiting_start != position || !c || c->incarnation != incarnation)
          return;
        st.awaiting_start.reset();
        c->state = child_state::running;
        pump(self);
      },
      [](caf::error&) {});
}

void stop_now(sup_ptr self, uint64_t position, stop_purpose purpose) {
  auto& st = self->state;
  auto c = find(st, position);
  if (!c)
    return;
  if (!c->actor) {
    // Not running (it exited meanwhile, or never started): only its bookkeeping changes.
    if (purpose == stop_purpose::restart) {
      if (c->spec.restart == restart_type::temporary)
        forget(st, position);
      else
        c->state = child_state::restarting;
    } else if (purpose == stop_purpose::terminate) {
      settle_for_good(st, position);
    } else {
      c->state = child_state::stopped;
    }
    return;
  }
  st.awaiting_stop.insert(position);
  c->stopping_for = purpose;
  if (c->state == child_state::stopping)
    return; // asked already; its timer runs
  c->state = child_state::stopping;
  // An exit message from a linked actor makes CAF drop the link (it takes the message for the
  // link's own notice), so the child's exit would never reach us through it. As OTP does, we
  // watch a stopping child with a monitor. Unlinking first keeps the order of notices fixed:
  // an exit message the link sent before (the child died meanwhile) is already in our mailbox,
  // ahead of the down message, and no link notice can come after the down message.
  self->unlink_from(c->actor);
  self->monitor(c->actor);
  if (c->spec.shutdown <= brutal_kill) {
    c->killed = true;
    self->send_exit(c->actor, caf::exit_reason::kill);
    return;
  }
  self->send_exit(c->actor, caf::exit_reason::user_shutdown);
  if (c->spec.shutdown != infinity)
    self->delayed_send(self, c->spec.shutdown, stop_timeout_atom::value, position,
                       c->incarnation);
}

void run_step(sup_ptr self, step s) {
  auto& st = self->state;
  switch (s.what) {
    case step::kind::stop:
      for (auto position : s.positions)
        stop_now(self, position, s.purpose);
      break;
    case step::kind::start_one:
      start_now(self, s.positions.front());
      break;
    case step::kind::start_from: {
      auto i = st.children.lower_bound(s.positions.front());
      while (i != st.children.end() && i->second.actor)
        ++i;
      if (i == st.children.end())
        break;
      auto position = i->first;
      st.current->steps.push_front(step{step::kind::start_from, {position + 1}});
      start_now(self, position);
      break;
    }
  }
}

void finish_plan(sup_ptr self) {
  auto& st = self->state;
  auto p = std::move(*st.current);
  st.current.reset();
  switch (p.kind) {
    case plan_kind::initial_start:
      st.started = true;
      for (auto& rp : st.start_waiters)
        rp.deliver(caf::ok_atom::value);
      st.start_waiters.clear();
      break;
    case plan_kind::restart:
      break;
    case plan_kind::start_child:
    case plan_kind::restart_child: {
      // A start that failed has answered already.
      if (!p.promise.pending())
        break;
      auto c = find(st, p.subject);
      if (c && c->actor)
        p.promise.deliver(c->actor);
      else
        p.promise.deliver(make_error(supervisor_errc::start_failed, "child exited at once"));
      break;
    }
    case plan_kind::terminate_child:
      if (p.promise.pending())
        p.promise.deliver(caf::ok_atom::value);
      break;
    case plan_kind::shutdown:
      for (auto& rp : st.start_waiters)
        rp.deliver(p.reason ? p.reason
                            : make_error(supervisor_errc::shutting_down, "stopped while starting"));
      st.start_waiters.clear();
      st.done = true;
      self->quit(p.reason);
      break;
  }
}

/// Drives plans and deferred work until something must be waited for. Every handler ends here.
void pump(sup_ptr self) {
  auto& st = self->state;
  if (st.pumping)
    return;
  st.pumping = true;
  while (!st.done) {
    if (st.current) {
      if (!st.awaiting_stop.empty() || st.awaiting_start)
        break;
      if (!st.current->steps.empty()) {
        auto s = std::move(st.current->steps.front());
        st.current->steps.pop_front();
        run_step(self, std::move(s));
        continue;
      }
      finish_plan(self);
      continue;
    }
    if (st.deferred.empty())
      break;
    auto fn = std::move(st.deferred.front());
    st.deferred.pop_front();
    fn();
  }
  st.pumping = false;
}

void on_child_exit(sup_ptr self, uint64_t position, const caf::error& reason) {
  auto& st = self->state;
  auto& c = st.children.at(position);
  st.by_addr.erase(c.actor.address());
  c.actor = nullptr;
  auto id = c.spec.id;
  spdlog::debug("supervisor '{}': child '{}' exited ({})", st.spec.name, id, reason_text(reason));
  if (c.state == child_state::stopping) {
    st.awaiting_stop.erase(position);
    if (c.killed && c.spec.shutdown > brutal_kill)
      record_exit(st, id, reason,
                  "killed after shutdown timeout of " + std::to_string(c.spec.shutdown.count())
                    + " ms");
    else if (!c.killed && reason != caf::exit_reason::user_shutdown
             && !(reason == caf::exit_reason::normal
                  && c.spec.restart != restart_type::permanent))
      record_exit(st, id, reason, "exited with an unexpected reason while stopping");
    stop_now(self, position, c.stopping_for); // settles the bookkeeping of a stopped child
    return;
  }
  if (st.awaiting_start == position) {
    st.awaiting_start.reset();
    return start_failed(self, position, reason);
  }
  if (st.shutting_down) {
    record_exit(st, id, reason, "not restarted: supervisor stopping");
    c.state = child_state::stopped;
    return;
  }
  if (!wants_restart(c.spec.restart, reason)) {
    record_exit(st, id, reason, "not restarted");
    return settle_for_good(st, position);
  }
  record_exit(st, id, reason, "restarting");
  c.state = child_state::restarting;
  restart_when_idle(self, position, c.incarnation, reason);
}

/// A request that changes the children: served when no plan runs.
template <class F>
void serve_when_idle(sup_ptr self, F serve) {
  auto rp = self->make_response_promise();
  auto refuse = [self](caf::response_promise& rp) {
    rp.deliver(make_error(supervisor_errc::shutting_down,
                          "supervisor '" + self->state.spec.name + "' is stopping"));
  };
  // Work deferred during a shutdown would never run: refuse now.
  if (self->state.shutting_down)
    return refuse(rp);
  when_idle(self, [self, rp, serve, refuse]() mutable {
    if (self->state.shutting_down)
      return refuse(rp);
    serve(rp);
  });
}

/// The position of child `id`; or nothing, once `rp` has been told why not (no such child, or
/// it is not stopped when it must be).
std::optional<uint64_t> child_for_request(const supervisor_state& st, const std::string& id,
                                          bool must_be_stopped, caf::response_promise& rp) {
  auto i = st.by_id.find(id);
  if (i == st.by_id.end()) {
    rp.deliver(make_error(supervisor_errc::no_such_child, "child '" + id + "'"));
    return std::nullopt;
  }
  if (must_be_stopped && st.children.at(i->second).state != child_state::stopped) {
    rp.deliver(make_error(supervisor_errc::not_stopped, "child '" + id + "'"));
    return std::nullopt;
  }
  return i->second;
}

std::string validate(const supervisor_spec& spec) {
  if (spec.intensity < 0)
    return "intensity is negative";
  if (spec.period.count() <= 0)
    return "period is not positive";
  std::unordered_set<std::string> ids;
  for (auto& c : spec.children) {
    if (c.id.empty())
      return "a child has no id";
    if (!c.start)
      return "child '" + c.id + "' has no start function";
    if (!ids.insert(c.id).second)
      return "child id '" + c.id + "' appears twice";
  }
  return {};
}

uint64_t add_child(supervisor_state& st, child_spec spec, bool dynamic) {
  auto position = st.next_position++;
  st.by_id.emplace(spec.id, position);
  auto& c = st.children[position];
  c.spec = std::move(spec);
  c.dynamic = dynamic;
  return position;
}

supervisor_description describe_self(const supervisor_state& st) {
  supervisor_description d;
  d.name = st.spec.name;
  d.strategy = st.spec.strategy;
  d.intensity = st.spec.intensity;
  d.restarts_in_period = restarts_in_period(st);
  d.period_ms = st.spec.period.count();
  d.children.reserve(st.children.size());
  for (auto& [position, c] : st.children) {
    child_description cd;
    cd.id = c.spec.id;
    cd.kind = c.spec.kind;
    cd.restart = c.spec.restart;
    cd.state = c.state;
    cd.restarts = c.incarnation > 1 ? static_cast<uint32_t>(c.incarnation - 1) : 0;
    cd.dynamic = c.dynamic;
    d.children.push_back(std::move(cd));
  }
  d.recent_exits.assign(st.recent_exits.begin(), st.recent_exits.end());
  return d;
}

/// Answers with our own description once every running child supervisor has answered with
/// its own or the budget is spent.
void describe(sup_ptr self, int64_t budget_ms) {
  struct gathering {
    caf::response_promise promise;
    supervisor_description description;
    size_t outstanding = 0;
    void one_done() {
      if (--outstanding == 0)
        promise.deliver(std::move(description));
    }
  };
  auto& st = self->state;
  auto g = std::make_shared<gathering>();
  g->promise = self->make_response_promise();
  g->description = describe_self(st);
  std::vector<std::pair<size_t, caf::actor>> asks;
  size_t index = 0;
  for (auto& [position, c] : st.children) {
    if (c.spec.kind == child_kind::supervisor && c.actor)
      asks.emplace_back(index, c.actor);
    ++index;
  }
  if (asks.empty()) {
    g->promise.deliver(std::move(g->description));
    return;
  }
  g->outstanding = asks.size();
  // The child answers within its budget only if it asks its own children with less.
  auto child_budget = std::max<int64_t>(1, budget_ms * 3 / 4);
  for (auto& [i, a] : asks)
    self
      ->request(a, std::chrono::milliseconds(child_budget), describe_atom::value, child_budget)
      .then(
        [g, i = i](supervisor_description& d) {
          g->description.children[i].supervisor.push_back(std::move(d));
          g->one_done();
        },
        [g, i = i](caf::error&) {
          g->description.children[i].unresponsive = true;
          g->one_done();
        });
}

caf::behavior supervisor_actor(sup_ptr self, supervisor_spec spec) {
  auto& st = self->state;
  auto invalid = validate(spec);
  auto children = std::move(spec.children);
  spec.children.clear();
  st.spec = std::move(spec);
  // Children and whoever stops us reach us as exit messages; we decide what they mean.
  // Stopping children report through a monitor (see stop_now); a down message for anyone
  // else is a stale duplicate of an exit message already handled.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.by_addr.find(dm.source);
    if (i == st.by_addr.end())
      return;
    on_child_exit(self, i->second, dm.reason);
    pump(self);
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    auto& st = self->state;
    auto i = st.by_addr.find(em.source);
    if (i != st.by_addr.end()) {
      on_child_exit(self, i->second, em.reason);
    } else if (em.reason != caf::exit_reason::normal) {
      spdlog::debug("supervisor '{}': told to stop ({})", st.spec.name, reason_text(em.reason));
      // Our parent (through the link), or anyone telling us to stop: stop the children in
      // reverse order, then exit with the same reason.
      begin_shutdown(self, em.reason);
    }
    pump(self);
  });
  if (!invalid.empty()) {
    spdlog::error("supervisor '{}': invalid spec: {}", st.spec.name, invalid);
    self->quit(make_error(supervisor_errc::invalid_spec,
                          "supervisor '" + st.spec.name + "': " + invalid));
    return {};
  }
  for (auto& c : children)
    add_child(st, std::move(c), false);
  st.current = plan{plan_kind::initial_start, {step{step::kind::start_from, {0}}}, {}, 0, {}};
  pump(self);
  return {
    [self](stop_timeout_atom, uint64_t position, uint64_t incarnation) {
      auto& st = self->state;
      auto c = find(st, position);
      if (!c || c->incarnation != incarnation || c->state != child_state::stopping || !c->actor
          || c->killed)
        return;
      spdlog::warn("supervisor '{}': child '{}' did not stop within {} ms; killing it",
                   st.spec.name, c->spec.id, c->spec.shutdown.count());
      c->killed = true;
      self->send_exit(c->actor, caf::exit_reason::kill);
    },
    [self](try_again_atom, uint64_t position, uint64_t incarnation) {
      restart_when_idle(self, position, incarnation,
                        make_error(supervisor_errc::start_failed, "restart failed"));
      pump(self);
    },
    [self](start_child_atom, child_spec& spec) {
      serve_when_idle(self, [self, spec = std::move(spec)](caf::response_promise& rp) mutable {
        auto& st = self->state;
        if (spec.id.empty() || !spec.start) {
          rp.deliver(make_error(supervisor_errc::invalid_spec, "a child needs an id and a start"));
          return;
        }
        if (st.by_id.count(spec.id) != 0) {
          rp.deliver(make_error(supervisor_errc::already_present, "child '" + spec.id + "'"));
          return;
        }
        auto position = add_child(st, std::move(spec), true);
        st.current = plan{plan_kind::start_child, {step{step::kind::start_one, {position}}}, rp,
                          position, {}};
      });
      pump(self);
    },
    [self](restart_child_atom, const std::string& id) {
      serve_when_idle(self, [self, id](caf::response_promise& rp) {
        auto& st = self->state;
        if (auto position = child_for_request(st, id, true, rp))
          st.current = plan{plan_kind::restart_child, {step{step::kind::start_one, {*position}}},
                            rp, *position, {}};
      });
      pump(self);
    },
    [self](terminate_child_atom, const std::string& id) {
      serve_when_idle(self, [self, id](caf::response_promise& rp) {
        auto& st = self->state;
        if (auto position = child_for_request(st, id, false, rp))
          st.current = plan{plan_kind::terminate_child,
                            {step{step::kind::stop, {*position}, stop_purpose::terminate}}, rp,
                            *position, {}};
      });
      pump(self);
    },
    [self](delete_child_atom, const std::string& id) {
      serve_when_idle(self, [self, id](caf::response_promise& rp) {
        auto& st = self->state;
        if (auto position = child_for_request(st, id, true, rp)) {
          forget(st, *position);
          rp.deliver(caf::ok_atom::value);
        }
      });
      pump(self);
    },
    [self](describe_atom) { describe(self, default_describe_budget_ms); },
    [self](describe_atom, int64_t budget_ms) { describe(self, budget_ms); },
    [self](await_started_atom) {
      auto& st = self->state;
      auto rp = self->make_response_promise();
      if (st.started)
        rp.deliver(caf::ok_atom::value);
      else if (st.shutting_down)
        rp.deliver(make_error(supervisor_errc::shutting_down, "stopping before it started"));
      else
        st.start_waiters.push_back(std::move(rp));
    },
  };
}

} // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec) {
  return sys.spawn(supervisor_actor, std::move(spec));
}

} // namespace convoy::runtime
