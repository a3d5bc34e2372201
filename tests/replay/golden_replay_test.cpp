// Golden journals: journals recorded by older binaries (tests/replay/golden/) must replay with
// this one to the same outcome, at once, without issuing anything. And a broken golden file is
// an error that names the file and the place, never a crash.

#include "replay/harness.hpp"

#include "examples.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

using namespace convoy;
using namespace convoy::replay;
namespace fs = std::filesystem;

namespace {

fs::path golden_folder() {
  return golden_dir(CONVOY_SOURCE_DIR);
}

const registry& example_registry() {
  static const registry reg = [] {
    registry r;
    examples::register_all(r);
    return r;
  }();
  return reg;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

/// A folder of its own under the system's temporary folder, removed with everything in it.
struct scratch_dir {
  fs::path path;
  scratch_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path()
           / ("convoy-golden-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

golden load_or_fail(const fs::path& dir, const std::string& name) {
  auto g = load_golden(dir, name);
  if (auto* err = std::get_if<failure>(&g))
    BOOST_FAIL(err->message);
  return std::get<golden>(std::move(g));
}

std::string load_error(const fs::path& dir, const std::string& name) {
  auto g = load_golden(dir, name);
  BOOST_REQUIRE_MESSAGE(std::holds_alternative<failure>(g), name << " should not have loaded");
  return std::get<failure>(g).message;
}

/// The first golden scenario with at least two entries, copied into `dir`: material to break.
std::string copy_a_golden_to(const fs::path& dir) {
  for (const auto& name : golden_names(golden_folder())) {
    auto g = load_golden(golden_folder(), name);
    if (std::holds_alternative<golden>(g) && std::get<golden>(g).entries.size() >= 2) {
      fs::copy_file(golden_folder() / (name + ".journal"), dir / (name + ".journal"));
      fs::copy_file(golden_folder() / (name + ".json"), dir / (name + ".json"));
      return name;
    }
  }
  BOOST_FAIL("no golden scenario with two entries or more in " << golden_folder());
  return {};
}

std::string read_or_fail(const fs::path& path) {
  auto bytes = read_file(path);
  if (auto* err = std::get_if<failure>(&bytes))
    BOOST_FAIL(err->message);
  return std::get<std::string>(std::move(bytes));
}

void write_or_fail(const fs::path& path, std::string_view bytes) {
  auto written = write_file(path, bytes);
  if (auto* err = std::get_if<failure>(&written))
    BOOST_FAIL(err->message);
}

/// Replays `g` with the current code; returns what differs from the recording (nothing when
/// it replays exactly).
std::vector<std::string> replay_problems(const registry& reg, const golden& g) {
  std::vector<std::string> problems;
  auto factory = reg.find(g.type, g.version);
  if (!factory) {
    problems.push_back("orchestration '" + g.type + "' version " + std::to_string(g.version)
                       + " is no longer registered: its running instances could not continue");
    return problems;
  }
  std::unique_ptr<runner> r;
  try {
    r = std::make_unique<runner>(*factory, g.input, g.instance_id, g.entries);
  } catch (const std::exception& e) {
    problems.push_back(std::string("starting the orchestration threw: ") + e.what());
    return problems;
  }
  if (r->nondeterminism()) {
    problems.push_back("non-determinism: " + *r->nondeterminism());
    return problems; // the instance stops here: the rest would only repeat it
  }
  if (!r->done())
    problems.push_back("did not complete at once: " + std::to_string(r->pending().size())
                       + " steps of the journal are still open");
  if (g.result) {
    if (!r->result())
      problems.push_back("recorded result " + g.result->dump() + ", replay "
                         + (r->failure() ? "failed: " + *r->failure() : "has no result"));
    else if (json::parse(*r->result()) != *g.result)
      problems.push_back("recorded result " + g.result->dump() + ", replay returned "
                         + *r->result());
  } else if (g.continue_as_new) {
    if (!r->continue_input())
      problems.push_back("recorded continue_as_new " + g.continue_as_new->dump() + ", replay "
                         + (r->failure() ? "failed: " + *r->failure()
                                         : "returned " + r->result().value_or("nothing")));
    else if (json::parse(*r->continue_input()) != *g.continue_as_new)
      problems.push_back("recorded continue_as_new " + g.continue_as_new->dump()
                         + ", replay continues with " + *r->continue_input());
  } else if (r->failure() != g.failure) {
    problems.push_back("recorded failure '" + g.failure.value_or("") + "', replay "
                       + (r->failure() ? "failed with '" + *r->failure() + "'"
                                       : "returned " + r->result().value_or("nothing")));
  } else if (r->cancelled() != g.cancelled) {
    problems.push_back(std::string("recorded ") + (g.cancelled ? "cancelled" : "failed")
                       + " with '" + *g.failure + "', replay "
                       + (r->cancelled() ? "was cancelled" : "failed") + " with it");
  }
  if (!g.continue_as_new && r->continue_input())
    problems.push_back("replay continues as new with " + *r->continue_input()
                       + " but the recording did not");
  for (const auto& e : r->written())
    problems.push_back("wrote a new journal entry: " + to_json(e).dump());
  for (const auto& a : r->activities())
    problems.push_back("issued activity '" + a.activity + "' for step " + std::to_string(a.step));
  for (const auto& t : r->timers())
    problems.push_back("started a timer for step " + std::to_string(t.step));
  return problems;
}

} // namespace

BOOST_AUTO_TEST_SUITE(golden_replay)

// -- replay -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_golden_folder_holds_a_journal_and_a_json_for_every_scenario) {
  auto names = golden_names(golden_folder());
  BOOST_TEST_REQUIRE(!names.empty(), "no golden scenarios in " << golden_folder());
  for (const auto& name : names) {
    BOOST_TEST(fs::exists(golden_folder() / (name + ".journal")), name << ".journal is missing");
    BOOST_TEST(fs::exists(golden_folder() / (name + ".json")), name << ".json is missing");
  }
}

BOOST_AUTO_TEST_CASE(every_golden_journal_replays_to_its_recorded_outcome_without_new_commands) {
  auto names = golden_names(golden_folder());
  BOOST_TEST_REQUIRE(!names.empty(), "no golden scenarios in " << golden_folder());
  for (const auto& name : names) {
    BOOST_TEST_CONTEXT("golden scenario " << name) {
      auto g = load_golden(golden_folder(), name);
      if (auto* err = std::get_if<failure>(&g)) {
        BOOST_TEST(false, err->message);
        continue;
      }
      auto problems = replay_problems(example_registry(), std::get<golden>(g));
      for (const auto& p : problems)
        BOOST_TEST(false, p);
      BOOST_TEST(problems.empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_golden_replayed_over_a_changed_operation_is_reported_as_nondeterminism) {
  // Proves the check above can fail: the hash of the first issued operation no longer matches.
  scratch_dir dir;
  auto g = load_or_fail(dir.path, copy_a_golden_to(dir.path));
  auto opener = std::find_if(g.entries.begin(), g.entries.end(), [](const journal_entry& e) {
    return effect_of(e.event) == step_effect::opens;
  });
  BOOST_TEST_REQUIRE((opener != g.entries.end()));
  opener->op_hash ^= 1;
  auto problems = replay_problems(example_registry(), g);
  BOOST_TEST_REQUIRE(!problems.empty());
  BOOST_TEST(contains(problems.front(), "non-determinism"), problems.front());
  BOOST_TEST(contains(problems.front(), "step " + std::to_string(opener->step)), problems.front());
}

BOOST_AUTO_TEST_CASE(a_golden_of_an_unregistered_orchestration_version_is_reported_by_name) {
  scratch_dir dir;
  auto g = load_or_fail(dir.path, copy_a_golden_to(dir.path));
  g.version = 999;
  auto problems = replay_problems(example_registry(), g);
  BOOST_TEST_REQUIRE(problems.size() == 1u);
  BOOST_TEST(contains(problems.front(), "'" + g.type + "' version 999"), problems.front());
}

BOOST_AUTO_TEST_CASE(a_golden_whose_continue_as_new_input_differs_on_replay_is_reported) {
  auto g = load_or_fail(golden_folder(), "counter-continues");
  BOOST_TEST_REQUIRE(g.continue_as_new.has_value());
  BOOST_TEST(replay_problems(example_registry(), g).empty());
  (*g.continue_as_new)["total"] = 999;
  auto problems = replay_problems(example_registry(), g);
  BOOST_TEST_REQUIRE(problems.size() == 1u);
  BOOST_TEST(contains(problems.front(), "replay continues with"), problems.front());
}

BOOST_AUTO_TEST_CASE(a_golden_recorded_as_cancelled_that_replays_as_a_failure_is_reported) {
  auto g = load_or_fail(golden_folder(), "order-v2-cancelled");
  BOOST_TEST_REQUIRE(g.cancelled);
  BOOST_TEST(replay_problems(example_registry(), g).empty());
  g.cancelled = false;
  auto problems = replay_problems(example_registry(), g);
  BOOST_TEST_REQUIRE(problems.size() == 1u);
  BOOST_TEST(contains(problems.front(), "was cancelled"), problems.front());
}

BOOST_AUTO_TEST_CASE(scripted_goldens_hold_mailbox_entries_and_direct_message_completions) {
  // The scripted scenarios exist to cover these paths: make sure they still do.
  auto events_of = [](const golden& g) {
    std::vector<std::string> out;
    for (const auto& e : g.entries)
      out.emplace_back(to_string(e.event));
    return out;
  };
  auto has = [](const std::vector<std::string>& v, const char* x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  auto early = events_of(load_or_fail(golden_folder(), "order-v2-paid-early"));
  BOOST_TEST(has(early, "arrived"));
  BOOST_TEST(has(early, "consumed"));
  auto batch = events_of(load_or_fail(golden_folder(), "batch-three-items"));
  BOOST_TEST(has(batch, "arrived"));
  BOOST_TEST(has(batch, "consumed"));
  auto paid = load_or_fail(golden_folder(), "order-v2-paid");
  BOOST_TEST(!has(events_of(paid), "arrived"));
  BOOST_TEST(std::any_of(paid.entries.begin(), paid.entries.end(), [](const journal_entry& e) {
    return e.op == op_kind::receive && e.event == entry_event::completed;
  }));
  BOOST_TEST(has(events_of(load_or_fail(golden_folder(), "order-v2-cancelled")), "cancelled"));
}

// -- broken golden files ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_truncation_of_a_golden_journal_is_an_error_or_a_shorter_journal) {
  for (const auto& name : golden_names(golden_folder())) {
    auto bytes = read_or_fail(golden_folder() / (name + ".journal"));
    auto full = decode_journal_file(bytes);
    BOOST_TEST_REQUIRE(std::holds_alternative<std::vector<journal_entry>>(full), name);
    const auto& entries = std::get<std::vector<journal_entry>>(full);
    // Where each entry ends: cutting there leaves a valid, shorter journal.
    std::vector<size_t> boundaries{journal_file_magic.size()};
    for (const auto& e : entries)
      boundaries.push_back(boundaries.back() + 4 + encode(e).size());
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto cut = decode_journal_file(std::string_view(bytes).substr(0, n));
      auto at = std::find(boundaries.begin(), boundaries.end(), n);
      if (at != boundaries.end()) {
        BOOST_TEST_REQUIRE(std::holds_alternative<std::vector<journal_entry>>(cut),
                           name << " cut at entry boundary " << n);
        auto kept = static_cast<size_t>(at - boundaries.begin());
        BOOST_TEST((std::get<std::vector<journal_entry>>(cut)
                    == std::vector<journal_entry>(entries.begin(), entries.begin() + kept)));
      } else {
        BOOST_TEST_REQUIRE(std::holds_alternative<failure>(cut), name << " cut at " << n);
        BOOST_TEST(contains(std::get<failure>(cut).message, "truncated"),
                   std::get<failure>(cut).message);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_golden_journal_cut_inside_an_entry_is_reported_with_file_entry_and_offset) {
  scratch_dir dir;
  auto name = copy_a_golden_to(dir.path);
  auto path = dir.path / (name + ".journal");
  auto bytes = read_or_fail(path);
  write_or_fail(path, bytes.substr(0, bytes.size() - 3));
  auto message = load_error(dir.path, name);
  BOOST_TEST(contains(message, path.string()), message);
  BOOST_TEST(contains(message, "truncated"), message);
  BOOST_TEST(contains(message, "entry "), message);
  BOOST_TEST(contains(message, "at byte "), message);
  BOOST_TEST(contains(message, "only "), message);
}

BOOST_AUTO_TEST_CASE(a_golden_journal_with_a_corrupted_entry_names_the_entry_and_the_reason) {
  scratch_dir dir;
  auto name = copy_a_golden_to(dir.path);
  auto path = dir.path / (name + ".journal");
  auto bytes = read_or_fail(path);
  // The second entry's 'C' of 'CJ'.
  auto first_length = static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8;
  auto second = 8 + 4 + static_cast<size_t>(first_length);
  BOOST_TEST_REQUIRE(bytes.substr(second + 4, 2) == "CJ");
  bytes[second + 4] = 'X';
  write_or_fail(path, bytes);
  auto message = load_error(dir.path, name);
  BOOST_TEST(contains(message, "entry 1 at byte " + std::to_string(second)), message);
  BOOST_TEST(contains(message, "malformed"), message);
  BOOST_TEST(contains(message, "magic"), message);
}

BOOST_AUTO_TEST_CASE(a_length_prefix_beyond_the_end_of_the_file_is_rejected_without_reading_it) {
  scratch_dir dir;
  auto name = copy_a_golden_to(dir.path);
  auto path = dir.path / (name + ".journal");
  auto bytes = read_or_fail(path);
  bytes.replace(8, 4, std::string("\xff\xff\xff\xff", 4));
  write_or_fail(path, bytes);
  auto message = load_error(dir.path, name);
  BOOST_TEST(contains(message, "entry 0 at byte 8 announces 4294967295 bytes"), message);
}

BOOST_AUTO_TEST_CASE(a_file_without_the_golden_magic_is_not_taken_for_a_journal) {
  BOOST_TEST(contains(std::get<failure>(decode_journal_file("CVJRNL02")).message,
                      "expected the magic \"CVJRNL01\", found \"CVJRNL02\""));
  BOOST_TEST(contains(std::get<failure>(decode_journal_file(std::string("\0\x01", 2))).message,
                      "found \"\\x00\\x01\""));
  BOOST_TEST(contains(std::get<failure>(decode_journal_file("CVJR")).message,
                      "truncated: 4 bytes"));
  BOOST_TEST(std::get<std::vector<journal_entry>>(decode_journal_file("CVJRNL01")).empty());
}

BOOST_AUTO_TEST_CASE(a_golden_json_that_disagrees_with_its_journal_names_the_entry) {
  scratch_dir dir;
  auto name = copy_a_golden_to(dir.path);
  auto path = dir.path / (name + ".json");
  auto doc = json::parse(read_or_fail(path));
  doc["entries"][1]["payload"] = "edited by hand";
  write_or_fail(path, doc.dump(2));
  auto message = load_error(dir.path, name);
  BOOST_TEST(contains(message, path.string() + " entry 1 is"), message);
  doc["entries"].erase(1);
  write_or_fail(path, doc.dump(2));
  message = load_error(dir.path, name);
  BOOST_TEST(contains(message, "lists"), message);
}

BOOST_AUTO_TEST_CASE(a_malformed_golden_json_is_reported_by_file_name) {
  scratch_dir dir;
  auto name = copy_a_golden_to(dir.path);
  auto path = dir.path / (name + ".json");
  auto original = json::parse(read_or_fail(path));
  write_or_fail(path, "{\"type\": \"hello\", ");
  auto message = load_error(dir.path, name);
  BOOST_TEST(contains(message, path.string() + ": not valid JSON"), message);
  auto no_type = original;
  no_type.erase("type");
  write_or_fail(path, no_type.dump());
  message = load_error(dir.path, name);
  BOOST_TEST(contains(message, path.string()), message);
  BOOST_TEST(contains(message, "type"), message);
  auto both = original;
  both["result"] = 1;
  both["failure"] = "x";
  write_or_fail(path, both.dump());
  message = load_error(dir.path, name);
  BOOST_TEST(contains(message, "exactly one of"), message);
}

BOOST_AUTO_TEST_CASE(a_missing_golden_file_is_reported_by_name) {
  scratch_dir dir;
  auto name = copy_a_golden_to(dir.path);
  fs::remove(dir.path / (name + ".journal"));
  auto message = load_error(dir.path, name);
  BOOST_TEST(contains(message, "cannot open " + (dir.path / (name + ".journal")).string()),
             message);
}

BOOST_AUTO_TEST_SUITE_END()
