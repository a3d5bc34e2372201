#include "convoy/actors/instance.hpp"

#include <array>

namespace convoy {

namespace {

constexpr std::array<std::string_view, 9> status_names
  = {"pending",   "running",    "waiting",            "completed", "failed",
     "suspended", "cancelled", "terminated", "suspended-resumable"};

} // namespace

std::string_view to_string(instance_status x) noexcept {
  return status_names[static_cast<size_t>(x)];
}

std::optional<instance_status> parse_instance_status(std::string_view text) noexcept {
  for (size_t i = 0; i < status_names.size(); ++i)
    if (status_names[i] == text)
      return static_cast<instance_status>(i);
  return std::nullopt;
}

} // namespace convoy
