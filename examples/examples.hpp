#pragma once

#include "convoy/actors/registry.hpp"

namespace convoy::examples {

/// Registers every example orchestration and activity: `hello`, `order-processing` (v1 and
/// v2), `steps` (the crash tests' workload), `batch` (sequential convoy), `best-quote`
/// (scatter-gather), `trip` (saga), `counter` (continue_as_new), `greet-all` (children) and
/// `file-to-http` (needs the send ports of examples/file_to_http/node.toml) and `chaos` (the
/// workload of `convoy chaos`; needs its `chaos-sink` send port).
void register_all(registry& reg);

void register_hello(registry& reg);
void register_order_processing(registry& reg);
void register_steps(registry& reg);
void register_sequential_convoy(registry& reg);
void register_scatter_gather(registry& reg);
void register_saga(registry& reg);
void register_long_lived(registry& reg);
void register_children(registry& reg);
void register_file_to_http(registry& reg);
void register_chaos(registry& reg);

} // namespace convoy::examples
