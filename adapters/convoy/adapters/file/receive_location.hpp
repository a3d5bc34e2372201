#pragma once

#include "convoy/actors/json.hpp"
#include "convoy/runtime/adapter.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

namespace convoy::persistence {
class message_box;
}

namespace convoy::adapters {

/// `[receive_locations.NAME]` with `type = "file"`.
struct file_receive_config {
  std::string name;
  std::string folder;
  std::string message_type;
  /// "json": the file holds the message body. "text": the body is
  /// `{"file": name, "content": text}` (the text must be UTF-8).
  std::string format = "json";
  /// Where taken files go once persisted; "" = they are deleted.
  std::string archive;
  std::map<std::string, std::string> properties;
  std::chrono::milliseconds poll{500};
  size_t max_file_bytes = 1024 * 1024;
  /// Files taken per poll.
  size_t batch = 100;
  /// One node at a time polls (a lease in the MessageBox) — the default, like a clustered
  /// host; false lets every node poll (the rename-claim still gives each file to one).
  bool single_active = true;
  std::chrono::milliseconds lease{5000};
  /// How long a taken file's dedupe key is remembered.
  std::chrono::milliseconds dedupe_ttl{24 * 3600 * 1000};
};

std::string parse_file_receive(const std::string& name, const json& settings,
                               file_receive_config& out);

/// A file receive location. Each file is claimed by renaming it into
/// `FOLDER/.convoy-claimed/NODE/` (atomic on one filesystem: of two pollers one wins, the
/// other sees it gone), published, and deleted or archived only once the MessageBox
/// acknowledged it. The message id is derived from the file (name, size, mtime, content), and
/// the submission deduplicated by it, so a file published but not yet deleted when its node
/// died is published again (on restart, or by the node that adopts the dead node's claimed
/// folder) without a second message. Unreadable, oversized or malformed files move to
/// `FOLDER/.convoy-rejected/` with a `.reason` file beside them: never lost, never retried
/// forever.
class file_receive_location final : public runtime::adapter {
public:
  file_receive_location(file_receive_config config, persistence::message_box& box,
                        std::string node, std::string receive_host = "receive");
  ~file_receive_location() override;

  std::string describe() const override;
  std::string start() override;
  void stop() override;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace convoy::adapters
