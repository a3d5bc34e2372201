#pragma once

#include "convoy/persistence/message_box.hpp"
#include "convoy/persistence/redis_client.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace CLI {
class App;
}

namespace convoy::cli {

/// Output formats of the inspection verbs: a table or card, indented JSON, or JSON lines (one
/// object per line: each element of a list, or the whole object).
enum class output_format { text, json, jsonl };

/// Prints `value` as `fmt` asks (json or jsonl).
void print_json(const nlohmann::json& value, output_format fmt);

/// What `convoy orch list` and `count` select: empty fields match everything.
struct instance_filter {
  std::string status, type, owner;
  size_t limit = 100;
  /// "", "status", "type", "host" (the owner node) or "error".
  std::string group_by;
};

/// Where the CLI finds the MessageBox, and how it was decided (for error messages).
struct target {
  persistence::redis_endpoint endpoint;
  std::string prefix = "convoy:";
  std::string source; ///< "--redis", "CONVOY_REDIS", "convoy dev" or "default"
};

/// Resolves the MessageBox address: --redis, then $CONVOY_REDIS, then `file_redis` (the CLI
/// settings file at `file_path`), then the address a running `convoy dev` recorded, then
/// 127.0.0.1:6379; the prefix likewise (flag, $CONVOY_PREFIX, file, convoy:). Returns an
/// error message or "".
std::string resolve_target(const std::string& flag, const std::string& prefix, target& out,
                           const std::string& file_redis = "", const std::string& file_prefix = "",
                           const std::string& file_path = "");

/// The CLI's settings file (TOML, string keys redis, prefix, output, time_format): `flag`,
/// else $CONVOY_CLI_CONFIG, else ~/.config/convoy/cli.toml (missing: all empty). Returns the
/// settings or an error naming the file.
struct cli_settings {
  std::string path; ///< where they came from, for messages
  std::string redis, prefix, output, time_format;
};
std::variant<cli_settings, std::string> load_cli_settings(const std::string& flag);

/// How text output shows times: "3s ago" (default) or ISO 8601 UTC (`--time-format iso`).
enum class time_format { relative, iso };
void set_time_format(time_format f);
time_format get_time_format();
/// `ms` since the epoch as 2026-12-04T01:50:15.123Z.
std::string iso_time(int64_t ms);

/// Colour only when stdout is a terminal and NO_COLOR is not set.
bool use_color();
/// `text` in SGR colour `sgr` ("31" red, "32" green, "33" yellow, "2" dim) when use_color().
std::string colored(const std::string& text, const char* sgr);

/// A MessageBox client for `t` (not prepared: for reading and operator writes).
std::unique_ptr<persistence::message_box> open_box(const target& t);
/// Reports a failing MessageBox on one line, naming where its address came from; returns 3.
int box_error(const target& t, const std::string& error);

/// The file where `convoy dev` records its Redis address while it runs.
std::string dev_state_file();

struct dev_options {
  bool once = false;
  uint16_t port = 0; ///< 0: a free port
  bool verbose = false;
};

int run_dev(const dev_options& opts);
int run_node(const std::string& config_path, const std::vector<std::string>& sets,
             bool dump_config);
int run_orch_list(const target& t, output_format fmt, const instance_filter& filter);
/// How many instances match (grouped with `group_by`), of the newest `limit`.
int run_orch_count(const target& t, output_format fmt, const instance_filter& filter);
/// An instance's journal as events; with `follow`, prints new ones until it finishes.
int run_orch_history(const target& t, const std::string& id, bool follow, output_format fmt);
/// What an instance awaits now: operations scheduled and not yet completed.
int run_orch_stack(const target& t, const std::string& id, output_format fmt);
/// The MessageBox: server, role, replicas and lag, memory, queue depths; every `interval_s`
/// seconds until interrupted when it is positive.
int run_box_stat(const target& t, output_format fmt, int interval_s);
/// Exit code 0 only when the cluster serves: MessageBox reachable, a live node, a live
/// cluster supervisor. Prints why not.
int run_health(const target& t, output_format fmt);
/// The cluster's members: leases, status, hosts, load, and the cluster supervisor.
int run_node_list(const target& t, output_format fmt);
/// The live supervision tree of one node or every node, as each last recorded it, with the
/// orchestrations each owns (unfinished) grouped by type. `depth`: levels shown (1 = node
/// supervisors' children only).
int run_tree(const target& t, const std::string& node, int depth, output_format fmt);
/// Host instances: which node runs which host, its state, heartbeat, load and throttle state.
int run_host_list(const target& t, output_format fmt);
int run_orch_describe(const target& t, const std::string& id, output_format fmt);
int run_orch_start(const target& t, const std::string& type, const std::string& input,
                   const std::string& id);
int run_version(const target& t);
int run_orch_send(const target& t, const std::string& id, const std::string& kind,
                  const std::string& name, const std::string& payload);
int run_msg_publish(const target& t, const std::string& type, const std::string& body,
                    const std::vector<std::string>& props, const std::string& activation_id);
int run_msg_list(const target& t, bool zombies, output_format fmt, size_t limit);

/// `convoy orch suspend|resume|terminate ID` (`verb` is the word): one instance. Exit codes:
/// 2 bad id, 3 MessageBox, 4 unknown id, 5 finished (or not resumable), 1 not suspended.
int run_orch_control(const target& t, const std::string& verb, const std::string& id,
                     const std::string& reason, output_format fmt);
/// The same verb for every instance `filter` matches (at most `limit`, 0 = all) that the verb
/// applies to, after confirmation (`yes`, or a terminal), with progress on stderr.
int run_orch_bulk(const target& t, const std::string& verb, const instance_filter& filter,
                  size_t limit, const std::string& reason, bool yes, output_format fmt);
/// Deletes finished instances (`status`, or any of completed/failed/cancelled/terminated)
/// last updated longer ago than `older_than` ("" = any age), after confirmation.
int run_node_describe(const target& t, const std::string& name, output_format fmt);
/// Asks `node` to `command` ("start" or "stop") its instance of `host` (via the MessageBox).
int run_host_command(const target& t, const std::string& host, const std::string& node,
                     const std::string& command, output_format fmt);
int run_orch_purge(const target& t, const std::string& status, const std::string& older_than,
                   bool yes, output_format fmt);
/// "90s", "30m", "1h", "7d", "500ms" in milliseconds.
std::optional<int64_t> parse_age(const std::string& text);

/// Adds `convoy msg suspended` and `convoy msg resume ID` (send port requests suspended after
/// their retries) to `msg`. After parsing, the returned function runs the one chosen and
/// returns its exit code, or returns nothing when neither was.
std::function<std::optional<int>()> add_adapter_commands(CLI::App& msg);

/// Adds `convoy cert init|issue` to `app`. After parsing, the returned function runs the
/// one that was chosen and returns its exit code, or returns nothing when neither was.
std::function<std::optional<int>()> add_cert_commands(CLI::App& app);

/// Adds `convoy secret init|set|remove|list|rotate|backup|restore` (cli/secret.cpp); the
/// returned function works like the one `add_cert_commands` returns.
std::function<std::optional<int>()> add_secret_commands(CLI::App& app);

/// Adds `convoy chaos ...`, which runs `convoy-chaos` (built from tests/chaos, installed
/// beside this executable) with the remaining arguments; the returned function execs it when
/// `chaos` was chosen (and returns an exit code only if that fails), else returns nothing.
std::function<std::optional<int>()> add_chaos_command(CLI::App& app);

/// Blocks SIGINT and SIGTERM in every thread (call first in main, before any thread starts)
/// so that the run loops can wait for them with `wait_for_stop_signal`.
void block_stop_signals();
/// Waits up to `ms` for SIGINT/SIGTERM; returns the signal number or 0.
int wait_for_stop_signal(int ms);

} // namespace convoy::cli
