#include "convoy/persistence/redis_client.hpp"

#include "convoy/persistence/internal/replies.hpp"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <string_view>

#include <event2/event.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace convoy::persistence {

// -- redis_value ------------------------------------------------------------------------------

bool redis_value::outcome_unknown() const noexcept {
  if (kind != type::error)
    return false;
  auto starts = [this](std::string_view p) { return std::string_view(str).substr(0, p.size()) == p; };
  return starts(connection_error_prefix) || starts("READONLY") || starts("NOREPLICAS")
         || starts("LOADING") || starts("MASTERDOWN") || starts("TRYAGAIN");
}

std::string redis_value::to_text() const {
  switch (kind) {
    case type::nil: return "(nil)";
    case type::integer: return std::to_string(integer);
    case type::string:
    case type::status: return str;
    case type::error: return "ERR: " + str;
    case type::array: {
      std::string out;
      for (const auto& e : elements) {
        if (!out.empty())
          out += '\n';
        out += e.to_text();
      }
      return out;
    }
  }
  return {};
}

bool parse_address(const std::string& text, redis_endpoint& out) {
  auto colon = text.rfind(':');
  std::string host = colon == std::string::npos ? text : text.substr(0, colon);
  if (host.empty())
    host = "127.0.0.1";
  if (colon == std::string::npos) {
    out.host = host;
    return !host.empty();
  }
  auto port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5
      || port_text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto port = std::stoul(port_text);
  if (port == 0 || port > 65535)
    return false;
  out.host = host;
  out.port = static_cast<uint16_t>(port);
  return true;
}

std::variant<redis_endpoint, std::string> resolve_master(const redis_endpoint& ep) {
  std::string problems;
  timeval timeout{0, 300000};
  auto fail = [&](const std::string& sentinel, const std::string& why) {
    problems += (problems.empty() ? "" : "; ") + sentinel + ": " + why;
  };
  for (const auto& sentinel : ep.sentinels) {
    redis_endpoint s;
    if (!parse_address(sentinel, s)) {
      fail(sentinel, "not host:port");
      continue;
    }
    std::unique_ptr<redisContext, void (*)(redisContext*)> c(
      redisConnectWithTimeout(s.host.c_str(), s.port, timeout), &redisFree);
    if (!c || c->err) {
      fail(sentinel, c ? c->errstr : "out of memory");
      continue;
    }
    internal::bound_reader(c->reader);
    redisSetTimeout(c.get(), timeout);
    auto reply = static_cast<redisReply*>(
      redisCommand(c.get(), "SENTINEL get-master-addr-by-name %s", ep.master_name.c_str()));
    if (reply == nullptr) {
      fail(sentinel, "no answer");
      continue;
    }
    std::unique_ptr<redisReply, void (*)(void*)> owned(reply, &freeReplyObject);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
      fail(sentinel, "does not know master '" + ep.master_name + "'");
      continue;
    }
    redis_endpoint master = ep;
    master.sentinels.clear();
    master.host.assign(reply->element[0]->str, reply->element[0]->len);
    master.port = static_cast<uint16_t>(std::atoi(reply->element[1]->str));
    // Trust but verify: only a server that says it is a master gets our writes.
    std::unique_ptr<redisContext, void (*)(redisContext*)> m(
      redisConnectWithTimeout(master.host.c_str(), master.port, timeout), &redisFree);
    if (!m || m->err) {
      fail(sentinel, "its master " + master.address() + " is unreachable");
      continue;
    }
    redisSetTimeout(m.get(), timeout);
    internal::bound_reader(m->reader);
    if (!master.password.empty()) {
      auto auth = static_cast<redisReply*>(
        master.user.empty() ? redisCommand(m.get(), "AUTH %s", master.password.c_str())
                            : redisCommand(m.get(), "AUTH %s %s", master.user.c_str(),
                                           master.password.c_str()));
      if (auth)
        freeReplyObject(auth);
    }
    auto role = static_cast<redisReply*>(redisCommand(m.get(), "ROLE"));
    bool is_master = role && role->type == REDIS_REPLY_ARRAY && role->elements > 0
                     && std::string_view(role->element[0]->str, role->element[0]->len) == "master";
    if (role)
      freeReplyObject(role);
    if (!is_master) {
      fail(sentinel, master.address() + " does not say ROLE master (yet)");
      continue;
    }
    return master;
  }
  return "no Sentinel named a usable master for '" + ep.master_name + "' (" + problems + ")";
}

namespace {

/// hiredis' own reply functions, with the array constructor bounded (see bound_reader).
redisReplyObjectFunctions* bounded_functions() {
  static redisReplyObjectFunctions* defaults = [] {
    auto* probe = redisReaderCreate();
    auto* fn = probe->fn; // hiredis' static table of default functions
    redisReaderFree(probe);
    return fn;
  }();
  static redisReplyObjectFunctions bounded = [] {
    auto fn = *defaults;
    fn.createArray = [](const redisReadTask* task, int elements) -> void* {
      if (elements < 0 || elements > internal::max_reply_elements)
        return nullptr;
      return defaults->createArray(task, elements);
    };
    return fn;
  }();
  return &bounded;
}

} // namespace

void internal::bound_reader(redisReader* reader) {
  if (reader != nullptr)
    reader->fn = bounded_functions();
}

redis_value internal::to_value(const redisReply* r) {
  redis_value v;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v.kind = redis_value::type::integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      v.kind = redis_value::type::string;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.kind = redis_value::type::status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.kind = redis_value::type::error;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.kind = redis_value::type::array;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i)
        v.elements.push_back(to_value(r->element[i]));
      break;
    default:
      v.kind = redis_value::type::nil;
  }
  return v;
}

// -- redis_loop -------------------------------------------------------------------------------

struct redis_loop::impl {
  event_base* base = nullptr;
  event* wake = nullptr;
  int pipe_fds[2] = {-1, -1};
  std::mutex mtx;
  std::deque<std::function<void()>> tasks;
  std::thread thread;
  std::thread::id thread_id;

  static void on_wake(evutil_socket_t fd, short, void* arg) {
    auto self = static_cast<impl*>(arg);
    char buf[256];
    while (::read(fd, buf, sizeof(buf)) > 0) {
      // drain the wake-up bytes
    }
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> guard(self->mtx);
      batch.swap(self->tasks);
    }
    for (auto& fn : batch)
      fn();
  }
};

redis_loop::redis_loop() : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  if (::pipe2(d.pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::runtime_error("cannot create the Redis loop's wake-up pipe");
  d.base = event_base_new();
  d.wake = event_new(d.base, d.pipe_fds[0], EV_READ | EV_PERSIST, &impl::on_wake, &d);
  event_add(d.wake, nullptr);
  d.thread = std::thread([&d] { event_base_loop(d.base, EVLOOP_NO_EXIT_ON_EMPTY); });
  d.thread_id = d.thread.get_id();
}

redis_loop::~redis_loop() {
  auto& d = *impl_;
  post([&d] { event_base_loopbreak(d.base); });
  d.thread.join();
  event_free(d.wake);
  event_base_free(d.base);
  ::close(d.pipe_fds[0]);
  ::close(d.pipe_fds[1]);
}

void redis_loop::post(std::function<void()> fn) {
  auto& d = *impl_;
  bool first;
  {
    std::lock_guard<std::mutex> guard(d.mtx);
    first = d.tasks.empty();
    d.tasks.push_back(std::move(fn));
  }
  // Only the task that finds the queue empty wakes the loop: on_wake drains the pipe before it
  // takes the queue, so every task behind the first is taken by that same wake-up (one write
  // per burst instead of one per command).
  if (!first)
    return;
  char byte = 1;
  [[maybe_unused]] auto n = ::write(d.pipe_fds[1], &byte, 1); // a full pipe already wakes it
}

// -- redis_connection -------------------------------------------------------------------------

namespace {

/// How long `argv` may legitimately wait on the server before answering: the BLOCK of an
/// XREADGROUP / XREAD, the timeout of a WAIT (0: none of those).
std::chrono::milliseconds own_blocking_time(const std::vector<std::string>& argv) {
  auto is = [](const std::string& a, std::string_view word) {
    return a.size() == word.size()
           && std::equal(a.begin(), a.end(), word.begin(), [](char x, char y) {
                return std::toupper(static_cast<unsigned char>(x)) == y;
              });
  };
  auto number = [](const std::string& text) {
    long long v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    return ec == std::errc{} && end == text.data() + text.size() && v > 0 ? v : 0LL;
  };
  if (argv.empty())
    return {};
  if (is(argv[0], "WAIT") && argv.size() >= 3)
    return std::chrono::milliseconds(number(argv[2]));
  if (is(argv[0], "XREADGROUP") || is(argv[0], "XREAD"))
    for (size_t i = 1; i + 1 < argv.size(); ++i)
      if (is(argv[i], "BLOCK"))
        return std::chrono::milliseconds(number(argv[i + 1]));
  return {};
}

} // namespace

/// Loop-thread state of one connection. `ac->data` points here.
struct redis_connection::state {
  redis_loop::impl* loop = nullptr;
  redis_endpoint endpoint;
  redisAsyncContext* ac = nullptr;
  std::string last_error;
  /// While AUTH is out, commands wait here: pipelined behind a failing AUTH they would run
  /// as the default user.
  bool authenticating = false;
  /// When each command written on `ac` must have its reply, oldest first (Redis answers in
  /// order); `stall_check` looks at the oldest every 250 ms.
  std::deque<std::chrono::steady_clock::time_point> deadlines;
  event* stall_check = nullptr;
  std::deque<std::pair<std::vector<std::string>, callback>> held;
  std::vector<std::vector<std::string>> handshake;
  std::function<void(std::vector<redis_value>, const redis_endpoint&)> on_handshake;

  // Both only forget `ac` when it is still the current one: a connection dropped by the stall
  // check may report its end after a callback has opened the next one.
  static void on_connect(const redisAsyncContext* ac, int status) {
    auto st = static_cast<state*>(ac->data);
    if (status != REDIS_OK && st->ac == ac) {
      st->last_error = ac->errstr;
      st->ac = nullptr; // hiredis frees the context after this callback
      st->deadlines.clear();
    }
  }

  static void on_disconnect(const redisAsyncContext* ac, int) {
    auto st = static_cast<state*>(ac->data);
    if (st->ac != ac)
      return;
    if (ac->err)
      st->last_error = ac->errstr;
    st->ac = nullptr;
    st->deadlines.clear();
  }

  /// The stall check (see `redis_endpoint::stall_timeout`): drops a connection whose oldest
  /// command is overdue. redisAsyncFree fails every pending callback as a lost connection.
  static void on_stall_check(evutil_socket_t, short, void* arg) {
    auto st = static_cast<state*>(arg);
    if (st->ac == nullptr || st->deadlines.empty()
        || std::chrono::steady_clock::now() < st->deadlines.front())
      return;
    st->last_error = "no reply within " + std::to_string(st->endpoint.stall_timeout.count())
                     + " ms; the connection was dropped";
    auto ac = std::exchange(st->ac, nullptr);
    st->deadlines.clear();
    st->authenticating = false;
    redisAsyncFree(ac);
  }

  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    std::unique_ptr<callback> cb(static_cast<callback*>(privdata));
    if (reply != nullptr) {
      auto& deadlines = static_cast<state*>(ac->data)->deadlines;
      if (!deadlines.empty())
        deadlines.pop_front();
      auto value = internal::to_value(static_cast<redisReply*>(reply));
      // A demoted master answers writes with READONLY: leave it, so the next command asks
      // the Sentinels again. (Sentinel also drops clients when it reconfigures a server.)
      bool demoted = value.is_error() && value.str.rfind("READONLY", 0) == 0;
      (*cb)(std::move(value));
      if (demoted && !static_cast<state*>(ac->data)->endpoint.sentinels.empty()
          && !(ac->c.flags & REDIS_DISCONNECTING))
        redisAsyncDisconnect(ac);
      return;
    }
    auto st = static_cast<state*>(ac->data);
    std::string why = ac->err ? ac->errstr : st->last_error;
    (*cb)(redis_value::error(std::string(connection_error_prefix) + "lost to "
                             + st->endpoint.address() + (why.empty() ? "" : ": " + why)));
  }

  /// Connects if needed; returns false (with last_error) when that failed at once.
  bool ensure_connected() {
    if (ac != nullptr)
      return true;
    redis_endpoint target = endpoint;
    if (!endpoint.sentinels.empty()) {
      // Blocks the loop for at most a few short timeouts, and only while reconnecting.
      auto resolved = resolve_master(endpoint);
      if (auto err = std::get_if<std::string>(&resolved)) {
        last_error = *err;
        return false;
      }
      target = std::get<redis_endpoint>(resolved);
    }
    ac = redisAsyncConnect(target.host.c_str(), target.port);
    if (ac == nullptr) {
      last_error = "out of memory";
      return false;
    }
    if (ac->err) {
      last_error = ac->errstr;
      redisAsyncFree(ac);
      ac = nullptr;
      return false;
    }
    ac->data = this;
    internal::bound_reader(ac->c.reader);
    redisLibeventAttach(ac, loop->base);
    redisAsyncSetConnectCallback(ac, &state::on_connect);
    redisAsyncSetDisconnectCallback(ac, &state::on_disconnect);
    deadlines.clear();
    if (stall_check == nullptr) {
      stall_check = event_new(loop->base, -1, EV_PERSIST, &state::on_stall_check, this);
      timeval every{0, 250000};
      event_add(stall_check, &every);
    }
    if (!endpoint.password.empty()) {
      std::vector<std::string> argv{"AUTH"};
      if (!endpoint.user.empty())
        argv.push_back(endpoint.user);
      argv.push_back(endpoint.password);
      write(argv, [this, target](redis_value v) { on_auth(v, target); });
      authenticating = true;
    }
    if (!handshake.empty() && on_handshake) {
      struct replies {
        std::vector<redis_value> values;
        size_t pending;
      };
      auto collected = std::make_shared<replies>(replies{{}, handshake.size()});
      collected->values.resize(handshake.size());
      for (size_t i = 0; i < handshake.size(); ++i)
        send(handshake[i], [this, collected, i, target](redis_value v) {
          collected->values[i] = std::move(v);
          if (--collected->pending == 0)
            on_handshake(std::move(collected->values), target);
        });
    }
    return true;
  }

  void on_auth(const redis_value& v, const redis_endpoint& server) {
    authenticating = false;
    auto waiting = std::exchange(held, {});
    if (v.is_error()) {
      last_error = "AUTH as " + (endpoint.user.empty() ? std::string("default") : endpoint.user)
                   + " failed at " + server.address() + ": " + v.str;
      for (auto& [argv, done] : waiting)
        done(redis_value::error(std::string(connection_error_prefix) + last_error));
      if (ac != nullptr && !(ac->c.flags & REDIS_DISCONNECTING))
        redisAsyncDisconnect(ac);
      return;
    }
    for (auto& [argv, done] : waiting)
      send(std::move(argv), std::move(done));
  }

  void send(std::vector<std::string> argv, callback done) {
    if (!ensure_connected()) {
      done(redis_value::error(std::string(connection_error_prefix) + "cannot connect to "
                              + endpoint.address() + ": " + last_error));
      return;
    }
    if (authenticating) {
      held.emplace_back(std::move(argv), std::move(done));
      return;
    }
    write(argv, std::move(done));
  }

  /// Queues one command on the connection (which must exist).
  void write(const std::vector<std::string>& argv, callback done) {
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    args.reserve(argv.size());
    lengths.reserve(argv.size());
    for (const auto& a : argv) {
      args.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto cb = new callback(std::move(done));
    deadlines.push_back(std::chrono::steady_clock::now() + endpoint.stall_timeout
                        + own_blocking_time(argv));
    if (redisAsyncCommandArgv(ac, &state::on_reply, cb, static_cast<int>(args.size()),
                              args.data(), lengths.data())
        != REDIS_OK) {
      deadlines.pop_back();
      std::unique_ptr<callback> owned(cb);
      (*owned)(redis_value::error(std::string(connection_error_prefix) + "cannot send to "
                                  + endpoint.address()));
    }
  }
};

redis_connection::redis_connection(redis_loop& loop, redis_endpoint endpoint)
  : loop_(loop), endpoint_(std::move(endpoint)), state_(std::make_shared<state>()) {
  state_->loop = &loop.internals();
  state_->endpoint = endpoint_;
}

redis_connection::~redis_connection() {
  std::promise<void> closed;
  loop_.post([st = state_, &closed] {
    if (st->stall_check != nullptr)
      event_free(std::exchange(st->stall_check, nullptr));
    if (st->ac != nullptr) {
      auto ac = std::exchange(st->ac, nullptr);
      redisAsyncFree(ac); // fails pending callbacks with a lost connection
    }
    closed.set_value();
  });
  closed.get_future().wait();
}

void redis_connection::command(std::vector<std::string> argv, callback done) {
  loop_.post([st = state_, argv = std::move(argv), done = std::move(done)]() mutable {
    st->send(std::move(argv), std::move(done));
  });
}

void redis_connection::command_in_loop(std::vector<std::string> argv, callback done) {
  state_->send(std::move(argv), std::move(done));
}

void redis_connection::set_handshake(
  std::vector<std::vector<std::string>> commands,
  std::function<void(std::vector<redis_value>, const redis_endpoint& server)> done) {
  state_->handshake = std::move(commands);
  state_->on_handshake = std::move(done);
}

redis_value redis_connection::run(std::vector<std::string> argv,
                                  std::chrono::milliseconds timeout) {
  auto results = run_all({std::move(argv)}, timeout);
  return std::move(results.front());
}

std::vector<redis_value>
redis_connection::run_all(std::vector<std::vector<std::string>> commands,
                          std::chrono::milliseconds timeout) {
  struct shared {
    std::mutex mtx;
    std::condition_variable cv;
    std::vector<redis_value> replies;
    size_t pending = 0;
  };
  auto sh = std::make_shared<shared>();
  sh->replies.resize(commands.size());
  sh->pending = commands.size();
  for (size_t i = 0; i < commands.size(); ++i)
    command(std::move(commands[i]), [sh, i](redis_value v) {
      std::lock_guard<std::mutex> guard(sh->mtx);
      sh->replies[i] = std::move(v);
      if (--sh->pending == 0)
        sh->cv.notify_all();
    });
  std::unique_lock<std::mutex> guard(sh->mtx);
  if (!sh->cv.wait_for(guard, timeout, [&] { return sh->pending == 0; })) {
    std::vector<redis_value> out(sh->replies.size(),
                                 redis_value::error(std::string(connection_error_prefix)
                                                    + "no answer from " + endpoint_.address()
                                                    + " within "
                                                    + std::to_string(timeout.count()) + " ms"));
    return out;
  }
  return sh->replies;
}

} // namespace convoy::persistence
