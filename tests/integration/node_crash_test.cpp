// The core promise of the first slice: an orchestration's progress lives in the MessageBox,
// so `kill -9` of the node running it loses nothing and repeats no journaled step.

#include "convoy/persistence/message_box.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <set>

using namespace convoy;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

fs::path write_node_config(const fs::path& dir, const std::string& name, uint16_t redis_port) {
  auto path = dir / (name + ".toml");
  std::ofstream(path) << "[node]\nname = \"" << name << "\"\nlog_level = \"debug\"\n"
                      << "[messagebox]\naddress = \"127.0.0.1:" << redis_port << "\"\n"
                      << "[timing]\nreclaim_idle_ms = 1000\npoll_block_ms = 200\n";
  return path;
}

test::child_process start_node(const fs::path& config, const fs::path& log) {
  return test::child_process::start({CONVOY_BINARY, "node", "--config", config.string()}, {},
                                    log.string());
}

size_t completed_steps(const std::vector<journal_entry>& journal) {
  size_t n = 0;
  for (const auto& e : journal)
    n += e.event == entry_event::completed ? 1 : 0;
  return n;
}

std::map<std::string, int> count_lines(const fs::path& file) {
  std::map<std::string, int> counts;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    ++counts[line];
  return counts;
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

BOOST_AUTO_TEST_SUITE(node_crash)

BOOST_AUTO_TEST_CASE(a_killed_nodes_orchestration_completes_on_a_new_node_without_repeating_steps) {
  test::temp_dir dir;
  auto redis = test::redis_server::start(dir.path());
  persistence::message_box_config cfg;
  cfg.endpoint.port = redis.port();
  persistence::message_box box(cfg);
  auto sink = dir.path() / "effects.log";
  constexpr int steps = 8;

  auto node_a = start_node(write_node_config(dir.path(), "node-a", redis.port()),
                           dir.path() / "node-a.log");
  auto input = json{{"count", steps}, {"sink", sink.string()}, {"pause_ms", 300}}.dump();
  BOOST_TEST_REQUIRE(box.submit("receive", "steps", input, "crash-1").empty());

  // Let it make real progress, then freeze it so the journal we read is exactly what the
  // node had persisted when it died.
  BOOST_TEST_REQUIRE(test::wait_until([&] { return completed_steps(box.describe("crash-1").journal) >= 3; },
                                      30s),
                     "node-a made no progress:\n" << read_file(dir.path() / "node-a.log"));
  node_a.send_signal(SIGSTOP);
  auto before = box.describe("crash-1");
  BOOST_TEST_REQUIRE(before.found);
  BOOST_TEST_REQUIRE((before.record.status == instance_status::waiting));
  node_a.send_signal(SIGKILL);
  BOOST_TEST_REQUIRE(node_a.wait_for_exit(10s).has_value());
  auto killed_at = std::chrono::steady_clock::now();

  auto node_b = start_node(write_node_config(dir.path(), "node-b", redis.port()),
                           dir.path() / "node-b.log");
  BOOST_TEST_REQUIRE(test::wait_until(
                       [&] {
                         return box.describe("crash-1").record.status == instance_status::completed;
                       },
                       60s),
                     "not completed after the kill:\n" << read_file(dir.path() / "node-b.log"));
  auto recovery = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed_at);
  BOOST_TEST_MESSAGE("kill -9 to completion on node-b: " << recovery.count() << " ms ("
                                                         << completed_steps(before.journal)
                                                         << " of " << 2 * steps
                                                         << " operations journaled before the kill)");

  auto after = box.describe("crash-1");
  BOOST_TEST(after.record.result == std::to_string(steps * (steps - 1) / 2));
  BOOST_TEST(after.record.owner == "node-b");
  BOOST_TEST(after.record.epoch >= 2u); // node-b's claim fenced node-a
  BOOST_TEST(completed_steps(after.journal) == size_t{2 * steps}); // activities and sleeps
  // The journal only grew: what node-a persisted is a prefix of the final journal.
  BOOST_TEST_REQUIRE(after.journal.size() >= before.journal.size());
  for (size_t i = 0; i < before.journal.size(); ++i)
    BOOST_TEST((after.journal[i] == before.journal[i]), "journal entry " << i << " changed");

  // Effects: every step's activity ran; after dedupe by idempotency key exactly once each;
  // and a step whose result was journaled before the kill was never executed again.
  auto effects = count_lines(sink);
  BOOST_TEST(effects.size() == size_t{steps});
  // Activity i is operation 2*i: each is followed by its durable sleep.
  for (int i = 0; i < steps; ++i)
    BOOST_TEST(effects.count("crash-1/" + std::to_string(2 * i)) == 1u, "activity " << i << " missing");
  for (const auto& e : before.journal)
    if (e.event == entry_event::completed && e.op == op_kind::call)
      BOOST_TEST(effects["crash-1/" + std::to_string(e.step)] == 1,
                 "journaled step " << e.step << " ran again");
  BOOST_TEST(read_file(dir.path() / "node-b.log").find("rehydrated") != std::string::npos);

  node_b.send_signal(SIGTERM);
  auto code = node_b.wait_for_exit(15s);
  BOOST_TEST_REQUIRE(code.has_value());
  BOOST_TEST(*code == 0);
}

BOOST_AUTO_TEST_SUITE_END()
