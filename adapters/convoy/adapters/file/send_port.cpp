#include "convoy/adapters/file/send_port.hpp"

#include "convoy/adapters/internal/settings.hpp"
#include "convoy/persistence/keys.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

namespace convoy::adapters {

namespace fs = std::filesystem;

namespace {

/// A file name the port writes: no folders, no hidden or temporary names.
bool valid_file_name(const std::string& name) {
  return !name.empty() && name.size() <= 200 && name.front() != '.'
         && name.find_first_of("/\\") == std::string::npos
         && name.find('\0') == std::string::npos;
}

/// Writes all of `data` to `fd`; returns 0 or an errno value.
int write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

/// temp name, write, fsync, rename, fsync the folder. Returns "" or what failed.
std::string write_durably(const fs::path& folder, const std::string& name,
                          const std::string& data) {
  auto final_path = folder / name;
  auto temp = folder / ("." + name + ".tmp-" + internal::random_hex());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return "cannot create " + temp.string() + ": " + std::strerror(errno);
  int err = write_all(fd, data);
  if (err == 0 && ::fsync(fd) != 0)
    err = errno;
  if (::close(fd) != 0 && err == 0)
    err = errno;
  if (err == 0 && ::rename(temp.c_str(), final_path.c_str()) != 0)
    err = errno;
  if (err != 0) {
    ::unlink(temp.c_str());
    return "cannot write " + final_path.string() + ": " + std::strerror(err);
  }
  // The rename itself is durable only once the folder is.
  int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || ::fsync(dir) != 0) {
    err = errno;
    if (dir >= 0)
      ::close(dir);
    return "cannot sync folder " + folder.string() + ": " + std::strerror(err);
  }
  ::close(dir);
  return {};
}

} // namespace

std::string file_send_activity(const std::string& port) {
  return "file-send:" + port;
}

std::string parse_file_send(const std::string& name, const json& object, file_send_config& out) {
  out = file_send_config{}; // every key not given takes its default, not a previous value
  internal::settings s("send_ports." + name, object);
  out.name = name;
  s.text("type", "file");
  out.folder = s.text("folder", "", true);
  out.policy = internal::send_port_policy(s);
  if (!persistence::valid_name(file_send_activity(name)))
    s.fail("", "the port name must be 1-118 characters of [A-Za-z0-9._:-]");
  return s.error();
}

void register_file_send(registry& reg, file_send_config config) {
  auto name = file_send_activity(config.name);
  auto policy = config.policy;
  reg.add_activity(
    name,
    [config = std::move(config)](const activity_context& ctx, const json& args) -> activity_result {
      std::string file, data;
      if (args.is_object() && args.contains("file")) {
        if (!args["file"].is_string() || !valid_file_name(args["file"].get<std::string>()))
          return activity_result::failure("send port " + config.name + ": \"file\" must be a "
                                          "plain file name (no folders, not hidden)",
                                          "rejected");
        file = args["file"].get<std::string>();
        const auto& content = args.contains("content") ? args["content"] : json(nullptr);
        data = content.is_string() ? content.get<std::string>() : content.dump();
      } else {
        file = ctx.idempotency_key + ".json";
        for (auto& c : file)
          if (c == '/')
            c = '_';
        data = args.dump();
      }
      std::error_code ec;
      fs::create_directories(config.folder, ec);
      if (auto err = write_durably(config.folder, file, data); !err.empty())
        return activity_result::failure("send port " + config.name + ": " + err, "transient");
      return activity_result::success(
        json{{"file", (fs::path(config.folder) / file).string()}, {"bytes", data.size()}});
    },
    std::move(policy));
}

} // namespace convoy::adapters
