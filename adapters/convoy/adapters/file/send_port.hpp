#pragma once

#include "convoy/actors/registry.hpp"

#include <string>

namespace convoy::adapters {

/// `[send_ports.NAME]` with `type = "file"`.
struct file_send_config {
  std::string name;
  std::string folder;
  activity_policy policy;
};

std::string parse_file_send(const std::string& name, const json& settings, file_send_config& out);

/// The activity name of file send port `port`: `ctx.call("file-send:NAME", args)`.
std::string file_send_activity(const std::string& port);

/// Registers send port `config` as the activity `file-send:NAME`. Arguments
/// `{"file": name, "content": text-or-JSON}` write `content` (a string as is, anything else as
/// JSON) to FOLDER/name; other arguments are written as JSON to FOLDER/<idempotency key>.json.
/// The file is written under a temporary name, fsynced, renamed into place and the folder
/// fsynced: a reader never sees half a file, and a repeated attempt (same name, same content)
/// replaces it with the same bytes. Returns `{"file": path, "bytes": n}`.
void register_file_send(registry& reg, file_send_config config);

} // namespace convoy::adapters
