#include "cli.hpp"
#include "output.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/adapters/attach.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/node.hpp"
#include "examples.hpp"

#include <caf/config.hpp>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <iostream>

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
  if (auto err = adapters::attach(n, reg); !err.empty()) {
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
  std::string error;
  auto nodes = box->list_nodes(&error);
  if (!error.empty())
    return box_error(t, error);
  auto lease = box->commands().run({"HMGET", box->key_schema().cluster_lease(), "holder", "epoch"});
  if (lease.is_error())
    return box_error(t, lease.str);
  auto holder = lease.elements.size() == 2 ? lease.elements[0].str : std::string{};
  auto epoch = lease.elements.size() == 2 ? lease.elements[1].str : std::string{};
  auto now = wall_clock_ms();
  if (fmt == output_format::json) {
    json out{{"supervisor", holder.empty() ? json(nullptr) : json(holder)},
             {"supervisor_epoch", epoch.empty() ? 0 : std::stoll(epoch)},
             {"nodes", json::array()}};
    for (const auto& n : nodes)
      out["nodes"].push_back({{"name", n.name},
                              {"status", n.status},
                              {"hosts", n.hosts},
                              {"load", n.load},
                              {"generation", n.generation},
                              {"heartbeat_ms", n.heartbeat_ms},
                              {"lease_expires_ms", n.lease_expires_ms}});
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
    std::cout << "* cluster supervisor (lease epoch " << (epoch.empty() ? "0" : epoch) << ")\n";
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
