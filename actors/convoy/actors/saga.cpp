#include "convoy/actors/saga.hpp"

namespace convoy {

void to_json(json& j, const compensation_outcome& x) {
  j = json{{"activity", x.activity}, {"ok", x.ok}};
  if (!x.ok)
    j["error"] = x.error;
}

void saga::add_compensation(std::string activity, json args) {
  compensations_.push_back(compensation{std::move(activity), std::move(args)});
}

task<std::vector<compensation_outcome>> saga::compensate() {
  std::vector<compensation_outcome> outcomes;
  auto todo = std::exchange(compensations_, {});
  for (auto i = todo.rbegin(); i != todo.rend(); ++i) {
    compensation_outcome out;
    out.activity = i->activity;
    try {
      co_await ctx_->call<json>(i->activity, i->args);
    } catch (const activity_error& e) {
      out.ok = false;
      out.error = e.reason();
    }
    outcomes.push_back(std::move(out));
  }
  co_return outcomes;
}

} // namespace convoy
