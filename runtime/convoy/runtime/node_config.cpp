#include "convoy/runtime/node_config.hpp"

#include "convoy/persistence/keys.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

extern char** environ;

namespace convoy::runtime {

std::string default_node_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0)
    std::snprintf(host, sizeof(host), "node");
  std::string name = host;
  for (auto& c : name)
    if (!persistence::valid_name(std::string_view(&c, 1)))
      c = '-';
  return name + "-" + std::to_string(::getpid());
}

std::optional<std::pair<std::string, uint16_t>> parse_listen_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()
      || text.size() - colon - 1 > 5)
    return std::nullopt;
  uint32_t port = 0;
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9')
      return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(text[i] - '0');
  }
  if (port > 65535)
    return std::nullopt;
  return std::make_pair(text.substr(0, colon), static_cast<uint16_t>(port));
}

std::string validate(const node_config& cfg) {
  if (!persistence::valid_name(cfg.name))
    return "node.name '" + cfg.name + "' must be 1-128 characters of [A-Za-z0-9._:-]";
  if (cfg.hosts.empty())
    return "node.hosts is empty: a node must run at least one host";
  for (const auto& h : cfg.hosts)
    if (std::find(known_hosts.begin(), known_hosts.end(), h) == known_hosts.end())
      return "node.hosts: unknown host '" + h + "' (known: receive, processing, send)";
  if (cfg.activity_workers == 0 || cfg.activity_workers > 256)
    return "send.workers must be between 1 and 256";
  if (cfg.heartbeat.count() < 10 || cfg.heartbeat.count() > 60000)
    return "timing.heartbeat_ms must be between 10 and 60000";
  if (cfg.lease_ttl < 2 * cfg.heartbeat)
    return "timing.lease_ttl_ms must be at least twice timing.heartbeat_ms (a lease must "
           "survive one late heartbeat)";
  if (cfg.reclaim_idle.count() < 100)
    return "timing.reclaim_idle_ms must be at least 100";
  if (cfg.poll_block.count() < 10 || cfg.poll_block.count() > 60000)
    return "timing.poll_block_ms must be between 10 and 60000";
  if (cfg.timer_poll.count() < 10)
    return "timing.timer_poll_ms must be at least 10";
  if (cfg.durability != "local" && cfg.durability != "replicated")
    return "messagebox.durability '" + cfg.durability + "' must be local or replicated";
  for (const auto& [type, level] : cfg.durability_by_type)
    if (level != "local" && level != "replicated")
      return "messagebox.durability_by_type." + type + " '" + level
             + "' must be local or replicated";
  bool any_replicated = cfg.durability == "replicated";
  for (const auto& [type, level] : cfg.durability_by_type)
    any_replicated = any_replicated || level == "replicated";
  if (any_replicated && (cfg.replicas < 1 || cfg.replicas > 16))
    return "messagebox.replicas must be between 1 and 16 with replicated durability";
  for (const auto& s : cfg.redis.sentinels) {
    persistence::redis_endpoint probe;
    if (!persistence::parse_address(s, probe) || s.find(':') == std::string::npos)
      return "messagebox.sentinels: '" + s + "' is not host:port";
  }
  if (cfg.max_instances == 0)
    return "processing.max_instances must be positive";
  for (const auto& host : cfg.single_active)
    if (std::find(cfg.hosts.begin(), cfg.hosts.end(), host) == cfg.hosts.end())
      return "node.single_active names '" + host + "', which is not one of node.hosts";
  if (cfg.throttling.backlog < 0)
    return "throttling.backlog must not be negative (0 turns the check off)";
  if (cfg.throttling.persistence_latency.count() < 0)
    return "throttling.persistence_latency_ms must not be negative (0 turns the check off)";
  if (cfg.throttling.delay.count() < 10 || cfg.throttling.delay.count() > 10000)
    return "throttling.delay_ms must be between 10 and 10000";
  bool some_file = !cfg.link.certificate.empty() || !cfg.link.key.empty() || !cfg.link.ca.empty();
  if (some_file && !cfg.link_enabled())
    return "cluster.certificate is missing: the cluster link needs certificate, key and ca "
           "(convoy cert issue NODE), or none of them to stay off";
  if (cfg.link_enabled() && (cfg.link.key.empty() || cfg.link.ca.empty()))
    return std::string("cluster.") + (cfg.link.key.empty() ? "key" : "ca")
           + " is missing: the cluster link needs certificate, key and ca";
  if (!cfg.admin_listen.empty() && !parse_listen_address(cfg.admin_listen))
    return "admin.listen '" + cfg.admin_listen + "' is not host:port (port 0: any free one; "
           "\"\" turns the endpoint off)";
  if (!cfg.admin_token_env.empty() && std::getenv(cfg.admin_token_env.c_str()) == nullptr)
    return "admin.token_env names " + cfg.admin_token_env + ", which is not set";
  if (!parse_listen_address(cfg.link_listen))
    return "cluster.listen '" + cfg.link_listen + "' is not host:port (port 0: any free one)";
  static const std::vector<std::string> levels{"trace", "debug", "info", "warn", "error"};
  if (std::find(levels.begin(), levels.end(), cfg.log_level) == levels.end())
    return "node.log_level '" + cfg.log_level + "' must be one of trace, debug, info, warn, error";
  return {};
}

namespace {

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates), as TOML
/// requires of every string.
bool is_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 0 : (c >= 0xC2 && c <= 0xDF) ? 1 : (c >= 0xE0 && c <= 0xEF) ? 2
             : (c >= 0xF0 && c <= 0xF4) ? 3 : 4;
    if (n == 4 || i + n >= text.size())
      return false;
    unsigned char lo = 0x80, hi = 0xBF; // the range of the second byte
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
    else if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
    for (size_t k = 1; k <= n; ++k) {
      auto b = static_cast<unsigned char>(text[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
        return false;
    }
    i += n + 1;
  }
  return true;
}

/// A TOML value as JSON (dates and times as their TOML text).
json to_json(const toml::node& node) {
  if (auto t = node.as_table()) {
    auto out = json::object();
    for (auto& [k, v] : *t)
      out[std::string(k.str())] = to_json(v);
    return out;
  }
  if (auto a = node.as_array()) {
    auto out = json::array();
    for (auto& v : *a)
      out.push_back(to_json(v));
    return out;
  }
  if (auto v = node.value_exact<std::string>())
    return *v;
  if (auto v = node.value_exact<int64_t>())
    return *v;
  if (auto v = node.value_exact<double>())
    return *v;
  if (auto v = node.value_exact<bool>())
    return *v;
  std::ostringstream text;
  node.visit([&](auto&& value) { text << value; });
  return text.str();
}

/// JSON (as read by `to_json`) back as TOML, for `dump_config`.
toml::table to_toml_table(const json& object);
toml::array to_toml_array(const json& array);

template <class Put>
void to_toml_value(const json& v, Put&& put) {
  if (v.is_object())
    put(to_toml_table(v));
  else if (v.is_array())
    put(to_toml_array(v));
  else if (v.is_string())
    put(v.get<std::string>());
  else if (v.is_boolean())
    put(v.get<bool>());
  else if (v.is_number_integer())
    put(v.get<int64_t>());
  else if (v.is_number())
    put(v.get<double>());
}

toml::array to_toml_array(const json& array) {
  toml::array out;
  for (const auto& v : array)
    to_toml_value(v, [&](auto&& x) { out.push_back(std::move(x)); });
  return out;
}

toml::table to_toml_table(const json& object) {
  toml::table out;
  for (const auto& item : object.items()) { // (clang 14 cannot capture structured bindings)
    const auto& k = item.key();
    to_toml_value(item.value(), [&](auto&& x) { out.insert(k, std::move(x)); });
  }
  return out;
}

/// Reads typed values from a TOML table and remembers the first problem, with its key.
class reader {
public:
  reader(const toml::table& root, std::string path) : root_(root), path_(std::move(path)) {}

  /// Makes `key` ("section.key") read `value` (TOML text, or a bare string) instead of the
  /// file's value; `origin` names where it came from in errors. Returns an error or "".
  std::string override_key(const std::string& key, const std::string& value,
                           const std::string& origin) {
    auto dot = key.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == key.size()
        || key.find('.', dot + 1) != std::string::npos)
      return origin + ": '" + key + "' is not section.key";
    toml::table holder;
    try {
      holder = toml::parse("v = " + value);
    } catch (const toml::parse_error&) {
      // Not TOML: a plain string (a name, an address), which TOML must be able to hold.
      if (!is_utf8(value))
        return origin + ": the value of " + key + " is not UTF-8 text";
      holder = toml::table{{"v", value}};
    }
    overrides_[key] = {std::move(holder), origin};
    return {};
  }

  template <class T>
  void get(std::string_view key, T& out) {
    asked_.emplace(key);
    auto node = lookup(key);
    if (!node || !error_.empty())
      return;
    if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = node.value<std::string>())
        out = *v;
      else
        fail(key, "must be a string");
    } else {
      // value_exact: TOML's `true` or `4.5` is not an integer (value<> would convert them).
      if (auto v = node.template value_exact<int64_t>(); v && *v >= 0)
        out = static_cast<T>(*v);
      else
        fail(key, "must be a non-negative integer");
    }
  }

  void get_ms(std::string_view key, std::chrono::milliseconds& out) {
    int64_t value = out.count();
    get(key, value);
    out = std::chrono::milliseconds(value);
  }

  void get_list(std::string_view key, std::vector<std::string>& out) {
    asked_.emplace(key);
    auto node = lookup(key);
    if (!node || !error_.empty())
      return;
    auto arr = node.as_array();
    if (!arr) {
      fail(key, "must be an array of strings");
      return;
    }
    out.clear();
    for (auto& e : *arr) {
      auto v = e.value<std::string>();
      if (!v) {
        fail(key, "must be an array of strings");
        return;
      }
      out.push_back(*v);
    }
  }

  /// A table of string values, e.g. `[messagebox.durability_by_type]`. Its entries are the
  /// table's own keys, so only the table itself is an asked-for key.
  void get_string_table(std::string_view key, std::map<std::string, std::string>& out) {
    asked_.emplace(key);
    auto node = lookup(key);
    if (!node || !error_.empty())
      return;
    auto table = node.as_table();
    if (!table) {
      fail(key, "must be a table of strings");
      return;
    }
    for (auto& [k, v] : *table) {
      auto value = v.value<std::string>();
      if (!value) {
        fail(key, "must be a table of strings ('" + std::string(k.str()) + "' is not a string)");
        return;
      }
      out[std::string(k.str())] = *value;
    }
  }

  /// A table of named tables (`[receive_locations.NAME]`), each converted to a JSON object.
  /// Only the outer table is an asked-for key: the inner keys belong to whoever reads them.
  void get_named_tables(std::string_view key, std::map<std::string, json>& out) {
    asked_.emplace(key);
    auto node = lookup(key);
    if (!node || !error_.empty())
      return;
    auto table = node.as_table();
    if (!table) {
      fail(key, "must be a table of named tables ([" + std::string(key) + ".NAME])");
      return;
    }
    for (auto& [name, value] : *table) {
      auto inner = value.as_table();
      if (!inner) {
        fail(std::string(key) + "." + std::string(name.str()), "must be a table");
        return;
      }
      asked_.emplace(std::string(key) + "." + std::string(name.str()));
      out[std::string(name.str())] = to_json(*inner);
    }
  }

  void fail(std::string_view key, std::string what) {
    if (!error_.empty())
      return;
    auto o = overrides_.find(std::string(key));
    error_ = (o == overrides_.end() ? path_ : o->second.origin) + ": " + std::string(key) + " "
             + what;
  }

  const std::string& error() const { return error_; }

  /// Names the first key of the file that no get() asked for, or returns "". Derived from
  /// the reads rather than from a second list of keys, so that the two cannot drift apart:
  /// a misspelt key must be an error, not silently leave its default in place.
  std::string unknown_key() const {
    for (auto& [key, o] : overrides_)
      if (asked_.count(key) == 0)
        return o.origin + ": unknown key " + key;
    for (auto& [key, value] : root_) {
      std::string section(key.str());
      auto in_section = [&](const std::string& k) { return k.rfind(section + ".", 0) == 0; };
      if (asked_.count(section) == 0 && std::none_of(asked_.begin(), asked_.end(), in_section))
        return path_ + ": unknown section or key '" + section + "'";
      auto table = value.as_table();
      if (!table)
        return path_ + ": " + section + " must be a table ([" + section + "])";
      for (auto& [sub, ignored] : *table)
        if (asked_.count(section + "." + std::string(sub.str())) == 0)
          return path_ + ": unknown key " + section + "." + std::string(sub.str());
    }
    return {};
  }

private:
  struct overridden {
    toml::table holder; ///< {"v": value}
    std::string origin;
  };

  toml::node_view<const toml::node> lookup(std::string_view key) const {
    auto o = overrides_.find(std::string(key));
    if (o != overrides_.end())
      return o->second.holder.at_path("v");
    return root_.at_path(key);
  }

  const toml::table& root_;
  std::string path_;
  std::map<std::string, overridden> overrides_;
  std::string error_;
  std::set<std::string, std::less<>> asked_;
};

} // namespace

std::variant<node_config, std::string> load_node_config(const std::string& path) {
  return load_node_config(config_sources{path, {}, {}});
}

std::vector<std::pair<std::string, std::string>> convoy_environment() {
  std::vector<std::pair<std::string, std::string>> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (entry.rfind("CONVOY_", 0) == 0 && eq != std::string_view::npos)
      out.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return out;
}

std::variant<node_config, std::string> load_node_config(const config_sources& sources) {
  const auto& path = sources.file;
  toml::table root;
  if (!path.empty() || sources.text) try {
    root = sources.text ? toml::parse(*sources.text, path) : toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    if (where.line == 0) // not a syntax error: the file could not be read at all
      return path + ": " + std::string(e.description());
    return path + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": "
           + std::string(e.description());
  }
  node_config cfg;
  cfg.name = default_node_name();
  reader r(root, path.empty() ? std::string("configuration") : path);
  // The environment, then flags, override the file: CONVOY_<SECTION>_<KEY>, e.g.
  // CONVOY_MESSAGEBOX_DURABILITY=replicated. CONVOY_* variables of other sections (such as
  // CONVOY_REDIS for the CLI) are not configuration and are left alone.
  static const std::set<std::string> sections{"node",       "messagebox", "timing", "send",
                                              "processing", "throttling", "cluster", "admin"};
  for (const auto& [name, value] : sources.environment) {
    auto rest = name.substr(7);
    auto sep = rest.find('_');
    if (sep == std::string::npos)
      continue;
    auto section = rest.substr(0, sep);
    std::transform(section.begin(), section.end(), section.begin(), ::tolower);
    if (sections.count(section) == 0)
      continue;
    auto key = rest.substr(sep + 1);
    std::transform(key.begin(), key.end(), key.begin(), ::tolower);
    if (auto err = r.override_key(section + "." + key, value, "environment " + name); !err.empty())
      return err;
  }
  for (const auto& set : sources.flags) {
    auto eq = set.find('=');
    if (eq == std::string::npos)
      return "--set '" + set + "' is not section.key=value";
    if (auto err = r.override_key(set.substr(0, eq), set.substr(eq + 1), "--set " + set);
        !err.empty())
      return err;
  }
  r.get("node.name", cfg.name);
  r.get_list("node.hosts", cfg.hosts);
  r.get_list("node.single_active", cfg.single_active);
  r.get("node.log_level", cfg.log_level);
  std::string address = cfg.redis.address();
  r.get("messagebox.address", address);
  r.get("messagebox.prefix", cfg.prefix);
  r.get("messagebox.user", cfg.redis.user);
  r.get_list("messagebox.sentinels", cfg.redis.sentinels);
  r.get("messagebox.master_name", cfg.redis.master_name);
  r.get("messagebox.durability", cfg.durability);
  r.get("messagebox.replicas", cfg.replicas);
  r.get_ms("messagebox.wait_timeout_ms", cfg.wait_timeout);
  r.get_string_table("messagebox.durability_by_type", cfg.durability_by_type);
  std::string password_env;
  r.get("messagebox.password_env", password_env);
  r.get_ms("timing.heartbeat_ms", cfg.heartbeat);
  r.get_ms("timing.lease_ttl_ms", cfg.lease_ttl);
  r.get_ms("timing.reclaim_idle_ms", cfg.reclaim_idle);
  r.get_ms("timing.poll_block_ms", cfg.poll_block);
  r.get_ms("timing.timer_poll_ms", cfg.timer_poll);
  r.get("send.workers", cfg.activity_workers);
  r.get("processing.max_instances", cfg.max_instances);
  r.get_ms("processing.dehydrate_after_ms", cfg.dehydrate_after);
  r.get("throttling.memory_mb", cfg.throttling.memory_mb);
  r.get("throttling.backlog", cfg.throttling.backlog);
  r.get_ms("throttling.persistence_latency_ms", cfg.throttling.persistence_latency);
  r.get_ms("throttling.delay_ms", cfg.throttling.delay);
  std::string certificate, key, ca;
  r.get("cluster.certificate", certificate);
  r.get("cluster.key", key);
  r.get("cluster.ca", ca);
  cfg.link.certificate = certificate;
  cfg.link.key = key;
  cfg.link.ca = ca;
  r.get("cluster.listen", cfg.link_listen);
  r.get_ms("cluster.heartbeat_ms", cfg.link.heartbeat_interval);
  r.get_ms("cluster.connection_timeout_ms", cfg.link.connection_timeout);
  r.get("admin.listen", cfg.admin_listen);
  r.get("admin.token_env", cfg.admin_token_env);
  r.get_named_tables("receive_locations", cfg.receive_locations);
  r.get_named_tables("send_ports", cfg.send_ports);
  if (!r.error().empty())
    return r.error();
  if (auto err = r.unknown_key(); !err.empty())
    return err;
  auto where = path.empty() ? std::string("configuration") : path;
  if (!persistence::parse_address(address, cfg.redis))
    return where + ": messagebox.address '" + address + "' is not host:port";
  cfg.password_env = password_env;
  if (!password_env.empty()) {
    auto value = std::getenv(password_env.c_str());
    if (value == nullptr)
      return where + ": messagebox.password_env names " + password_env + ", which is not set";
    cfg.redis.password = value;
  }
  if (auto err = validate(cfg); !err.empty())
    return where + ": " + err;
  return cfg;
}

std::string dump_config(const node_config& cfg) {
  auto strings = [](const std::vector<std::string>& list) {
    toml::array out;
    for (const auto& s : list)
      out.push_back(s);
    return out;
  };
  toml::table messagebox{{"address", cfg.redis.host + ":" + std::to_string(cfg.redis.port)},
                         {"prefix", cfg.prefix},
                         {"sentinels", strings(cfg.redis.sentinels)},
                         {"master_name", cfg.redis.master_name},
                         {"durability", cfg.durability},
                         {"replicas", cfg.replicas},
                         {"wait_timeout_ms", cfg.wait_timeout.count()}};
  if (!cfg.redis.user.empty())
    messagebox.insert("user", cfg.redis.user);
  if (!cfg.password_env.empty())
    messagebox.insert("password_env", cfg.password_env); // the name, never the password
  if (!cfg.durability_by_type.empty()) {
    toml::table by_type;
    for (const auto& [type, level] : cfg.durability_by_type)
      by_type.insert(type, level);
    messagebox.insert("durability_by_type", std::move(by_type));
  }
  toml::table root{
    {"node", toml::table{{"name", cfg.name},
                         {"hosts", strings(cfg.hosts)},
                         {"single_active", strings(cfg.single_active)},
                         {"log_level", cfg.log_level}}},
    {"messagebox", std::move(messagebox)},
    {"timing", toml::table{{"heartbeat_ms", cfg.heartbeat.count()},
                           {"lease_ttl_ms", cfg.lease_ttl.count()},
                           {"reclaim_idle_ms", cfg.reclaim_idle.count()},
                           {"poll_block_ms", cfg.poll_block.count()},
                           {"timer_poll_ms", cfg.timer_poll.count()}}},
    {"send", toml::table{{"workers", static_cast<int64_t>(cfg.activity_workers)}}},
    {"processing", toml::table{{"max_instances", static_cast<int64_t>(cfg.max_instances)},
                               {"dehydrate_after_ms", cfg.dehydrate_after.count()}}},
    {"cluster", toml::table{{"certificate", cfg.link.certificate.string()},
                            {"key", cfg.link.key.string()},
                            {"ca", cfg.link.ca.string()},
                            {"listen", cfg.link_listen},
                            {"heartbeat_ms", cfg.link.heartbeat_interval.count()},
                            {"connection_timeout_ms", cfg.link.connection_timeout.count()}}},
    {"admin", toml::table{{"listen", cfg.admin_listen}, {"token_env", cfg.admin_token_env}}},
    {"throttling", toml::table{{"memory_mb", static_cast<int64_t>(cfg.throttling.memory_mb)},
                               {"backlog", cfg.throttling.backlog},
                               {"persistence_latency_ms",
                                cfg.throttling.persistence_latency.count()},
                               {"delay_ms", cfg.throttling.delay.count()}}}};
  for (auto [section, ports] : {std::pair{"receive_locations", &cfg.receive_locations},
                                 std::pair{"send_ports", &cfg.send_ports}}) {
    if (ports->empty())
      continue;
    toml::table named;
    for (const auto& [name, settings] : *ports)
      named.insert(name, to_toml_table(settings));
    root.insert(section, std::move(named));
  }
  std::ostringstream out;
  out << root << "\n";
  return out.str();
}

} // namespace convoy::runtime
