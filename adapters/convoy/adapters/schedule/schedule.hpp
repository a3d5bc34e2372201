#pragma once

#include "convoy/actors/json.hpp"
#include "convoy/runtime/adapter.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace convoy::persistence {
class message_box;
}

namespace convoy::adapters {

/// `[receive_locations.NAME]` with `type = "schedule"`.
struct schedule_config {
  std::string name;
  /// Ticks fall on multiples of `every` since the Unix epoch (UTC), so every node agrees on
  /// them without talking: `every = "15m"` ticks at :00, :15, :30 and :45.
  std::chrono::milliseconds every{60000};
  std::string message_type;
  /// The body of every message (default `{}`).
  json body = json::object();
  std::map<std::string, std::string> properties;
};

/// Parses `every`: a positive integer with a unit, `ms`, `s`, `m` or `h` ("10s", "250ms").
std::optional<std::chrono::milliseconds> parse_interval(const std::string& text);

std::string parse_schedule(const std::string& name, const json& settings, schedule_config& out);

/// A schedule receive location: publishes one message per tick across the whole cluster.
/// Every node that declares it tries each tick; the MessageBox accepts the first and drops
/// the others (one deduplicated submission per `schedule:NAME:TICK`, its id `NAME-TICK`), so a
/// node that dies does not stop the schedule and two nodes never both publish a tick.
/// A tick no node could publish within one interval (all down, MessageBox away) is skipped
/// and logged, not caught up.
class schedule_location final : public runtime::adapter {
public:
  schedule_location(schedule_config config, persistence::message_box& box,
                    std::string receive_host = "receive");
  ~schedule_location() override;

  std::string describe() const override;
  std::string start() override;
  void stop() override;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace convoy::adapters
