#include "workload.hpp"

#include "convoy/test/placement.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>

#include <cstdio>
#include <stdexcept>

namespace convoy::chaos {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const clock_type::time_point run_start = clock_type::now();

} // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - run_start)
    .count();
}

const char* to_string(outcome o) {
  switch (o) {
    case outcome::ok:
      return "ok";
    case outcome::fail:
      return "fail";
    case outcome::unknown:
      return "unknown";
  }
  return "?";
}

// -- sink -------------------------------------------------------------------------------------

struct sink::impl {
  httplib::Server server;
  std::thread thread;
  std::mutex mutex;
  std::vector<arrival> arrivals;
  std::ofstream log;
};

sink::sink(std::filesystem::path log, const std::string& host)
  : impl_(std::make_unique<impl>()) {
  impl_->log.open(log, std::ios::app);
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(8); };
  impl_->server.Post("/sink", [this](const httplib::Request& req, httplib::Response& res) {
    arrival a;
    a.t_ms = now_ms();
    a.key = req.get_header_value("Idempotency-Key");
    auto body = json::parse(req.body, nullptr, false);
    if (body.is_object()) {
      a.instance = body.value("instance", std::string{});
      a.step = body.value("step", -1);
    }
    {
      std::lock_guard<std::mutex> guard(impl_->mutex);
      impl_->log << json{{"t_ms", a.t_ms}, {"instance", a.instance}, {"step", a.step},
                         {"key", a.key}}
                      .dump()
                 << "\n";
      impl_->arrivals.push_back(std::move(a));
    }
    res.status = 200;
    res.set_content("{\"ok\":true}", "application/json");
  });
  int port = impl_->server.bind_to_any_port(host);
  if (port <= 0)
    throw std::runtime_error("the sink cannot listen on " + host);
  port_ = static_cast<std::uint16_t>(port);
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

sink::~sink() {
  stop();
}

void sink::stop() {
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
  std::lock_guard<std::mutex> guard(impl_->mutex);
  impl_->log.flush();
}

std::vector<arrival> sink::arrivals() {
  std::lock_guard<std::mutex> guard(impl_->mutex);
  impl_->log.flush();
  return impl_->arrivals;
}

size_t sink::count() {
  std::lock_guard<std::mutex> guard(impl_->mutex);
  return impl_->arrivals.size();
}

// -- client -----------------------------------------------------------------------------------

client::client(std::vector<std::uint16_t> http_ports, uint64_t seed, double rate, int workers)
  : ports_(std::move(http_ports)), seed_(seed), rate_(rate), workers_(workers) {}

client::~client() {
  stop();
}

std::string client::instance_for_key(const std::string& key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  std::string hex;
  char buf[3];
  for (unsigned char c : digest) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    hex += buf;
  }
  return "chaos-in-" + hex.substr(0, 24);
}

void client::start() {
  for (int w = 0; w < workers_; ++w)
    threads_.emplace_back([this, w] { work(w); });
}

void client::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
  threads_.clear();
}

std::vector<operation> client::history() {
  std::lock_guard<std::mutex> guard(mutex_);
  return history_;
}

void client::work(int worker) {
  // Each worker offers rate / workers messages per second, with exponential gaps: a Poisson
  // arrival process. Its own generator, seeded from the run's seed: the op parameters
  // (steps) come from the op number, so they do not depend on thread timing.
  std::mt19937_64 gaps(seed_ * 7919 + static_cast<uint64_t>(worker));
  auto next = clock_type::now();
  while (!stop_) {
    auto per_worker = rate_ * boost_.load() / workers_;
    std::exponential_distribution<double> gap(per_worker);
    next += std::chrono::microseconds(static_cast<int64_t>(gap(gaps) * 1e6));
    auto now = clock_type::now();
    if (next > now)
      std::this_thread::sleep_for(std::min<clock_type::duration>(next - now, 1s));
    else if (now - next > 2s)
      next = now; // saturated: do not build up a burst to catch up with
    if (stop_)
      break;
    auto op = next_op_++;
    std::mt19937_64 rng(seed_ ^ (static_cast<uint64_t>(op) * 0x9E3779B97F4A7C15ull));
    submit(op, rng);
  }
}

void client::submit(int64_t op, std::mt19937_64& rng) {
  const int steps = std::uniform_int_distribution<int>(5, 50)(rng);
  const auto key = "chaos-" + std::to_string(seed_) + "-" + std::to_string(op);
  const int pause_ms = std::uniform_int_distribution<int>(100, 400)(rng);
  const auto body = json{{"steps", steps}, {"pause_ms", pause_ms}, {"op", op}}.dump();
  const auto derived = instance_for_key(key);
  size_t node = static_cast<size_t>(op) % ports_.size();
  for (int attempt = 1; attempt <= 5 && !stop_; ++attempt, node = (node + 1) % ports_.size()) {
    operation rec;
    rec.op = op;
    rec.attempt = attempt;
    rec.node = static_cast<int>(node);
    rec.steps = steps;
    rec.instance = derived;
    httplib::Client c(test::host_of(ports_[node]), ports_[node]);
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(8, 0);
    c.set_write_timeout(2, 0);
    rec.invoke_ms = now_ms();
    auto res = c.Post("/chaos", httplib::Headers{{"Idempotency-Key", key}}, body,
                      "application/json");
    rec.complete_ms = now_ms();
    if (res) {
      if (res->status == 202) {
        rec.result = outcome::ok;
        auto answer = json::parse(res->body, nullptr, false);
        if (answer.is_object())
          rec.instance = answer.value("id", derived);
      } else {
        // 503 (throttled, or the MessageBox did not acknowledge in time: the write may
        // still land, so that one is unknown), 4xx: refused.
        rec.throttled = res->status == 503 && res->body.find("throttled") != std::string::npos;
        rec.result = res->status == 503 && !rec.throttled ? outcome::unknown : outcome::fail;
      }
    } else {
      auto err = res.error();
      rec.result = err == httplib::Error::Connection ? outcome::fail : outcome::unknown;
    }
    {
      std::lock_guard<std::mutex> guard(mutex_);
      history_.push_back(rec);
    }
    if (rec.result == outcome::ok)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
  }
}

} // namespace convoy::chaos
