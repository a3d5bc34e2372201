#include "convoy/adapters/attach.hpp"

#include "convoy/adapters/file/receive_location.hpp"
#include "convoy/adapters/file/send_port.hpp"
#include "convoy/adapters/http/receive_location.hpp"
#include "convoy/adapters/http/send_port.hpp"
#include "convoy/adapters/schedule/schedule.hpp"
#include "convoy/runtime/node.hpp"

#include <memory>
#include <vector>

namespace convoy::adapters {

namespace {

/// The declaration's `type` when it is one of `known`, else "".
std::string type_of(const json& settings, std::initializer_list<const char*> known) {
  if (!settings.is_object() || !settings.contains("type") || !settings["type"].is_string())
    return {};
  auto type = settings["type"].get<std::string>();
  for (auto k : known)
    if (type == k)
      return type;
  return {};
}

std::string bad_type(const std::string& section, const std::string& name, const char* known) {
  return section + "." + name + ".type is missing or unknown (known: " + known + ")";
}

} // namespace

std::string attach(runtime::node& n, registry& reg, credential_resolver resolver) {
  const auto& cfg = n.config();
  // Everything is read first, so a bad declaration leaves nothing half set up.
  std::vector<http_send_config> http_sends;
  std::vector<file_send_config> file_sends;
  for (const auto& [name, settings] : cfg.send_ports) {
    auto type = type_of(settings, {"http", "file"});
    if (type == "http") {
      http_send_config c;
      if (auto err = parse_http_send(name, settings, c); !err.empty())
        return err;
      if (!c.credential.empty() && !resolver)
        return "send_ports." + name + ".credential names '" + c.credential
               + "', but this node has no credential store";
      http_sends.push_back(std::move(c));
    } else if (type == "file") {
      file_send_config c;
      if (auto err = parse_file_send(name, settings, c); !err.empty())
        return err;
      file_sends.push_back(std::move(c));
    } else {
      return bad_type("send_ports", name, "http, file");
    }
  }
  std::vector<std::unique_ptr<runtime::adapter>> locations;
  auto& box = n.message_box();
  for (const auto& [name, settings] : cfg.receive_locations) {
    auto type = type_of(settings, {"http", "file", "schedule"});
    if (type == "http") {
      http_receive_config c;
      if (auto err = parse_http_receive(name, settings, c); !err.empty())
        return err;
      c.host_throttled = [&n] { return n.throttle_cause("receive"); };
      locations.push_back(std::make_unique<http_receive_location>(std::move(c), box));
    } else if (type == "file") {
      file_receive_config c;
      if (auto err = parse_file_receive(name, settings, c); !err.empty())
        return err;
      locations.push_back(std::make_unique<file_receive_location>(std::move(c), box, cfg.name));
    } else if (type == "schedule") {
      schedule_config c;
      if (auto err = parse_schedule(name, settings, c); !err.empty())
        return err;
      locations.push_back(std::make_unique<schedule_location>(std::move(c), box));
    } else {
      return bad_type("receive_locations", name, "http, file, schedule");
    }
  }
  for (const auto& c : http_sends)
    if (reg.find_activity(http_send_activity(c.name)))
      return "send_ports." + c.name + ": activity " + http_send_activity(c.name)
             + " is already registered";
  for (const auto& c : file_sends)
    if (reg.find_activity(file_send_activity(c.name)))
      return "send_ports." + c.name + ": activity " + file_send_activity(c.name)
             + " is already registered";
  for (auto& c : http_sends)
    register_http_send(reg, std::move(c), resolver);
  for (auto& c : file_sends)
    register_file_send(reg, std::move(c));
  for (auto& l : locations)
    n.add_adapter(std::move(l));
  return {};
}

} // namespace convoy::adapters
