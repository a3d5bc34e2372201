#include "convoy/adapters/file/receive_location.hpp"

#include "convoy/actors/clock.hpp"
#include "convoy/adapters/internal/settings.hpp"
#include "convoy/adapters/internal/worker_thread.hpp"
#include "convoy/persistence/keys.hpp"
#include "convoy/persistence/message_box.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace convoy::adapters {

namespace fs = std::filesystem;

namespace {

/// rename(2) that never replaces an existing file: a claimed or archived file of the same
/// name must not be overwritten. Returns 0 or an errno value.
int rename_no_replace(const fs::path& from, const fs::path& to) {
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0 ? 0
                                                                                        : errno;
}

/// How many polls pass between looks for dead nodes' claimed folders.
constexpr int adopt_every_polls = 10;

/// A node's lease that lapsed this long ago (local clock) counts as dead even before the
/// cluster supervisor says so; the margin absorbs clock skew between nodes and Redis.
constexpr int64_t lapsed_margin_ms = 5000;

} // namespace

std::string parse_file_receive(const std::string& name, const json& object,
                               file_receive_config& out) {
  out = file_receive_config{}; // every key not given takes its default, not a previous value
  internal::settings s("receive_locations." + name, object);
  out.name = name;
  s.text("type", "file");
  out.folder = s.text("folder", "", true);
  out.message_type = s.text("message_type", "", true);
  out.format = s.text("format", out.format);
  out.archive = s.text("archive", "");
  out.properties = s.strings("properties");
  out.poll = s.ms("poll_ms", out.poll, std::chrono::milliseconds(10), std::chrono::minutes(10));
  out.max_file_bytes = static_cast<size_t>(
    s.integer("max_file_bytes", static_cast<int64_t>(out.max_file_bytes), 1,
              static_cast<int64_t>(persistence::max_payload_bytes) / 2));
  out.batch = static_cast<size_t>(s.integer("batch", static_cast<int64_t>(out.batch), 1, 10000));
  out.single_active = s.flag("single_active", out.single_active);
  out.lease = s.ms("lease_ms", out.lease, std::chrono::milliseconds(100), std::chrono::minutes(10));
  out.dedupe_ttl = s.ms("dedupe_ttl_ms", out.dedupe_ttl, std::chrono::minutes(1),
                        std::chrono::hours(24 * 30));
  if (out.format != "json" && out.format != "text")
    s.fail("format", "'" + out.format + "' must be json or text");
  if (!out.message_type.empty() && !persistence::valid_name(out.message_type))
    s.fail("message_type", "'" + out.message_type + "' must be 1-128 characters of [A-Za-z0-9._:-]");
  if (out.single_active && out.poll * 2 >= out.lease)
    s.fail("lease_ms", "must be more than twice poll_ms (the lease is renewed once per poll)");
  if (!out.folder.empty() && !out.archive.empty()
      && fs::path(out.folder).lexically_normal() == fs::path(out.archive).lexically_normal())
    s.fail("archive", "must not be the polled folder itself");
  return s.error();
}

struct file_receive_location::impl {
  file_receive_config config;
  persistence::message_box& box;
  std::string node;
  std::string receive_host;
  internal::worker_thread worker;
  internal::stop_signal& stopping = worker.stopping();
  bool holding = false;
  int polls = 0;

  impl(file_receive_config c, persistence::message_box& b, std::string n, std::string host)
    : config(std::move(c)), box(b), node(std::move(n)), receive_host(std::move(host)) {}

  fs::path folder() const { return config.folder; }
  fs::path claimed_root() const { return folder() / ".convoy-claimed"; }
  fs::path claimed() const { return claimed_root() / node; }
  fs::path rejected() const { return folder() / ".convoy-rejected"; }

  void run() {
    do {
      if (!config.single_active || hold_lease()) {
        if (polls++ % adopt_every_polls == 0)
          adopt_dead_claims();
        // Our own claimed files first: left by a crash, or a MessageBox that was away.
        if (drain())
          take_new();
      }
    } while (!stopping.wait_for(config.poll));
  }

  bool hold_lease() {
    auto promise = std::make_shared<std::promise<std::pair<bool, std::string>>>();
    auto answer = promise->get_future();
    box.adapter_lease("receive:" + config.name, node, config.lease,
                      [promise](bool held, std::string error) {
                        promise->set_value({held, std::move(error)});
                      });
    bool held = false;
    if (answer.wait_for(config.lease / 2) != std::future_status::ready) {
      spdlog::warn("receive location {}: no answer about its lease; not polling", config.name);
    } else {
      auto [h, error] = answer.get();
      if (!error.empty())
        spdlog::warn("receive location {}: lease: {}; not polling", config.name, error);
      held = h;
    }
    if (held != holding)
      spdlog::info("receive location {}: {} the polling lease", config.name,
                   held ? "took" : "lost");
    holding = held;
    return held;
  }

  /// Moves what dead nodes left in their claimed folders into ours.
  void adopt_dead_claims() {
    std::error_code ec;
    std::vector<fs::path> others;
    for (auto it = fs::directory_iterator(claimed_root(), ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
      if (it->path().filename() != node)
        others.push_back(it->path());
    if (others.empty())
      return;
    auto view = box.list_nodes();
    if (!view.error.empty()) {
      spdlog::warn("receive location {}: cannot list nodes ({}); adopting nothing", config.name,
                   view.error);
      return;
    }
    const auto& nodes = view.nodes;
    auto now = wall_clock_ms();
    for (const auto& dir : others) {
      auto owner = dir.filename().string();
      auto n = std::find_if(nodes.begin(), nodes.end(),
                            [&](const auto& info) { return info.name == owner; });
      bool dead = n == nodes.end() || n->status == "dead"
                  || n->lease_expires_ms + lapsed_margin_ms < now;
      if (!dead)
        continue;
      size_t moved = 0;
      for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
           it.increment(ec))
        if (rename_no_replace(it->path(), claimed() / it->path().filename()) == 0)
          ++moved;
      if (moved > 0)
        spdlog::info("receive location {}: adopted {} files node {} had claimed", config.name,
                     moved, owner);
      fs::remove(dir, ec); // only when empty; a file that did not move stays for next time
    }
  }

  /// Publishes our claimed files. Returns false when the MessageBox did not take one.
  bool drain() {
    std::error_code ec;
    std::vector<fs::path> files;
    for (auto it = fs::directory_iterator(claimed(), ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
      files.push_back(it->path());
    for (const auto& f : files)
      if (stopping.stopped() || !publish(f))
        return false;
    return true;
  }

  void take_new() {
    std::error_code ec;
    std::vector<fs::path> files;
    for (auto it = fs::directory_iterator(folder(), ec);
         !ec && it != fs::directory_iterator() && files.size() < config.batch; it.increment(ec)) {
      auto name = it->path().filename().string();
      std::error_code type_ec;
      if (name.front() != '.' && it->is_regular_file(type_ec))
        files.push_back(it->path());
    }
    if (ec)
      spdlog::warn("receive location {}: cannot list {}: {}", config.name, config.folder,
                   ec.message());
    for (const auto& f : files) {
      if (stopping.stopped())
        return;
      auto target = claimed() / f.filename();
      if (auto err = rename_no_replace(f, target); err != 0) {
        if (err == ENOENT)
          spdlog::info("receive location {}: {} vanished before it was claimed (another node "
                       "took it, or it was removed); skipped",
                       config.name, f.string());
        else
          spdlog::warn("receive location {}: cannot claim {}: {}", config.name, f.string(),
                       std::strerror(err));
        continue;
      }
      if (!publish(target))
        return; // the MessageBox is away: the file waits, claimed, for the next poll
    }
  }

  void reject(const fs::path& file, const std::string& reason) {
    std::error_code ec;
    fs::create_directories(rejected(), ec);
    auto target = rejected() / file.filename();
    if (rename_no_replace(file, target) == EEXIST) {
      target = rejected() / (file.filename().string() + "." + internal::random_hex());
      rename_no_replace(file, target);
    }
    std::ofstream(target.string() + ".reason") << reason << "\n";
    spdlog::error("receive location {}: {} rejected: {}; moved to {}", config.name,
                  file.filename().string(), reason, target.string());
  }

  /// Publishes one claimed file, then deletes or archives it. Returns false only when the
  /// MessageBox did not acknowledge it (the file stays claimed and is tried again).
  bool publish(const fs::path& file) {
    auto name = file.filename().string();
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      spdlog::warn("receive location {}: claimed file {} vanished ({}); skipped", config.name,
                   name, std::strerror(errno));
      return true;
    }
    if (!S_ISREG(st.st_mode)) {
      reject(file, "not a regular file");
      return true;
    }
    if (static_cast<size_t>(st.st_size) > config.max_file_bytes) {
      reject(file, "the file is " + std::to_string(st.st_size) + " bytes, over max_file_bytes "
                     + std::to_string(config.max_file_bytes));
      return true;
    }
    std::ifstream in(file, std::ios::binary);
    if (!in.is_open()) {
      if (errno == ENOENT) {
        spdlog::warn("receive location {}: claimed file {} vanished; skipped", config.name, name);
        return true;
      }
      reject(file, std::string("cannot open it: ") + std::strerror(errno));
      return true;
    }
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
      reject(file, "cannot read it");
      return true;
    }
    json body;
    if (config.format == "json") {
      body = json::parse(content, nullptr, false);
      if (body.is_discarded()) {
        reject(file, "the content is not valid JSON");
        return true;
      }
    } else {
      body = {{"file", name}, {"content", content}};
    }
    std::string text;
    try {
      text = body.dump();
    } catch (const json::type_error&) {
      reject(file, "the content is not valid UTF-8");
      return true;
    }
    // Names this file's content as it was claimed: a re-publication after a crash gets the
    // same id (and is dropped as a duplicate); a new file of the same name does not.
    std::ostringstream ident;
    ident << name << '\n' << st.st_size << '\n' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec
          << '\n' << content;
    auto digest = internal::sha256_hex(ident.str());
    auto props = config.properties;
    props["receive-location"] = config.name;
    props["file-name"] = name;
    auto done = box.submit_message_once(receive_host, config.message_type, text, props,
                                        config.name + "-" + digest.substr(0, 24),
                                        "file:" + config.name + ":" + digest, config.dedupe_ttl);
    if (!done.error.empty()) {
      spdlog::warn("receive location {}: the MessageBox did not acknowledge {} ({}); it stays "
                   "claimed and is tried again",
                   config.name, name, done.error);
      return false;
    }
    spdlog::info("receive location {}: {} published as {}{}", config.name, name, done.id,
                 done.duplicate ? " (already published before a restart)" : "");
    finish(file, done.id);
    return true;
  }

  void finish(const fs::path& file, const std::string& id) {
    if (config.archive.empty()) {
      if (::unlink(file.c_str()) != 0 && errno != ENOENT)
        spdlog::error("receive location {}: cannot delete {} after publishing it: {}",
                      config.name, file.string(), std::strerror(errno));
      return;
    }
    auto target = fs::path(config.archive) / file.filename();
    int err = rename_no_replace(file, target);
    if (err == EEXIST)
      err = rename_no_replace(file, fs::path(config.archive) / (file.filename().string() + "." + id));
    if (err != 0 && err != ENOENT)
      spdlog::error("receive location {}: cannot archive {} after publishing it: {}",
                    config.name, file.string(), std::strerror(err));
  }
};

file_receive_location::file_receive_location(file_receive_config config,
                                             persistence::message_box& box, std::string node,
                                             std::string receive_host)
  : impl_(std::make_unique<impl>(std::move(config), box, std::move(node),
                                 std::move(receive_host))) {}

file_receive_location::~file_receive_location() {
  stop();
}

std::string file_receive_location::describe() const {
  return "receive location " + impl_->config.name + " (file " + impl_->config.folder + ")";
}

std::string file_receive_location::start() {
  auto& d = *impl_;
  if (d.worker.running())
    return {};
  std::error_code ec;
  if (!fs::is_directory(d.folder(), ec))
    return "folder " + d.config.folder + " does not exist or is not a directory";
  fs::create_directories(d.claimed(), ec);
  if (!ec && !d.config.archive.empty())
    fs::create_directories(d.config.archive, ec);
  if (ec)
    return "cannot create its working folders: " + ec.message();
  d.worker.start([&d] { d.run(); });
  spdlog::info("{} polling every {} ms{}", describe(), d.config.poll.count(),
               d.config.single_active ? " (single-active)" : "");
  return {};
}

void file_receive_location::stop() {
  impl_->worker.stop();
}

} // namespace convoy::adapters
