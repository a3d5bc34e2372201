#pragma once

/// @file
/// Running orchestrations by hand, as the instance actor would but without actors or Redis,
/// and reading and writing golden scenarios. Shared by the golden generator
/// (`convoy_make_golden`), the golden replay test and the replay property tests.
///
/// Everything here is driven by the journal, not by today's list of operation kinds: pending
/// steps are the `scheduled` entries without an outcome, and the outcome of a step comes from
/// an `outcome_table` row for its `op_kind`. A new kind of operation needs one new row in
/// `real_outcomes` (and nothing else) before scenarios can use it.

#include "replay/journal_file.hpp"

#include "convoy/actors/context.hpp"
#include "convoy/actors/json.hpp"
#include "convoy/actors/registry.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace convoy::replay {

// -- journal entries as data ---------------------------------------------------------------

/// Every `op_kind` value (0..255) that the current decoder accepts: new kinds show up here
/// without touching the tests.
std::vector<op_kind> decodable_op_kinds();

/// Every `entry_event` value (0..255) that the current decoder accepts.
std::vector<entry_event> decodable_events();

/// What a journal entry does to the step it names.
enum class step_effect {
  opens,            ///< The operation was issued (`scheduled`).
  closes,           ///< Its outcome arrived (`completed`, `failed`, ...).
  opens_and_closes, ///< Issued and answered in one entry (a value read and recorded).
  none,             ///< Not about a step (a message waiting in the mailbox).
};

/// The effect of `event`, looked up by the event's name in one table in harness.cpp.
/// @throws std::logic_error for an event the table does not list yet (add it there).
step_effect effect_of(entry_event event);

/// A success or an application failure, for tables that decide which at run time.
inline outcome make_outcome(bool ok, std::string payload) {
  return ok ? outcome::success(std::move(payload)) : outcome::failure(std::move(payload));
}

/// An entry as readable JSON: `{"step","event","op","op_hash","payload"}` with names for the
/// event and the operation and the hash as 16 hex digits. The payload stays a string: a failed
/// entry's payload is an error message, not JSON.
json to_json(const journal_entry& entry);

// -- golden scenarios ------------------------------------------------------------------------

/// One recorded run: what was started and how it ended, plus its journal.
struct golden {
  std::string name;        ///< File stem under tests/replay/golden/.
  std::string type;        ///< Registered orchestration type.
  uint32_t version = 1;    ///< Registered version of the type.
  std::string instance_id; ///< The id the run used (activities may derive values from it).
  std::string about;       ///< What the scenario shows, for people reading the .json.
  json input;
  std::optional<json> result;         ///< Set when the orchestration returned.
  std::optional<std::string> failure; ///< Set when it exited with an exception.
  std::vector<journal_entry> entries;
};

/// The `<name>.json` document of a golden scenario (its entries included, for reading).
json to_json(const golden& g);

/// Where the golden scenarios live in a source tree.
std::filesystem::path golden_dir(const std::filesystem::path& source_dir);

/// Stems of every `.journal` and every `.json` file in `dir`, sorted, each once.
std::vector<std::string> golden_names(const std::filesystem::path& dir);

/// Reads `<dir>/<name>.json` and `<dir>/<name>.journal`, decodes both and checks that they
/// describe the same journal. Every problem is a `failure` naming the file, never a crash.
expected<golden> load_golden(const std::filesystem::path& dir, const std::string& name);

/// Writes `<dir>/<name>.journal` and `<dir>/<name>.json`.
expected<bool> write_golden(const std::filesystem::path& dir, const golden& g);

expected<std::string> read_file(const std::filesystem::path& path);
expected<bool> write_file(const std::filesystem::path& path, std::string_view bytes);

// -- outcomes ---------------------------------------------------------------------------------

/// Computes the outcome of one scheduled step from its `scheduled` journal entry.
using outcome_fn = std::function<outcome(const journal_entry& scheduled,
                                         const std::string& instance_id)>;

/// Outcomes by operation kind, with per-step overrides (scripted failures).
class outcome_table {
public:
  void set(op_kind op, outcome_fn fn) { by_op_[op] = std::move(fn); }
  /// From now on `step` gets `result` whatever its operation.
  void script(uint32_t step, outcome result) { scripted_[step] = std::move(result); }

  /// @throws std::logic_error when no row handles the entry's operation kind.
  outcome operator()(const journal_entry& scheduled, const std::string& instance_id) const;

private:
  std::map<op_kind, outcome_fn> by_op_;
  std::map<uint32_t, outcome> scripted_;
};

/// What the hosts deliver in production: `call` runs the registered activity as a send host
/// does (same activity context and idempotency key, a throw becomes a failure), `sleep`
/// fires its timer (`ok`, `null`). `reg` must outlive the table.
outcome_table real_outcomes(const registry& reg);

// -- running by hand ------------------------------------------------------------------------

/// One orchestration instance driven by hand through its `context`: every `resume` is followed
/// by a persistence point that appends the context's output to `journal()`. A `crash` throws
/// away the coroutine and the context and replays what survived, as a new node would.
class runner {
public:
  /// Starts the orchestration on `history` and resumes it once.
  runner(orchestration_factory factory, json input, std::string instance_id,
         std::vector<journal_entry> history = {}, int64_t clock_ms = 1000);
  ~runner();

  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  /// Delivers an outcome as a host would, resumes the coroutine if it waited for it, and
  /// persists. Returns whether the context accepted it (false: duplicate or unknown step).
  bool deliver(uint32_t step, outcome result);

  /// Loses every journal entry after the first `keep`, then restarts the orchestration from
  /// the top on what is left and resumes it once.
  void crash(size_t keep);

  /// Delivers outcomes of pending steps, lowest step first, until the orchestration is done,
  /// stuck or `max_deliveries` outcomes were delivered.
  void run(const outcome_table& outcomes, size_t max_deliveries = 100000);

  /// Steps with a `scheduled` entry and no outcome in the journal, ascending.
  std::vector<uint32_t> pending() const;
  /// Steps with an outcome in the journal, ascending.
  std::vector<uint32_t> finished_steps() const;
  /// The `scheduled` entry of `step`, or nullptr.
  const journal_entry* scheduled(uint32_t step) const;
  /// One past the highest step the context issued or the journal holds.
  uint32_t step_horizon() const;

  bool done() const noexcept { return frame_.handle && frame_.handle.done(); }
  const std::optional<std::string>& result() const noexcept { return frame_.promise->result(); }
  const std::optional<std::string>& failure() const noexcept { return frame_.promise->failure(); }
  const std::optional<std::string>& nondeterminism() const { return ctx_->nondeterminism(); }
  const std::string& instance_id() const noexcept { return instance_id_; }

  /// Everything persisted so far, surviving history included.
  const std::vector<journal_entry>& journal() const noexcept { return journal_; }
  /// Entries persisted since the last start or crash.
  const std::vector<journal_entry>& written() const noexcept { return written_; }
  /// Commands issued since the last start or crash.
  const std::vector<activity_command>& activities() const noexcept { return activities_; }
  const std::vector<timer_command>& timers() const noexcept { return timers_; }

private:
  void start();
  void persist();
  void stop() noexcept;

  orchestration_factory factory_;
  json input_;
  std::string instance_id_;
  int64_t clock_ms_;
  std::unique_ptr<context> ctx_;
  orchestration_frame frame_;
  std::vector<journal_entry> journal_;
  std::vector<journal_entry> written_;
  std::vector<activity_command> activities_;
  std::vector<timer_command> timers_;
};

} // namespace convoy::replay
