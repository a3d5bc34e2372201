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
#include <set>
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
  /// With `failure`: the exception was the cancellation of the instance (`cancelled_error`
  /// escaped), so the instance ends as cancelled, not failed. JSON `"cancelled": true`.
  bool cancelled = false;
  /// Set when it returned `ctx.continue_as_new(input)`: that input (JSON
  /// `"continue_as_new": <input>`), checked on replay against the promise's `continue_input()`.
  std::optional<json> continue_as_new;
  /// The scripted actions of the recording, readable (`to_string(script_action)`); for
  /// people reading the .json only, never used on replay.
  std::vector<std::string> script;
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

  /// Whether the table answers this step by itself: it is scripted, or a row handles its
  /// operation kind. Steps it does not answer (`receive`, `signal`, `child` in
  /// `real_outcomes`) wait for a script's action.
  bool answers(const journal_entry& scheduled) const;

private:
  std::map<op_kind, outcome_fn> by_op_;
  std::map<uint32_t, outcome> scripted_;
};

/// What the hosts deliver in production: `call` runs the registered activity as a send host
/// does (same activity context and idempotency key, a throw becomes a failure), `sleep`
/// fires its timer (`ok`, `null`). `reg` must outlive the table.
outcome_table real_outcomes(const registry& reg);

// -- scripts ------------------------------------------------------------------------------------

/// One thing that happens to an instance from outside, at a chosen point of a scripted run
/// (`runner::play`). Build them with the functions below.
struct script_action {
  enum class kind : uint8_t {
    start,   ///< Resume the coroutine for the first time (runner built with `begin_now=false`).
    settle,  ///< Deliver every outcome the hosts give by themselves (see `runner::settle`).
    deliver, ///< Deliver `step`'s outcome from the outcome table (a real activity result).
    answer,  ///< Deliver `step` the outcome `ok`/`payload` (a child's result, a failure).
    message, ///< `deliver_message(channel, payload)`: a correlated message or a signal.
    fire,    ///< Fire a timer: `step`, or the lowest open timer that was not cancelled.
    cancel,  ///< `ctx.cancel()`: the awaited steps complete as cancelled.
  };
  kind what = kind::settle;
  std::optional<uint32_t> step;
  bool ok = true;
  std::string channel;
  std::string payload; ///< JSON text of a result or message; an error message when !ok.
};

namespace act {
inline script_action start() { return {script_action::kind::start, {}, true, {}, {}}; }
inline script_action settle() { return {script_action::kind::settle, {}, true, {}, {}}; }
inline script_action deliver(uint32_t step) {
  return {script_action::kind::deliver, step, true, {}, {}};
}
/// A success whose result is `result` (JSON).
inline script_action succeed(uint32_t step, const json& result) {
  return {script_action::kind::answer, step, true, {}, result.dump()};
}
inline script_action fail(uint32_t step, std::string error) {
  return {script_action::kind::answer, step, false, {}, std::move(error)};
}
/// A message on a raw channel (`corr:<key>` or `signal:<name>`).
inline script_action message(std::string channel, const json& body) {
  return {script_action::kind::message, {}, true, std::move(channel), body.dump()};
}
/// A message for the correlation set `property=value` (channel `corr:property=value`).
inline script_action correlated(const correlation& c, const json& body) {
  return message("corr:" + c.key(), body);
}
/// The signal `name` (`convoy orch signal`), channel `signal:<name>`.
inline script_action signal(const std::string& name, const json& body) {
  return message("signal:" + name, body);
}
inline script_action fire(std::optional<uint32_t> step = std::nullopt) {
  return {script_action::kind::fire, step, true, {}, {}};
}
inline script_action cancel() { return {script_action::kind::cancel, {}, true, {}, {}}; }
} // namespace act

/// Readable form of an action, for error messages and the golden `.json` (`"script"`).
std::string to_string(const script_action& a);

// -- running by hand ------------------------------------------------------------------------

/// One orchestration instance driven by hand through its `context`: every `resume` is followed
/// by a persistence point that appends the context's output to `journal()`. A `crash` throws
/// away the coroutine and the context and replays what survived, as a new node would.
class runner {
public:
  /// Starts the orchestration on `history` and resumes it once; with `begin_now == false`
  /// the coroutine is created but not resumed until `begin()` (messages delivered before
  /// that find nobody waiting and go to the mailbox).
  runner(orchestration_factory factory, json input, std::string instance_id,
         std::vector<journal_entry> history = {}, int64_t clock_ms = 1000,
         bool begin_now = true);
  ~runner();

  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  /// Delivers an outcome as a host would, resumes the coroutine if it waited for it, and
  /// persists. Returns whether the context accepted it (false: duplicate or unknown step).
  bool deliver(uint32_t step, outcome result);

  /// Resumes the coroutine for the first time, if `begin_now` was false; then persists.
  void begin();

  /// Delivers a correlated message (`corr:<key>`) or a signal (`signal:<name>`) as the
  /// instance actor does: to the oldest step waiting on the channel (resumed if the coroutine
  /// waited for it), else into the journaled mailbox (`arrived`); then persists.
  bool deliver_message(const std::string& channel, std::string payload);

  /// Fires the timer of `step` (`ok`, `null`, as the timer host delivers it).
  bool fire(uint32_t step);

  /// `ctx.cancel()`, resuming the coroutine if that completed what it waited for; persists.
  bool cancel();

  /// Delivers outcomes the hosts give by themselves, lowest step first, until the
  /// orchestration is done or stuck: steps `outcomes` answers (see `outcome_table::answers`),
  /// except timers the context cancelled and timeouts (a timer right after a step that is
  /// still open, other than a timer: `receive`/`signal` with a timeout, a call's
  /// `total_timeout`), which only a script fires.
  void settle(const outcome_table& outcomes, size_t max_deliveries = 100000);

  /// Applies `script` in order, then settles. Stops early at non-determinism.
  /// @throws std::logic_error for an action that cannot apply (naming it).
  void play(const std::vector<script_action>& script, const outcome_table& outcomes);

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
  /// Timers the context cancelled (`take_output().cancelled_timers`) since the last start.
  const std::set<uint32_t>& cancelled_timers() const noexcept { return cancelled_timers_; }
  /// Whether `step` is a timer guarding the open step right before it (see `settle`).
  bool is_open_timeout(uint32_t step) const;

  bool done() const noexcept { return frame_.handle && frame_.handle.done(); }
  const std::optional<std::string>& result() const noexcept { return frame_.promise->result(); }
  const std::optional<std::string>& failure() const noexcept { return frame_.promise->failure(); }
  /// True when the failure is the instance's cancellation.
  bool cancelled() const noexcept { return frame_.promise->cancelled(); }
  /// Set when the orchestration returned `ctx.continue_as_new(input)`.
  const std::optional<std::string>& continue_input() const noexcept {
    return frame_.promise->continue_input();
  }
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
  void start(bool resume);
  void persist();
  void resume(const context::delivery& d);
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
  std::set<uint32_t> cancelled_timers_;
  bool begun_ = false;
};

} // namespace convoy::replay
