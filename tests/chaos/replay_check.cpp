#include "replay_check.hpp"

#include "replay/harness.hpp"

#include "examples.hpp"

#include <memory>

namespace convoy::chaos {

namespace {

const registry& chaos_registry() {
  static const registry reg = [] {
    registry r;
    examples::register_chaos(r);
    return r;
  }();
  return reg;
}

} // namespace

std::vector<std::string> replay_problems(const std::string& instance_id, const std::string& input,
                                         const std::string& result,
                                         const std::vector<std::string>& entries) {
  std::vector<std::string> problems;
  std::vector<journal_entry> history;
  for (const auto& bytes : entries) {
    auto decoded = decode_journal_entry(bytes);
    if (auto* err = std::get_if<decode_error>(&decoded)) {
      problems.push_back("journal entry " + std::to_string(history.size())
                         + " does not decode: " + err->message);
      return problems;
    }
    history.push_back(std::get<journal_entry>(decoded));
  }
  const auto* factory = chaos_registry().find("chaos", 1);
  std::unique_ptr<replay::runner> r;
  try {
    r = std::make_unique<replay::runner>(*factory, json::parse(input), instance_id, history);
  } catch (const std::exception& e) {
    problems.push_back(std::string("starting the replay threw: ") + e.what());
    return problems;
  }
  if (r->nondeterminism())
    problems.push_back("non-determinism: " + *r->nondeterminism());
  else if (!r->done())
    problems.push_back(std::to_string(r->pending().size()) + " steps still open after replay");
  else if (!r->result() || json::parse(*r->result()) != json::parse(result))
    problems.push_back("recorded result " + result + ", replay "
                       + r->result().value_or(r->failure().value_or("none")));
  for (const auto& e : r->written())
    problems.push_back("replay wrote a new entry for step " + std::to_string(e.step));
  for (const auto& a : r->activities())
    problems.push_back("replay issued activity " + a.activity + " for step "
                       + std::to_string(a.step));
  for (const auto& t : r->timers())
    problems.push_back("replay started a timer for step " + std::to_string(t.step));
  return problems;
}

} // namespace convoy::chaos
