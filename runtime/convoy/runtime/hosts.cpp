#include "convoy/runtime/hosts.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

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

using persistence::queue_entry;

int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::optional<uint32_t> parse_step(const std::string& text) {
  uint32_t value = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), value);
  if (res.ec != std::errc{} || res.ptr != text.data() + text.size())
    return std::nullopt;
  return value;
}

/// The queue-reading loop every host instance shares: first its own unacknowledged entries
/// (left by an earlier life of this node), then new entries, plus a periodic takeover of
/// entries other consumers left idle past `reclaim_idle`.
struct queue_reader {
  std::shared_ptr<const host_services> svc;
  std::string host;
  bool own_pending = true;
  bool polling = false;

  void poll(caf::event_based_actor* self, size_t count) {
    if (polling || count == 0)
      return;
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
  instance_message m;
  m.message_id = e.id;
  const auto& kind = e.field("kind");
  if (kind == "start") {
    m.what = instance_message::kind::start;
  } else if (kind == "result" || kind == "timer") {
    auto step = parse_step(e.field("step"));
    if (!step || id.empty()) {
      spdlog::error("host processing: malformed {} message {} acknowledged and dropped", kind,
                    e.id);
      st.reader.svc->box->ack(st.reader.host, {e.id});
      return;
    }
    m.what = kind == "result" ? instance_message::kind::result : instance_message::kind::timer;
    m.step = *step;
    m.ok = kind == "timer" || e.field("ok") == "1";
    m.payload = kind == "result" ? e.field("payload") : std::string("null");
  } else {
    spdlog::error("host processing: message {} of unknown kind '{}' acknowledged and dropped",
                  e.id, kind);
    st.reader.svc->box->ack(st.reader.host, {e.id});
    return;
  }
  if (!persistence::valid_name(id)) {
    spdlog::error("host processing: message {} names no valid instance; dropped", e.id);
    st.reader.svc->box->ack(st.reader.host, {e.id});
    return;
  }
  auto i = st.instances.find(id);
  if (i == st.instances.end()) {
    auto a = spawn_instance(self->system(), st.instance_svc, id);
    self->monitor(a);
    i = st.instances.emplace(id, a).first;
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
  st.instance_svc = std::move(isvc);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& insts = self->state.instances;
    for (auto i = insts.begin(); i != insts.end(); ++i)
      if (i->second.address() == dm.source) {
        insts.erase(i);
        break;
      }
    self->send(self, poll_atom::value); // intake may have paused at max_instances
  });
  auto capacity = [self, svc] {
    auto used = self->state.instances.size();
    return used >= svc->config->max_instances ? size_t{0}
                                              : std::min<size_t>(64, svc->config->max_instances - used);
  };
  self->send(self, poll_atom::value);
  self->send(self, reclaim_atom::value);
  self->send(self, timers_atom::value);
  return {
    [=](poll_atom) { self->state.reader.poll(self, capacity()); },
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
        st.reader.poll(self, capacity());
    },
    [=](reclaim_atom) { self->state.reader.reclaim(self, 64); },
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
      activity_result result;
      const auto& name = e.field("activity");
      auto fn = svc->orchestrations->find_activity(name);
      if (!step) {
        result = activity_result::failure("malformed activity request " + e.id);
      } else if (!fn) {
        result = activity_result::failure("activity '" + name + "' is not registered on node "
                                          + svc->config->name);
      } else {
        activity_context actx{e.field("instance"), *step, e.field("key")};
        try {
          auto args = json::parse(e.field("args").empty() ? "null" : e.field("args"));
          result = (*fn)(actx, args);
        } catch (const std::exception& ex) {
          result = activity_result::failure(std::string("activity threw: ") + ex.what());
        }
      }
      auto payload = result.ok ? result.value.dump() : result.error;
      spdlog::debug("host send: activity {} for {} step {} {}", name, e.field("instance"),
                    e.field("step"), result.ok ? "succeeded" : "failed: " + result.error);
      auto me = caf::actor_cast<caf::actor>(self);
      svc->box->complete_activity(
        "send", e.id, e.field("instance"), step.value_or(0), result.ok, payload,
        e.field("reply").empty() ? "processing" : e.field("reply"),
        [host, me](std::string error) {
          if (!error.empty())
            spdlog::warn("host send: publishing an activity outcome failed ({}); the request "
                         "stays pending and runs again",
                         error);
          caf::anon_send(host, done_atom::value, me);
        });
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
        if (!e.fields.empty())
          st.backlog.push_back(std::move(e));
        else
          svc->box->ack("send", {e.id}); // deleted while pending: nothing left to do
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
        const auto& type = e.field("type");
        auto version = svc->orchestrations->newest_version(type);
        auto id = e.field("id").empty() ? new_instance_id(type) : e.field("id");
        std::string problem;
        if (e.field("kind") != "submit")
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

caf::actor spawn_send_host(caf::actor_system& sys, std::shared_ptr<const host_services> svc) {
  return sys.spawn(send_host, std::move(svc));
}

} // namespace convoy::runtime
