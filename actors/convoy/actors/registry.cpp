#include "convoy/actors/registry.hpp"

#include <algorithm>
#include <stdexcept>

namespace convoy {

void registry::add_orchestration_factory(std::string type, uint32_t version,
                                         orchestration_factory f) {
  if (version == 0)
    throw std::invalid_argument("orchestration '" + type + "': versions start at 1");
  auto& versions = orchestrations_[std::move(type)];
  if (!versions.emplace(version, std::move(f)).second)
    throw std::invalid_argument("orchestration version registered twice");
}

void registry::add_activity(std::string name, activity_fn fn) {
  if (!activities_.emplace(name, std::move(fn)).second)
    throw std::invalid_argument("activity '" + name + "' registered twice");
}

void registry::activate_on(std::string message_type, std::string orchestration_type,
                           std::vector<std::string> correlation_properties) {
  std::sort(correlation_properties.begin(), correlation_properties.end());
  auto key = message_type;
  activations_[key] = activation_subscription{std::move(message_type),
                                              std::move(orchestration_type),
                                              std::move(correlation_properties)};
}

const activation_subscription* registry::activation_for(const std::string& message_type) const {
  auto i = activations_.find(message_type);
  return i == activations_.end() ? nullptr : &i->second;
}

const orchestration_factory* registry::find(const std::string& type, uint32_t version) const {
  auto i = orchestrations_.find(type);
  if (i == orchestrations_.end())
    return nullptr;
  auto j = i->second.find(version);
  return j == i->second.end() ? nullptr : &j->second;
}

void registry::set_durability(const std::string& type, durability_level level) {
  durability_[type] = level;
}

durability_level registry::durability_of(const std::string& type) const {
  auto i = durability_.find(type);
  return i == durability_.end() ? durability_level::node_default : i->second;
}

uint32_t registry::newest_version(const std::string& type) const {
  auto i = orchestrations_.find(type);
  return i == orchestrations_.end() || i->second.empty() ? 0 : i->second.rbegin()->first;
}

void registry::add_activity(std::string name, activity_fn fn, activity_policy policy) {
  add_activity(name, std::move(fn));
  activity_policies_.emplace(std::move(name), std::move(policy));
}

const activity_policy* registry::find_activity_policy(const std::string& name) const {
  auto i = activity_policies_.find(name);
  return i == activity_policies_.end() ? nullptr : &i->second;
}

const activity_fn* registry::find_activity(const std::string& name) const {
  auto i = activities_.find(name);
  return i == activities_.end() ? nullptr : &i->second;
}

std::vector<std::string> registry::orchestration_types() const {
  std::vector<std::string> out;
  for (const auto& [name, versions] : orchestrations_)
    out.push_back(name);
  return out;
}

std::vector<std::string> registry::activity_names() const {
  std::vector<std::string> out;
  for (const auto& [name, fn] : activities_)
    out.push_back(name);
  return out;
}

} // namespace convoy
