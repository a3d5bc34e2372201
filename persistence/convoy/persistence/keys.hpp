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
/// | `{p}delayed`             | zset   | messages due later (activity retries): member = JSON `{"q": host, "f": [fields]}` |
/// | `{p}sub:{correlation}`   | string | `host|instance` a correlation set routes to (`order-id=1001`) |
/// | `{p}subs:{id}`           | set    | the correlation keys an instance subscribed              |
/// | `{p}corrsets`            | set    | correlation shapes in use (`order-id&region`)            |
/// | `{p}zombies`             | stream | messages that arrived for finished instances (~10 000)   |
/// | `{p}unrouted`            | stream | published messages no subscription wanted (~100 000)     |
/// | `{p}store`               | hash   | store identity: `id` (random, set once by the first node), `created`, `fmt`, `commits` (persistence points applied, for rollback detection) |
/// | `{p}nodes`               | zset   | node leases: member = node name, score = lease expiry (server ms) |
/// | `{p}node:{name}`         | hash   | node record: status (alive/dead), hosts (those it runs now), load, heartbeat, generation, started, died, lease_ms, throttle (JSON), tree (JSON: its supervision tree), fmt |
/// | `{p}cluster-lease`       | hash   | the cluster supervisor's lease: holder, epoch (fencing), expires |
/// | `{p}cluster-link`        | hash   | BASP settings all nodes must share: heartbeat_ms, connection_timeout_ms (first node sets them) |
/// | `{p}links`               | hash   | node name -> `host:port` where it listens for peers over mutual TLS |
/// | `{p}host-lease:{host}`   | hash   | a single-active host's lease: holder (the node running it), epoch, expires |
/// | `{p}relocate:{node}`     | hash   | take-over assignments for a node: field `dead|host` = entries pending then |
/// | `{p}rollbacks`           | stream | detected losses of acknowledged persistence points (~1 000): `node`, `server`, `acknowledged`, `held`, `lost`, `instances` |
/// | `{p}secrets`             | hash   | credentials: field = name, value = AES-256-GCM envelope `v1:<key id>:<base64>`; field `@key` = the master key id they are under (`convoy/adapters/secrets.hpp`) |
/// | `{p}dedupe:{key}`        | string | message id a deduplicated submission got (HTTP `Idempotency-Key`, file, schedule tick); expires |
/// | `{p}adapter-lease:{name}`| string | holder (node) of a single-active adapter's lease; expires unless renewed |
/// | `{p}parked:{id}`         | list   | queue entries (JSON arrays of their fields) that arrived for an instance an operator suspended; back on its queue at resume |
/// | `{p}audit:{id}`          | list   | operator actions on an instance: JSON `{"at", "action", "reason", "by"}` (last 100) |
/// | `{p}node-cmd:{name}`     | hash   | operator commands for a node, read with its heartbeat: field `host:{host}` = `stop` or `start` |
/// | `{p}suspended`           | hash   | suspended (resumable) activity requests: field = idempotency key, value = JSON `{"q", "f", "reason", "at", "activity", "instance"}` |
///
/// Queue entries are flat field/value pairs with `kind` and a format version `v`:
/// - `submit`   (receive host): `type`, `input`, optional `id`
/// - `start`    (processing host): `instance`
/// - `publish`  (receive host): `type`, `body`, `props` (JSON object of message properties)
/// - `result`   (processing host): `instance`, `step`, `gen`, `ok` (1/0), `payload`
/// - `timer`    (processing host): `instance`, `step`, `gen`
/// - `message`  (processing host): `instance`, `channel` (`corr:<key>`), `payload`
/// - `signal` / `cancel` (processing host): `instance`, `channel` (`signal:<name>`), `payload`
/// - `evict`    (processing host): `instance`, `payload` (the owner epoch an operator's suspend
///   or terminate set: an actor holding an older one leaves memory)
/// - `activity` (send host): `instance`, `step`, `gen`, `activity`, `args`, `key`, `options`,
///   `reply`, `attempt`
///
/// Instance ids and host names are limited to `[A-Za-z0-9._:-]`, at most 128 characters,
/// so they can be embedded in keys and timer members unescaped.

#include "convoy/actors/journal.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace convoy::persistence {

/// Format version of instance records and queue entries written by this code.
inline constexpr int record_format_version = 1;

/// Size limits. Anything larger is refused when written and, when read back (a value Convoy
/// did not write, or a corrupt one), reported as an error naming the value, never trusted.
/// One payload: a message body or input, an instance result or error, a signal payload, one
/// field of a queue entry or of an instance record: the journal entry limit, so anything a
/// journal may hold fits the MessageBox and the reverse.
inline constexpr size_t max_payload_bytes = max_journal_payload;
/// Journal entries of one instance run (continue_as_new starts a new one).
inline constexpr size_t max_journal_entries = 1'000'000;
/// All journal entries of one instance run together.
inline constexpr size_t max_journal_bytes = 256 * 1024 * 1024;

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
  std::string delayed() const { return prefix_ + "delayed"; }
  std::string zombies() const { return prefix_ + "zombies"; }
  std::string unrouted() const { return prefix_ + "unrouted"; }
  std::string store() const { return prefix_ + "store"; }
  std::string rollbacks() const { return prefix_ + "rollbacks"; }
  std::string secrets() const { return prefix_ + "secrets"; }
  std::string nodes() const { return prefix_ + "nodes"; }
  std::string node(std::string_view name) const { return cat("node:", name); }
  std::string cluster_lease() const { return prefix_ + "cluster-lease"; }
  /// The BASP link settings every node must share (set by the first node).
  std::string cluster_link() const { return prefix_ + "cluster-link"; }
  /// Where each node listens for its peers.
  std::string links() const { return prefix_ + "links"; }
  /// The lease of a single-active (clustered) host: which node runs it.
  std::string host_lease(std::string_view host) const { return cat("host-lease:", host); }
  std::string relocations(std::string_view node) const { return cat("relocate:", node); }
  std::string dedupe(std::string_view key) const { return cat("dedupe:", key); }
  std::string adapter_lease(std::string_view name) const { return cat("adapter-lease:", name); }
  std::string suspended() const { return prefix_ + "suspended"; }
  std::string parked(std::string_view id) const { return cat("parked:", id); }
  std::string audit(std::string_view id) const { return cat("audit:", id); }
  std::string node_commands(std::string_view name) const { return cat("node-cmd:", name); }

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
