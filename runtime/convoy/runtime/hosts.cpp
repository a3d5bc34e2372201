#include "convoy/runtime/hosts.hpp"
#include "convoy/runtime/envelope.hpp"
#include "convoy/actors/clock.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <random>
#include <unordered_map>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(convoy::persistence::queue_entry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<convoy::persistence::queue_entry>)

namespace convoy::runtime {

namespace {

using poll_atom = caf::atom_constant<caf::atom("poll")>;
using entries_atom = caf::atom_constant<caf::atom("entries")>;
using reclaim_atom = caf::atom_constant<caf::atom("reclaim")>;
using timers_atom = caf::atom_constant<caf::atom("timers")>;
using run_atom = caf::atom_constant<caf::atom("run")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;
using drop_atom = caf::atom_constant<caf::atom("drop")>;
using takeover_atom = caf::atom_constant<caf::atom("takeover")>;

using persistence::queue_entry;

/// The queue-reading loop every host instance shares: first its own unacknowledged entries
/// (left by an earlier life of this node), then new entries, plus a periodic takeover of
/// entries other consumers left idle past `reclaim_idle`.
struct queue_reader {
  std::shared_ptr<const host_services> svc;
  std::string host;
  bool own_pending = true;
  bool polling = false;
  /// While throttled: no read before this, and whether a poll is scheduled for then.
  std::chrono::steady_clock::time_point next_throttled_read{};
  bool wake_scheduled = false;

  /// Checks the throttling thresholds (see throttle.hpp) and records the result.
  std::string throttle_check(size_t instances, size_t max_instances) {
    throttle_inputs now;
    now.resident_mb = svc->throttle->resident_mb();
    now.backlog = svc->throttle->backlog();
    now.write_latency_us = svc->box->write_latency_us();
    now.instances = instances;
    now.max_instances = max_instances;
    auto cause = throttle_cause(host, svc->config->throttling, now);
    svc->throttle->update(host, cause);
    return cause;
  }

  /// Reads up to `count` entries, unless a read is under way; `instances`/`max_instances`
  /// is the processing host's in-flight check (0/0 for others). A throttled host reads an
  /// eighth as much, at most once per `throttling.delay_ms`.
  void poll(caf::event_based_actor* self, size_t count, size_t instances = 0,
            size_t max_instances = 0) {
    if (polling)
      return;
    auto cause = throttle_check(instances, max_instances);
    if (count == 0)
      return;
    if (!cause.empty()) {
      auto now = std::chrono::steady_clock::now();
      if (now < next_throttled_read) {
        if (!wake_scheduled) {
          wake_scheduled = true;
          self->delayed_send(self, next_throttled_read - now, poll_atom::value);
        }
        return;
      }
      next_throttled_read = now + svc->config->throttling.delay;
      count = std::max<size_t>(1, count / 8);
    }
    wake_scheduled = false;
    polling = true;
    auto hdl = caf::actor_cast<caf::actor>(self);
    bool pending = own_pending;
    svc->box->read_queue(host, svc->config->name, count, svc->config->poll_block, pending,
                         [hdl, pending](std::vector<queue_entry> entries, std::string error) {
                           caf::anon_send(hdl, entries_atom::value, std::move(entries),
                                          std::move(error), pending, false);
                         });
  }

  /// Call on every batch; returns true when the loop should poll again right away.
  bool on_batch(caf::event_based_actor* self, bool from_poll, bool pending, size_t n,
                const std::string& error) {
    if (from_poll)
      polling = false;
    if (!error.empty()) {
      spdlog::warn("host {}: queue read failed: {}", host, error);
      self->delayed_send(self, std::chrono::milliseconds(250), poll_atom::value);
      return false;
    }
    if (pending && n == 0)
      own_pending = false;
    return from_poll;
  }

  void reclaim(caf::event_based_actor* self, size_t count) {
    auto hdl = caf::actor_cast<caf::actor>(self);
    svc->box->reclaim_queue(host, svc->config->name, svc->config->reclaim_idle, count,
                            [hdl](std::vector<queue_entry> entries, std::string error) {
                              caf::anon_send(hdl, entries_atom::value, std::move(entries),
                                             std::move(error), false, true);
                            });
    self->delayed_send(self, svc->config->reclaim_idle / 2, reclaim_atom::value);
  }

  /// Takes over a batch of what `dead` left pending; asks for the next batch while full ones
  /// come back. Entries arrive like reclaimed ones.
  void take_over(caf::event_based_actor* self, const std::string& dead, size_t count) {
    auto hdl = caf::actor_cast<caf::actor>(self);
    svc->box->take_over(host, dead, svc->config->name, count,
                        [hdl, dead, count, host = host, observed = svc->observed](
                          std::vector<queue_entry> entries,
                                                        std::string error) {
                          if (!error.empty()) {
                            spdlog::warn("host {}: taking over from {} failed: {}", host, dead,
                                         error);
                            return; // the assignment stays; the next membership tick retries
                          }
                          if (!entries.empty())
                            spdlog::info("host {}: took over {} messages of dead node {}", host,
                                         entries.size(), dead);
                          observed->messages_taken_over += static_cast<int64_t>(entries.size());
                          bool more = entries.size() == count;
                          caf::anon_send(hdl, entries_atom::value, std::move(entries),
                                         std::string{}, false, true);
                          if (more)
                            caf::anon_send(hdl, takeover_atom::value, dead);
                        });
  }
};

// -- processing host --------------------------------------------------------------------------

struct processing_state {
  queue_reader reader;
  std::shared_ptr<const instance_services> instance_svc;
  std::unordered_map<std::string, caf::actor> instances;
  static inline const char* name = "convoy.processing-host";

  /// Instances die with their host: a host that stops leaves nothing running behind it.
  /// (The state dies in on_exit, while the actor is still valid; attached functors run later.)
  ~processing_state() {
    for (auto& [id, a] : instances)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

void route(caf::stateful_actor<processing_state>* self, queue_entry& e) {
  auto& st = self->state;
  const auto& id = e.field("instance");
  auto decoded = decode_instance_message(e);
  if (auto* why = std::get_if<std::string>(&decoded)) {
    spdlog::error("host processing: message {} ({}) {}; acknowledged and dropped", e.id,
                  e.field("kind"), *why);
    st.reader.svc->box->ack(st.reader.host, {e.id});
    return;
  }
  auto& m = std::get<instance_message>(decoded);
  auto i = st.instances.find(id);
  if (i == st.instances.end() && m.what == instance_message::kind::evict) {
    // An operator suspended or terminated an instance this node does not hold: nothing to do.
    st.reader.svc->box->ack(st.reader.host, {e.id});
    return;
  }
  if (i == st.instances.end()) {
    auto a = spawn_instance(self->system(), st.instance_svc, id, caf::actor_cast<caf::actor>(self));
    self->monitor(a);
    i = st.instances.emplace(id, a).first;
    *st.reader.svc->instances_in_memory = st.instances.size();
  }
  self->send(i->second, std::move(m));
}

caf::behavior processing_host(caf::stateful_actor<processing_state>* self,
                              std::shared_ptr<const host_services> svc) {
  auto& st = self->state;
  st.reader.svc = svc;
  st.reader.host = "processing";
  auto isvc = std::make_shared<instance_services>();
  isvc->orchestrations = svc->orchestrations;
  isvc->store = svc->box;
  isvc->node = svc->config->name;
  isvc->host = "processing";
  isvc->dehydrate_after = svc->config->dehydrate_after;
  for (const auto& [type, level] : svc->config->durability_by_type)
    isvc->durability_by_type[type] =
      level == "replicated" ? durability_level::replicated : durability_level::local;
  st.instance_svc = std::move(isvc);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto i = st.instances.begin(); i != st.instances.end(); ++i)
      if (i->second.address() == dm.source) {
        if (is_rolled_back_exit(dm.reason)) {
          // Stopped by restart_atom (the store handshake saw a rollback): its memory was ahead
          // of the store, so a fresh actor replays what the store holds. (An actor that finds
          // the rollback itself leaves through instance_leaving_atom with `respawn` instead.)
          auto a = spawn_instance(self->system(), st.instance_svc, i->first,
                                  caf::actor_cast<caf::actor>(self));
          self->monitor(a);
          i->second = a;
          return;
        }
        st.instances.erase(i);
        break;
      }
    *st.reader.svc->instances_in_memory = st.instances.size();
    self->send(self, poll_atom::value); // intake may have paused at max_instances
  });
  auto capacity = [self, svc] {
    auto used = self->state.instances.size();
    return used >= svc->config->max_instances ? size_t{0}
                                              : std::min<size_t>(64, svc->config->max_instances - used);
  };
  auto poll = [self, svc, capacity] {
    self->state.reader.poll(self, capacity(), self->state.instances.size(),
                            svc->config->max_instances);
  };
  self->send(self, poll_atom::value);
  self->send(self, reclaim_atom::value);
  self->send(self, timers_atom::value);
  return {
    [=](poll_atom) { poll(); },
    [=](entries_atom, std::vector<queue_entry>& entries, const std::string& error, bool pending,
        bool reclaimed) {
      auto& st = self->state;
      if (reclaimed && !entries.empty())
        spdlog::info("host processing: took over {} messages left by a stopped host instance",
                     entries.size());
      auto again = st.reader.on_batch(self, !reclaimed, pending, entries.size(), error);
      for (auto& e : entries)
        route(self, e);
      if (again)
        poll();
    },
    [=](reclaim_atom) { self->state.reader.reclaim(self, 64); },
    [=](takeover_atom, const std::string& dead) { self->state.reader.take_over(self, dead, 64); },
    [=](instance_leaving_atom, const std::string& id, bool respawn) {
      // From here on, nothing more is routed to the leaver: it gives back what it got since.
      auto& st = self->state;
      auto leaver = caf::actor_cast<caf::actor>(self->current_sender());
      auto i = st.instances.find(id);
      if (i != st.instances.end() && i->second == leaver) {
        if (respawn) {
          i->second = spawn_instance(self->system(), st.instance_svc, id,
                                     caf::actor_cast<caf::actor>(self));
          self->monitor(i->second);
        } else {
          st.instances.erase(i);
          *st.reader.svc->instances_in_memory = st.instances.size();
          self->send(self, poll_atom::value);
        }
      }
      self->send(leaver, instance_left_atom::value);
    },
    [=](drop_atom) {
      auto& st = self->state;
      spdlog::warn("host processing: dropping the {} instances in memory; they may run "
                   "elsewhere now and resume from the MessageBox when needed",
                   st.instances.size());
      // Not the leave protocol: the messages these actors hold were taken over by other nodes
      // already, so giving them back would deliver them twice. They are only dropped.
      for (auto& [id, a] : st.instances)
        self->send_exit(a, caf::exit_reason::user_shutdown);
    },
    [=](restart_atom, const std::vector<std::string>& ids) {
      for (const auto& id : ids) {
        auto i = self->state.instances.find(id);
        if (i != self->state.instances.end())
          self->send_exit(i->second, rolled_back_exit_reason());
      }
    },
    [=](timers_atom) {
      auto hdl = caf::actor_cast<caf::actor>(self);
      svc->box->fire_timers(wall_clock_ms(), 256, [](int64_t, const std::string& error) {
        if (!error.empty())
          spdlog::warn("host processing: firing timers failed: {}", error);
      });
      self->delayed_send(self, svc->config->timer_poll, timers_atom::value);
    },
  };
}

// -- send host ----------------------------------------------------------------------------------

/// Runs one activity at a time on its own thread: activities may block.
caf::behavior activity_worker(caf::event_based_actor* self,
                              std::shared_ptr<const host_services> svc, caf::actor host) {
  return {
    [=](run_atom, queue_entry& e) {
      auto step = parse_step(e.field("step"));
      auto attempt = parse_step(e.field("attempt")).value_or(1);
      auto generation = parse_step(e.field("gen")).value_or(0);
      auto options = json::parse(e.field("options").empty() ? "{}" : e.field("options"), nullptr,
                                 false);
      auto policy = retry_policy::from_json(options.is_object() ? options.value("retry", json{})
                                                                : json{});
      if (!options.is_object() || !options.contains("retry"))
        policy = retry_policy{};
      const auto* own_policy = svc->orchestrations->find_activity_policy(e.field("activity"));
      if (own_policy)
        policy = own_policy->retry;
      auto attempt_timeout = std::chrono::milliseconds(
        options.is_object() ? options.value("attempt_timeout_ms", int64_t{0}) : 0);
      activity_result result;
      const auto& name = e.field("activity");
      auto fn = svc->orchestrations->find_activity(name);
      auto started = std::chrono::system_clock::now();
      if (!step) {
        result = activity_result::failure("malformed activity request " + e.id, "malformed");
      } else if (!fn) {
        result = activity_result::failure("activity '" + name + "' is not registered on node "
                                            + svc->config->name,
                                          "unknown_activity");
      } else {
        activity_context actx{e.field("instance"), *step, e.field("key"), attempt, std::nullopt};
        if (attempt_timeout.count() > 0)
          actx.deadline = started + attempt_timeout;
        try {
          auto args = json::parse(e.field("args").empty() ? "null" : e.field("args"));
          result = (*fn)(actx, args);
        } catch (const std::exception& ex) {
          result = activity_result::failure(std::string("activity threw: ") + ex.what());
        }
        if (result.ok && actx.deadline && std::chrono::system_clock::now() > *actx.deadline)
          result = activity_result::failure("attempt took longer than its attempt_timeout of "
                                              + std::to_string(attempt_timeout.count()) + " ms",
                                            "timeout");
      }
      spdlog::debug("host send: activity {} for {} step {} attempt {} {}", name,
                    e.field("instance"), e.field("step"), attempt,
                    result.ok ? "succeeded" : "failed: " + result.error);
      auto me = caf::actor_cast<caf::actor>(self);
      auto reply = [host, me](std::string error) {
        if (!error.empty())
          spdlog::warn("host send: recording an activity outcome failed ({}); the request "
                       "stays pending and runs again",
                       error);
        caf::anon_send(host, done_atom::value, me);
      };
      if (!result.ok && step && policy.retries(attempt, result.kind)) {
        // Durable backoff: the next attempt waits in the MessageBox, not in this process.
        auto next = e.fields;
        next["attempt"] = std::to_string(attempt + 1);
        auto delay = policy.delay_before(attempt + 1);
        auto due = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch() + delay)
                     .count();
        spdlog::info("host send: activity {} for {} attempt {} failed ({}); attempt {} in {} ms",
                     name, e.field("instance"), attempt, result.error, attempt + 1, delay.count());
        svc->box->retry_activity("send", e.id, due, next, std::move(reply));
        return;
      }
      bool non_retryable = std::find(policy.non_retryable.begin(), policy.non_retryable.end(),
                                     result.kind)
                           != policy.non_retryable.end();
      if (!result.ok && step && own_policy && own_policy->suspend_when_exhausted
          && !non_retryable) {
        // Resumable: parked in the MessageBox with its attempts starting over, for an
        // operator to resume once the cause (a target down for hours) is gone.
        auto parked = e.fields;
        parked["attempt"] = "1";
        spdlog::error("host send: activity {} for {} failed {} times ({}); suspended as {} "
                      "(convoy msg resume {})",
                      name, e.field("instance"), attempt, result.error, e.field("key"),
                      e.field("key"));
        svc->box->suspend_activity("send", e.id, e.field("key"), parked, result.error,
                                   std::move(reply));
        return;
      }
      auto payload = result.ok ? result.value.dump() : result.error;
      svc->box->complete_activity("send", e.id, e.field("instance"), step.value_or(0), generation,
                                  result.ok, payload,
                                  e.field("reply").empty() ? "processing" : e.field("reply"),
                                  std::move(reply));
    },
  };
}

struct send_state {
  queue_reader reader;
  std::vector<caf::actor> idle;
  std::vector<caf::actor> all;
  std::deque<queue_entry> backlog;
  static inline const char* name = "convoy.send-host";

  ~send_state() {
    for (auto& w : all)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  }
};

caf::behavior send_host(caf::stateful_actor<send_state>* self,
                        std::shared_ptr<const host_services> svc) {
  auto& st = self->state;
  st.reader.svc = svc;
  st.reader.host = "send";
  for (size_t i = 0; i < svc->config->activity_workers; ++i) {
    auto w = self->system().spawn<caf::detached>(activity_worker, svc,
                                                 caf::actor_cast<caf::actor>(self));
    st.idle.push_back(w);
    st.all.push_back(w);
  }
  auto dispatch = [self] {
    auto& st = self->state;
    while (!st.idle.empty() && !st.backlog.empty()) {
      auto w = st.idle.back();
      st.idle.pop_back();
      self->send(w, run_atom::value, std::move(st.backlog.front()));
      st.backlog.pop_front();
    }
  };
  auto free_slots = [self] {
    auto& st = self->state;
    return st.idle.size() > st.backlog.size() ? st.idle.size() - st.backlog.size() : size_t{0};
  };
  self->send(self, poll_atom::value);
  self->send(self, reclaim_atom::value);
  return {
    [=](poll_atom) { self->state.reader.poll(self, free_slots()); },
    [=](entries_atom, std::vector<queue_entry>& entries, const std::string& error, bool pending,
        bool reclaimed) {
      auto& st = self->state;
      if (reclaimed && !entries.empty())
        spdlog::info("host send: took over {} activity requests left by a stopped host instance",
                     entries.size());
      auto again = st.reader.on_batch(self, !reclaimed, pending, entries.size(), error);
      for (auto& e : entries)
        if (!e.fields.empty()) {
          st.backlog.push_back(std::move(e));
        } else {
          if (!e.error.empty())
            spdlog::error("host send: activity request {} {}; acknowledged and dropped", e.id,
                          e.error);
          svc->box->ack("send", {e.id}); // deleted while pending: nothing left to do
        }
      dispatch();
      if (again)
        st.reader.poll(self, free_slots());
    },
    [=](done_atom, caf::actor& worker) {
      self->state.idle.push_back(std::move(worker));
      dispatch();
      self->state.reader.poll(self, free_slots());
    },
    [=](reclaim_atom) { self->state.reader.reclaim(self, 16); },
    [=](takeover_atom, const std::string& dead) { self->state.reader.take_over(self, dead, 16); },
  };
}

// -- receive host -------------------------------------------------------------------------------

struct receive_state {
  queue_reader reader;
  size_t in_flight = 0;
  static inline const char* name = "convoy.receive-host";
};

std::string new_instance_id(const std::string& type) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return type + "-" + buf;
}

/// Routes a published message: correlation sets first, then activation subscriptions, else
/// it is kept as unrouted. The MessageBox does all of it in one atomic step.
void publish(caf::stateful_actor<receive_state>* self, const std::shared_ptr<const host_services>& svc,
             const queue_entry& e) {
  auto decoded = decode_published(e);
  const auto& type = decoded.type;
  const auto& body = decoded.body;
  const auto& props = decoded.properties;
  if (!decoded.well_formed)
    spdlog::error("host receive: message {} is malformed (type, JSON body or properties); kept "
                  "as unrouted",
                  e.id);
  std::optional<persistence::message_box::activation> act;
  if (auto sub = svc->orchestrations->activation_for(type)) {
    persistence::message_box::activation a;
    a.orchestration_type = sub->orchestration_type;
    a.version = svc->orchestrations->newest_version(sub->orchestration_type);
    a.instance_id = persistence::valid_name(e.field("id")) ? e.field("id")
                                                           : new_instance_id(sub->orchestration_type);
    correlation c;
    bool complete = !sub->correlation_properties.empty();
    for (const auto& p : sub->correlation_properties) {
      auto i = props.find(p);
      if (i == props.end()) {
        complete = false;
        break;
      }
      c.and_(p, i->second);
    }
    if (complete) {
      a.correlation_key = c.key();
      a.correlation_shape = c.shape();
    }
    if (a.version != 0)
      act = a;
  }
  auto hdl = caf::actor_cast<caf::actor>(self);
  ++self->state.in_flight;
  svc->box->publish("receive", e.id, type, body, props, act,
                    [hdl, type, id = e.id](persistence::message_box::publish_outcome out) {
                      if (!out.error.empty())
                        spdlog::warn("host receive: publishing {} failed: {}", id, out.error);
                      else if (out.outcome == "zombie")
                        spdlog::warn("host receive: {} message {} arrived for finished instance "
                                     "{} (zombie)",
                                     type, id, out.instance);
                      else if (out.outcome == "no-subscriber")
                        spdlog::warn("host receive: {} message {} has no subscriber; kept as "
                                     "unrouted",
                                     type, id);
                      else
                        spdlog::info("host receive: {} message {} {} instance {}", type, id,
                                     out.outcome, out.instance);
                      caf::anon_send(hdl, done_atom::value);
                    });
}

caf::behavior receive_host(caf::stateful_actor<receive_state>* self,
                           std::shared_ptr<const host_services> svc) {
  self->state.reader.svc = svc;
  self->state.reader.host = "receive";
  self->send(self, poll_atom::value);
  self->send(self, reclaim_atom::value);
  constexpr size_t batch = 64;
  return {
    [=](poll_atom) {
      if (self->state.in_flight == 0)
        self->state.reader.poll(self, batch);
    },
    [=](entries_atom, std::vector<queue_entry>& entries, const std::string& error, bool pending,
        bool reclaimed) {
      auto& st = self->state;
      auto again = st.reader.on_batch(self, !reclaimed, pending, entries.size(), error);
      auto hdl = caf::actor_cast<caf::actor>(self);
      for (auto& e : entries) {
        if (e.field("kind") == "publish") {
          publish(self, svc, e);
          continue;
        }
        const auto& type = e.field("type");
        auto version = svc->orchestrations->newest_version(type);
        auto id = e.field("id").empty() ? new_instance_id(type) : e.field("id");
        std::string problem;
        if (!e.error.empty())
          problem = e.error;
        else if (e.field("kind") != "submit")
          problem = "is not a submit message";
        else if (version == 0)
          problem = "names orchestration type '" + type + "', which is not registered";
        else if (!persistence::valid_name(id))
          problem = "has an invalid instance id '" + id + "'";
        else if (!json::accept(e.field("input")))
          problem = "carries an input that is not valid JSON";
        if (!problem.empty()) {
          spdlog::error("host receive: message {} {}; acknowledged without an instance", e.id,
                        problem);
          svc->box->ack("receive", {e.id});
          continue;
        }
        ++st.in_flight;
        svc->box->activate("receive", e.id, id, type, version, e.field("input"), "processing",
                           [hdl, id, type](std::string error) {
                             if (error.empty())
                               spdlog::info("host receive: instance {} of {} activated", id, type);
                             else
                               spdlog::warn("host receive: activating {} failed: {}", id, error);
                             caf::anon_send(hdl, done_atom::value);
                           });
      }
      if (again && st.in_flight == 0)
        st.reader.poll(self, batch);
    },
    [=](done_atom) {
      if (--self->state.in_flight == 0)
        self->state.reader.poll(self, batch);
    },
    [=](reclaim_atom) { self->state.reader.reclaim(self, 16); },
    [=](takeover_atom, const std::string& dead) { self->state.reader.take_over(self, dead, 16); },
  };
}

} // namespace

caf::actor spawn_receive_host(caf::actor_system& sys, std::shared_ptr<const host_services> svc) {
  return sys.spawn(receive_host, std::move(svc));
}

caf::actor spawn_processing_host(caf::actor_system& sys,
                                 std::shared_ptr<const host_services> svc) {
  return sys.spawn(processing_host, std::move(svc));
}

void host_directory::set(const std::string& host, caf::actor actor) {
  std::lock_guard<std::mutex> guard(mtx_);
  hosts_[host] = std::move(actor);
}

caf::actor host_directory::get(const std::string& host) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = hosts_.find(host);
  return i == hosts_.end() ? caf::actor{} : i->second;
}

void host_directory::erase(const std::string& host) {
  std::lock_guard<std::mutex> guard(mtx_);
  hosts_.erase(host);
}

void host_directory::clear() {
  std::lock_guard<std::mutex> guard(mtx_);
  hosts_.clear();
}

std::vector<std::string> host_directory::names() const {
  std::lock_guard<std::mutex> guard(mtx_);
  std::vector<std::string> out;
  for (const auto& [name, actor] : hosts_)
    out.push_back(name);
  return out;
}

void restart_instances(const caf::actor& processing_host, std::vector<std::string> instance_ids) {
  caf::anon_send(processing_host, restart_atom::value, std::move(instance_ids));
}

void drop_instances(const caf::actor& processing_host) {
  caf::anon_send(processing_host, drop_atom::value);
}

void take_over_from(const caf::actor& host, std::string dead) {
  caf::anon_send(host, takeover_atom::value, std::move(dead));
}

caf::actor spawn_send_host(caf::actor_system& sys, std::shared_ptr<const host_services> svc) {
  return sys.spawn(send_host, std::move(svc));
}

} // namespace convoy::runtime
