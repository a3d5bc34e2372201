#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace convoy::chaos {

using clock_type = std::chrono::steady_clock;

/// Milliseconds on the run's monotonic clock (0 = the run's start).
int64_t now_ms();

/// One raw arrival at the sink, before any dedupe.
struct arrival {
  int64_t t_ms = 0;
  std::string instance;
  int step = -1;
  std::string key; ///< the Idempotency-Key header the send port sent
};

/// The sink every chaos step reaches (through the nodes' `chaos-sink` HTTP send port): an
/// HTTP server inside the chaos tool, on `host` (loopback, or the hub's address in a
/// `--network netns` run), which is never faulted. It logs every raw
/// arrival (to memory and, one JSON line each, to `log`) before answering 200, so an effect
/// the send port saw acknowledged is always counted.
class sink {
public:
  explicit sink(std::filesystem::path log, const std::string& host = "127.0.0.1");
  ~sink();

  std::uint16_t port() const noexcept { return port_; }

  /// A copy of every arrival so far, in arrival order.
  std::vector<arrival> arrivals();

  size_t count();

  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::uint16_t port_ = 0;
};

/// What became of one submission attempt (HA-TEST-PLAN.md, "Workload and history").
enum class outcome : uint8_t {
  ok,      ///< 202: acknowledged after the persistence point
  fail,    ///< not accepted (refused connection, 4xx, 503)
  unknown, ///< sent, but no answer (timeout, reset): it may or may not have been accepted
};

const char* to_string(outcome o);

/// One operation in the client's history.
struct operation {
  int64_t op = 0;      ///< the message number (its Idempotency-Key is `chaos-SEED-op`)
  int attempt = 0;
  int node = 0;        ///< the node it was sent to
  int64_t invoke_ms = 0;
  int64_t complete_ms = 0;
  outcome result = outcome::fail;
  bool throttled = false; ///< a 503 that said the receive location was throttled
  std::string instance;   ///< the instance id (from the 202, else derived from the key)
  int steps = 0;
};

/// The workload client: worker threads submitting messages with unique ids at `rate` per
/// second (times `boost` while an overload fault runs), each starting a `chaos`
/// orchestration of 5-50 steps with a durable sleep of 100-400 ms between two (seeded). A message that is not acknowledged is retried with
/// the same Idempotency-Key on the next node, up to 5 attempts; every attempt is recorded.
class client {
public:
  client(std::vector<std::uint16_t> http_ports, uint64_t seed, double rate, int workers = 4);
  ~client();

  void start();
  void stop();

  /// Multiplies the offered rate (F9).
  void set_boost(double factor) { boost_.store(factor); }

  /// A copy of the history so far.
  std::vector<operation> history();

  /// The instance id the receive location derives from `key` (`chaos-in-` + the first 24
  /// hex digits of its SHA-256).
  static std::string instance_for_key(const std::string& key);

  uint64_t seed() const noexcept { return seed_; }

private:
  void work(int worker);
  void submit(int64_t op, std::mt19937_64& rng);

  std::vector<std::uint16_t> ports_;
  uint64_t seed_;
  double rate_;
  int workers_;
  std::atomic<double> boost_{1.0};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_op_{0};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::vector<operation> history_;
};

} // namespace convoy::chaos
