#include "cli.hpp"
#include "output.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/adapters/attach.hpp"
#include "convoy/adapters/secrets.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "examples.hpp"

#include <caf/config.hpp>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>
#include <sstream>

#include <unistd.h>

namespace convoy::cli {

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int wait_for_stop_signal(int ms) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  auto sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

std::string dev_state_file() {
  auto dir = std::getenv("XDG_RUNTIME_DIR");
  std::string base = dir && *dir ? dir : "/tmp";
  return base + "/convoy-dev-" + std::to_string(::getuid()) + ".address";
}

std::string resolve_target(const std::string& flag, const std::string& prefix, target& out) {
  std::string address;
  if (!flag.empty()) {
    address = flag;
    out.source = "--redis";
  } else if (auto env = std::getenv("CONVOY_REDIS"); env && *env) {
    address = env;
    out.source = "CONVOY_REDIS";
  } else if (std::ifstream in(dev_state_file()); in && std::getline(in, address) && !address.empty()) {
    out.source = "the running convoy dev";
  } else {
    address = "127.0.0.1:6379";
    out.source = "default";
  }
  if (!persistence::parse_address(address, out.endpoint))
    return "MessageBox address '" + address + "' (from " + out.source + ") is not host:port";
  if (auto pw = std::getenv("CONVOY_REDIS_PASSWORD"))
    out.endpoint.password = pw;
  if (!prefix.empty())
    out.prefix = prefix;
  else if (auto env = std::getenv("CONVOY_PREFIX"); env && *env)
    out.prefix = env;
  return {};
}

namespace {

/// Checks an instance id given as `what`; prints the one-line error and returns false if bad.
bool valid_id(const std::string& id, const std::string& what) {
  if (persistence::valid_name(id))
    return true;
  std::cerr << "convoy: " << what << "'" << id
            << "' is not a valid instance id ([A-Za-z0-9._:-], 1-128)\n";
  return false;
}

} // namespace

std::unique_ptr<persistence::message_box> open_box(const target& t) {
  persistence::message_box_config cfg;
  cfg.endpoint = t.endpoint;
  cfg.prefix = t.prefix;
  return std::make_unique<persistence::message_box>(std::move(cfg));
}

/// One line for an unreachable or failing MessageBox, naming where the address came from.
int box_error(const target& t, const std::string& error) {
  std::string why = error;
  if (why.rfind(persistence::connection_error_prefix, 0) == 0)
    why = why.substr(persistence::connection_error_prefix.size());
  std::cerr << "convoy: MessageBox at " << t.endpoint.address() << " (from " << t.source
            << "): " << why << "\n";
  return 3;
}

int run_node(const std::string& config_path, const std::vector<std::string>& sets,
             bool dump_config) {
  auto loaded = runtime::load_node_config(
    runtime::config_sources{config_path, runtime::convoy_environment(), sets});
  if (auto err = std::get_if<std::string>(&loaded)) {
    std::cerr << "convoy: " << *err << "\n";
    return 2;
  }
  auto cfg = std::get<runtime::node_config>(std::move(loaded));
  if (dump_config) {
    std::cout << runtime::dump_config(cfg);
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
  registry reg;
  examples::register_all(reg);
  runtime::node n(cfg, reg);
  // Send ports that name a credential resolve it from the credential store, with the master
  // key file of `convoy secret init` ($CONVOY_SECRET_FILE or ~/.config/convoy/master.key).
  adapters::credential_resolver resolver;
  if (auto key_file = adapters::default_key_file(); std::filesystem::exists(key_file)) {
    auto opened = adapters::credential_store::open(key_file, n.message_box().commands(), cfg.prefix);
    if (auto err = std::get_if<std::string>(&opened)) {
      std::cerr << "convoy: the credential store cannot open: " << *err << "\n";
      return 2;
    }
    auto store = std::make_shared<adapters::credential_store>(
      std::get<adapters::credential_store>(std::move(opened)));
    resolver = [store](const std::string& name, std::string& error) -> std::optional<std::string> {
      adapters::store_error failed;
      auto value = store->get(name, failed);
      if (!value) {
        error = failed.message;
        return std::nullopt;
      }
      return std::string(value->view());
    };
  }
  if (auto err = adapters::attach(n, reg, resolver); !err.empty()) {
    std::cerr << "convoy: " << (config_path.empty() ? "configuration" : config_path) << ": "
              << err << "\n";
    return 2;
  }
  if (auto err = n.start(); !err.empty()) {
    std::cerr << "convoy: node " << cfg.name << " cannot start: " << err << "\n";
    return 3;
  }
  int sig = 0;
  while ((sig = wait_for_stop_signal(500)) == 0) {
    if (!n.serving()) {
      // The node supervisor gave up (restart intensity exceeded): as an OTP application
      // whose top supervisor dies, the node stops, so that its own supervisor (systemd, a
      // container runtime) can start it afresh. Its work is taken over meanwhile.
      std::cerr << "convoy: node " << cfg.name << " stopped serving: its supervision tree "
                << "gave up; see the log\n";
      n.stop();
      return 4;
    }
  }
  spdlog::info("node {} received signal {}, stopping", cfg.name, sig);
  n.stop();
  return 0;
}

int run_orch_list(const target& t, output_format fmt, size_t limit) {
  auto box = open_box(t);
  auto listed = box->list_instances(limit);
  if (!listed.error.empty())
    return box_error(t, listed.error);
  std::cout << (fmt == output_format::json ? instances_json(listed.instances).dump(2) + "\n"
                                           : instances_table(listed.instances));
  return 0;
}

int run_node_list(const target& t, output_format fmt) {
  auto box = open_box(t);
  auto view = box->list_nodes();
  if (!view.error.empty())
    return box_error(t, view.error);
  const auto& nodes = view.nodes;
  const auto& holder = view.supervisor;
  auto now = wall_clock_ms();
  if (fmt == output_format::json) {
    json out{{"supervisor", holder.empty() ? json(nullptr) : json(holder)},
             {"supervisor_epoch", view.supervisor_epoch},
             {"nodes", json::array()}};
    for (const auto& n : nodes)
      out["nodes"].push_back({{"name", n.name},
                              {"status", n.status},
                              {"hosts", n.hosts},
                              {"load", n.load},
                              {"generation", n.generation},
                              {"heartbeat_ms", n.heartbeat_ms},
                              {"lease_expires_ms", n.lease_expires_ms},
                              {"admin", n.admin.empty() ? json(nullptr) : json("http://" + n.admin + "/")}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << pad_to("NODE", 24) << pad_to("STATUS", 8) << pad_to("HOSTS", 28) << pad_to("LOAD", 7)
            << pad_to("HEARTBEAT", 11) << "LEASE\n";
  for (const auto& n : nodes) {
    auto left = n.lease_expires_ms - now;
    std::cout << pad_to(n.name + (n.name == holder ? " *" : ""), 24) << pad_to(n.status, 8)
              << pad_to(n.hosts, 28) << pad_to(std::to_string(n.load), 7)
              << pad_to(age(n.heartbeat_ms), 11)
              << (left >= 0 ? "expires in " + std::to_string(left) + " ms"
                            : "lapsed " + std::to_string(-left) + " ms ago")
              << "\n";
  }
  if (nodes.empty())
    std::cout << "(no nodes)\n";
  else
    std::cout << "* cluster supervisor (lease epoch " << view.supervisor_epoch << ")\n";
  return 0;
}

namespace {

/// Orchestrations a node owns and has not finished, by type: the leaves of its tree. Read
/// from the newest `scan` instance records (an overview, not an exact count on huge stores).
std::map<std::string, std::map<std::string, size_t>> owned_instances(persistence::message_box& box,
                                                                      size_t scan,
                                                                      std::string& error) {
  std::map<std::string, std::map<std::string, size_t>> out; // node -> type -> count
  auto listed = box.list_instances(scan);
  error = listed.error;
  for (const auto& r : listed.instances) {
    auto status = std::string(to_string(r.status));
    if (status == "running" || status == "waiting" || status == "pending")
      ++out[r.owner][r.type];
  }
  return out;
}

/// The membership and the unfinished instances each node owns, read together.
struct cluster_snapshot {
  persistence::message_box::cluster_view view;
  std::map<std::string, std::map<std::string, size_t>> owned;
};

/// Fills `out`; returns 0, or the exit code after printing why the MessageBox failed.
int read_cluster(const target& t, cluster_snapshot& out) {
  auto box = open_box(t);
  out.view = box->list_nodes();
  if (!out.view.error.empty())
    return box_error(t, out.view.error);
  std::string error;
  out.owned = owned_instances(*box, 10000, error);
  return error.empty() ? 0 : box_error(t, error);
}

struct tree_printer {
  int depth_limit;
  std::ostringstream out;

  void line(const std::string& prefix, bool last, const std::string& text) {
    out << prefix << (last ? "└─ " : "├─ ") << text << "\n";
  }

  static std::string restarts_text(const json& sup) {
    return "restarts " + std::to_string(sup.value("restarts_in_period", 0)) + "/"
           + std::to_string(sup.value("intensity", 0)) + " in "
           + std::to_string(sup.value("period_ms", 0) / 1000) + "s";
  }

  /// A supervisor's recent exits, oldest first.
  void exits(const json& sup, const std::string& prefix) {
    for (const auto& e : sup.value("recent_exits", json::array()))
      out << prefix << "   exit: " << e.value("child", "") << " " << e.value("reason", "")
          << " (" << e.value("action", "") << ", " << age(e.value("at_ms", int64_t{0})) << ")\n";
  }

  /// A supervisor's children (and, for host workers, what the node said of the host).
  void children(const json& sup, const json& hosts, const std::map<std::string, size_t>* owned,
                const std::string& prefix, int depth) {
    if (depth > depth_limit || !sup.contains("children"))
      return;
    const auto& kids = sup["children"];
    for (size_t i = 0; i < kids.size(); ++i) {
      const auto& c = kids[i];
      bool last = i + 1 == kids.size();
      std::string text = c.value("id", "?") + "  " + c.value("kind", "") + " "
                         + c.value("restart", "") + " " + c.value("state", "")
                         + "  restarts " + std::to_string(c.value("restarts", 0));
      if (c.value("unresponsive", false))
        text += "  (did not answer)";
      if (c.contains("supervisor"))
        text += "  [" + c["supervisor"].value("strategy", "") + ", "
                + restarts_text(c["supervisor"]) + "]";
      auto host = hosts.find(c.value("id", ""));
      if (host != hosts.end()) {
        if (host->contains("instances_in_memory"))
          text += "  · " + std::to_string((*host)["instances_in_memory"].get<int64_t>())
                  + " instances in memory";
        if (host->contains("throttle"))
          text += "  · THROTTLED: " + (*host)["throttle"].value("cause", "");
      }
      line(prefix, last, text);
      auto inner = prefix + (last ? "   " : "│  ");
      if (c.contains("supervisor")) {
        children(c["supervisor"], hosts, owned, inner, depth + 1);
        exits(c["supervisor"], inner);
      }
      if (c.value("id", "") == "processing" && owned && depth + 1 <= depth_limit) {
        size_t total = 0;
        for (const auto& [type, n] : *owned)
          total += n;
        line(inner, true, "orchestrations: " + std::to_string(total) + " owned, unfinished");
        size_t k = 0;
        for (const auto& [type, n] : *owned)
          line(inner + "   ", ++k == owned->size(), type + ": " + std::to_string(n));
      }
    }
  }
};

} // namespace

int run_tree(const target& t, const std::string& node, int depth, output_format fmt) {
  cluster_snapshot snap;
  if (auto code = read_cluster(t, snap))
    return code;
  const auto& view = snap.view;
  const auto& owned = snap.owned;
  json trees = json::array();
  bool found = false;
  for (const auto& n : view.nodes) {
    if (!node.empty() && n.name != node)
      continue;
    found = true;
    auto published = json::parse(n.tree.empty() ? "{}" : n.tree, nullptr, false);
    if (!published.is_object())
      published = json::object();
    json entry{{"node", n.name}, {"status", n.status}};
    entry["tree"] = published.value("tree", json(nullptr));
    entry["hosts"] = published.value("hosts", json::object());
    json orchestrations = json::object();
    if (auto i = owned.find(n.name); i != owned.end())
      for (const auto& [type, count] : i->second)
        orchestrations[type] = count;
    entry["orchestrations"] = std::move(orchestrations);
    trees.push_back(std::move(entry));
  }
  if (!node.empty() && !found) {
    std::cerr << "convoy: no node named '" << node << "' in the cluster (see convoy node list)\n";
    return 1;
  }
  if (fmt == output_format::json) {
    std::cout << json{{"supervisor", view.supervisor.empty() ? json(nullptr) : json(view.supervisor)},
                      {"nodes", trees}}
                   .dump(2)
              << "\n";
    return 0;
  }
  tree_printer p{depth, {}};
  for (const auto& entry : trees) {
    const auto& tree = entry["tree"];
    auto name = entry["node"].get<std::string>();
    p.out << "node " << name << (name == view.supervisor ? " (cluster supervisor)" : "") << "  "
          << entry["status"].get<std::string>();
    if (tree.is_null()) {
      p.out << "  (no supervision tree recorded yet)\n";
      continue;
    }
    p.out << "  [" << tree.value("name", "") << ", " << tree.value("strategy", "") << ", "
          << tree_printer::restarts_text(tree) << "]\n";
    std::map<std::string, size_t> types;
    for (const auto& [type, count] : entry["orchestrations"].items())
      types[type] = count.get<size_t>();
    p.children(tree, entry["hosts"], &types, "", 2);
    p.exits(tree, "");
  }
  if (trees.empty())
    p.out << "(no nodes)\n";
  std::cout << p.out.str();
  return 0;
}

int run_host_list(const target& t, output_format fmt) {
  cluster_snapshot snap;
  if (auto code = read_cluster(t, snap))
    return code;
  const auto& view = snap.view;
  const auto& owned = snap.owned;
  json rows = json::array();
  for (const auto& n : view.nodes) {
    auto published = json::parse(n.tree.empty() ? "{}" : n.tree, nullptr, false);
    auto hosts = published.is_object() ? published.value("hosts", json::object()) : json::object();
    auto throttle = json::parse(n.throttle.empty() ? "{}" : n.throttle, nullptr, false);
    std::stringstream listed(n.hosts);
    std::string host;
    while (std::getline(listed, host, ',')) {
      if (host.empty())
        continue;
      json row{{"host", host}, {"node", n.name}, {"node_status", n.status},
               {"heartbeat_ms", n.heartbeat_ms}, {"throttled", false}};
      if (throttle.is_object() && throttle.contains(host)) {
        row["throttled"] = true;
        row["throttle_cause"] = throttle[host].value("cause", "");
      }
      if (hosts.contains(host) && hosts[host].contains("single_active_epoch"))
        row["single_active_epoch"] = hosts[host]["single_active_epoch"];
      if (host == "processing") {
        size_t active = 0;
        if (auto i = owned.find(n.name); i != owned.end())
          for (const auto& [type, count] : i->second)
            active += count;
        row["instances_in_memory"] = n.load;
        row["instances_owned_unfinished"] = active;
      }
      rows.push_back(std::move(row));
    }
  }
  if (fmt == output_format::json) {
    std::cout << json{{"host_instances", rows}}.dump(2) << "\n";
    return 0;
  }
  std::cout << pad_to("HOST", 12) << pad_to("NODE", 24) << pad_to("STATE", 10)
            << pad_to("HEARTBEAT", 11) << pad_to("INSTANCES", 11) << "THROTTLE\n";
  for (const auto& r : rows) {
    auto host = r["host"].get<std::string>();
    auto state = r["node_status"].get<std::string>() == "alive" ? "running" : "down";
    std::string instances = r.contains("instances_in_memory")
                              ? std::to_string(r["instances_in_memory"].get<int64_t>())
                              : "-";
    std::string name = host + (r.contains("single_active_epoch") ? " (1)" : "");
    std::cout << pad_to(name, 12) << pad_to(r["node"].get<std::string>(), 24) << pad_to(state, 10)
              << pad_to(age(r["heartbeat_ms"].get<int64_t>()), 11) << pad_to(instances, 11)
              << (r["throttled"].get<bool>() ? r["throttle_cause"].get<std::string>() : "no")
              << "\n";
  }
  if (rows.empty())
    std::cout << "(no host instances)\n";
  else
    std::cout << "(1) single-active: runs on one node at a time\n";
  return 0;
}

int run_orch_describe(const target& t, const std::string& id, output_format fmt) {
  if (!valid_id(id, ""))
    return 2;
  auto box = open_box(t);
  auto d = box->describe(id);
  if (!d.error.empty())
    return box_error(t, d.error);
  if (!d.found) {
    std::cerr << "convoy: no instance '" << id << "' in the MessageBox at "
              << t.endpoint.address() << "\n";
    return 4;
  }
  std::cout << (fmt == output_format::json ? description_json(d).dump(2) + "\n"
                                           : description_card(d));
  return 0;
}

int run_orch_start(const target& t, const std::string& type, const std::string& input,
                   const std::string& id) {
  if (!json::accept(input)) {
    std::cerr << "convoy: input is not valid JSON: " << input << "\n";
    return 2;
  }
  if (!id.empty() && !valid_id(id, "--id "))
    return 2;
  registry reg;
  examples::register_all(reg);
  if (reg.newest_version(type) == 0) {
    std::cerr << "convoy: unknown orchestration type '" << type << "' (known: ";
    auto types = reg.orchestration_types();
    for (size_t i = 0; i < types.size(); ++i)
      std::cerr << (i ? ", " : "") << types[i];
    std::cerr << ")\n";
    return 2;
  }
  auto box = open_box(t);
  if (auto err = box->submit("receive", type, input, id); !err.empty())
    return box_error(t, err);
  std::cout << "submitted " << type << (id.empty() ? "" : " as " + id)
            << " to the receive host at " << t.endpoint.address() << "\n";
  return 0;
}

int run_orch_send(const target& t, const std::string& id, const std::string& kind,
                  const std::string& name, const std::string& payload) {
  if (!valid_id(id, ""))
    return 2;
  if (!json::accept(payload)) {
    std::cerr << "convoy: payload is not valid JSON: " << payload << "\n";
    return 2;
  }
  if (name.empty() || name.size() > 128) {
    std::cerr << "convoy: the signal name must be 1-128 characters\n";
    return 2;
  }
  auto box = open_box(t);
  auto err = box->send_to_instance(id, kind, name, payload);
  if (err.rfind("CONVOY_NO_INSTANCE", 0) == 0) {
    std::cerr << "convoy: no instance '" << id << "' in the MessageBox at " << t.endpoint.address()
              << "\n";
    return 4;
  }
  if (err.rfind("CONVOY_FINAL", 0) == 0) {
    std::cerr << "convoy: instance '" << id << "': " << err.substr(13) << "\n";
    return 5;
  }
  if (!err.empty())
    return box_error(t, err);
  std::cout << (kind == "cancel" ? "cancellation requested for " : "signal '" + name + "' sent to ")
            << id << "\n";
  return 0;
}

int run_msg_publish(const target& t, const std::string& type, const std::string& body,
                    const std::vector<std::string>& props, const std::string& activation_id) {
  if (!activation_id.empty() && !valid_id(activation_id, "--id "))
    return 2;
  if (!persistence::valid_name(type)) {
    std::cerr << "convoy: message type '" << type << "' must be 1-128 characters of [A-Za-z0-9._:-]\n";
    return 2;
  }
  if (!json::accept(body)) {
    std::cerr << "convoy: body is not valid JSON: " << body << "\n";
    return 2;
  }
  std::map<std::string, std::string> properties;
  for (const auto& p : props) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || p.find('&') != std::string::npos
        || p.find('=', eq + 1) != std::string::npos) {
      std::cerr << "convoy: --prop '" << p << "' must be NAME=VALUE (no '&', one '=')\n";
      return 2;
    }
    properties[p.substr(0, eq)] = p.substr(eq + 1);
  }
  auto box = open_box(t);
  if (auto err = box->submit_message("receive", type, body, properties, activation_id); !err.empty())
    return box_error(t, err);
  std::cout << "published " << type << " to the receive host at " << t.endpoint.address() << "\n";
  return 0;
}

int run_msg_list(const target& t, bool zombies, output_format fmt, size_t limit) {
  auto box = open_box(t);
  auto key = zombies ? box->key_schema().zombies() : box->key_schema().unrouted();
  auto listed = box->list_stream(key, limit);
  if (!listed.error.empty())
    return box_error(t, listed.error);
  auto out = json::array();
  for (const auto& e : listed.entries) {
    json j = {{"id", e.id}};
    for (const auto& [k, v] : e.fields)
      j[k] = v;
    out.push_back(std::move(j));
  }
  if (fmt == output_format::json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << pad_to("ID", 18) << pad_to("TYPE", 14) << (zombies ? pad_to("INSTANCE", 24) : pad_to("REASON", 16))
            << "BODY\n";
  for (const auto& j : out)
    std::cout << pad_to(j["id"].get<std::string>(), 18) << pad_to(j.value("type", ""), 14)
              << (zombies ? pad_to(j.value("instance", ""), 24) : pad_to(j.value("reason", ""), 16))
              << j.value("body", "") << "\n";
  if (out.empty())
    std::cout << (zombies ? "(no zombies)\n" : "(no unrouted messages)\n");
  return 0;
}

int run_version(const target& t) {
  std::cout << "convoy " << CONVOY_VERSION << "\n"
            << "CAF " << CAF_VERSION / 10000 << "." << (CAF_VERSION / 100) % 100 << "."
            << CAF_VERSION % 100 << "\n"
            << "hiredis " << HIREDIS_MAJOR << "." << HIREDIS_MINOR << "." << HIREDIS_PATCH << "\n";
  auto box = open_box(t);
  auto v = box->server_version(std::chrono::milliseconds(1500));
  if (v.rfind("error: ", 0) == 0) {
    std::cout << "redis unreachable at " << t.endpoint.address() << " (from " << t.source << ")\n";
    return 0;
  }
  std::cout << "redis " << v << " at " << t.endpoint.address() << "\n";
  return 0;
}

} // namespace convoy::cli
