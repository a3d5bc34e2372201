#include "output.hpp"
#include "cli.hpp"

#include <iostream>

#include <chrono>
#include <sstream>

namespace convoy::cli {

namespace {

std::string shorten(std::string s, size_t n) {
  if (s.size() > n)
    s = s.substr(0, n - 3) + "...";
  return s;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// The status padded to `n` columns, coloured by what it asks of an operator.
std::string status_cell(instance_status s, size_t n) {
  auto text = n == 0 ? std::string(to_string(s)) : pad_to(std::string(to_string(s)), n);
  switch (s) {
    case instance_status::completed:
      return colored(text, "32");
    case instance_status::failed:
    case instance_status::suspended:
      return colored(text, "31");
    case instance_status::suspended_resumable:
    case instance_status::terminated:
    case instance_status::cancelled:
      return colored(text, "33");
    default:
      return text;
  }
}

} // namespace

void print_json(const json& value, output_format fmt) {
  if (fmt == output_format::jsonl && value.is_array()) {
    for (const auto& element : value)
      std::cout << element.dump() << "\n";
    return;
  }
  std::cout << (fmt == output_format::jsonl ? value.dump() : value.dump(2)) << "\n";
}

std::string pad_to(const std::string& s, size_t n) {
  return s.size() >= n ? s + " " : s + std::string(n - s.size(), ' ');
}

std::string age(int64_t since_ms) {
  if (since_ms <= 0)
    return "-";
  if (get_time_format() == time_format::iso)
    return iso_time(since_ms);
  auto s = std::max<int64_t>(0, (now_ms() - since_ms) / 1000);
  if (s < 60)
    return std::to_string(s) + "s ago";
  if (s < 3600)
    return std::to_string(s / 60) + "m ago";
  if (s < 86400)
    return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

std::string instances_table(const std::vector<instance_record>& recs) {
  std::ostringstream out;
  out << pad_to("ID", 28) << pad_to("TYPE", 22) << pad_to("STATUS", 10) << pad_to("STEPS", 6)
      << pad_to("OWNER", 14) << pad_to("UPDATED", 9) << "RESULT / ERROR\n";
  for (const auto& r : recs)
    out << pad_to(r.id, 28) << pad_to(r.type + " v" + std::to_string(r.version), 22)
        << status_cell(r.status, 10) << pad_to(std::to_string(r.steps), 6)
        << pad_to(r.owner.empty() ? "-" : r.owner, 14) << pad_to(age(r.updated_ms), 9)
        << shorten(r.error.empty() ? r.result : r.error, 60) << "\n";
  if (recs.empty())
    out << "(no instances)\n";
  return out.str();
}

std::string operator_actions_text(const json& actions) {
  if (actions.empty())
    return {};
  std::ostringstream out;
  out << "\noperator actions (" << actions.size() << ")\n";
  for (const auto& a : actions)
    out << pad_to(age(a.value("at", int64_t{0})), 10) << pad_to(a.value("action", ""), 11)
        << pad_to(a.value("by", ""), 24) << a.value("reason", "") << "\n";
  return out.str();
}

std::string description_card(const persistence::instance_description& d) {
  const auto& r = d.record;
  std::ostringstream out;
  auto row = [&out](const char* key, const std::string& value) {
    out << pad_to(key, 20) << value << "\n";
  };
  row("id", r.id);
  row("type", r.type + " v" + std::to_string(r.version));
  row("status", status_cell(r.status, 0) + (r.status == instance_status::suspended_resumable
                                              ? " (convoy orch resume continues it)"
                                              : ""));
  row("host", r.host);
  row("owner", r.owner.empty() ? "-" : r.owner);
  row("owner epoch", std::to_string(r.epoch));
  row("persistence points", std::to_string(r.seq));
  row("steps", std::to_string(r.steps));
  row("created", age(r.created_ms));
  row("updated", age(r.updated_ms));
  row("input", r.input);
  if (!r.result.empty())
    row("result", r.result);
  if (!r.error.empty())
    row("error", r.error);
  if (!r.query_state.empty())
    row("query state", r.query_state);
  if (r.generation > 0)
    row("run", std::to_string(r.generation + 1) + " (continue_as_new)");
  if (!r.parent.empty())
    row("parent", r.parent);
  out << "\njournal (" << d.journal.size() << " entries)\n";
  out << pad_to("STEP", 6) << pad_to("EVENT", 11) << pad_to("OP", 7) << "PAYLOAD\n";
  for (const auto& e : d.journal)
    out << pad_to(std::to_string(e.step), 6) << pad_to(std::string(to_string(e.event)), 11)
        << pad_to(std::string(to_string(e.op)), 7) << shorten(e.payload, 80) << "\n";
  return out.str();
}

} // namespace convoy::cli
