#include "replay/harness.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace convoy::replay {

// -- journal entries as data ---------------------------------------------------------------

std::vector<op_kind> decodable_op_kinds() {
  std::vector<op_kind> out;
  for (int v = 0; v < 256; ++v) {
    journal_entry probe{0, entry_event::scheduled, static_cast<op_kind>(v), 0, {}};
    if (std::holds_alternative<journal_entry>(decode_journal_entry(encode(probe))))
      out.push_back(probe.op);
  }
  return out;
}

std::vector<entry_event> decodable_events() {
  std::vector<entry_event> out;
  for (int v = 0; v < 256; ++v) {
    journal_entry probe{0, static_cast<entry_event>(v), op_kind::call, 0, {}};
    if (std::holds_alternative<journal_entry>(decode_journal_entry(encode(probe))))
      out.push_back(probe.event);
  }
  return out;
}

step_effect effect_of(entry_event event) {
  // By name, so that this file compiles against journals with more or fewer events.
  static const std::map<std::string_view, step_effect> effects{
    {"scheduled", step_effect::opens},
    {"completed", step_effect::closes},
    {"failed", step_effect::closes},
    {"cancelled", step_effect::closes},
    {"consumed", step_effect::closes},
    {"recorded", step_effect::opens_and_closes},
    {"arrived", step_effect::none},
  };
  auto name = to_string(event);
  if (auto i = effects.find(name); i != effects.end())
    return i->second;
  throw std::logic_error("journal event '" + std::string(name) + "' (" + std::to_string(static_cast<int>(event))
                         + ") has no step effect: add it to effect_of() in tests/replay/harness.cpp");
}

namespace {

bool opens(const journal_entry& e) {
  auto x = effect_of(e.event);
  return x == step_effect::opens || x == step_effect::opens_and_closes;
}

bool closes(const journal_entry& e) {
  auto x = effect_of(e.event);
  return x == step_effect::closes || x == step_effect::opens_and_closes;
}

std::string hex64(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

} // namespace

json to_json(const journal_entry& entry) {
  json j;
  j["step"] = entry.step;
  j["event"] = std::string(to_string(entry.event));
  j["op"] = std::string(to_string(entry.op));
  j["op_hash"] = hex64(entry.op_hash);
  j["payload"] = entry.payload;
  return j;
}

// -- golden scenarios ------------------------------------------------------------------------

json to_json(const golden& g) {
  json j;
  j["type"] = g.type;
  j["version"] = g.version;
  j["instance"] = g.instance_id;
  if (!g.about.empty())
    j["about"] = g.about;
  j["input"] = g.input;
  if (g.result)
    j["result"] = *g.result;
  if (g.failure)
    j["failure"] = *g.failure;
  auto entries = json::array();
  for (const auto& e : g.entries)
    entries.push_back(to_json(e));
  j["entries"] = std::move(entries);
  return j;
}

std::filesystem::path golden_dir(const std::filesystem::path& source_dir) {
  return source_dir / "tests" / "replay" / "golden";
}

std::vector<std::string> golden_names(const std::filesystem::path& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& item : std::filesystem::directory_iterator(dir, ec)) {
    auto ext = item.path().extension();
    if (ext == ".journal" || ext == ".json")
      names.insert(item.path().stem().string());
  }
  return {names.begin(), names.end()};
}

expected<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return failure{"cannot open " + path.string()};
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad())
    return failure{"cannot read " + path.string()};
  return std::move(buf).str();
}

expected<bool> write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out)
    return failure{"cannot write " + path.string()};
  return true;
}

namespace {

/// The fields of a `<name>.json` document; nlohmann's exceptions become a failure.
expected<golden> parse_golden_json(const std::string& name, const std::string& file,
                                   const std::string& text) {
  auto doc = json::parse(text, nullptr, false);
  if (doc.is_discarded())
    return failure{file + ": not valid JSON"};
  if (!doc.is_object())
    return failure{file + ": not a JSON object"};
  golden g;
  g.name = name;
  try {
    g.type = doc.at("type").get<std::string>();
    g.version = doc.at("version").get<uint32_t>();
    g.instance_id = doc.value("instance", "golden-" + name);
    g.about = doc.value("about", std::string{});
    g.input = doc.at("input");
    if (doc.contains("result"))
      g.result = doc["result"];
    if (doc.contains("failure"))
      g.failure = doc["failure"].get<std::string>();
    if (!doc.at("entries").is_array())
      return failure{file + ": \"entries\" is not an array"};
  } catch (const json::exception& e) {
    return failure{file + ": " + e.what()};
  }
  if (g.result.has_value() == g.failure.has_value())
    return failure{file + ": needs exactly one of \"result\" and \"failure\""};
  return g;
}

} // namespace

expected<golden> load_golden(const std::filesystem::path& dir, const std::string& name) {
  auto json_path = dir / (name + ".json");
  auto journal_path = dir / (name + ".journal");
  auto text = read_file(json_path);
  if (auto* err = std::get_if<failure>(&text))
    return *err;
  auto parsed = parse_golden_json(name, json_path.string(), std::get<std::string>(text));
  if (auto* err = std::get_if<failure>(&parsed))
    return *err;
  auto g = std::get<golden>(std::move(parsed));
  auto bytes = read_file(journal_path);
  if (auto* err = std::get_if<failure>(&bytes))
    return *err;
  auto entries = decode_journal_file(std::get<std::string>(bytes));
  if (auto* err = std::get_if<failure>(&entries))
    return failure{journal_path.string() + ": " + err->message};
  g.entries = std::get<std::vector<journal_entry>>(std::move(entries));
  // The JSON is the readable copy: it must say what the binary journal holds.
  auto listed = json::parse(std::get<std::string>(text)).at("entries");
  if (listed.size() != g.entries.size())
    return failure{json_path.string() + " lists " + std::to_string(listed.size())
                   + " entries but " + journal_path.string() + " holds "
                   + std::to_string(g.entries.size())};
  for (size_t i = 0; i < g.entries.size(); ++i) {
    auto actual = to_json(g.entries[i]);
    if (listed[i] != actual)
      return failure{json_path.string() + " entry " + std::to_string(i) + " is "
                     + listed[i].dump() + " but " + journal_path.string() + " holds "
                     + actual.dump()};
  }
  return g;
}

expected<bool> write_golden(const std::filesystem::path& dir, const golden& g) {
  auto journal = write_file(dir / (g.name + ".journal"), encode_journal_file(g.entries));
  if (std::holds_alternative<failure>(journal))
    return journal;
  return write_file(dir / (g.name + ".json"), to_json(g).dump(2) + "\n");
}

// -- outcomes ---------------------------------------------------------------------------------

outcome outcome_table::operator()(const journal_entry& scheduled,
                                  const std::string& instance_id) const {
  if (auto i = scripted_.find(scheduled.step); i != scripted_.end())
    return i->second;
  if (auto i = by_op_.find(scheduled.op); i != by_op_.end())
    return i->second(scheduled, instance_id);
  throw std::logic_error("no outcome for operation '" + std::string(to_string(scheduled.op))
                         + "' (kind " + std::to_string(static_cast<int>(scheduled.op))
                         + ") of step " + std::to_string(scheduled.step)
                         + ": add a row to real_outcomes() in tests/replay/harness.cpp");
}

outcome_table real_outcomes(const registry& reg) {
  outcome_table table;
  // The scheduled payload of a call is {"activity": name, "args": args} (context.cpp).
  table.set(op_kind::call, [&reg](const journal_entry& scheduled, const std::string& id) {
    auto call = json::parse(scheduled.payload, nullptr, false);
    if (call.is_discarded() || !call.contains("activity"))
      return make_outcome(false, "malformed call payload " + scheduled.payload);
    auto name = call["activity"].get<std::string>();
    auto fn = reg.find_activity(name);
    if (!fn)
      return make_outcome(false, "activity '" + name + "' is not registered");
    activity_context actx; // as a send host fills it for a first attempt
    actx.instance_id = id;
    actx.step = scheduled.step;
    actx.idempotency_key = id + "/" + std::to_string(scheduled.step);
    activity_result result;
    try {
      result = (*fn)(actx, call.value("args", json()));
    } catch (const std::exception& e) {
      result = activity_result::failure(std::string("activity threw: ") + e.what());
    }
    return result.ok ? make_outcome(true, result.value.dump()) : make_outcome(false, result.error);
  });
  // A timer that fires (runtime/.../hosts.cpp delivers `ok` with a `null` payload).
  table.set(op_kind::sleep,
            [](const journal_entry&, const std::string&) { return make_outcome(true, "null"); });
  return table;
}

// -- running by hand ------------------------------------------------------------------------

runner::runner(orchestration_factory factory, json input, std::string instance_id,
               std::vector<journal_entry> history, int64_t clock_ms)
  : factory_(std::move(factory)),
    input_(std::move(input)),
    instance_id_(std::move(instance_id)),
    clock_ms_(clock_ms),
    journal_(std::move(history)) {
  start();
}

runner::~runner() {
  stop();
}

void runner::start() {
  written_.clear();
  activities_.clear();
  timers_.clear();
  ctx_ = std::make_unique<context>(instance_id_, journal_);
  frame_ = factory_(*ctx_, input_);
  ctx_->set_clock(clock_ms_);
  frame_.handle.resume();
  persist();
}

void runner::stop() noexcept {
  // The frame refers to the context: destroy it first.
  if (frame_.handle)
    frame_.handle.destroy();
  frame_ = {};
  ctx_.reset();
}

void runner::persist() {
  auto out = ctx_->take_output();
  journal_.insert(journal_.end(), out.entries.begin(), out.entries.end());
  written_.insert(written_.end(), out.entries.begin(), out.entries.end());
  activities_.insert(activities_.end(), out.activities.begin(), out.activities.end());
  timers_.insert(timers_.end(), out.timers.begin(), out.timers.end());
  if (done())
    ctx_->check_finished();
}

bool runner::deliver(uint32_t step, outcome result) {
  auto d = ctx_->deliver(step, std::move(result));
  if (d.resume) {
    ctx_->set_clock(clock_ms_);
    d.resume.resume();
  }
  persist();
  return d.accepted;
}

void runner::crash(size_t keep) {
  stop();
  journal_.resize(std::min(keep, journal_.size()));
  start();
}

void runner::run(const outcome_table& outcomes, size_t max_deliveries) {
  for (size_t n = 0; n < max_deliveries && !done() && !nondeterminism(); ++n) {
    auto open = pending();
    if (open.empty())
      return;
    deliver(open.front(), outcomes(*scheduled(open.front()), instance_id_));
  }
}

std::vector<uint32_t> runner::pending() const {
  std::set<uint32_t> open;
  for (const auto& e : journal_)
    if (opens(e))
      open.insert(e.step);
  for (const auto& e : journal_)
    if (closes(e))
      open.erase(e.step);
  return {open.begin(), open.end()};
}

std::vector<uint32_t> runner::finished_steps() const {
  std::set<uint32_t> out;
  for (const auto& e : journal_)
    if (closes(e))
      out.insert(e.step);
  return {out.begin(), out.end()};
}

const journal_entry* runner::scheduled(uint32_t step) const {
  for (const auto& e : journal_)
    if (e.step == step && opens(e))
      return &e;
  return nullptr;
}

uint32_t runner::step_horizon() const {
  uint32_t out = ctx_->steps();
  for (const auto& e : journal_)
    if (effect_of(e.event) != step_effect::none)
      out = std::max(out, e.step + 1);
  return out;
}

} // namespace convoy::replay
