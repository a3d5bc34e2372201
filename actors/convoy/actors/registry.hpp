#pragma once

#include "convoy/actors/json.hpp"
#include "convoy/actors/instance_store.hpp"
#include "convoy/actors/orchestration.hpp"

#include <cstdint>
#include <functional>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace convoy {

/// What an activity learns about the call it serves.
struct activity_context {
  std::string instance_id;
  uint32_t step = 0;
  /// `instance-id/step`, identical for every delivery of the same call: side effects keyed
  /// by it happen once even though the activity may run more than once.
  std::string idempotency_key;
  /// 1 for the first attempt, 2 for the first retry, ...
  uint32_t attempt = 1;
  /// When the attempt times out (`call_options::attempt_timeout`), or none. A result
  /// produced after it counts as a failed attempt; long activities should check it.
  std::optional<std::chrono::system_clock::time_point> deadline;
};

/// An activity's outcome: a JSON value, or an error message. Errors are values here;
/// an exception escaping an activity is caught by the send host and reported the same way.
struct activity_result {
  bool ok = true;
  json value;
  std::string error;
  /// The failure's kind, matched against `retry_policy::non_retryable`.
  std::string kind = "application";

  static activity_result success(json value) { return {true, std::move(value), {}, {}}; }
  static activity_result failure(std::string message, std::string kind = "application") {
    return {false, {}, std::move(message), std::move(kind)};
  }
};

/// An activation subscription (BizTalk: an activating receive): a published message of
/// `message_type` that no running instance's correlation set claims starts a new instance of
/// `orchestration_type`, with the message body as its input. When `correlation_properties`
/// are given, the new instance is subscribed to the message's values of those properties in
/// the same atomic step (an initialising correlation), so the next messages of the same
/// conversation reach it even before it asks for them: the basis of convoys.
struct activation_subscription {
  std::string message_type;
  std::string orchestration_type;
  std::vector<std::string> correlation_properties;
};

using activity_fn = std::function<activity_result(const activity_context&, const json& args)>;

/// How the send host treats an activity's failures when the activity itself decides it,
/// rather than each caller: a send port owns its retry policy, declared in the node config.
struct activity_policy {
  /// Used instead of the caller's `call_options::retry`.
  retry_policy retry;
  /// A failure past `retry` (not of a `non_retryable` kind) parks the request as suspended
  /// (resumable, listed by `convoy msg suspended`) instead of failing the call; an operator
  /// resumes it (`convoy msg resume`) once the cause is fixed. The caller keeps waiting.
  bool suspend_when_exhausted = false;
};

/// Starts an orchestration's coroutine (suspended) from its JSON input.
using orchestration_factory = std::function<orchestration_frame(context&, const json& input)>;

/// The orchestration types (with their side-by-side versions) and activities a node knows.
/// Filled before the node starts; read-only afterwards, so shared between threads freely.
class registry {
public:
  /// Registers version `version` of orchestration type `type`.
  /// @pre `fn` is a free function `orchestration<R> fn(context&, In)`.
  template <class R, class In>
  void add_orchestration(std::string type, uint32_t version, orchestration<R> (*fn)(context&, In)) {
    add_orchestration_factory(std::move(type), version,
                              [fn](context& ctx, const json& input) -> orchestration_frame {
                                return fn(ctx, input.get<In>()).release();
                              });
  }

  void add_orchestration_factory(std::string type, uint32_t version, orchestration_factory f);
  void add_activity(std::string name, activity_fn fn);
  /// Registers an activity whose failures follow `policy` whoever calls it.
  void add_activity(std::string name, activity_fn fn, activity_policy policy);
  void activate_on(std::string message_type, std::string orchestration_type,
                   std::vector<std::string> correlation_properties = {});
  /// The activation subscription of a message type, or nullptr.
  const activation_subscription* activation_for(const std::string& message_type) const;

  /// The factory of exactly this version, or nullptr.
  const orchestration_factory* find(const std::string& type, uint32_t version) const;
  /// The newest registered version of `type`, or 0 when the type is unknown.
  uint32_t newest_version(const std::string& type) const;

  /// Durability of every persistence point of `type` (all versions), overriding the node's
  /// `messagebox.durability`: e.g. `replicated` for payments, `local` for a chatty poller.
  void set_durability(const std::string& type, durability_level level);
  durability_level durability_of(const std::string& type) const;
  const activity_fn* find_activity(const std::string& name) const;
  /// The policy `name` was registered with, or nullptr (then the caller's options apply).
  const activity_policy* find_activity_policy(const std::string& name) const;

  std::vector<std::string> orchestration_types() const;
  std::vector<std::string> activity_names() const;

private:
  std::map<std::string, std::map<uint32_t, orchestration_factory>> orchestrations_;
  std::map<std::string, durability_level> durability_;
  std::map<std::string, activity_fn> activities_;
  std::map<std::string, activity_policy> activity_policies_;
  std::map<std::string, activation_subscription> activations_;
};

} // namespace convoy
