#pragma once

// The JSON forms of instances that the CLI (`-o json`) and the admin API share.

#include "convoy/actors/json.hpp"
#include "convoy/persistence/message_box.hpp"

#include <vector>

namespace convoy::runtime {

/// An instance record (inputs, results and query state embedded as JSON when they parse).
json instance_json(const instance_record& rec);
json instances_json(const std::vector<instance_record>& recs);
/// A record with its journal.
json description_json(const persistence::instance_description& d);

/// What a node recorded of itself (`message_box::node_info::tree`), as
/// `{"node", "status", "tree" (null until recorded), "hosts" (host -> live figures)}`.
json recorded_tree(const persistence::message_box::node_info& n);

} // namespace convoy::runtime
