#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <array>
#include <iostream>

using namespace convoy::cli;

namespace {

/// Adds the options every MessageBox-reading verb shares. Each setting comes from its flag,
/// else its CONVOY_* variable, else the CLI's config file (see cli_settings).
struct box_options {
  std::string redis;
  std::string prefix;
  std::string output = "text";
  std::string times = "relative";
  std::string config;
  CLI::Option* output_opt = nullptr;
  CLI::Option* time_opt = nullptr;

  void add_to(CLI::App* cmd, bool with_output = true) {
    cmd->add_option("--redis", redis,
                    "MessageBox address host:port (env CONVOY_REDIS, config redis)");
    cmd->add_option("--prefix", prefix,
                    "key prefix (env CONVOY_PREFIX, config prefix, default convoy:)");
    cmd->add_option("--config", config,
                    "CLI settings file (env CONVOY_CLI_CONFIG, default ~/.config/convoy/cli.toml)");
    if (with_output) {
      output_opt = cmd->add_option("-o,--output", output,
                                   "output format (env CONVOY_OUTPUT, config output)")
                     ->check(CLI::IsMember({"text", "json", "jsonl"}));
      time_opt = cmd->add_option("--time-format", times,
                                 "times as 'relative' (3s ago, default) or 'iso' (env "
                                 "CONVOY_TIME_FORMAT, config time_format)")
                   ->check(CLI::IsMember({"relative", "iso"}));
    }
  }

  /// Fills what no flag gave from the environment and the config file; "" or an error.
  std::string resolve() {
    auto loaded = load_cli_settings(config);
    if (auto err = std::get_if<std::string>(&loaded))
      return *err;
    auto file = std::get<cli_settings>(std::move(loaded));
    auto pick = [](std::string& value, bool given, const char* env, const std::string& from_file) {
      if (given)
        return;
      if (auto e = std::getenv(env); e && *e)
        value = e;
      else if (!from_file.empty())
        value = from_file;
    };
    pick(output, !output_opt || output_opt->count() > 0, "CONVOY_OUTPUT", file.output);
    pick(times, !time_opt || time_opt->count() > 0, "CONVOY_TIME_FORMAT", file.time_format);
    if (output != "text" && output != "json" && output != "jsonl")
      return "output format '" + output + "' (from CONVOY_OUTPUT or " + file.path
             + ") is not text, json or jsonl";
    if (times != "relative" && times != "iso")
      return "time format '" + times + "' (from CONVOY_TIME_FORMAT or " + file.path
             + ") is not relative or iso";
    set_time_format(times == "iso" ? time_format::iso : time_format::relative);
    file_redis = file.redis;
    file_prefix = file.prefix;
    file_path = file.path;
    return {};
  }

  std::string file_redis, file_prefix, file_path;

  output_format format() const {
    return output == "json"    ? output_format::json
           : output == "jsonl" ? output_format::jsonl
                               : output_format::text;
  }
};

/// After a failed parse where a subcommand was required and none was given: names the first
/// word that was not understood ("unknown command 'lsit'"), or returns "".
std::string unexpected_word(const CLI::App& app) {
  const CLI::App* deepest = &app;
  while (!deepest->get_subcommands().empty())
    deepest = deepest->get_subcommands().front();
  if (deepest->get_require_subcommand_min() == 0)
    return {};
  auto words = deepest->remaining();
  if (words.empty() || words.front().empty())
    return {};
  const auto& word = words.front();
  return (word.front() == '-' ? "unknown option '" : "unknown command '") + word + "'";
}

/// Every instance status by name, for --status.
std::vector<std::string> status_names() {
  std::vector<std::string> out;
  for (uint8_t i = 0; i <= static_cast<uint8_t>(convoy::instance_status::suspended_resumable); ++i)
    out.emplace_back(to_string(static_cast<convoy::instance_status>(i)));
  return out;
}

} // namespace

int main(int argc, char** argv) {
  block_stop_signals();
  CLI::App app{"Convoy: durable business processes as C++20 coroutines on CAF and Redis\n"
               "example: convoy orch list --status failed"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "show help for every command");

  dev_options dev;
  auto dev_cmd = app.add_subcommand(
    "dev", "start a local Redis, a node with every host and the example orchestrations\n"
           "example: convoy dev --once");
  dev_cmd->add_flag("--once", dev.once, "run the examples to completion, print them and exit");
  dev_cmd->add_option("--port", dev.port, "Redis port (default: a free one)");
  dev_cmd->add_flag("-v,--verbose", dev.verbose, "log every step of every instance");

  std::string config_path;
  auto node_cmd = app.add_subcommand("node", "run a node\nexample: convoy node --config node.toml");
  node_cmd->add_option("--config", config_path,
                       "node configuration (TOML); CONVOY_<SECTION>_<KEY> variables and --set "
                       "override it");
  std::vector<std::string> config_sets;
  node_cmd->add_option("--set", config_sets,
                       "override one key, e.g. --set messagebox.durability=replicated");
  bool dump_config = false;
  node_cmd->add_flag("--dump-config", dump_config,
                     "print the effective configuration as TOML and exit");
  box_options nodes_opts;
  auto nodes_cmd = node_cmd->add_subcommand(
    "list", "the cluster's nodes: status, hosts, load, lease, and the cluster supervisor\n"
            "example: convoy node list -o json");
  nodes_opts.add_to(nodes_cmd);
  box_options node_describe_opts;
  std::string node_describe_name;
  auto node_describe_cmd = node_cmd->add_subcommand(
    "describe", "one node: status, lease, hosts, load, admin address, throttle, tree summary\n"
                "example: convoy node describe node-1 -o json");
  node_describe_opts.add_to(node_describe_cmd);
  node_describe_cmd->add_option("node", node_describe_name, "node name")->required();

  box_options tree_opts;
  std::string tree_node;
  int tree_depth = 4;
  auto tree_cmd = app.add_subcommand(
    "tree", "the live supervision tree of every node (or one): supervisors with strategy,\n"
            "restarts used/limit, children and recent exits; orchestrations by type\n"
            "example: convoy tree --node node-1 --depth 3");
  tree_opts.add_to(tree_cmd);
  tree_cmd->add_option("--node", tree_node, "only this node");
  tree_cmd->add_option("--depth", tree_depth, "levels to show (default 4)")->check(CLI::Range(1, 16));

  auto host = app.add_subcommand("host", "hosts and host instances\nexample: convoy host list");
  host->require_subcommand(1);
  box_options hosts_opts;
  auto hosts_cmd = host->add_subcommand(
    "list", "host instances: node, state, heartbeat, instances, throttle state\n"
            "example: convoy host list -o json");
  hosts_opts.add_to(hosts_cmd);
  struct host_verb {
    host_verb(const char* n, const char* h) : name(n), help(h) {}
    const char* name;
    const char* help;
    CLI::App* cmd = nullptr;
    box_options opts;
    std::string host, node;
  };
  std::array<host_verb, 2> host_verbs{
    host_verb{"stop", "stop a node's instance of a host (it takes no work until started)\n"
                      "example: convoy host stop processing --node node-1"},
    host_verb{"start", "start a host instance an operator stopped\n"
                       "example: convoy host start processing --node node-1"}};
  for (auto& v : host_verbs) {
    v.cmd = host->add_subcommand(v.name, v.help);
    v.opts.add_to(v.cmd);
    v.cmd->add_option("host", v.host, "receive, processing or send")->required();
    v.cmd->add_option("--node", v.node, "the node running it")->required();
  }

  auto orch = app.add_subcommand("orch", "orchestration instances\n"
                                          "example: convoy orch list --status failed");
  orch->require_subcommand(1);
  box_options list_opts;
  instance_filter filter;
  auto add_filters = [&filter](CLI::App* cmd) {
    cmd->add_option("--status", filter.status, "only instances in this status")
      ->check(CLI::IsMember(status_names()));
    cmd->add_option("--type", filter.type, "only this orchestration type");
    cmd->add_option("--host", filter.owner, "only instances this node owns");
    cmd->add_option("--group-by", filter.group_by, "count by status, type, host or error")
      ->check(CLI::IsMember({"status", "type", "host", "error"}));
    cmd->add_option("--limit", filter.limit, "look at the newest N instances (default 100)")
      ->check(CLI::Range(1, 100000));
  };
  auto list_cmd = orch->add_subcommand("list", "list instances, newest first\n"
                                               "example: convoy orch list --status failed -o json");
  list_opts.add_to(list_cmd);
  add_filters(list_cmd);
  box_options count_opts;
  auto count_cmd = orch->add_subcommand(
    "count", "count instances (of the newest --limit), optionally grouped\n"
             "example: convoy orch count --group-by status --limit 10000");
  count_opts.add_to(count_cmd);
  add_filters(count_cmd);
  // A verb about one instance: `convoy orch VERB ID [--redis ...] [-o ...]`.
  auto instance_verb = [orch](const char* name, const char* help, box_options& opts,
                              std::string& id) {
    auto cmd = orch->add_subcommand(name, help);
    opts.add_to(cmd);
    cmd->add_option("id", id, "instance id")->required();
    return cmd;
  };
  box_options history_opts;
  std::string history_id;
  bool history_follow = false;
  auto history_cmd = instance_verb("history",
                                   "an instance's journal, event by event\n"
                                   "example: convoy orch history order-1001 --follow",
                                   history_opts, history_id);
  history_cmd->add_flag("-f,--follow", history_follow, "print new events until it finishes");
  box_options stack_opts;
  std::string stack_id;
  auto stack_cmd = instance_verb("stack",
                                 "what an instance awaits now (and messages waiting in its "
                                 "mailbox)\nexample: convoy orch stack order-1003",
                                 stack_opts, stack_id);
  box_options describe_opts;
  std::string describe_id;
  auto describe_cmd = instance_verb(
    "describe", "show one instance with its journal\nexample: convoy orch describe hello-1",
    describe_opts, describe_id);
  box_options start_opts;
  std::string start_type, start_input = "null", start_id;
  auto start_cmd = orch->add_subcommand(
    "start", "submit a message that starts an instance\n"
             "example: convoy orch start hello '\"Ada\"' --id hello-ada");
  start_opts.add_to(start_cmd, false);
  start_cmd->add_option("type", start_type, "orchestration type")->required();
  start_cmd->add_option("input", start_input, "input as JSON (default null)");
  start_cmd->add_option("--id", start_id, "instance id (default: generated)");

  box_options signal_opts;
  std::string signal_id, signal_name, signal_payload = "null";
  auto signal_cmd = orch->add_subcommand(
    "signal", "send a signal (an external event by name) to a running instance\n"
              "example: convoy orch signal counter-1 add 5");
  signal_opts.add_to(signal_cmd, false);
  signal_cmd->add_option("id", signal_id, "instance id")->required();
  signal_cmd->add_option("name", signal_name, "signal name")->required();
  signal_cmd->add_option("payload", signal_payload, "payload as JSON (default null)");
  box_options cancel_opts;
  std::string cancel_id;
  auto cancel_cmd = orch->add_subcommand(
    "cancel", "cancel a running instance (its pending await raises cancelled_error)\n"
              "example: convoy orch cancel order-1001");
  cancel_opts.add_to(cancel_cmd, false);
  cancel_cmd->add_option("id", cancel_id, "instance id")->required();

  // suspend | resume | terminate: one instance by id, or every instance a filter matches.
  struct control_verb {
    control_verb(const char* n, const char* h) : name(n), help(h) {}
    const char* name;
    const char* help;
    CLI::App* cmd = nullptr;
    box_options opts;
    std::string id, reason;
    instance_filter filter;
    size_t limit = 0;
    bool yes = false;
  };
  std::array<control_verb, 3> controls{
    control_verb{"suspend",
                 "suspend an instance resumably (it takes no steps; what arrives for it is kept\n"
                 "until resume), or every instance a filter matches\n"
                 "example: convoy orch suspend order-1001 --reason 'supplier outage'"},
    control_verb{"resume",
                 "resume a suspended instance from its last persistence point, on any node\n"
                 "example: convoy orch resume --type order --yes"},
    control_verb{"terminate",
                 "end an instance as terminated with a reason (timers dropped, later messages\n"
                 "kept as zombies), or every instance a filter matches\n"
                 "example: convoy orch terminate order-1001 --reason 'duplicate order'"}};
  for (auto& c : controls) {
    c.cmd = orch->add_subcommand(c.name, c.help);
    c.opts.add_to(c.cmd);
    c.cmd->add_option("id", c.id, "instance id (or select by --status/--type/--host)");
    auto reason = c.cmd->add_option("--reason", c.reason, "why (recorded in its history)");
    if (std::string_view(c.name) != "resume")
      reason->required();
    c.cmd->add_option("--status", c.filter.status, "every instance in this status")
      ->check(CLI::IsMember(status_names()));
    c.cmd->add_option("--type", c.filter.type, "every instance of this orchestration type");
    c.cmd->add_option("--host", c.filter.owner, "every instance this node owns");
    c.cmd->add_option("--limit", c.limit, "at most N instances (newest first)")
      ->check(CLI::Range(1, 10000000));
    c.cmd->add_flag("-y,--yes", c.yes, "do not ask for confirmation");
  }
  box_options purge_opts;
  std::string purge_status, purge_older;
  bool purge_yes = false;
  auto purge_cmd = orch->add_subcommand(
    "purge", "delete finished instances' records and journals (never unfinished ones)\n"
             "example: convoy orch purge --status completed --older-than 1h --yes");
  purge_opts.add_to(purge_cmd);
  purge_cmd->add_option("--status", purge_status, "only this final status")
    ->check(CLI::IsMember({"completed", "failed", "cancelled", "terminated"}));
  purge_cmd->add_option("--older-than", purge_older, "last updated longer ago than this (1h, 7d)");
  purge_cmd->add_flag("-y,--yes", purge_yes, "do not ask for confirmation");

  auto msg = app.add_subcommand("msg", "messages published into the MessageBox\n"
                                        "example: convoy msg list --zombies");
  msg->require_subcommand(1);
  box_options publish_opts;
  std::string publish_type, publish_body = "null";
  std::vector<std::string> publish_props;
  auto publish_cmd = msg->add_subcommand(
    "publish", "publish a message: routed by correlation, else by activation subscription\n"
               "example: convoy msg publish payment '{\"amount\":250}' --prop order-id=1001");
  publish_opts.add_to(publish_cmd, false);
  publish_cmd->add_option("type", publish_type, "message type")->required();
  publish_cmd->add_option("body", publish_body, "body as JSON (default null)");
  publish_cmd->add_option("--prop", publish_props, "message property NAME=VALUE (repeatable)");
  std::string publish_id;
  publish_cmd->add_option("--id", publish_id, "instance id if the message activates one");
  box_options mlist_opts;
  bool list_zombies = false;
  size_t mlist_limit = 100;
  auto mlist_cmd = msg->add_subcommand(
    "list", "messages no subscription wanted (default) or zombies (--zombies)\n"
            "example: convoy msg list --zombies -o json");
  mlist_opts.add_to(mlist_cmd);
  mlist_cmd->add_flag("--zombies", list_zombies, "messages that arrived for finished instances");
  mlist_cmd->add_option("--limit", mlist_limit, "at most this many")->check(CLI::Range(1, 100000));

  auto run_adapter_verb = add_adapter_commands(*msg);

  auto box_cmd = app.add_subcommand("box", "the MessageBox\nexample: convoy box stat");
  box_cmd->require_subcommand(1);
  box_options stat_opts;
  int stat_interval = 0;
  auto stat_cmd = box_cmd->add_subcommand(
    "stat", "server, role, replicas and lag, memory, queue depths, rollbacks\n"
            "example: convoy box stat -i 2");
  stat_opts.add_to(stat_cmd);
  stat_cmd->add_option("-i,--interval", stat_interval, "repeat every N seconds until Ctrl-C")
    ->check(CLI::Range(1, 3600));
  box_options health_opts;
  auto health_cmd = app.add_subcommand(
    "health", "exit code 0 only when the cluster serves (MessageBox, a live node, a live\n"
              "cluster supervisor)\nexample: convoy health && echo ok");
  health_opts.add_to(health_cmd);

  box_options version_opts;
  auto version_cmd = app.add_subcommand("version", "print the versions of Convoy, CAF, hiredis "
                                                   "and the Redis server\nexample: convoy version");
  version_opts.add_to(version_cmd, false);
  auto run_cert = add_cert_commands(app);
  auto run_secret = add_secret_commands(app);
  auto run_chaos = add_chaos_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 checks "a subcommand is required" before it reports words it did not expect, so
    // `convoy lsit` would be told only that a subcommand is missing: name the word instead.
    if (auto what = unexpected_word(app); !what.empty()) {
      std::cerr << "convoy: " << what << " (see convoy --help)\n";
      return 2;
    }
    std::cerr << "convoy: " << e.what() << " (see convoy --help)\n";
    return 2;
  }

  auto with_target = [](box_options& o, auto&& fn) {
    if (auto err = o.resolve(); !err.empty()) {
      std::cerr << "convoy: " << err << "\n";
      return 2;
    }
    target t;
    if (auto err = resolve_target(o.redis, o.prefix, t, o.file_redis, o.file_prefix, o.file_path);
        !err.empty()) {
      std::cerr << "convoy: " << err << "\n";
      return 2;
    }
    return fn(t);
  };

  if (dev_cmd->parsed())
    return run_dev(dev);
  if (nodes_cmd->parsed())
    return with_target(nodes_opts, [&](const target& t) { return run_node_list(t, nodes_opts.format()); });
  if (tree_cmd->parsed())
    return with_target(tree_opts, [&](const target& t) {
      return run_tree(t, tree_node, tree_depth, tree_opts.format());
    });
  if (hosts_cmd->parsed())
    return with_target(hosts_opts, [&](const target& t) { return run_host_list(t, hosts_opts.format()); });
  if (node_describe_cmd->parsed())
    return with_target(node_describe_opts, [&](const target& t) {
      return run_node_describe(t, node_describe_name, node_describe_opts.format());
    });
  for (auto& v : host_verbs)
    if (v.cmd->parsed())
      return with_target(v.opts, [&](const target& t) {
        return run_host_command(t, v.host, v.node, v.name, v.opts.format());
      });
  if (node_cmd->parsed())
    return run_node(config_path, config_sets, dump_config);
  if (list_cmd->parsed())
    return with_target(list_opts, [&](const target& t) {
      return run_orch_list(t, list_opts.format(), filter);
    });
  if (count_cmd->parsed())
    return with_target(count_opts, [&](const target& t) {
      return run_orch_count(t, count_opts.format(), filter);
    });
  if (history_cmd->parsed())
    return with_target(history_opts, [&](const target& t) {
      return run_orch_history(t, history_id, history_follow, history_opts.format());
    });
  if (stack_cmd->parsed())
    return with_target(stack_opts, [&](const target& t) {
      return run_orch_stack(t, stack_id, stack_opts.format());
    });
  if (stat_cmd->parsed())
    return with_target(stat_opts, [&](const target& t) {
      return run_box_stat(t, stat_opts.format(), stat_interval);
    });
  if (health_cmd->parsed())
    return with_target(health_opts, [&](const target& t) {
      return run_health(t, health_opts.format());
    });
  if (describe_cmd->parsed())
    return with_target(describe_opts, [&](const target& t) {
      return run_orch_describe(t, describe_id, describe_opts.format());
    });
  if (start_cmd->parsed())
    return with_target(start_opts, [&](const target& t) {
      return run_orch_start(t, start_type, start_input, start_id);
    });
  if (signal_cmd->parsed())
    return with_target(signal_opts, [&](const target& t) {
      return run_orch_send(t, signal_id, "signal", signal_name, signal_payload);
    });
  if (cancel_cmd->parsed())
    return with_target(cancel_opts, [&](const target& t) {
      return run_orch_send(t, cancel_id, "cancel", "cancel", "null");
    });
  for (auto& c : controls) {
    if (!c.cmd->parsed())
      continue;
    bool by_filter = !c.filter.status.empty() || !c.filter.type.empty() || !c.filter.owner.empty();
    if (c.id.empty() == !by_filter || (!c.id.empty() && c.limit > 0)) {
      std::cerr << "convoy: orch " << c.name
                << " needs an instance id or a filter (--status, --type, --host), not both\n";
      return 2;
    }
    return with_target(c.opts, [&](const target& t) {
      return c.id.empty()
               ? run_orch_bulk(t, c.name, c.filter, c.limit, c.reason, c.yes, c.opts.format())
               : run_orch_control(t, c.name, c.id, c.reason, c.opts.format());
    });
  }
  if (purge_cmd->parsed())
    return with_target(purge_opts, [&](const target& t) {
      return run_orch_purge(t, purge_status, purge_older, purge_yes, purge_opts.format());
    });
  if (publish_cmd->parsed())
    return with_target(publish_opts, [&](const target& t) {
      return run_msg_publish(t, publish_type, publish_body, publish_props, publish_id);
    });
  if (mlist_cmd->parsed())
    return with_target(mlist_opts, [&](const target& t) {
      return run_msg_list(t, list_zombies, mlist_opts.format(), mlist_limit);
    });
  if (auto code = run_adapter_verb())
    return *code;
  if (auto code = run_cert())
    return *code;
  if (auto code = run_secret())
    return *code;
  if (auto code = run_chaos())
    return *code;
  if (version_cmd->parsed())
    return with_target(version_opts, [&](const target& t) { return run_version(t); });
  return 2;
}
