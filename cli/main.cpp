#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

using namespace convoy::cli;

namespace {

/// Adds the options every MessageBox-reading verb shares.
struct box_options {
  std::string redis;
  std::string prefix;
  std::string output = "text";

  void add_to(CLI::App* cmd, bool with_output = true) {
    cmd->add_option("--redis", redis, "MessageBox address host:port (env CONVOY_REDIS)");
    cmd->add_option("--prefix", prefix, "key prefix (env CONVOY_PREFIX, default convoy:)");
    if (with_output)
      cmd->add_option("-o,--output", output, "output format")
        ->check(CLI::IsMember({"text", "json", "jsonl"}));
  }

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

} // namespace

int main(int argc, char** argv) {
  block_stop_signals();
  CLI::App app{"Convoy: durable business processes as C++20 coroutines on CAF and Redis"};
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

  auto host = app.add_subcommand("host", "hosts and host instances");
  host->require_subcommand(1);
  box_options hosts_opts;
  auto hosts_cmd = host->add_subcommand(
    "list", "host instances: node, state, heartbeat, instances, throttle state\n"
            "example: convoy host list -o json");
  hosts_opts.add_to(hosts_cmd);

  auto orch = app.add_subcommand("orch", "orchestration instances");
  orch->require_subcommand(1);
  box_options list_opts;
  instance_filter filter;
  auto add_filters = [&filter](CLI::App* cmd) {
    cmd->add_option("--status", filter.status, "only instances in this status")
      ->check(CLI::IsMember({"pending", "running", "waiting", "completed", "failed", "suspended",
                             "cancelled"}));
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

  auto msg = app.add_subcommand("msg", "messages published into the MessageBox");
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

  auto box_cmd = app.add_subcommand("box", "the MessageBox");
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
                                                   "and the Redis server");
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

  auto with_target = [](const box_options& o, auto&& fn) {
    target t;
    if (auto err = resolve_target(o.redis, o.prefix, t); !err.empty()) {
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
