#include "convoy/runtime/views.hpp"

namespace convoy::runtime {

namespace {

/// A stored JSON text as JSON (a text that does not parse stays a string; "" is null).
json embedded(const std::string& text) {
  if (text.empty())
    return nullptr;
  auto parsed = json::parse(text, nullptr, false);
  return parsed.is_discarded() ? json(text) : parsed;
}

} // namespace

json instance_json(const instance_record& r) {
  return json{{"id", r.id},
              {"type", r.type},
              {"version", r.version},
              {"status", to_string(r.status)},
              {"host", r.host},
              {"owner", r.owner},
              {"epoch", r.epoch},
              {"persistence_points", r.seq},
              {"steps", r.steps},
              {"input", embedded(r.input)},
              {"result", embedded(r.result)},
              {"error", r.error.empty() ? json(nullptr) : json(r.error)},
              {"query_state", embedded(r.query_state)},
              {"generation", r.generation},
              {"parent", r.parent.empty() ? json(nullptr) : json(r.parent)},
              {"created_ms", r.created_ms},
              {"updated_ms", r.updated_ms}};
}

json instances_json(const std::vector<instance_record>& recs) {
  auto out = json::array();
  for (const auto& r : recs)
    out.push_back(instance_json(r));
  return out;
}

json description_json(const persistence::instance_description& d) {
  auto out = instance_json(d.record);
  auto journal = json::array();
  for (const auto& e : d.journal)
    journal.push_back(json{{"step", e.step},
                           {"event", to_string(e.event)},
                           {"op", to_string(e.op)},
                           {"hash", e.op_hash},
                           {"payload", embedded(e.payload)}});
  out["journal"] = std::move(journal);
  return out;
}

json recorded_tree(const persistence::message_box::node_info& n) {
  auto recorded = json::parse(n.tree.empty() ? "{}" : n.tree, nullptr, false);
  bool usable = recorded.is_object();
  return {{"node", n.name},
          {"status", n.status},
          {"tree", usable ? recorded.value("tree", json(nullptr)) : json(nullptr)},
          {"hosts", usable ? recorded.value("hosts", json::object()) : json::object()}};
}

} // namespace convoy::runtime
