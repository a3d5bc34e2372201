#include "convoy/adapters/schedule/schedule.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/adapters/internal/settings.hpp"
#include "convoy/adapters/internal/worker_thread.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/message_box.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdint>

namespace convoy::adapters {

std::optional<std::chrono::milliseconds> parse_interval(const std::string& text) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || n <= 0 || end == text.data())
    return std::nullopt;
  std::string unit(end, text.data() + text.size());
  int64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000
                                                    : unit == "h"   ? 3600000
                                                                    : 0;
  if (scale == 0 || n > INT64_MAX / scale)
    return std::nullopt;
  return std::chrono::milliseconds(n * scale);
}

std::string parse_schedule(const std::string& name, const json& object, schedule_config& out) {
  out = schedule_config{}; // every key not given takes its default, not a previous value
  internal::settings s("receive_locations." + name, object);
  out.name = name;
  s.text("type", "schedule");
  auto every = s.text("every", "", true);
  out.message_type = s.text("message_type", "", true);
  out.body = s.value("body", out.body);
  out.properties = s.strings("properties");
  if (!every.empty()) {
    auto d = parse_interval(every);
    if (!d)
      s.fail("every", "'" + every + "' is not an interval such as 250ms, 10s, 5m or 1h");
    else if (*d < std::chrono::milliseconds(100) || *d > std::chrono::hours(24 * 366))
      s.fail("every", "'" + every + "' must be between 100ms and 366 days");
    else
      out.every = *d;
  }
  if (!out.message_type.empty() && !persistence::valid_name(out.message_type))
    s.fail("message_type", "'" + out.message_type + "' must be 1-128 characters of [A-Za-z0-9._:-]");
  return s.error();
}

struct schedule_location::impl {
  schedule_config config;
  persistence::message_box& box;
  std::string receive_host;
  internal::worker_thread worker;
  internal::stop_signal& stopping = worker.stopping();

  impl(schedule_config c, persistence::message_box& b, std::string host)
    : config(std::move(c)), box(b), receive_host(std::move(host)) {}

  void run() {
    auto every = config.every.count();
    auto body = config.body.dump();
    for (;;) {
      auto now = wall_clock_ms();
      auto tick = (now / every + 1) * every;
      if (stopping.wait_for(std::chrono::milliseconds(tick - now)))
        return;
      publish(tick, body);
    }
  }

  /// Tries tick `tick` until the MessageBox answers or the next tick is near.
  void publish(int64_t tick, const std::string& body) {
    auto props = config.properties;
    props["receive-location"] = config.name;
    props["schedule-tick"] = std::to_string(tick);
    auto key = "schedule:" + config.name + ":" + std::to_string(tick);
    auto id = config.name + "-" + std::to_string(tick);
    // Remembered a little longer than any node may still try this tick.
    auto ttl = config.every + std::chrono::minutes(1);
    auto give_up = tick + config.every.count() / 2;
    for (;;) {
      auto done = box.submit_message_once(receive_host, config.message_type, body, props, id,
                                          key, ttl);
      if (done.error.empty()) {
        if (!done.duplicate)
          spdlog::info("receive location {}: tick {} published as {}", config.name, tick, id);
        return;
      }
      if (wall_clock_ms() >= give_up) {
        spdlog::error("receive location {}: tick {} not published ({}); skipped", config.name,
                      tick, done.error);
        return;
      }
      if (stopping.wait_for(std::chrono::milliseconds(200)))
        return;
    }
  }
};

schedule_location::schedule_location(schedule_config config, persistence::message_box& box,
                                     std::string receive_host)
  : impl_(std::make_unique<impl>(std::move(config), box, std::move(receive_host))) {}

schedule_location::~schedule_location() {
  stop();
}

std::string schedule_location::describe() const {
  return "receive location " + impl_->config.name + " (schedule every "
         + std::to_string(impl_->config.every.count()) + " ms)";
}

std::string schedule_location::start() {
  auto& d = *impl_;
  d.worker.start([&d] { d.run(); });
  return {};
}

void schedule_location::stop() {
  impl_->worker.stop();
}

} // namespace convoy::adapters
