#include "convoy/adapters/http/receive_location.hpp"

#include "convoy/adapters/internal/http_request.hpp"
#include "convoy/adapters/internal/settings.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/persistence/redis_client.hpp"
#include "convoy/runtime/internal/http_bounds.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace convoy::adapters {

namespace {

/// httplib's own ThreadPool queues accepted connections without limit. This one blocks the
/// accept loop instead once `max_pending` wait: further clients wait in the kernel's listen
/// backlog (and time out there), so a flood costs no memory. A queued function owns an open
/// socket, so it is never dropped: after shutdown it runs on the caller's thread.
class bounded_task_queue final : public httplib::TaskQueue {
public:
  bounded_task_queue(size_t threads, size_t max_pending) : max_pending_(max_pending) {
    for (size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this] { work(); });
  }

  ~bounded_task_queue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mtx_);
    space_.wait(lock, [this] { return jobs_.size() < max_pending_ || stopping_; });
    if (stopping_) {
      lock.unlock();
      fn();
      return;
    }
    jobs_.push_back(std::move(fn));
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mtx_);
      if (stopping_)
        return;
      stopping_ = true;
    }
    work_.notify_all();
    space_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mtx_);
        work_.wait(lock, [this] { return !jobs_.empty() || stopping_; });
        if (jobs_.empty())
          return; // stopping, and everything accepted was served
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      space_.notify_one();
      fn();
    }
  }

  size_t max_pending_;
  std::mutex mtx_;
  std::condition_variable work_, space_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

bool valid_property_name(const std::string& s) {
  return !s.empty() && s.size() <= 128 && persistence::valid_name(s);
}

bool printable(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max)
    return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return false;
  return true;
}

/// True when `text`, read as JSON, nests arrays and objects deeper than `limit` (brackets
/// inside strings do not count). Only a bound: the parser judges everything else.
bool too_deep(const std::string& text, size_t limit) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit)
        return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}


} // namespace

std::string parse_http_receive(const std::string& name, const json& object,
                               http_receive_config& out) {
  out = http_receive_config{}; // every key not given takes its default, not a previous value
  internal::settings s("receive_locations." + name, object);
  out.name = name;
  s.text("type", "http");
  auto listen = s.text("listen", "", true);
  out.path = s.text("path", out.path);
  out.message_type = s.text("message_type", "", true);
  out.properties = s.strings("properties");
  out.max_body_bytes = static_cast<size_t>(
    s.integer("max_body_bytes", static_cast<int64_t>(out.max_body_bytes), 1,
              // The body travels in a queue entry beside a few small fields.
              static_cast<int64_t>(persistence::max_payload_bytes) - 4096));
  out.threads = static_cast<size_t>(s.integer("threads", static_cast<int64_t>(out.threads), 1, 256));
  out.backlog = static_cast<size_t>(s.integer("backlog", static_cast<int64_t>(out.backlog), 1, 65536));
  out.max_in_flight = static_cast<size_t>(
    s.integer("max_in_flight", static_cast<int64_t>(out.max_in_flight), 1, 100000));
  out.request_timeout = s.ms("request_timeout_ms", out.request_timeout,
                             std::chrono::milliseconds(100), std::chrono::minutes(10));
  out.idempotency_ttl = s.ms("idempotency_ttl_ms", out.idempotency_ttl, std::chrono::seconds(1),
                             std::chrono::hours(24 * 30));
  out.retry_after_s = static_cast<int>(s.integer("retry_after_s", out.retry_after_s, 1, 3600));
  if (!listen.empty()) {
    persistence::redis_endpoint ep;
    if (!persistence::parse_address(listen, ep) || listen.find(':') == std::string::npos)
      s.fail("listen", "'" + listen + "' is not host:port");
    out.host = ep.host;
    out.port = ep.port;
  }
  if (out.path.empty() || out.path.front() != '/')
    s.fail("path", "'" + out.path + "' must start with /");
  if (!out.message_type.empty() && !persistence::valid_name(out.message_type))
    s.fail("message_type", "'" + out.message_type + "' must be 1-128 characters of [A-Za-z0-9._:-]");
  for (const auto& [k, v] : out.properties)
    if (!valid_property_name(k))
      s.fail("properties." + k, "is not a valid property name ([A-Za-z0-9._:-])");
  return s.error();
}

std::variant<internal::http_message, std::string>
internal::decode_http_request(const http_receive_config& config, const std::string& text,
                              const std::multimap<std::string, std::string>& params,
                              const std::string* idempotency_key) {
  if (too_deep(text, max_json_depth))
    return "the body nests arrays and objects deeper than " + std::to_string(max_json_depth);
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double (`1e999`), which escaped
    // as an empty 500 (found by tests/fuzz/http_receive_fuzz).
    return "the body is not valid JSON: " + std::string(e.what());
  }
  http_message out;
  out.properties = config.properties;
  for (const auto& [k, v] : params) {
    if (!valid_property_name(k))
      return "query parameter '" + k
             + "' is not a valid property name ([A-Za-z0-9._:-], at most 128)";
    if (!printable(v, 1024))
      return "query parameter '" + k + "' must be 1-1024 printable characters";
    out.properties[k] = v;
  }
  out.properties["receive-location"] = config.name;
  if (idempotency_key && !printable(*idempotency_key, 256))
    return "the Idempotency-Key header must be 1-256 printable characters";
  if (idempotency_key)
    out.idempotency_key = *idempotency_key;
  out.body = body.dump();
  return out;
}

void internal::answer(httplib::Response& res, int status, const json& body) {
  res.status = status;
  // An error may quote what the client sent (a query parameter's name), which need not be
  // UTF-8: such bytes become U+FFFD rather than an exception, which httplib answered with an
  // empty 500 (found by tests/fuzz/http_receive_fuzz).
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void internal::bound_http_server(httplib::Server& server, const http_receive_config& config) {
  server.set_payload_max_length(config.max_body_bytes);
  server.set_read_timeout(config.request_timeout);
  server.set_write_timeout(config.request_timeout);
  server.set_keep_alive_timeout(std::max<time_t>(
    1, std::chrono::duration_cast<std::chrono::seconds>(config.request_timeout).count()));
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    auto [status, why] = runtime::internal::unbounded_body(req);
    if (status == 0)
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("Connection", "close");
    answer(res, status, {{"error", why}});
    return httplib::Server::HandlerResponse::Handled;
  });
}

struct http_receive_location::impl {
  http_receive_config config;
  persistence::message_box& box;
  std::string receive_host;
  httplib::Server server;
  std::thread listener;
  std::atomic<size_t> in_flight{0};

  impl(http_receive_config c, persistence::message_box& b, std::string host)
    : config(std::move(c)), box(b), receive_host(std::move(host)) {}

  void unavailable(httplib::Response& res, const std::string& why) {
    res.set_header("Retry-After", std::to_string(config.retry_after_s));
    internal::answer(res, 503, {{"error", why}});
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    // Bounded concurrency: count first, then decide, so a burst cannot overshoot.
    struct counted {
      std::atomic<size_t>& n;
      ~counted() { --n; }
    } guard{in_flight};
    if (++in_flight > config.max_in_flight)
      return unavailable(res, "receive location " + config.name + " is throttled ("
                                + std::to_string(config.max_in_flight)
                                + " requests in flight); retry later");
    if (config.host_throttled)
      if (auto cause = config.host_throttled(); !cause.empty())
        return unavailable(res, "receive location " + config.name + " is throttled: its "
                                  "node's receive host is (" + cause + "); retry later");
    auto key_header = req.get_header_value("Idempotency-Key");
    auto decoded = internal::decode_http_request(
      config, req.body, req.params, req.has_header("Idempotency-Key") ? &key_header : nullptr);
    if (auto* why = std::get_if<std::string>(&decoded))
      return internal::answer(res, 400, {{"error", *why}});
    auto& message = std::get<internal::http_message>(decoded);
    const auto& text = message.body;
    const auto& props = message.properties;
    const auto& key = message.idempotency_key;
    std::string id;
    bool duplicate = false;
    if (key.empty()) {
      id = config.name + "-" + internal::random_hex();
      if (auto err = box.submit_message(receive_host, config.message_type, text, props, id,
                                        config.request_timeout);
          !err.empty()) {
        spdlog::warn("receive location {}: the MessageBox did not acknowledge a message: {}",
                     config.name, err);
        return unavailable(res, "the MessageBox did not acknowledge the message (" + err
                                  + "); retry later");
      }
    } else {
      // The same key always names the same message, so even a retry racing the first
      // attempt activates one instance at most.
      auto digest = internal::sha256_hex(key);
      auto done = box.submit_message_once(receive_host, config.message_type, text, props,
                                          config.name + "-" + digest.substr(0, 24),
                                          "http:" + config.name + ":" + digest,
                                          config.idempotency_ttl, config.request_timeout);
      if (!done.error.empty()) {
        spdlog::warn("receive location {}: the MessageBox did not acknowledge a message: {}",
                     config.name, done.error);
        return unavailable(res, "the MessageBox did not acknowledge the message ("
                                  + done.error + "); retry later");
      }
      id = done.id;
      duplicate = done.duplicate;
    }
    spdlog::debug("receive location {}: accepted {}{}", config.name, id,
                  duplicate ? " (a retry: already accepted)" : "");
    internal::answer(res, 202, {{"id", id}, {"duplicate", duplicate}});
  }
};

http_receive_location::http_receive_location(http_receive_config config,
                                             persistence::message_box& box,
                                             std::string receive_host)
  : impl_(std::make_unique<impl>(std::move(config), box, std::move(receive_host))) {}

http_receive_location::~http_receive_location() {
  stop();
}

std::string http_receive_location::describe() const {
  return "receive location " + impl_->config.name + " (http " + impl_->config.host + ":"
         + std::to_string(impl_->config.port) + impl_->config.path + ")";
}

std::string http_receive_location::start() {
  auto& d = *impl_;
  if (d.listener.joinable())
    return {};
  auto threads = d.config.threads;
  auto backlog = d.config.backlog;
  d.server.new_task_queue = [threads, backlog] { return new bounded_task_queue(threads, backlog); };
  internal::bound_http_server(d.server, d.config);
  d.server.Post(d.config.path, [&d](const httplib::Request& req, httplib::Response& res) {
    d.handle(req, res);
  });
  if (!d.server.bind_to_port(d.config.host, d.config.port))
    return "cannot listen on " + d.config.host + ":" + std::to_string(d.config.port) + ": "
           + std::strerror(errno);
  d.listener = std::thread([&d] { d.server.listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so that a stop
  // right after start (a node failing to start) cannot leave the listener running forever.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!d.server.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("{} accepting", describe());
  return {};
}

void http_receive_location::stop() {
  auto& d = *impl_;
  if (!d.listener.joinable())
    return;
  // Stops accepting, then lets the task queue finish the requests it holds: each either
  // answers 202 after the MessageBox acknowledged it, or an error the client retries.
  d.server.stop();
  d.listener.join();
}

} // namespace convoy::adapters
