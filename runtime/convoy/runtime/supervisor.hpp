#pragma once

// OTP-style supervisors as CAF actors.
//
// How the node is meant to use them (ARCHITECTURE.md, "Supervision trees in OTP terms"):
//
//   node supervisor            spawn_supervisor(sys, {"node", one_for_one, ...})
//   ├─ host instance sup.      supervisor_child({"host:processing", rest_for_one, ...})
//   │  ├─ host actor           worker: the queue reader, permanent
//   │  └─ instances …          added at run time with start_child_atom, transient:
//   │                          an instance that completes is forgotten, one that crashes
//   │                          is restarted (it rehydrates from the MessageBox)
//   ├─ host instance sup.      supervisor_child({"host:send", one_for_one, ...})
//   │  └─ activity workers
//   └─ host instance sup.      supervisor_child({"host:receive", one_for_one, ...})
//      └─ adapters
//
// The node waits for the whole tree to run with `request(root, timeout, await_started_atom)`,
// stops it with `anon_send_exit(root, caf::exit_reason::user_shutdown)` and waits for the
// root's down message: every supervisor stops its children in reverse start order, each
// within its shutdown timeout, before it exits itself. A host actor adds an instance with
// `self->request(supervisor, timeout, start_child_atom::value, spec)`; it learns its
// supervisor from the `child_context` its start function was given. The tree is listed with
// `describe_atom` and printed with `to_json`.
//
// Semantics follow Erlang/OTP's `supervisor` module, with these differences:
// - Children are linked to their supervisor and it traps their exits; "exit with reason
//   shutdown" is `caf::exit_reason::user_shutdown`, "kill" is `caf::exit_reason::kill`.
//   Any exit message that is not from a child tells the supervisor to stop (its parent's,
//   through the link, or anyone's), except one with reason `normal`, which CAF actors ignore.
// - A supervisor that gives up (restart intensity exceeded) exits with
//   `supervisor_errc::escalated`, not with `shutdown`, so that every parent sees an abnormal
//   exit, whatever the restart type it gave the supervisor.
// - Children added with `start_child_atom` are forgotten as soon as they stop for good (an exit
//   that is not restarted, or `terminate_child_atom`), as OTP's simple_one_for_one does; a host
//   starts and finishes thousands of instances, and a list of finished ones would only grow.
//   Children of the spec stay listed as `stopped` until `delete_child_atom`, as in OTP.
// - A child of kind `supervisor` counts as started once its own children all run (it answers
//   `await_started_atom`), so ordered start holds across the whole tree, as with OTP's
//   synchronous start_link.

#include "convoy/actors/json.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace convoy::runtime {

// -- specs ----------------------------------------------------------------------------------

/// Which children a supervisor restarts when one of them fails.
enum class restart_strategy : uint8_t {
  /// Only the failed child.
  one_for_one,
  /// Every child: the others are stopped (reverse start order) and all start again in order,
  /// including children that were stopped (as OTP does); temporary ones are forgotten.
  one_for_all,
  /// The failed child and every child started after it (those are stopped in reverse first).
  rest_for_one,
};

/// When a child that exited is restarted.
enum class restart_type : uint8_t {
  /// Always, whatever the exit reason.
  permanent,
  /// Only after an abnormal exit: anything but `normal` and `user_shutdown`.
  transient,
  /// Never; the child is forgotten once it exits.
  temporary,
};

/// Whether a child is a plain worker or a supervisor made by this component.
enum class child_kind : uint8_t {
  /// Any actor.
  worker,
  /// An actor made by `spawn_supervisor`: it answers `await_started_atom` and `describe_atom`.
  supervisor,
};

/// How long a supervisor waits for a child to exit after asking it to: then it kills it.
/// `infinity` waits for ever (the OTP default for child supervisors, whose own children have
/// timeouts); `brutal_kill` kills at once.
inline constexpr std::chrono::milliseconds infinity = std::chrono::milliseconds::max();
inline constexpr std::chrono::milliseconds brutal_kill{0};

/// What a child's start function gets: where to spawn, and who supervises it (so that, for
/// example, a host actor can add instances to its own supervisor).
struct child_context {
  caf::actor_system& system;
  caf::actor supervisor;
  std::string id;
};

/// One child of a supervisor.
struct child_spec {
  /// Unique among the supervisor's children; names the child in `describe` and requests.
  std::string id;
  restart_type restart = restart_type::permanent;
  /// See `infinity` and `brutal_kill`.
  std::chrono::milliseconds shutdown{5000};
  child_kind kind = child_kind::worker;
  /// Spawns the child and returns it; an invalid handle or an exception is a start failure.
  /// Called inside the supervisor (on a CAF worker thread): it must not block.
  /// @pre Returns a new actor each call, not one that another child already is.
  std::function<caf::actor(const child_context&)> start;
};

/// How a supervisor stops its dynamic children (those added with `start_child_atom`) when it
/// stops, or restarts them all.
enum class dynamic_stop : uint8_t {
  /// One after another in reverse start order, like every other child (OTP's default).
  in_reverse_order,
  /// All at once, each within its own timeout (OTP's simple_one_for_one): a host supervisor
  /// with thousands of independent instances must not wait for them one by one.
  all_at_once,
};

/// A supervisor: data, as in OTP.
struct supervisor_spec {
  /// Names the supervisor in `describe`, logs and escalation reasons.
  std::string name;
  restart_strategy strategy = restart_strategy::one_for_one;
  /// More than `intensity` restarts within `period` and the supervisor gives up: it stops all
  /// its children and exits with `supervisor_errc::escalated`. 0 means: never restart.
  int intensity = 3;
  std::chrono::milliseconds period{5000};
  /// Started in this order, stopped in the reverse.
  std::vector<child_spec> children;
  dynamic_stop stop_dynamic = dynamic_stop::in_reverse_order;
};

/// Spawns a supervisor, which starts its children in order. It never fails synchronously: a
/// child that does not start makes the supervisor stop the children already started (reverse
/// order) and exit with `supervisor_errc::start_failed`; an invalid spec (empty or duplicate
/// ids, no start function, negative intensity, non-positive period) does the same.
caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec);

/// The child spec that starts `spec` as a supervisor under another one (trees nest):
/// kind `supervisor`, shutdown `infinity`, id = `spec.name`.
child_spec supervisor_child(supervisor_spec spec,
                            restart_type restart = restart_type::permanent);

// -- messages -------------------------------------------------------------------------------

/// `(start_child_atom, child_spec) -> caf::actor`: adds a dynamic child after the others and
/// starts it. Errors: `already_present`, `invalid_spec`, `start_failed`, `shutting_down`.
using start_child_atom = caf::atom_constant<caf::atom("startchild")>;

/// `(terminate_child_atom, std::string id) -> caf::ok_atom`: stops a child as on shutdown.
/// A child of the spec stays listed as `stopped`; a dynamic or temporary one is forgotten.
using terminate_child_atom = caf::atom_constant<caf::atom("termchild")>;

/// `(restart_child_atom, std::string id) -> caf::actor`: starts a `stopped` child of the spec
/// again. Errors: `no_such_child`, `not_stopped`, `start_failed`.
using restart_child_atom = caf::atom_constant<caf::atom("rstrtchild")>;

/// `(delete_child_atom, std::string id) -> caf::ok_atom`: forgets a `stopped` child.
using delete_child_atom = caf::atom_constant<caf::atom("delchild")>;

/// `(describe_atom) -> supervisor_description`, or `(describe_atom, int64_t budget_ms)`: the
/// requester waits `budget_ms` (default 1000); child supervisors are asked with three quarters
/// of it and listed as unresponsive if they do not answer in time.
using describe_atom = caf::atom_constant<caf::atom("describe")>;

/// `(await_started_atom) -> caf::ok_atom`, answered once the initial start has completed;
/// `start_failed` or `shutting_down` if it will not.
using await_started_atom = caf::atom_constant<caf::atom("awaitstart")>;

/// The error category of supervisor errors in `caf::error` (`error.category()`).
inline constexpr caf::atom_value supervisor_error_category = caf::atom("supervisor");

/// Errors of supervisors, as exit reasons and as replies. (`convoy::errc` lives in `actors`,
/// which knows nothing of supervision: these codes have their own CAF error category.)
enum class supervisor_errc : uint8_t {
  /// More restarts than the intensity allows within the period: the supervisor gave up.
  escalated = 1,
  /// A child did not start; during the initial start this is also the supervisor's exit reason.
  start_failed,
  /// No child of that id.
  no_such_child,
  /// A child of that id exists already.
  already_present,
  /// The child must be stopped for this request, and it is not.
  not_stopped,
  /// The spec is malformed (see `spawn_supervisor`).
  invalid_spec,
  /// The supervisor is stopping and takes no more requests.
  shutting_down,
};

/// The enumerator's name.
std::string_view to_string(supervisor_errc x) noexcept;

/// A `caf::error` of category `supervisor_error_category` with `context` as its text.
caf::error make_error(supervisor_errc code, std::string context);

/// Same, without text. (Also makes `caf::error err = supervisor_errc::...` work.)
caf::error make_error(supervisor_errc code);

/// Readable text of an exit reason: "normal", "user_shutdown", "kill",
/// "escalated: <why>", or CAF's rendering for anything else.
std::string reason_text(const caf::error& reason);

/// True for the reasons OTP calls normal for transient children: `normal`, `user_shutdown`.
bool is_normal_exit(const caf::error& reason);

// -- description ----------------------------------------------------------------------------

/// A child's life in its supervisor.
enum class child_state : uint8_t {
  /// Being started; a child supervisor stays here until its own children run.
  starting,
  running,
  /// Asked to exit; waiting for it (or for its shutdown timeout).
  stopping,
  /// Exited, and will be started again.
  restarting,
  /// Not running and not going to be restarted (only children of the spec stay listed so).
  stopped,
};

std::string_view to_string(restart_strategy x) noexcept;
std::string_view to_string(restart_type x) noexcept;
std::string_view to_string(child_kind x) noexcept;
std::string_view to_string(child_state x) noexcept;

/// One exit a supervisor saw (or a start that failed), and what it did about it.
struct exit_record {
  std::string child;
  std::string reason;
  /// Wall-clock milliseconds since the Unix epoch.
  int64_t at_ms = 0;
  /// "restarting", "not restarted", "killed after shutdown timeout", "escalated", ...
  std::string action;
};

struct supervisor_description;

struct child_description {
  std::string id;
  child_kind kind = child_kind::worker;
  restart_type restart = restart_type::permanent;
  child_state state = child_state::stopped;
  /// How often this child was started again after its first start.
  uint32_t restarts = 0;
  /// Added with `start_child_atom`.
  bool dynamic = false;
  /// A child supervisor that did not describe itself within the budget.
  bool unresponsive = false;
  /// The running child supervisor's own description: zero or one element (CAF 0.17 cannot
  /// serialise `std::optional`).
  std::vector<supervisor_description> supervisor;
};

/// A supervisor and its subtree, as data: what the CLI and the admin API list.
struct supervisor_description {
  std::string name;
  restart_strategy strategy = restart_strategy::one_for_one;
  int32_t intensity = 0;
  /// Restarts within the current period; reaching more than `intensity` escalates.
  int32_t restarts_in_period = 0;
  int64_t period_ms = 0;
  /// In start order.
  std::vector<child_description> children;
  /// The last few, oldest first.
  std::vector<exit_record> recent_exits;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exit_record& x) {
  return f(caf::meta::type_name("exit_record"), x.child, x.reason, x.at_ms, x.action);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_description& x) {
  return f(caf::meta::type_name("child_description"), x.id, x.kind, x.restart, x.state,
           x.restarts, x.dynamic, x.unresponsive, x.supervisor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_description& x) {
  return f(caf::meta::type_name("supervisor_description"), x.name, x.strategy, x.intensity,
           x.restarts_in_period, x.period_ms, x.children, x.recent_exits);
}

/// The description as JSON: enumerations as their names, nested supervisors under
/// "supervisor", times as "at_ms".
json to_json(const supervisor_description& x);

/// Registers the description types for BASP (`add_message_type`): call on every node before
/// describing supervisors of other nodes.
void add_supervisor_message_types(caf::actor_system_config& cfg);

} // namespace convoy::runtime

// A child spec carries a start function: it can only be sent to a local supervisor.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(convoy::runtime::child_spec)
