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
  if (g.cancelled)
    j["cancelled"] = true;
  if (g.continue_as_new)
    j["continue_as_new"] = *g.continue_as_new;
  if (!g.script.empty())
    j["script"] = g.script;
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
    g.cancelled = doc.value("cancelled", false);
    if (doc.contains("continue_as_new"))
      g.continue_as_new = doc["continue_as_new"];
    if (doc.contains("script"))
      g.script = doc["script"].get<std::vector<std::string>>();
    if (!doc.at("entries").is_array())
      return failure{file + ": \"entries\" is not an array"};
  } catch (const json::exception& e) {
    return failure{file + ": " + e.what()};
  }
  if (int(g.result.has_value()) + int(g.failure.has_value()) + int(g.continue_as_new.has_value())
      != 1)
    return failure{file + ": needs exactly one of \"result\", \"failure\" and "
                          "\"continue_as_new\""};
  if (g.cancelled && !g.failure)
    return failure{file + ": \"cancelled\" needs a \"failure\" (the cancellation's message)"};
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

bool outcome_table::answers(const journal_entry& scheduled) const {
  return scripted_.count(scheduled.step) > 0 || by_op_.count(scheduled.op) > 0;
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

// -- scripts ------------------------------------------------------------------------------------

std::string to_string(const script_action& a) {
  auto at = [&a] { return a.step ? " step " + std::to_string(*a.step) : std::string(); };
  switch (a.what) {
    case script_action::kind::start:
      return "start";
    case script_action::kind::settle:
      return "settle";
    case script_action::kind::deliver:
      return "deliver" + at();
    case script_action::kind::answer:
      return (a.ok ? "succeed" : "fail") + at() + " " + a.payload;
    case script_action::kind::message:
      return "message " + a.channel + " " + a.payload;
    case script_action::kind::fire:
      return "fire" + (a.step ? at() : std::string(" the lowest open timer"));
    case script_action::kind::cancel:
      return "cancel";
  }
  return "?";
}

// -- running by hand ------------------------------------------------------------------------

runner::runner(orchestration_factory factory, json input, std::string instance_id,
               std::vector<journal_entry> history, int64_t clock_ms, bool begin_now)
  : factory_(std::move(factory)),
    input_(std::move(input)),
    instance_id_(std::move(instance_id)),
    clock_ms_(clock_ms),
    journal_(std::move(history)) {
  start(begin_now);
}

runner::~runner() {
  stop();
}

void runner::start(bool resume) {
  written_.clear();
  activities_.clear();
  timers_.clear();
  cancelled_timers_.clear();
  ctx_ = std::make_unique<context>(instance_id_, journal_);
  frame_ = factory_(*ctx_, input_);
  ctx_->set_clock(clock_ms_);
  begun_ = false;
  if (resume)
    begin();
}

void runner::begin() {
  if (begun_)
    return;
  begun_ = true;
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
  for (const auto& t : out.cancelled_timers)
    cancelled_timers_.insert(t.step);
  if (done())
    ctx_->check_finished();
}

void runner::resume(const context::delivery& d) {
  if (d.resume) {
    ctx_->set_clock(clock_ms_);
    d.resume.resume();
  }
  persist();
}

bool runner::deliver(uint32_t step, outcome result) {
  auto d = ctx_->deliver(step, std::move(result));
  resume(d);
  return d.accepted;
}

bool runner::deliver_message(const std::string& channel, std::string payload) {
  auto d = ctx_->deliver_message(channel, std::move(payload));
  resume(d);
  return d.accepted;
}

bool runner::fire(uint32_t step) {
  // runtime/.../hosts.cpp: a timer that fires is delivered as `ok` with a `null` payload.
  return deliver(step, outcome::success("null"));
}

bool runner::cancel() {
  auto d = ctx_->cancel();
  resume(d);
  return d.accepted;
}

void runner::crash(size_t keep) {
  stop();
  journal_.resize(std::min(keep, journal_.size()));
  start(true);
}

bool runner::is_open_timeout(uint32_t step) const {
  // context.hpp schedules `receive(c, timeout)`, `signal(name, timeout)` and a call with a
  // total_timeout as the operation immediately followed by its timer.
  auto* timer = scheduled(step);
  if (!timer || timer->op != op_kind::sleep || step == 0)
    return false;
  auto open = pending();
  if (!std::binary_search(open.begin(), open.end(), step - 1))
    return false;
  auto* guarded = scheduled(step - 1);
  return guarded && guarded->op != op_kind::sleep;
}

void runner::settle(const outcome_table& outcomes, size_t max_deliveries) {
  for (size_t n = 0; n < max_deliveries && begun_ && !done() && !nondeterminism(); ++n) {
    std::optional<uint32_t> next;
    for (auto step : pending()) {
      const auto* e = scheduled(step);
      if (!outcomes.answers(*e) || cancelled_timers_.count(step) || is_open_timeout(step))
        continue;
      next = step;
      break;
    }
    if (!next)
      return;
    deliver(*next, outcomes(*scheduled(*next), instance_id_));
  }
}

void runner::play(const std::vector<script_action>& script, const outcome_table& outcomes) {
  auto refuse = [](const script_action& a, const std::string& why) {
    throw std::logic_error("script action '" + to_string(a) + "': " + why);
  };
  for (const auto& a : script) {
    if (done() || nondeterminism())
      refuse(a, "the orchestration already ended");
    bool accepted = true;
    switch (a.what) {
      case script_action::kind::start:
        if (begun_)
          refuse(a, "the coroutine already started (build the runner with begin_now=false)");
        begin();
        break;
      case script_action::kind::settle:
        settle(outcomes);
        break;
      case script_action::kind::deliver: {
        const auto* e = a.step ? scheduled(*a.step) : nullptr;
        if (!e)
          refuse(a, "no such scheduled step");
        accepted = deliver(*a.step, outcomes(*e, instance_id_));
        break;
      }
      case script_action::kind::answer:
        if (!a.step)
          refuse(a, "names no step");
        accepted = deliver(*a.step, make_outcome(a.ok, a.payload));
        break;
      case script_action::kind::message:
        accepted = deliver_message(a.channel, a.payload);
        break;
      case script_action::kind::fire: {
        auto step = a.step;
        if (!step)
          for (auto s : pending())
            if (scheduled(s)->op == op_kind::sleep && !cancelled_timers_.count(s)) {
              step = s;
              break;
            }
        if (!step || !scheduled(*step) || scheduled(*step)->op != op_kind::sleep)
          refuse(a, "no such open timer");
        accepted = fire(*step);
        break;
      }
      case script_action::kind::cancel:
        accepted = cancel();
        break;
    }
    if (!accepted)
      refuse(a, "the context did not accept it (duplicate, unknown step or nothing to cancel)");
  }
  settle(outcomes);
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
