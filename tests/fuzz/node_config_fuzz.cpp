// libFuzzer target: convoy::runtime::load_node_config, a node's configuration from its three
// sources. The input is NUL-separated: the TOML text of the file first, then overrides, each
// either `--set section.key=value` (a flag) or `NAME=value` (the environment variable
// CONVOY_NAME; load_node_config only ever sees CONVOY_* names).
//
// Properties: no exception escapes; a rejection names its source (the file, the variable or
// the flag); an accepted configuration passes validate(), and what `--dump-config` prints of
// it loads again to the same configuration (dump → load → dump is a fixed point).

#include "convoy/runtime/node_config.hpp"
#include "fuzz/fuzz_support.hpp"

#include <cstdint>
#include <string_view>
#include <variant>

namespace {

using namespace convoy;

void check_named(const std::string& error) {
  if (error.empty())
    fuzz::fail("a rejected configuration without a message");
  if (!fuzz::starts_with(error, "node.toml") && !fuzz::starts_with(error, "environment CONVOY_")
      && !fuzz::starts_with(error, "--set "))
    fuzz::fail("an error that does not name its source: " + error);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = fuzz::split({reinterpret_cast<const char*>(data), size}, '\0');
  runtime::config_sources sources;
  sources.file = "node.toml";
  sources.text = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    const auto& part = parts[i];
    if (fuzz::starts_with(part, "--set "))
      sources.flags.push_back(part.substr(6));
    else if (auto eq = part.find('='); eq != std::string::npos)
      sources.environment.emplace_back("CONVOY_" + part.substr(0, eq), part.substr(eq + 1));
  }
  auto loaded = runtime::load_node_config(sources);
  if (auto* error = std::get_if<std::string>(&loaded)) {
    check_named(*error);
    return 0;
  }
  const auto& cfg = std::get<runtime::node_config>(loaded);
  if (auto err = runtime::validate(cfg); !err.empty())
    fuzz::fail("an accepted configuration fails validate(): " + err);
  auto dumped = runtime::dump_config(cfg);
  runtime::config_sources again;
  again.file = "node.toml";
  again.text = dumped;
  auto reloaded = runtime::load_node_config(again);
  if (auto* error = std::get_if<std::string>(&reloaded))
    fuzz::fail("--dump-config printed a configuration that does not load: " + *error + "\n"
               + dumped);
  if (runtime::dump_config(std::get<runtime::node_config>(reloaded)) != dumped)
    fuzz::fail("--dump-config, loaded again, dumps differently:\n" + dumped);
  return 0;
}
