// `convoy node describe NODE` and `convoy host start|stop HOST --node NODE`.
#include "cli.hpp"
#include "output.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/runtime/node_config.hpp"

#include <algorithm>
#include <iostream>
#include <optional>
#include <sstream>

namespace convoy::cli {

namespace {

/// Supervisors, workers and restarts under one recorded supervisor (see to_json of
/// supervisor_description).
struct tree_summary {
  size_t supervisors = 0, workers = 0, stopped = 0;
  int64_t restarts = 0;

  void add(const json& sup) {
    ++supervisors;
    for (const auto& c : sup.value("children", json::array())) {
      restarts += c.value("restarts", int64_t{0});
      if (c.value("state", "") == "stopped")
        ++stopped;
      if (c.contains("supervisor"))
        add(c["supervisor"]);
      else
        ++workers;
    }
  }
};

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty())
      out.push_back(item);
  return out;
}

/// The membership and node `name` in it; or nothing, with `code` set after printing why (a
/// failing MessageBox exits 3, an unknown node 4).
std::optional<std::pair<persistence::message_box::cluster_view, persistence::message_box::node_info>>
find_node(const target& t, persistence::message_box& box, const std::string& name, int& code) {
  auto view = box.list_nodes();
  if (!view.error.empty()) {
    code = box_error(t, view.error);
    return std::nullopt;
  }
  for (const auto& n : view.nodes)
    if (n.name == name)
      return std::pair{view, n};
  std::cerr << "convoy: no node named '" << name << "' in the cluster (see convoy node list)\n";
  code = 4;
  return std::nullopt;
}

} // namespace

int run_node_describe(const target& t, const std::string& name, output_format fmt) {
  int code = 0;
  auto found = find_node(t, *open_box(t), name, code);
  if (!found)
    return code;
  const auto& [view, node] = *found;
  const auto* n = &node;
  auto recorded = runtime::recorded_tree(*n);
  tree_summary sum;
  if (recorded["tree"].is_object())
    sum.add(recorded["tree"]);
  auto throttle = json::parse(n->throttle.empty() ? "{}" : n->throttle, nullptr, false);
  bool supervisor = n->name == view.supervisor;
  json out{{"name", n->name},
           {"status", n->status},
           {"lease_expires_ms", n->lease_expires_ms},
           {"heartbeat_ms", n->heartbeat_ms},
           {"generation", n->generation},
           {"cluster_supervisor", supervisor},
           {"supervisor_epoch", supervisor ? json(view.supervisor_epoch) : json(nullptr)},
           {"hosts", split(n->hosts)},
           {"stopped_hosts", split(n->stopped)},
           {"load", n->load},
           {"admin", n->admin.empty() ? json(nullptr) : json("http://" + n->admin + "/")},
           {"throttle", throttle.is_discarded() ? json::object() : throttle},
           {"tree", {{"recorded", recorded["tree"].is_object()},
                     {"supervisors", sum.supervisors},
                     {"workers", sum.workers},
                     {"stopped", sum.stopped},
                     {"restarts", sum.restarts}}}};
  if (fmt != output_format::text) {
    print_json(out, fmt);
    return 0;
  }
  std::ostringstream card;
  auto row = [&card](const char* key, const std::string& value) {
    card << pad_to(key, 20) << value << "\n";
  };
  auto left = n->lease_expires_ms - wall_clock_ms();
  row("node", n->name);
  row("status", n->status);
  row("lease", left >= 0 ? "expires in " + std::to_string(left) + " ms"
                         : "lapsed " + std::to_string(-left) + " ms ago");
  row("heartbeat", age(n->heartbeat_ms));
  row("generation", std::to_string(n->generation) + " (joins)");
  row("cluster supervisor",
      supervisor ? "yes (lease epoch " + std::to_string(view.supervisor_epoch) + ")" : "no");
  row("hosts", n->hosts.empty() ? "-" : n->hosts);
  if (!n->stopped.empty())
    row("stopped hosts", n->stopped + " (by an operator)");
  row("load", std::to_string(n->load) + " instances in memory");
  row("admin", n->admin.empty() ? "-" : "http://" + n->admin + "/");
  std::string throttled;
  if (throttle.is_object())
    for (const auto& [host, s] : throttle.items())
      throttled += (throttled.empty() ? "" : "; ") + host + ": " + s.value("cause", "");
  row("throttle", throttled.empty() ? "no" : throttled);
  row("tree", recorded["tree"].is_object()
                ? std::to_string(sum.supervisors) + " supervisors, " + std::to_string(sum.workers)
                    + " workers, " + std::to_string(sum.stopped) + " stopped, "
                    + std::to_string(sum.restarts) + " restarts"
                : "(not recorded yet)");
  std::cout << card.str();
  return 0;
}

int run_host_command(const target& t, const std::string& host, const std::string& node,
                     const std::string& command, output_format fmt) {
  const auto& known = runtime::known_hosts;
  if (std::find(known.begin(), known.end(), host) == known.end()) {
    std::cerr << "convoy: unknown host '" << host << "' (known: receive, processing, send)\n";
    return 2;
  }
  auto box = open_box(t);
  int code = 0;
  auto found = find_node(t, *box, node, code);
  if (!found)
    return code;
  const auto* n = &found->second;
  auto runs = split(n->hosts), stopped = split(n->stopped);
  if (std::find(runs.begin(), runs.end(), host) == runs.end()
      && std::find(stopped.begin(), stopped.end(), host) == stopped.end()) {
    std::cerr << "convoy: node '" << node << "' runs no instance of host '" << host
              << "' (it runs: " << (n->hosts.empty() ? "none" : n->hosts) << ")\n";
    return 2;
  }
  if (auto err = box->command_host(node, host, command); !err.empty())
    return box_error(t, err);
  if (fmt != output_format::text)
    print_json(json{{"host", host}, {"node", node}, {"requested", command}}, fmt);
  else
    std::cout << "asked node " << node << " to " << command << " host " << host
              << " (it acts on its next heartbeat)\n";
  return 0;
}

} // namespace convoy::cli
