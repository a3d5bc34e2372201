#include "cli.hpp"
#include "output.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/adapters/attach.hpp"
#include "convoy/adapters/secrets.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "convoy/runtime/node_config.hpp"
#include "examples.hpp"

#include <caf/config.hpp>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
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

std::string resolve_target(const std::string& flag, const std::string& prefix, target& out,
                           const std::string& file_redis, const std::string& file_prefix,
                           const std::string& file_path) {
  std::string address;
  if (!flag.empty()) {
    address = flag;
    out.source = "--redis";
  } else if (auto env = std::getenv("CONVOY_REDIS"); env && *env) {
    address = env;
    out.source = "CONVOY_REDIS";
  } else if (!file_redis.empty()) {
    address = file_redis;
    out.source = file_path;
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
  else if (!file_prefix.empty())
    out.prefix = file_prefix;
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

namespace {

/// The newest `filter.limit` instances that match `filter`, or nothing after reporting why.
std::optional<std::vector<instance_record>> select_instances(const target& t,
                                                             const instance_filter& filter,
                                                             int& code) {
  auto box = open_box(t);
  auto listed = box->list_instances(filter.limit);
  if (!listed.error.empty()) {
    code = box_error(t, listed.error);
    return std::nullopt;
  }
  std::vector<instance_record> kept;
  for (auto& r : listed.instances)
    if ((filter.status.empty() || to_string(r.status) == filter.status)
        && (filter.type.empty() || r.type == filter.type)
        && (filter.owner.empty() || r.owner == filter.owner))
      kept.push_back(std::move(r));
  return kept;
}

std::string to_upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

/// The group an instance falls in for `--group-by`.
std::string group_of(const instance_record& r, const std::string& by) {
  if (by == "status")
    return std::string(to_string(r.status));
  if (by == "type")
    return r.type;
  if (by == "host")
    return r.owner.empty() ? "(none)" : r.owner;
  return r.error.empty() ? "(no error)" : r.error.substr(0, 120);
}

/// Counts by group, largest first.
std::vector<std::pair<std::string, size_t>> grouped(const std::vector<instance_record>& recs,
                                                    const std::string& by) {
  std::map<std::string, size_t> counts;
  for (const auto& r : recs)
    ++counts[group_of(r, by)];
  std::vector<std::pair<std::string, size_t>> out(counts.begin(), counts.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

int print_groups(const std::vector<instance_record>& recs, const instance_filter& filter,
                 output_format fmt) {
  auto groups = grouped(recs, filter.group_by);
  if (fmt != output_format::text) {
    json out = json::array();
    for (const auto& [group, n] : groups)
      out.push_back({{filter.group_by, group}, {"count", n}});
    print_json(out, fmt);
    return 0;
  }
  std::cout << pad_to("COUNT", 8) << to_upper(filter.group_by) << "\n";
  for (const auto& [group, n] : groups)
    std::cout << pad_to(std::to_string(n), 8) << group << "\n";
  if (groups.empty())
    std::cout << "(no instances)\n";
  return 0;
}

} // namespace

namespace {

/// Selects by `filter`, prints the groups when it groups, else calls `print` with the records.
template <class Print>
int on_selected(const target& t, output_format fmt, const instance_filter& filter, Print print) {
  int code = 0;
  auto recs = select_instances(t, filter, code);
  if (!recs)
    return code;
  if (!filter.group_by.empty())
    return print_groups(*recs, filter, fmt);
  print(*recs);
  return 0;
}

} // namespace

int run_orch_list(const target& t, output_format fmt, const instance_filter& filter) {
  return on_selected(t, fmt, filter, [fmt](const std::vector<instance_record>& recs) {
    if (fmt != output_format::text)
      print_json(instances_json(recs), fmt);
    else
      std::cout << instances_table(recs);
  });
}

int run_orch_count(const target& t, output_format fmt, const instance_filter& filter) {
  return on_selected(t, fmt, filter, [&](const std::vector<instance_record>& recs) {
    if (fmt != output_format::text)
      print_json(json{{"count", recs.size()}, {"of_newest", filter.limit}}, fmt);
    else
      std::cout << recs.size() << "\n";
  });
}

namespace {

/// Instance `id` with its journal; or nothing, with `code` set after printing why (a bad id
/// exits 2, a failing MessageBox 3, an unknown instance 4).
std::optional<persistence::instance_description> describe_or_report(
  const target& t, persistence::message_box& box, const std::string& id, int& code) {
  if (!valid_id(id, "")) {
    code = 2;
    return std::nullopt;
  }
  auto d = box.describe(id);
  if (!d.error.empty()) {
    code = box_error(t, d.error);
    return std::nullopt;
  }
  if (!d.found) {
    std::cerr << "convoy: no instance '" << id << "' in the MessageBox at "
              << t.endpoint.address() << "\n";
    code = 4;
    return std::nullopt;
  }
  return d;
}

/// One journal entry as an event line, or as JSON.
json entry_json(const journal_entry& e) {
  auto payload = json::parse(e.payload.empty() ? "null" : e.payload, nullptr, false);
  return {{"step", e.step},
          {"event", to_string(e.event)},
          {"op", to_string(e.op)},
          {"payload", payload.is_discarded() ? json(e.payload) : payload}};
}

void print_entries(const std::vector<journal_entry>& entries, size_t from, output_format fmt) {
  for (size_t i = from; i < entries.size(); ++i) {
    auto j = entry_json(entries[i]);
    if (fmt != output_format::text) {
      std::cout << j.dump() << "\n";
      continue;
    }
    auto payload = j["payload"].dump();
    if (payload.size() > 100)
      payload = payload.substr(0, 97) + "...";
    std::cout << pad_to(std::to_string(entries[i].step), 6) << pad_to(j["event"], 11)
              << pad_to(j["op"], 9) << payload << "\n";
  }
  std::cout.flush();
}

} // namespace

int run_orch_history(const target& t, const std::string& id, bool follow, output_format fmt) {
  auto box = open_box(t);
  size_t shown = 0;
  bool header = fmt == output_format::text;
  while (true) {
    int code = 0;
    auto found = describe_or_report(t, *box, id, code);
    if (!found)
      return code;
    const auto& d = *found;
    if (fmt == output_format::json && !follow) {
      json out = json::array();
      for (const auto& e : d.journal)
        out.push_back(entry_json(e));
      print_json(out, fmt);
      return 0;
    }
    if (header) {
      std::cout << pad_to("STEP", 6) << pad_to("EVENT", 11) << pad_to("OP", 9) << "PAYLOAD\n";
      header = false;
    }
    // A continue_as_new starts a new journal: show it from its start.
    if (d.journal.size() < shown)
      shown = 0;
    print_entries(d.journal, shown, fmt);
    shown = d.journal.size();
    if (!follow && fmt == output_format::text) {
      auto actions = json::array();
      for (const auto& a : box->audit_trail(id))
        if (auto j = json::parse(a, nullptr, false); j.is_object())
          actions.push_back(std::move(j));
      std::cout << operator_actions_text(actions);
    }
    if (!follow || is_final(d.record.status)) {
      if (follow && fmt == output_format::text)
        std::cout << "(instance " << to_string(d.record.status) << ")\n";
      return 0;
    }
    if (wait_for_stop_signal(500) != 0)
      return 0;
  }
}

int run_orch_stack(const target& t, const std::string& id, output_format fmt) {
  int code = 0;
  auto found = describe_or_report(t, *open_box(t), id, code);
  if (!found)
    return code;
  const auto& d = *found;
  // Scheduled operations without an outcome yet are what the instance awaits; messages that
  // arrived and were not consumed wait in its mailbox.
  std::map<uint32_t, const journal_entry*> open;
  std::vector<const journal_entry*> mailbox;
  size_t consumed = 0;
  for (const auto& e : d.journal) {
    if (e.event == entry_event::scheduled)
      open[e.step] = &e;
    else if (e.event == entry_event::completed || e.event == entry_event::failed
             || e.event == entry_event::cancelled)
      open.erase(e.step);
    else if (e.event == entry_event::arrived)
      mailbox.push_back(&e);
    else if (e.event == entry_event::consumed)
      ++consumed;
  }
  json awaits = json::array(), waiting = json::array();
  for (const auto& [step, e] : open)
    awaits.push_back(entry_json(*e));
  for (size_t i = std::min(consumed, mailbox.size()); i < mailbox.size(); ++i)
    waiting.push_back(entry_json(*mailbox[i]));
  if (fmt != output_format::text) {
    print_json(json{{"id", id}, {"status", to_string(d.record.status)}, {"awaits", awaits},
                    {"mailbox", waiting}},
               fmt);
    return 0;
  }
  std::cout << id << " (" << to_string(d.record.status) << ")\n";
  if (awaits.empty())
    std::cout << "  awaits nothing\n";
  for (const auto& a : awaits)
    std::cout << "  awaits step " << a["step"] << ": " << a["op"].get<std::string>() << " "
              << a["payload"].dump() << "\n";
  for (const auto& m : waiting)
    std::cout << "  mailbox: " << m["payload"].dump() << "\n";
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
  if (fmt != output_format::text) {
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
    print_json(out, fmt);
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
    auto entry = runtime::recorded_tree(n);
    json orchestrations = json::object();
    if (auto i = owned.find(n.name); i != owned.end())
      for (const auto& [type, count] : i->second)
        orchestrations[type] = count;
    entry["orchestrations"] = std::move(orchestrations);
    trees.push_back(std::move(entry));
  }
  if (!node.empty() && !found) {
    std::cerr << "convoy: no node named '" << node << "' in the cluster (see convoy node list)\n";
    return 4; // an unknown id, like an unknown instance
  }
  if (fmt != output_format::text) {
    print_json(json{{"supervisor", view.supervisor.empty() ? json(nullptr) : json(view.supervisor)},
                    {"nodes", trees}},
               fmt);
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
    auto hosts = runtime::recorded_tree(n)["hosts"];
    auto throttle = json::parse(n.throttle.empty() ? "{}" : n.throttle, nullptr, false);
    // Hosts it runs, then those an operator stopped there (`convoy host stop`).
    std::vector<std::pair<std::string, bool>> listed; // host, stopped
    for (auto [list, stopped] : {std::pair{&n.hosts, false}, std::pair{&n.stopped, true}}) {
      std::stringstream in(*list);
      for (std::string host; std::getline(in, host, ',');)
        if (!host.empty())
          listed.emplace_back(host, stopped);
    }
    for (const auto& [host, stopped] : listed) {
      json row{{"host", host}, {"node", n.name}, {"node_status", n.status},
               {"state", stopped ? "stopped" : n.status == "alive" ? "running" : "down"},
               {"heartbeat_ms", n.heartbeat_ms}, {"throttled", false}};
      if (throttle.is_object() && throttle.contains(host)) {
        row["throttled"] = true;
        row["throttle_cause"] = throttle[host].value("cause", "");
      }
      if (hosts.contains(host) && hosts[host].contains("single_active_epoch"))
        row["single_active_epoch"] = hosts[host]["single_active_epoch"];
      if (host == "processing" && !stopped) {
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
  if (fmt != output_format::text) {
    print_json(fmt == output_format::jsonl ? rows : json{{"host_instances", rows}}, fmt);
    return 0;
  }
  std::cout << pad_to("HOST", 12) << pad_to("NODE", 24) << pad_to("STATE", 10)
            << pad_to("HEARTBEAT", 11) << pad_to("INSTANCES", 11) << "THROTTLE\n";
  for (const auto& r : rows) {
    auto host = r["host"].get<std::string>();
    auto state = r["state"].get<std::string>();
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

int run_box_stat(const target& t, output_format fmt, int interval_s) {
  auto box = open_box(t);
  while (true) {
    auto st = box->status(runtime::known_hosts);
    if (!st.error.empty())
      return box_error(t, st.error);
    json queues = json::object();
    for (const auto& [host, q] : st.queues)
      queues[host] = {{"length", q.length}, {"pending", q.pending}};
    json out{{"address", st.address},
             {"role", st.role},
             {"version", st.version},
             {"connected_replicas", st.connected_replicas},
             {"replicas", st.replicas},
             {"master_repl_offset", st.master_repl_offset},
             {"used_memory", st.used_memory},
             {"maxmemory", st.maxmemory},
             {"queues", queues},
             {"persistence_points_applied", st.commits},
             {"rollbacks_reported", st.rollbacks},
             {"unrouted", st.unrouted},
             {"zombies", st.zombies},
             {"at_ms", wall_clock_ms()}};
    if (fmt != output_format::text) {
      print_json(out, fmt);
    } else {
      std::cout << "MessageBox " << st.address << " (" << st.role << ", Redis " << st.version
                << ")\n"
                << "  replicas:    " << st.connected_replicas
                << " (master offset " << st.master_repl_offset << ")\n";
      for (const auto& r : st.replicas)
        std::cout << "    " << r << "\n";
      std::cout << "  memory:      " << st.used_memory / (1024 * 1024) << " MiB used"
                << (st.maxmemory > 0 ? " of " + std::to_string(st.maxmemory / (1024 * 1024)) + " MiB"
                                     : std::string(" (no maxmemory)"))
                << "\n  points:      " << st.commits << " persistence points applied\n"
                << "  rollbacks:   " << st.rollbacks << " reported\n"
                << "  unrouted:    " << st.unrouted << ", zombies: " << st.zombies << "\n";
      for (const auto& [host, q] : st.queues)
        std::cout << "  queue " << pad_to(host + ":", 12) << q.length << " entries, " << q.pending
                  << " being worked on\n";
    }
    if (interval_s <= 0 || wait_for_stop_signal(interval_s * 1000) != 0)
      return 0;
  }
}

int run_health(const target& t, output_format fmt) {
  auto box = open_box(t);
  auto view = box->list_nodes();
  std::string why;
  size_t alive = 0;
  bool supervisor_alive = false;
  if (!view.error.empty()) {
    why = "the MessageBox at " + t.endpoint.address() + " does not answer: " + view.error;
  } else {
    auto now = wall_clock_ms();
    for (const auto& n : view.nodes)
      if (n.status == "alive" && n.lease_expires_ms > now) {
        ++alive;
        supervisor_alive = supervisor_alive || n.name == view.supervisor;
      }
    if (alive == 0)
      why = "no node holds a live lease";
    else if (!supervisor_alive)
      why = "the cluster supervisor (" + (view.supervisor.empty() ? "none" : view.supervisor)
            + ") does not hold a live lease";
  }
  if (fmt != output_format::text)
    print_json(json{{"serving", why.empty()},
                    {"reason", why.empty() ? json(nullptr) : json(why)},
                    {"live_nodes", alive},
                    {"supervisor", view.supervisor}},
               fmt);
  else
    std::cout << (why.empty() ? "serving: " + std::to_string(alive) + " live node(s), cluster "
                                  "supervisor " + view.supervisor
                              : "not serving: " + why)
              << "\n";
  return why.empty() ? 0 : 1;
}

int run_orch_describe(const target& t, const std::string& id, output_format fmt) {
  int code = 0;
  auto found = describe_or_report(t, *open_box(t), id, code);
  if (!found)
    return code;
  const auto& d = *found;
  auto actions = json::array();
  for (const auto& a : open_box(t)->audit_trail(id))
    if (auto j = json::parse(a, nullptr, false); j.is_object())
      actions.push_back(std::move(j));
  if (fmt != output_format::text) {
    auto j = description_json(d);
    j["operator_actions"] = actions;
    print_json(j, fmt);
  } else {
    std::cout << description_card(d) << operator_actions_text(actions);
  }
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
  if (fmt != output_format::text) {
    print_json(out, fmt);
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
