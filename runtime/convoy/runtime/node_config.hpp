#pragma once

#include "convoy/actors/json.hpp"
#include "convoy/persistence/redis_client.hpp"
#include "convoy/runtime/cluster_link.hpp"
#include "convoy/runtime/throttle.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace convoy::runtime {

/// Everything a node needs to run. Read from a TOML file (see examples/node.toml);
/// the Redis password comes from the environment variable named by `password_env`.
struct node_config {
  /// Unique name of the node; also its consumer name in every host queue.
  std::string name;
  /// The hosts this node runs an instance of: any of "receive", "processing", "send".
  std::vector<std::string> hosts{"receive", "processing", "send"};
  /// Hosts of `hosts` that run on one node of the cluster at a time (BizTalk's clustered
  /// hosts): the node holding the host's lease runs it, another takes over when it lapses.
  std::vector<std::string> single_active;
  std::string log_level = "info";

  persistence::redis_endpoint redis;
  /// The environment variable the password was read from ("" = none).
  std::string password_env;
  std::string prefix = "convoy:";
  /// "local" or "replicated" (acknowledge persistence points only once `replicas` replicas
  /// confirm them with WAIT, waiting at most `wait_timeout`).
  std::string durability = "local";
  int replicas = 1;
  std::chrono::milliseconds wait_timeout{1000};
  /// Orchestration type -> "local" or "replicated", overriding `durability` for that type
  /// (TOML: `[messagebox.durability_by_type]`, e.g. `payment = "replicated"`).
  std::map<std::string, std::string> durability_by_type;

  /// How often a node renews its lease in the MessageBox (and the cluster supervisor acts).
  std::chrono::milliseconds heartbeat{250};
  /// A node whose lease was not renewed for this long is dead: its work is taken over.
  std::chrono::milliseconds lease_ttl{1000};
  /// Queue entries left unacknowledged this long by a consumer are taken over by another
  /// (the fallback when a lease does not tell, e.g. a consumer that lost only its reads).
  std::chrono::milliseconds reclaim_idle{5000};
  /// How long one blocking queue read waits for new entries.
  std::chrono::milliseconds poll_block{500};
  /// How often due durable timers are moved into their hosts' queues.
  std::chrono::milliseconds timer_poll{100};
  /// Activities the send host runs at once (each on its own thread).
  size_t activity_workers = 4;
  /// Most instances a processing host keeps in memory; intake pauses beyond it.
  size_t max_instances = 10000;
  /// Instances idle this long leave memory (dehydrate); 0 = never.
  std::chrono::milliseconds dehydrate_after{30000};
  /// When host instances slow their intake (TOML: `[throttling]`); see throttle.hpp.
  throttle_limits throttling;

  /// The link between nodes (TOML: `[cluster]`): CAF BASP over mutual TLS with certificates
  /// of the cluster's CA (`convoy cert`). Off when no certificate is configured: the node
  /// then coordinates through the MessageBox alone. Heartbeat and connection timeout must
  /// be the same on every node; the first node records them and others must match.
  cluster_link_config link;
  /// Where this node listens for its peers ("host:port"; port 0: any free one). Peers
  /// connect to the host given here, so use an address they can reach.
  std::string link_listen = "127.0.0.1:0";

  bool link_enabled() const { return !link.certificate.empty(); }

  /// The admin endpoint (TOML: `[admin]`; see admin.hpp): "host:port" (port 0: any free
  /// one; the bound address is logged and recorded in the node record), "" = off.
  std::string admin_listen = "127.0.0.1:0";
  /// The variable holding the admin endpoint's bearer token ("" = no token needed).
  std::string admin_token_env;

  /// Receive locations and send ports (TOML `[receive_locations.NAME]`, `[send_ports.NAME]`):
  /// NAME -> its settings as a JSON object. Only their shape is checked here; the adapters
  /// component reads the settings (`adapters::attach`) and names NAME and the key in every
  /// error, so the runtime need not know each adapter's keys.
  std::map<std::string, json> receive_locations;
  std::map<std::string, json> send_ports;
};

/// The three host names a node knows in this version.
inline const std::vector<std::string> known_hosts{"receive", "processing", "send"};

/// Where a node's configuration comes from, lowest precedence first: a TOML file (optional),
/// `CONVOY_<SECTION>_<KEY>` environment variables (e.g. CONVOY_NODE_NAME,
/// CONVOY_MESSAGEBOX_DURABILITY), and `--set section.key=value` flags. Override values are
/// TOML (`2`, `["send"]`, `"x"`) or, when they are not, plain strings (`node-1`).
struct config_sources {
  std::string file;
  std::vector<std::pair<std::string, std::string>> environment;
  std::vector<std::string> flags;
  /// The file's TOML text when the caller holds it already (then `file` only names it in
  /// errors, and may be empty).
  std::optional<std::string> text{};
};

/// Reads a node configuration. Returns it, or an error message naming the source (file,
/// environment variable or flag), the key and what is wrong with it.
std::variant<node_config, std::string> load_node_config(const config_sources& sources);

/// `load_node_config` of a file alone.
std::variant<node_config, std::string> load_node_config(const std::string& path);

/// This process's CONVOY_* environment variables.
std::vector<std::pair<std::string, std::string>> convoy_environment();

/// The effective configuration as TOML, as `convoy node --dump-config` prints it (the
/// password's variable name, never the password).
std::string dump_config(const node_config& cfg);

/// "host:port" with a port from 0 to 65535 (0: any free port), or nothing.
std::optional<std::pair<std::string, uint16_t>> parse_listen_address(const std::string& text);

/// Checks a configuration assembled in code; returns an error message or "".
std::string validate(const node_config& cfg);

/// A default node name: "<hostname>-<pid>".
std::string default_node_name();

} // namespace convoy::runtime
