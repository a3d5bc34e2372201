// The CLI's own settings file and its output conventions (times, colour).
#include "cli.hpp"
#include "output.hpp"

#include <toml++/toml.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include <unistd.h>

namespace convoy::cli {

namespace {

time_format current_time_format = time_format::relative;

std::string default_settings_path() {
  if (auto xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
    return std::string(xdg) + "/convoy/cli.toml";
  if (auto home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.config/convoy/cli.toml";
  return {};
}

} // namespace

std::variant<cli_settings, std::string> load_cli_settings(const std::string& flag) {
  cli_settings out;
  bool named = true;
  if (!flag.empty()) {
    out.path = flag;
  } else if (auto env = std::getenv("CONVOY_CLI_CONFIG"); env && *env) {
    out.path = env;
  } else {
    out.path = default_settings_path();
    named = false;
  }
  std::error_code ec;
  if (out.path.empty() || !std::filesystem::exists(out.path, ec)) {
    if (named)
      return "the CLI settings file " + out.path + " does not exist";
    out.path = "the CLI settings file";
    return out;
  }
  toml::table root;
  try {
    root = toml::parse_file(out.path);
  } catch (const toml::parse_error& e) {
    auto where = e.source().begin;
    return out.path + ":" + std::to_string(where.line) + ": " + std::string(e.description());
  }
  for (auto&& [key, value] : root) {
    std::string name(key.str());
    std::string* slot = name == "redis"         ? &out.redis
                        : name == "prefix"      ? &out.prefix
                        : name == "output"      ? &out.output
                        : name == "time_format" ? &out.time_format
                                                : nullptr;
    if (!slot)
      return out.path + ": unknown setting '" + name
             + "' (known: redis, prefix, output, time_format)";
    auto text = value.value<std::string>();
    if (!text)
      return out.path + ": setting '" + name + "' must be a string";
    *slot = *text;
  }
  return out;
}

void set_time_format(time_format f) {
  current_time_format = f;
}

time_format get_time_format() {
  return current_time_format;
}

std::string iso_time(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

bool use_color() {
  // no-color.org: NO_COLOR set to anything but "" turns colour off.
  static const bool on = ::isatty(STDOUT_FILENO) == 1
                         && !(std::getenv("NO_COLOR") && *std::getenv("NO_COLOR"));
  return on;
}

std::string colored(const std::string& text, const char* sgr) {
  if (!use_color())
    return text;
  return std::string("\x1b[") + sgr + "m" + text + "\x1b[0m";
}

} // namespace convoy::cli
