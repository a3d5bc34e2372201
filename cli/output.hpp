#pragma once

#include "convoy/actors/json.hpp"
#include "convoy/persistence/message_box.hpp"
#include "convoy/runtime/views.hpp"

#include <string>
#include <vector>

namespace convoy::cli {

using runtime::description_json; // JSON forms shared with the admin API (runtime/views.hpp)
using runtime::instance_json;
using runtime::instances_json;

/// Text forms: a table for lists, a key/value card plus the journal for one instance.
std::string instances_table(const std::vector<instance_record>& recs);
std::string description_card(const persistence::instance_description& d);

/// The operator actions of an instance (convoy orch suspend/resume/terminate) as lines after
/// its journal; "" when there were none.
std::string operator_actions_text(const json& actions);

/// Pads `s` with spaces to `n` columns (at least one space follows).
std::string pad_to(const std::string& s, size_t n);

/// "3s ago", "2m ago", ...
std::string age(int64_t since_ms);

} // namespace convoy::cli
