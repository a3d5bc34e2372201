// Operator verbs for the adapters: send port requests suspended after their retries.

#include "cli.hpp"
#include "output.hpp"

#include "convoy/actors/json.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace convoy::cli {

namespace {

struct adapter_options {
  std::string redis, prefix, output = "text", id;
};

void add_box_options(CLI::App* cmd, adapter_options& o, bool with_output) {
  cmd->add_option("--redis", o.redis, "MessageBox address host:port (env CONVOY_REDIS)");
  cmd->add_option("--prefix", o.prefix, "key prefix (env CONVOY_PREFIX, default convoy:)");
  if (with_output)
    cmd->add_option("-o,--output", o.output, "output format")->check(CLI::IsMember({"text", "json"}));
}

int list_suspended(const target& t, bool as_json) {
  auto box = open_box(t);
  auto listed = box->list_suspended();
  if (!listed.error.empty())
    return box_error(t, listed.error);
  auto out = json::array();
  for (const auto& [id, record] : listed.entries) {
    auto r = json::parse(record, nullptr, false);
    if (!r.is_object())
      r = json{{"reason", "unreadable record: " + record.substr(0, 200)}};
    out.push_back({{"id", id},
                   {"activity", r.value("activity", "")},
                   {"instance", r.value("instance", "")},
                   {"reason", r.value("reason", "")},
                   {"at", r.value("at", int64_t{0})}});
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << pad_to("ID", 32) << pad_to("ACTIVITY", 28) << "REASON\n";
  for (const auto& j : out)
    std::cout << pad_to(j["id"].get<std::string>(), 32)
              << pad_to(j["activity"].get<std::string>(), 28) << j["reason"].get<std::string>()
              << "\n";
  if (out.empty())
    std::cout << "(no suspended messages)\n";
  return 0;
}

int resume(const target& t, const std::string& id) {
  auto box = open_box(t);
  if (auto err = box->resume_suspended(id); !err.empty()) {
    if (err.rfind("CONVOY_NOT_SUSPENDED", 0) == 0) {
      std::cerr << "convoy: no suspended message '" << id << "' (see convoy msg suspended)\n";
      return 4; // like an unknown instance
    }
    return box_error(t, err);
  }
  std::cout << "resumed " << id << ": it runs again with its full retry policy\n";
  return 0;
}

} // namespace

std::function<std::optional<int>()> add_adapter_commands(CLI::App& msg) {
  auto list_opts = std::make_shared<adapter_options>();
  auto list = msg.add_subcommand(
    "suspended", "send port requests suspended after their retries, waiting for an operator\n"
                 "example: convoy msg suspended -o json");
  add_box_options(list, *list_opts, true);
  auto resume_opts = std::make_shared<adapter_options>();
  auto resume_cmd = msg.add_subcommand(
    "resume", "run a suspended request again (its retry policy starts over)\n"
              "example: convoy msg resume order-1001/2");
  add_box_options(resume_cmd, *resume_opts, false);
  resume_cmd->add_option("id", resume_opts->id, "suspended message id (from convoy msg suspended)")
    ->required();
  return [list, list_opts, resume_cmd, resume_opts]() -> std::optional<int> {
    const auto& o = list->parsed() ? *list_opts : *resume_opts;
    if (!list->parsed() && !resume_cmd->parsed())
      return std::nullopt;
    target t;
    if (auto err = resolve_target(o.redis, o.prefix, t); !err.empty()) {
      std::cerr << "convoy: " << err << "\n";
      return 2;
    }
    return list->parsed() ? list_suspended(t, o.output == "json") : resume(t, o.id);
  };
}

} // namespace convoy::cli
