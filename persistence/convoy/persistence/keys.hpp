#pragma once

/// @file
/// The MessageBox key schema: every Redis key Convoy uses, in one place.
/// All keys start with a configurable prefix (default `convoy:`), so several clusters or
/// test runs can share a server.
///
/// | key                      | type   | holds                                                    |
/// |--------------------------|--------|----------------------------------------------------------|
/// | `{p}inst:{id}`           | hash   | instance record: type, version, host, status, epoch, seq, owner, steps, input, result, error, created, updated, fmt |
/// | `{p}journal:{id}`        | list   | journal entries (binary, see `convoy/actors/journal.hpp`)|
/// | `{p}instances`           | zset   | instance ids scored by creation time (ms)                |
/// | `{p}q:{host}`            | stream | the host's queue; consumer group named after the host    |
/// | `{p}timers`              | zset   | durable timers: member `host|instance|step`, score = due ms |
/// | `{p}tracking`            | stream | tracking events, capped at ~10 000 entries               |
///
/// Queue entries are flat field/value pairs with `kind` and a format version `v`:
/// - `submit`   (receive host): `type`, `input`, optional `id`
/// - `start`    (processing host): `instance`
/// - `result`   (processing host): `instance`, `step`, `ok` (1/0), `payload`
/// - `timer`    (processing host): `instance`, `step`
/// - `activity` (send host): `instance`, `step`, `activity`, `args`, `key`, `reply`
///
/// Instance ids and host names are limited to `[A-Za-z0-9._:-]`, at most 128 characters,
/// so they can be embedded in keys and timer members unescaped.

#include <string>
#include <string_view>

namespace convoy::persistence {

/// Format version of instance records and queue entries written by this code.
inline constexpr int record_format_version = 1;

class keys {
public:
  explicit keys(std::string prefix = "convoy:") : prefix_(std::move(prefix)) {}

  const std::string& prefix() const noexcept { return prefix_; }
  std::string instance(std::string_view id) const { return cat("inst:", id); }
  std::string journal(std::string_view id) const { return cat("journal:", id); }
  std::string instances() const { return prefix_ + "instances"; }
  std::string queue(std::string_view host) const { return cat("q:", host); }
  std::string timers() const { return prefix_ + "timers"; }
  std::string tracking() const { return prefix_ + "tracking"; }

private:
  std::string cat(std::string_view kind, std::string_view id) const {
    std::string out = prefix_;
    out += kind;
    out += id;
    return out;
  }
  std::string prefix_;
};

/// True when `name` may be used as an instance id or host name (see the schema above).
bool valid_name(std::string_view name) noexcept;

} // namespace convoy::persistence
