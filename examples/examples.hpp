#pragma once

#include "convoy/actors/registry.hpp"

namespace convoy::examples {

/// Registers every example orchestration and activity: `hello`, `order-processing` and
/// `steps` (a chain of recorded side effects, used by the crash tests).
void register_all(registry& reg);

void register_hello(registry& reg);
void register_order_processing(registry& reg);
void register_steps(registry& reg);

} // namespace convoy::examples
