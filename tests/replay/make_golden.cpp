// convoy_make_golden: records the golden replay scenarios and the fuzz seed corpora.
//
// Runs every scenario below through the registry's orchestration factories, with outcomes
// computed by calling the registered activities themselves (plus scripted failures), and
// writes tests/replay/golden/<scenario>.journal and .json. A scenario whose files exist is
// KEPT: golden files record what older binaries wrote, and the point of the replay test is
// that newer binaries still replay them. Only `--replace NAME` overwrites one (see README.md).
//
// It also (re)writes the seed corpora of the fuzz targets from the golden files on disk and
// from a list of edge cases: tests/fuzz/corpus/journal/ and tests/fuzz/corpus/journal_file/.

#include "replay/harness.hpp"

#include "examples.hpp"

#include <algorithm>
#include <iostream>
#include <set>

using namespace convoy;
using namespace convoy::replay;
namespace fs = std::filesystem;

namespace {

// -- scenarios --------------------------------------------------------------------------------

struct scripted_outcome {
  uint32_t step;
  bool ok;
  std::string payload;
};

struct scenario {
  std::string name;
  std::string about; ///< One line for people reading the .json.
  std::string type;
  uint32_t version;
  json input;
  std::vector<scripted_outcome> scripted; ///< Outcomes that replace the activities' own.
  /// What happens from outside, in order (messages, signals, timers, children's outcomes,
  /// cancellation, outcomes in a chosen order); the run settles after it. An `act::start()`
  /// in it delays the coroutine's first resume until that point.
  std::vector<script_action> script = {};
};

/// The scenarios. Append new ones; never change or remove one whose files are committed.
std::vector<scenario> scenarios() {
  json approved = {{"id", "A-1001"}, {"customer", "ada"}, {"amount", 250.0}};
  json rejected = {{"id", "A-1002"}, {"customer", "bob"}, {"amount", 5000.0}};
  json paid = {{"id", "A-2001"}, {"customer", "ada"}, {"amount", 250.0}};
  json over_limit = {{"id", "A-2002"}, {"customer", "bob"}, {"amount", 5000.0}};
  json payment = {{"order", "A-2001"}, {"amount", 250.0}, {"method", "card"}};
  json quote_request = {{"item", "widget"}, {"suppliers", {"acme", "globex", "initech"}}};
  return {
    {"hello-world", "hello(\"world\"): greet, a durable sleep, shout", "hello", 1, "world", {}},
    {"hello-shout-fails", "hello(\"world\") whose shout activity fails: the instance fails",
     "hello", 1, "world", {{2, false, "shout service unavailable"}}},
    {"order-approved", "an order within the credit limit: check, sleep, ship",
     "order-processing", 1, approved, {}},
    {"order-rejected", "an order over the credit limit: rejected after the credit check",
     "order-processing", 1, rejected, {}},
    {"steps-0", "steps with count 0: no operation at all, an empty journal", "steps", 1,
     json{{"count", 0}}, {}},
    {"steps-3", "steps with count 3: three recorded calls", "steps", 1, json{{"count", 3}}, {}},
    {"steps-3-pauses", "steps with count 3 and a 50 ms durable sleep after each call", "steps",
     1, json{{"count", 3}, {"pause_ms", 50}}, {}},
    {"steps-3-second-fails", "steps with count 3 whose second call fails: the instance fails",
     "steps", 1, json{{"count", 3}}, {{1, false, "disk full"}}},
    {"steps-sink-unwritable",
     "steps whose record activity itself fails (its sink cannot be opened) at the first call",
     "steps", 1, json{{"count", 3}, {"sink", "/nonexistent-convoy-golden/sink"}}, {}},
    // -- scripted: messages, signals, timers, children, chosen orders ---------------------------
    {"order-v2-paid",
     "order-processing v2: credit check, then the payment arrives while the order waits for "
     "it (a direct completion of the receive), ship",
     "order-processing", 2, paid, {},
     {act::settle(), act::correlated(correlate("order-id", "A-2001"), payment)}},
    {"order-v2-paid-early",
     "order-processing v2: the payment arrives during the credit check (kept in the mailbox: "
     "arrived), the receive consumes it at once (consumed), ship",
     "order-processing", 2, paid, {},
     {act::correlated(correlate("order-id", "A-2001"), payment)}},
    {"order-v2-payment-timeout",
     "order-processing v2: credit check, no payment within 5 s: the timeout fires first",
     "order-processing", 2, paid, {}, {act::settle(), act::fire(2)}},
    {"order-v2-rejected", "order-processing v2: over the credit limit, never waits for payment",
     "order-processing", 2, over_limit, {}},
    {"batch-three-items",
     "batch: item 2 reaches the instance before its coroutine first runs (mailbox: arrived, "
     "then consumed by the first receive), item 3 (last) arrives while it waits; stored",
     "batch", 1, json{{"batch", "B-1"}, {"seq", 1}, {"value", 1.5}}, {},
     {act::correlated(correlate("batch-id", "B-1"), json{{"batch", "B-1"}, {"seq", 2}, {"value", 2.5}}),
      act::start(),
      act::correlated(correlate("batch-id", "B-1"),
                      json{{"batch", "B-1"}, {"seq", 3}, {"value", 4.0}, {"last", true}})}},
    {"batch-timeout",
     "batch: item 2 arrives, then 5 s pass without item 3: the receive's timeout fires, the "
     "batch ends incomplete",
     "batch", 1, json{{"batch", "B-2"}, {"seq", 1}, {"value", 1.0}}, {},
     {act::correlated(correlate("batch-id", "B-2"), json{{"batch", "B-2"}, {"seq", 2}, {"value", 2.0}}),
      act::fire()}},
    {"best-quote-fast-wins",
     "best-quote: three quotes answered out of order (2, 0, 1) for when_all, then the fast "
     "carrier answers first and wins when_any",
     "best-quote", 1, quote_request, {},
     {act::deliver(2), act::deliver(0), act::deliver(1), act::deliver(3)}},
    {"best-quote-slow-wins",
     "best-quote: quotes in order, then the slow carrier's answer is delivered first and wins "
     "when_any (the fast carrier's step stays open, abandoned)",
     "best-quote", 1, quote_request, {},
     {act::deliver(0), act::deliver(1), act::deliver(2), act::deliver(4)}},
    {"trip-booked", "trip (saga): flight, hotel and car booked, no compensation", "trip", 1,
     json{{"to", "Lisbon"}}, {}},
    {"trip-rolled-back",
     "trip (saga): flight and hotel booked, the car is unavailable: the hotel then the flight "
     "are cancelled (compensations in reverse order)",
     "trip", 1, json{{"to", "Lisbon"}, {"unavailable", "car"}}, {}},
    {"greet-all-children",
     "greet-all: three awaited children (ctx.child) complete out of order (2, 0, 1), then a "
     "detached audit child (start_child)",
     "greet-all", 1, json{"ada", "bob", "cy"}, {},
     {act::succeed(2, "HELLO, CY!"), act::succeed(0, "HELLO, ADA!"),
      act::succeed(1, "HELLO, BOB!")}},
    {"greet-all-child-fails",
     "greet-all: the second child fails, the others succeed: when_all raises the failure after "
     "all finished, the instance fails",
     "greet-all", 1, json{"ada", "bob", "cy"}, {},
     {act::succeed(0, "HELLO, ADA!"), act::fail(1, "child greet-all.1 failed: shout service down"),
      act::succeed(2, "HELLO, CY!")}},
    {"counter-stop-before-restart",
     "counter: signals add 5 and add 7, then \"stop\" before the third: ends with the total "
     "(no continue_as_new)",
     "counter", 1, json::object(), {},
     {act::signal("add", 5), act::signal("add", 7), act::signal("add", "stop")}},
    {"counter-idle-timeout",
     "counter: one add signal, then 10 s without a signal: the signal's timeout fires",
     "counter", 1, json{{"total", 10}, {"runs", 2}}, {}, {act::signal("add", 4), act::fire()}},
    {"counter-continues",
     "counter: three add signals: the run ends with continue_as_new carrying the total",
     "counter", 1, json::object(), {},
     {act::signal("add", 1), act::signal("add", 2), act::signal("add", 3)}},
    {"order-v2-cancelled",
     "order-processing v2 cancelled while it waits for the payment: cancelled_error escapes "
     "(no example catches it), the instance ends cancelled",
     "order-processing", 2, paid, {}, {act::settle(), act::cancel()}},
  };
}

/// Runs one scenario to its end. Fails loudly rather than record a half-finished run.
expected<golden> record_scenario(const registry& reg, const scenario& s) {
  auto factory = reg.find(s.type, s.version);
  if (!factory)
    return failure{s.name + ": orchestration " + s.type + " version "
                   + std::to_string(s.version) + " is not registered"};
  auto outcomes = real_outcomes(reg);
  for (const auto& o : s.scripted)
    outcomes.script(o.step, make_outcome(o.ok, o.payload));
  golden g;
  g.name = s.name;
  g.type = s.type;
  g.version = s.version;
  g.instance_id = "golden-" + s.name;
  g.about = s.about;
  g.input = s.input;
  bool deferred = std::any_of(s.script.begin(), s.script.end(), [](const script_action& a) {
    return a.what == script_action::kind::start;
  });
  for (const auto& a : s.script)
    g.script.push_back(to_string(a));
  runner r(*factory, s.input, g.instance_id, {}, 1000, !deferred);
  try {
    r.play(s.script, outcomes);
  } catch (const std::logic_error& e) {
    return failure{s.name + ": " + e.what()};
  }
  if (r.nondeterminism())
    return failure{s.name + ": non-determinism while recording: " + *r.nondeterminism()};
  if (!r.done())
    return failure{s.name + ": the orchestration did not finish; steps still open: "
                   + std::to_string(r.pending().size())};
  if (r.result())
    g.result = json::parse(*r.result());
  else if (r.failure()) {
    g.failure = *r.failure();
    g.cancelled = r.cancelled();
  } else if (r.continue_input())
    g.continue_as_new = json::parse(*r.continue_input());
  else
    return failure{s.name + ": the orchestration ended with neither a result, a failure nor "
                            "continue_as_new"};
  g.entries = r.journal();
  return g;
}

// -- fuzz seed corpora ------------------------------------------------------------------------

template <class T>
void put_le(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xFF));
}

/// Seeds for the entry decoder: every golden entry, each decodable op kind and event, and
/// inputs that fail each check of the decoder.
std::map<std::string, std::string> entry_seeds(const std::vector<golden>& goldens) {
  std::map<std::string, std::string> seeds;
  std::set<std::string> seen;
  for (const auto& g : goldens)
    for (size_t i = 0; i < g.entries.size(); ++i) {
      auto bytes = encode(g.entries[i]);
      if (seen.insert(bytes).second)
        seeds[g.name + "-" + std::to_string(i)] = bytes;
    }
  journal_entry base{7, entry_event::completed, op_kind::call, 0x0123456789abcdefull, "{\"a\":1}"};
  for (auto op : decodable_op_kinds()) {
    auto e = base;
    e.op = op;
    e.event = entry_event::scheduled;
    seeds["op-" + std::string(to_string(op))] = encode(e);
  }
  for (auto ev : decodable_events()) {
    auto e = base;
    e.event = ev;
    seeds["event-" + std::string(to_string(ev))] = encode(e);
  }
  auto valid = encode(base);
  auto empty_payload = base;
  empty_payload.payload.clear();
  seeds["edge-empty-payload"] = encode(empty_payload);
  auto extremes = base;
  extremes.step = 0xffffffffu;
  extremes.op_hash = ~uint64_t{0};
  seeds["edge-extreme-step-and-hash"] = encode(extremes);
  auto binary = base;
  binary.payload = std::string("\0CJ\x01\xff\x80 payload", 14);
  seeds["edge-binary-payload"] = encode(binary);
  seeds["bad-empty"] = "";
  seeds["bad-magic-only"] = "CJ";
  seeds["bad-header-one-short"] = encode(empty_payload).substr(0, encode(empty_payload).size() - 1);
  seeds["bad-magic"] = "XJ" + valid.substr(2);
  for (int version : {0, 2}) {
    auto v = valid;
    v[2] = static_cast<char>(version);
    seeds["bad-version-" + std::to_string(version)] = v;
  }
  auto bad_event = valid;
  bad_event[3] = 0;
  seeds["bad-event-0"] = bad_event;
  auto bad_op = valid;
  bad_op[4] = static_cast<char>(static_cast<uint8_t>(decodable_op_kinds().back()) + 1);
  seeds["bad-op-after-last"] = bad_op;
  seeds["bad-payload-short"] = valid.substr(0, valid.size() - 1);
  seeds["bad-trailing-byte"] = valid + "!";
  auto huge = valid.substr(0, valid.size() - base.payload.size() - 4);
  put_le<uint32_t>(huge, 0xffffffffu);
  seeds["bad-length-4gib"] = huge;
  return seeds;
}

/// Seeds for the journal file decoder: the golden files and broken variants of one.
std::map<std::string, std::string> file_seeds(const std::vector<golden>& goldens) {
  std::map<std::string, std::string> seeds;
  std::string sample;
  for (const auto& g : goldens) {
    auto bytes = encode_journal_file(g.entries);
    seeds[g.name] = bytes;
    if (bytes.size() > sample.size() && g.entries.size() <= 8)
      sample = bytes;
  }
  seeds["edge-magic-only"] = std::string(journal_file_magic);
  seeds["bad-magic-truncated"] = std::string(journal_file_magic.substr(0, 5));
  seeds["bad-magic"] = "CVJRNL02" + sample.substr(8);
  if (sample.size() > 14) {
    seeds["bad-length-prefix-truncated"] = sample.substr(0, 10);
    seeds["bad-truncated-entry"] = sample.substr(0, sample.size() - 3);
    auto huge = sample;
    huge.replace(8, 4, std::string("\xff\xff\xff\x7f", 4));
    seeds["bad-length-prefix-huge"] = huge;
    auto corrupt = sample;
    corrupt[12] = 'X'; // the first entry's 'C'
    seeds["bad-entry-magic"] = corrupt;
  }
  return seeds;
}

bool write_seeds(const fs::path& dir, const std::map<std::string, std::string>& seeds) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  // The corpus is derived data: drop seeds a previous run wrote that are no longer produced.
  for (const auto& item : fs::directory_iterator(dir, ec))
    if (item.path().extension() == ".seed" && !seeds.count(item.path().stem().string()))
      fs::remove(item.path(), ec);
  for (const auto& [name, bytes] : seeds) {
    auto written = write_file(dir / (name + ".seed"), bytes);
    if (auto* err = std::get_if<failure>(&written)) {
      std::cerr << "error: " << err->message << "\n";
      return false;
    }
  }
  std::cout << "wrote " << seeds.size() << " seeds to " << dir.string() << "\n";
  return true;
}

int usage(const char* self) {
  std::cerr << "usage: " << self << " [--source-dir DIR] [--replace NAME]... [--list]\n"
            << "  Records golden scenarios that have no files yet under DIR/tests/replay/golden\n"
            << "  (DIR defaults to " << CONVOY_SOURCE_DIR << ") and rewrites the fuzz seed\n"
            << "  corpora. Existing golden files are kept unless named with --replace.\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  fs::path source_dir = CONVOY_SOURCE_DIR;
  std::set<std::string> replace;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--source-dir" && i + 1 < argc)
      source_dir = argv[++i];
    else if (arg == "--replace" && i + 1 < argc)
      replace.insert(argv[++i]);
    else if (arg == "--list")
      list = true;
    else
      return usage(argv[0]);
  }
  auto all = scenarios();
  if (list) {
    for (const auto& s : all)
      std::cout << s.name << "\t" << s.about << "\n";
    return 0;
  }
  for (const auto& name : replace)
    if (std::none_of(all.begin(), all.end(), [&](const scenario& s) { return s.name == name; })) {
      std::cerr << "error: --replace " << name << ": no such scenario\n";
      return 2;
    }
  registry reg;
  examples::register_all(reg);
  auto dir = golden_dir(source_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  int errors = 0;
  for (const auto& s : all) {
    bool exists = fs::exists(dir / (s.name + ".journal")) || fs::exists(dir / (s.name + ".json"));
    if (exists && !replace.count(s.name)) {
      std::cout << "kept     " << s.name << "\n";
      continue;
    }
    auto recorded = record_scenario(reg, s);
    if (auto* err = std::get_if<failure>(&recorded)) {
      std::cerr << "error: " << err->message << "\n";
      ++errors;
      continue;
    }
    auto& g = std::get<golden>(recorded);
    auto written = write_golden(dir, g);
    if (auto* err = std::get_if<failure>(&written)) {
      std::cerr << "error: " << err->message << "\n";
      ++errors;
      continue;
    }
    // Read back what was written, exactly as the replay test will.
    auto back = load_golden(dir, s.name);
    if (auto* err = std::get_if<failure>(&back)) {
      std::cerr << "error: " << s.name << " does not read back: " << err->message << "\n";
      ++errors;
      continue;
    }
    std::cout << (exists ? "replaced " : "recorded ") << s.name << " (" << g.entries.size()
              << " entries, "
              << (g.result            ? "result " + g.result->dump()
                  : g.continue_as_new ? "continue_as_new " + g.continue_as_new->dump()
                  : g.cancelled       ? "cancelled: " + *g.failure
                                      : "failure: " + *g.failure)
              << ")\n";
  }
  // Seeds from every golden pair on disk, old scenarios included.
  std::vector<golden> goldens;
  for (const auto& name : golden_names(dir)) {
    auto g = load_golden(dir, name);
    if (auto* err = std::get_if<failure>(&g)) {
      std::cerr << "error: " << err->message << "\n";
      ++errors;
      continue;
    }
    goldens.push_back(std::get<golden>(std::move(g)));
  }
  auto corpus = source_dir / "tests" / "fuzz" / "corpus";
  if (!write_seeds(corpus / "journal", entry_seeds(goldens))
      || !write_seeds(corpus / "journal_file", file_seeds(goldens)))
    ++errors;
  return errors == 0 ? 0 : 1;
}
