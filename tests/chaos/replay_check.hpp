#pragma once

#include <string>
#include <vector>

namespace convoy::chaos {

/// C6: replays a finished `chaos` instance's journal (`entries`, the raw list items) with
/// today's code through the replay harness (tests/replay) and returns what differed: a
/// non-determinism, a step left open, a different result, or a new command (entry, activity,
/// timer) the journal does not hold. Empty when the replay gives the same commands.
std::vector<std::string> replay_problems(const std::string& instance_id, const std::string& input,
                                         const std::string& result,
                                         const std::vector<std::string>& entries);

} // namespace convoy::chaos
