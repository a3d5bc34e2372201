#pragma once

/// @file
/// Orchestration instances in memory, as B1 and B3 run them: the real instance actor
/// (`convoy::spawn_instance`) over an `instance_store` of the benchmark's own that never
/// touches Redis. What they share: the record a claim hands out, and the services an
/// instance actor needs.

#include "convoy/actors/instance_actor.hpp"
#include "convoy/actors/instance_store.hpp"
#include "convoy/actors/registry.hpp"

#include <memory>
#include <string>

namespace convoy::bench {

inline constexpr const char* memory_node = "bench-node";
inline constexpr const char* memory_host = "bench-processing";

/// What a claim of a fresh instance of `type` (owner `owner`, input `input`) returns from
/// memory: a pending record at epoch 1 with an empty journal.
inline claim_result memory_claim(const std::string& instance_id, const std::string& owner,
                                 const std::string& type, std::string input) {
  claim_result r;
  r.record.id = instance_id;
  r.record.type = type;
  r.record.version = 1;
  r.record.host = memory_host;
  r.record.status = instance_status::pending;
  r.record.epoch = 1;
  r.record.owner = owner;
  r.record.input = std::move(input);
  return r;
}

/// The services of instances whose orchestrations are in `reg` and whose store is `store`
/// (both must outlive every instance actor).
inline std::shared_ptr<const instance_services> memory_services(const registry& reg,
                                                                instance_store& store) {
  auto svc = std::make_shared<instance_services>();
  svc->orchestrations = &reg;
  svc->store = &store;
  svc->node = memory_node;
  svc->host = memory_host;
  return svc;
}

} // namespace convoy::bench
