#define BOOST_TEST_MODULE convoy_support
#include <boost/test/unit_test.hpp>

#include "convoy/test/free_loopback_port.hpp"
#include "convoy/test/process.hpp"
#include "convoy/test/redis_server.hpp"
#include "convoy/test/temp_dir.hpp"
#include "convoy/test/wait_until.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace convoy::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// True once `pid` no longer names any process (it was reaped).
bool pid_is_gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

std::string read_file(const fs::path& file) {
  std::ifstream in{file};
  std::ostringstream buf;
  buf << in.rdbuf();
  return std::move(buf).str();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

using clock_type = std::chrono::steady_clock;

/// Stands in for "no exit code" so optionals compare and print in BOOST_TEST.
constexpr int no_code = -999;

} // namespace

// -- temp_dir -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(temp_dir_is_unique_and_removed_with_its_contents) {
  fs::path kept;
  {
    temp_dir first;
    temp_dir second;
    BOOST_TEST(first.path() != second.path());
    BOOST_TEST(fs::is_directory(first.path()));
    BOOST_TEST(first.path().is_absolute());
    BOOST_TEST(first.path().filename().string().rfind("convoy-test-", 0) == 0u);
    fs::create_directories(first.path() / "a" / "b");
    std::ofstream{first.path() / "a" / "b" / "file"} << "data";
    kept = first.path();
  }
  BOOST_TEST(!fs::exists(kept));
}

BOOST_AUTO_TEST_CASE(temp_dir_is_kept_when_convoy_keep_test_dirs_is_set) {
  fs::path kept;
  ::setenv("CONVOY_KEEP_TEST_DIRS", "1", 1);
  {
    temp_dir dir;
    kept = dir.path();
  }
  ::unsetenv("CONVOY_KEEP_TEST_DIRS");
  BOOST_TEST(fs::is_directory(kept));
  fs::remove_all(kept);
}

BOOST_AUTO_TEST_CASE(moving_a_temp_dir_transfers_ownership) {
  temp_dir original;
  auto path = original.path();
  {
    temp_dir moved{std::move(original)};
    BOOST_TEST(original.path().empty());
    BOOST_TEST(moved.path() == path);
  }
  BOOST_TEST(!fs::exists(path));
}

// -- free_loopback_port and wait_until -----------------------------------------

BOOST_AUTO_TEST_CASE(free_loopback_port_returns_a_port_that_can_be_bound) {
  auto port = free_loopback_port();
  BOOST_TEST(port != 0);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  BOOST_TEST(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(wait_until_returns_true_as_soon_as_the_condition_holds) {
  int calls = 0;
  auto start = clock_type::now();
  BOOST_TEST(wait_until([&] { return ++calls == 3; }, 5s, 1ms));
  BOOST_TEST(calls == 3);
  BOOST_TEST((clock_type::now() - start < 1s));
}

BOOST_AUTO_TEST_CASE(wait_until_returns_false_at_the_deadline) {
  auto start = clock_type::now();
  BOOST_TEST(!wait_until([] { return false; }, 100ms, 10ms));
  auto elapsed = clock_type::now() - start;
  BOOST_TEST((elapsed >= 100ms));
  BOOST_TEST((elapsed < 2s));
}

// -- child_process --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(child_process_reports_its_exit_code) {
  auto proc = child_process::start({"sh", "-c", "exit 3"});
  BOOST_TEST(proc.pid() > 0);
  BOOST_TEST(proc.wait_for_exit(10s).value_or(no_code) == 3);
  BOOST_TEST(!proc.running());
  BOOST_TEST(proc.exit_code().value_or(no_code) == 3);
  BOOST_TEST(pid_is_gone(proc.pid()));
}

BOOST_AUTO_TEST_CASE(child_process_reports_128_plus_the_signal_that_killed_it) {
  auto proc = child_process::start({"sleep", "30"});
  BOOST_TEST(proc.running());
  BOOST_TEST(!proc.wait_for_exit(50ms).has_value());
  proc.send_signal(SIGKILL);
  BOOST_TEST(proc.wait_for_exit(10s).value_or(no_code) == 128 + SIGKILL);
}

BOOST_AUTO_TEST_CASE(child_process_passes_extra_env_and_appends_output_to_a_file) {
  temp_dir dir;
  auto out = dir.path() / "out.txt";
  std::ofstream{out} << "before\n";
  auto proc = child_process::start({"sh", "-c", "echo \"$CONVOY_X\"; echo oops >&2"},
                                   {{"CONVOY_X", "hello"}, {"PATH", ::getenv("PATH")}},
                                   out.string());
  BOOST_TEST(proc.wait_for_exit(10s).value_or(no_code) == 0);
  BOOST_TEST(read_file(out) == "before\nhello\noops\n");
}

BOOST_AUTO_TEST_CASE(child_process_stop_terminates_it_and_the_pid_is_gone) {
  auto proc = child_process::start({"sleep", "30"});
  auto pid = proc.pid();
  BOOST_TEST(!pid_is_gone(pid));
  auto start = clock_type::now();
  proc.stop();
  BOOST_TEST((clock_type::now() - start < 4s));
  BOOST_TEST(!proc.running());
  BOOST_TEST(proc.exit_code().value_or(no_code) == 128 + SIGTERM);
  BOOST_TEST(pid_is_gone(pid));
  proc.stop(); // idempotent, and no signal goes to a PID we no longer own
  BOOST_TEST(proc.pid() == pid);
}

BOOST_AUTO_TEST_CASE(child_process_stop_escalates_to_sigkill_when_sigterm_is_ignored) {
  temp_dir dir;
  auto out = dir.path() / "out.txt";
  // Ignored dispositions survive exec, so the sleep itself ignores SIGTERM.
  auto proc = child_process::start({"sh", "-c", "trap '' TERM; echo ready; exec sleep 30"}, {},
                                   out.string());
  BOOST_REQUIRE(wait_until([&] { return contains(read_file(out), "ready"); }, 10s));
  auto pid = proc.pid();
  auto start = clock_type::now();
  proc.stop();
  auto elapsed = clock_type::now() - start;
  BOOST_TEST((elapsed >= 4900ms));
  BOOST_TEST((elapsed < 15s));
  BOOST_TEST(proc.exit_code().value_or(no_code) == 128 + SIGKILL);
  BOOST_TEST(pid_is_gone(pid));
}

BOOST_AUTO_TEST_CASE(child_process_start_throws_for_a_missing_program) {
  BOOST_CHECK_THROW(child_process::start({"convoy-no-such-program-xyz"}), std::system_error);
}

BOOST_AUTO_TEST_CASE(moving_a_child_process_transfers_ownership) {
  auto original = child_process::start({"sleep", "30"});
  auto pid = original.pid();
  {
    child_process moved{std::move(original)};
    BOOST_TEST(original.pid() == -1);
    BOOST_TEST(!original.running());
    BOOST_TEST(moved.pid() == pid);
    BOOST_TEST(moved.running());
  }
  BOOST_TEST(pid_is_gone(pid));
}

// -- run_command ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(run_command_reports_exit_code_and_output) {
  auto res = run_command({"sh", "-c", "echo out; echo err >&2; exit 7"}, 10s);
  BOOST_TEST(res.exit_code == 7);
  BOOST_TEST(res.output == "out\nerr\n");
}

BOOST_AUTO_TEST_CASE(run_command_passes_extra_environment) {
  auto res = run_command({"sh", "-c", "printf %s \"$CONVOY_Y\""}, 10s, {{"CONVOY_Y", "42"}});
  BOOST_TEST(res.exit_code == 0);
  BOOST_TEST(res.output == "42");
}

BOOST_AUTO_TEST_CASE(run_command_kills_a_command_past_its_deadline) {
  auto start = clock_type::now();
  auto res = run_command({"sh", "-c", "echo started; exec sleep 30"}, 500ms);
  auto elapsed = clock_type::now() - start;
  BOOST_TEST(res.exit_code == -1);
  BOOST_TEST(res.output == "started\n");
  BOOST_TEST((elapsed >= 500ms));
  BOOST_TEST((elapsed < 5s));
}

BOOST_AUTO_TEST_CASE(run_command_reports_127_for_a_missing_program) {
  auto res = run_command({"convoy-no-such-program-xyz"}, 10s);
  BOOST_TEST(res.exit_code == 127);
  BOOST_TEST(contains(res.output, "convoy-no-such-program-xyz"));
}

// -- redis_server ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(redis_server_starts_on_a_free_port_and_stops_by_pid) {
  temp_dir dir;
  auto redis = redis_server::start(dir.path());
  BOOST_TEST(redis.host() == "127.0.0.1");
  BOOST_TEST(redis.port() != 0);
  BOOST_TEST(redis.address() == "127.0.0.1:" + std::to_string(redis.port()));
  BOOST_TEST(fs::exists(redis.log_file()));
  BOOST_TEST(redis.command({"PING"}) == "PONG");
  auto pid = redis.pid();
  BOOST_TEST(!pid_is_gone(pid));
  redis.stop();
  BOOST_TEST(!redis.running());
  BOOST_TEST(pid_is_gone(pid));
  BOOST_TEST(redis.command({"PING"}).rfind("ERR:", 0) == 0u);
  BOOST_TEST(contains(read_file(redis.log_file()), "Redis is now ready to exit"));
}

BOOST_AUTO_TEST_CASE(redis_server_command_renders_replies_as_text) {
  temp_dir dir;
  auto redis = redis_server::start(dir.path());
  BOOST_TEST(redis.command({"SET", "key", "a value\nwith a newline"}) == "OK");
  BOOST_TEST(redis.command({"GET", "key"}) == "a value\nwith a newline");
  BOOST_TEST(redis.command({"GET", "missing"}) == "(nil)");
  BOOST_TEST(redis.command_int({"INCR", "n"}) == 1);
  BOOST_TEST(redis.command_int({"INCRBY", "n", "41"}) == 42);
  BOOST_TEST(redis.command_int({"GET", "n"}) == 42);
  BOOST_TEST(redis.command({"RPUSH", "list", "x", "y", "z"}) == "3");
  BOOST_TEST(redis.command({"LRANGE", "list", "0", "-1"}) == "x\ny\nz");
  BOOST_TEST(redis.command({"NO-SUCH-COMMAND"}).rfind("ERR:", 0) == 0u);
  BOOST_CHECK_THROW(redis.command_int({"GET", "key"}), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(redis_server_passes_extra_arguments) {
  temp_dir dir;
  auto redis = redis_server::start(dir.path(), {"--maxmemory", "10mb"});
  BOOST_TEST(redis.command({"CONFIG", "GET", "maxmemory"}) == "maxmemory\n10485760");
  BOOST_TEST(redis.command({"CONFIG", "GET", "dir"}) == "dir\n" + dir.path().string());
}

BOOST_AUTO_TEST_CASE(two_redis_servers_run_side_by_side_on_different_ports) {
  temp_dir dir;
  auto first = redis_server::start(dir.path());
  auto second = redis_server::start(dir.path());
  BOOST_TEST(first.port() != second.port());
  first.command({"SET", "who", "first"});
  BOOST_TEST(second.command({"GET", "who"}) == "(nil)");
}

BOOST_AUTO_TEST_CASE(redis_server_kill9_ends_it_at_once) {
  temp_dir dir;
  auto redis = redis_server::start(dir.path());
  auto pid = redis.pid();
  auto start = clock_type::now();
  redis.kill9();
  BOOST_TEST((clock_type::now() - start < 2s));
  BOOST_TEST(pid_is_gone(pid));
  BOOST_TEST(!contains(read_file(redis.log_file()), "ready to exit"));
}

BOOST_AUTO_TEST_CASE(redis_server_is_stopped_by_its_destructor) {
  temp_dir dir;
  pid_t pid = -1;
  {
    auto redis = redis_server::start(dir.path());
    pid = redis.pid();
  }
  BOOST_TEST(pid_is_gone(pid));
}

BOOST_AUTO_TEST_CASE(redis_server_start_reports_the_output_tail_when_redis_fails) {
  temp_dir dir;
  try {
    auto redis = redis_server::start(dir.path(), {"--no-such-option", "1"});
    BOOST_FAIL("redis-server started with a bogus option");
  } catch (const std::runtime_error& err) {
    std::string what = err.what();
    BOOST_TEST_MESSAGE(what);
    BOOST_TEST(contains(what, "exited during startup"));
    BOOST_TEST(contains(what, "no-such-option"));
  }
}
