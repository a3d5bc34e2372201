#pragma once

#include <nlohmann/json.hpp>

namespace convoy {

/// Payloads (orchestration inputs and results, activity arguments and results) are JSON
/// values: readable in the CLI and in redis-cli, and portable across versions of Convoy.
/// User types take part through nlohmann's `to_json` / `from_json`.
using json = nlohmann::json;

} // namespace convoy
