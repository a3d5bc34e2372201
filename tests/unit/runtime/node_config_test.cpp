// Loading node configuration files: the shipped example, and every error naming the file and
// the key at fault.

#include "convoy/runtime/node_config.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <variant>

namespace rt = convoy::runtime;
using convoy::runtime::load_node_config;
using convoy::runtime::validate;
using namespace std::chrono_literals;

namespace fs = std::filesystem;

namespace {

/// A folder of throwaway configuration files, removed with the fixture. (The unit-test binary
/// does not link the test-support library, hence this small stand-in for its temp_dir.)
class config_files {
public:
  config_files() {
    auto base = std::getenv("TMPDIR");
    auto templ = fs::path(base && *base ? base : "/tmp") / "convoy-node-config-XXXXXX";
    std::string buf = templ.string();
    if (::mkdtemp(buf.data()) == nullptr)
      throw std::runtime_error("cannot create " + buf);
    dir_ = buf;
  }

  ~config_files() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  config_files(const config_files&) = delete;
  config_files& operator=(const config_files&) = delete;

  /// Writes `text` to `name` in the folder and returns its path.
  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream out(path);
    out << text;
    if (!out)
      throw std::runtime_error("cannot write " + path.string());
    return path.string();
  }

  const fs::path& dir() const { return dir_; }

private:
  fs::path dir_;
};

/// A valid configuration, to which each test adds or changes one thing.
const std::string valid_base = R"([node]
name = "unit-node"
hosts = ["receive", "processing", "send"]
log_level = "info"

[messagebox]
address = "127.0.0.1:6379"
)";

rt::node_config expect_config(const std::string& path) {
  auto loaded = load_node_config(path);
  if (auto err = std::get_if<std::string>(&loaded))
    BOOST_FAIL("loading " << path << " failed: " << *err);
  return std::get<rt::node_config>(std::move(loaded));
}

std::string expect_error(const std::string& path) {
  auto loaded = load_node_config(path);
  BOOST_REQUIRE_MESSAGE(std::holds_alternative<std::string>(loaded),
                        "loading " << path << " should have failed");
  return std::get<std::string>(std::move(loaded));
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Asserts that `error` starts with the file's path and names `key`.
void check_names(const std::string& error, const std::string& path, const std::string& key) {
  BOOST_TEST_INFO("error: " << error);
  BOOST_TEST(error.rfind(path + ":", 0) == 0);
  BOOST_TEST_INFO("error: " << error);
  BOOST_TEST(contains(error, key));
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(node_config, config_files)

// -- valid files ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(shipped_example_config_loads) {
  auto cfg = expect_config(std::string(CONVOY_SOURCE_DIR) + "/examples/node.toml");
  BOOST_TEST(cfg.name == "node-a");
  BOOST_TEST(cfg.hosts == (std::vector<std::string>{"receive", "processing", "send"}),
             boost::test_tools::per_element());
  BOOST_TEST(cfg.log_level == "info");
  BOOST_TEST(cfg.redis.address() == "127.0.0.1:6379");
  BOOST_TEST(cfg.redis.password.empty());
  BOOST_TEST(cfg.prefix == "convoy:");
  BOOST_TEST(cfg.reclaim_idle.count() == 5000);
  BOOST_TEST(cfg.poll_block.count() == 500);
  BOOST_TEST(cfg.timer_poll.count() == 100);
  BOOST_TEST(cfg.activity_workers == 4u);
  BOOST_TEST(cfg.max_instances == 10000u);
  BOOST_TEST(validate(cfg).empty());
}

BOOST_AUTO_TEST_CASE(empty_file_yields_defaults_and_a_generated_name) {
  auto cfg = expect_config(write("empty.toml", ""));
  BOOST_TEST(!cfg.name.empty());
  BOOST_TEST(cfg.hosts.size() == 3u);
  BOOST_TEST(cfg.redis.address() == "127.0.0.1:6379");
  BOOST_TEST(cfg.reclaim_idle.count() == 5000);
  BOOST_TEST(validate(cfg).empty());
}

BOOST_AUTO_TEST_CASE(every_key_is_read) {
  auto cfg = expect_config(write("full.toml", R"([node]
name = "n1.example:7"
hosts = ["send"]
log_level = "debug"

[messagebox]
address = "redis.internal:6380"
prefix = "staging:"
user = "convoy"

[timing]
reclaim_idle_ms = 1000
poll_block_ms = 250
timer_poll_ms = 20

[send]
workers = 16

[processing]
max_instances = 42
dehydrate_after_ms = 12345
)"));
  BOOST_TEST(cfg.name == "n1.example:7");
  BOOST_TEST(cfg.hosts == (std::vector<std::string>{"send"}), boost::test_tools::per_element());
  BOOST_TEST(cfg.log_level == "debug");
  BOOST_TEST(cfg.redis.host == "redis.internal");
  BOOST_TEST(cfg.redis.port == 6380);
  BOOST_TEST(cfg.redis.user == "convoy");
  BOOST_TEST(cfg.prefix == "staging:");
  BOOST_TEST(cfg.reclaim_idle.count() == 1000);
  BOOST_TEST(cfg.poll_block.count() == 250);
  BOOST_TEST(cfg.timer_poll.count() == 20);
  BOOST_TEST(cfg.activity_workers == 16u);
  BOOST_TEST(cfg.max_instances == 42u);
  BOOST_TEST(cfg.dehydrate_after.count() == 12345);
}

BOOST_AUTO_TEST_CASE(password_comes_from_the_variable_password_env_names) {
  const char* var = "CONVOY_NODE_CONFIG_TEST_PASSWORD";
  ::setenv(var, "s3cret", 1);
  auto path = write("pw.toml", valid_base + "password_env = \"" + var + "\"\n");
  auto loaded = load_node_config(path);
  ::unsetenv(var);
  BOOST_REQUIRE(std::holds_alternative<rt::node_config>(loaded));
  BOOST_TEST(std::get<rt::node_config>(loaded).redis.password == "s3cret");
}

// -- errors -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(missing_file_is_named) {
  auto path = (dir() / "does-not-exist.toml").string();
  auto err = expect_error(path);
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(err.rfind(path + ": ", 0) == 0);
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(!contains(err, ":0:0")); // no position in a file that was never read
}

BOOST_AUTO_TEST_CASE(toml_syntax_error_names_file_line_and_column) {
  auto path = write("syntax.toml", "[node]\nname = \"a\"\nlog_level = info\n");
  auto err = expect_error(path);
  BOOST_TEST_INFO("error: " << err);
  BOOST_REQUIRE(err.rfind(path + ":3:", 0) == 0);
  // path:3:COLUMN: description
  auto rest = err.substr(path.size() + 3);
  auto colon = rest.find(':');
  BOOST_REQUIRE(colon != std::string::npos);
  auto column = rest.substr(0, colon);
  BOOST_TEST_INFO("column: '" << column << "'");
  BOOST_TEST((!column.empty() && column.find_first_not_of("0123456789") == std::string::npos));
  BOOST_TEST(std::stoi(column) > 0);
  BOOST_TEST(rest.size() > colon + 2); // a description follows
}

BOOST_AUTO_TEST_CASE(unknown_section_is_named) {
  auto path = write("section.toml", valid_base + "\n[nodes]\nname = \"b\"\n");
  check_names(expect_error(path), path, "'nodes'");
}

BOOST_AUTO_TEST_CASE(unknown_top_level_key_is_named) {
  auto path = write("toplevel.toml", "name = \"b\"\n" + valid_base);
  check_names(expect_error(path), path, "'name'");
}

BOOST_AUTO_TEST_CASE(unknown_key_in_a_known_section_is_named) {
  // A misspelt key must not silently leave the default in place.
  auto path = write("typo.toml", valid_base + "\n[timing]\nreclaim_idle = 1000\n");
  check_names(expect_error(path), path, "timing.reclaim_idle");
}

BOOST_AUTO_TEST_CASE(section_that_is_not_a_table_is_named) {
  auto path = write("notatable.toml", "send = 4\n");
  check_names(expect_error(path), path, "send");
}

BOOST_AUTO_TEST_CASE(hosts_that_is_not_an_array_is_a_type_error) {
  auto path = write("hosts.toml", "[node]\nhosts = \"x\"\n");
  auto err = expect_error(path);
  check_names(err, path, "node.hosts");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "array of strings"));
}

BOOST_AUTO_TEST_CASE(hosts_with_a_non_string_element_is_a_type_error) {
  auto path = write("hosts2.toml", "[node]\nhosts = [\"send\", 3]\n");
  auto err = expect_error(path);
  check_names(err, path, "node.hosts");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "array of strings"));
}

BOOST_AUTO_TEST_CASE(workers_as_a_string_is_a_type_error) {
  auto path = write("workers.toml", valid_base + "\n[send]\nworkers = \"four\"\n");
  auto err = expect_error(path);
  check_names(err, path, "send.workers");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "integer"));
}

BOOST_AUTO_TEST_CASE(workers_as_a_boolean_or_float_is_a_type_error) {
  for (std::string value : {"true", "4.0", "4.5"}) {
    BOOST_TEST_CONTEXT("workers = " << value) {
      auto path = write("workers-" + value + ".toml", valid_base + "\n[send]\nworkers = " + value
                                                        + "\n");
      auto err = expect_error(path);
      check_names(err, path, "send.workers");
      BOOST_TEST_INFO("error: " << err);
      BOOST_TEST(contains(err, "integer"));
    }
  }
}

BOOST_AUTO_TEST_CASE(negative_timing_is_a_type_error) {
  auto path = write("negative.toml", valid_base + "\n[timing]\npoll_block_ms = -5\n");
  auto err = expect_error(path);
  check_names(err, path, "timing.poll_block_ms");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "non-negative"));
}

BOOST_AUTO_TEST_CASE(name_as_a_number_is_a_type_error) {
  auto path = write("name.toml", "[node]\nname = 5\n");
  auto err = expect_error(path);
  check_names(err, path, "node.name");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "must be a string"));
}

BOOST_AUTO_TEST_CASE(invalid_node_name_is_named) {
  auto path = write("badname.toml", "[node]\nname = \"has space\"\n");
  auto err = expect_error(path);
  check_names(err, path, "node.name");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "'has space'"));
}

BOOST_AUTO_TEST_CASE(unknown_host_name_is_named) {
  auto path = write("unknownhost.toml", "[node]\nhosts = [\"receive\", \"sending\"]\n");
  auto err = expect_error(path);
  check_names(err, path, "node.hosts");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "'sending'"));
}

BOOST_AUTO_TEST_CASE(throttling_and_single_active_hosts_are_read) {
  auto path = write("single.toml", R"([node]
hosts = ["receive", "processing"]
single_active = ["receive"]

[throttling]
memory_mb = 2048
backlog = 5000
persistence_latency_ms = 40
delay_ms = 300
)");
  auto read = expect_config(path);
  BOOST_TEST(read.single_active == (std::vector<std::string>{"receive"}),
             boost::test_tools::per_element());
  BOOST_TEST(read.throttling.memory_mb == 2048u);
  BOOST_TEST(read.throttling.backlog == 5000);
  BOOST_TEST(read.throttling.persistence_latency.count() == 40);
  BOOST_TEST(read.throttling.delay.count() == 300);
}

BOOST_AUTO_TEST_CASE(a_single_active_host_the_node_does_not_run_is_named) {
  auto path = write("single-bad.toml", "[node]\nhosts = [\"send\"]\nsingle_active = [\"receive\"]\n");
  auto err = expect_error(path);
  check_names(err, path, "node.single_active");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "'receive', which is not one of node.hosts"));
}

BOOST_AUTO_TEST_CASE(a_cluster_link_without_all_three_files_is_named) {
  auto path = write("link.toml", "[cluster]\ncertificate = \"n.pem\"\nca = \"ca.pem\"\n");
  auto err = expect_error(path);
  check_names(err, path, "cluster.key is missing");
  auto only_key = write("link2.toml", "[cluster]\nkey = \"n.key\"\n");
  check_names(expect_error(only_key), only_key, "cluster.certificate is missing");
}

BOOST_AUTO_TEST_CASE(a_cluster_listen_address_that_is_not_host_port_is_named) {
  for (auto bad : {"nohost", ":4000", "h:", "h:65536", "h:4x"}) {
    auto path = write("listen.toml", std::string("[cluster]\nlisten = \"") + bad + "\"\n");
    check_names(expect_error(path), path, "cluster.listen");
  }
  auto ok = expect_config(write("listen-ok.toml", "[cluster]\nlisten = \"0.0.0.0:0\"\n"));
  BOOST_TEST(ok.link_listen == "0.0.0.0:0");
  BOOST_TEST(!ok.link_enabled());
}

BOOST_AUTO_TEST_CASE(a_throttling_delay_out_of_range_is_named) {
  auto path = write("delay.toml", "[throttling]\ndelay_ms = 5\n");
  auto err = expect_error(path);
  check_names(err, path, "throttling.delay_ms");
}

BOOST_AUTO_TEST_CASE(empty_host_list_is_rejected) {
  auto path = write("nohosts.toml", "[node]\nhosts = []\n");
  auto err = expect_error(path);
  check_names(err, path, "node.hosts");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "empty"));
}

BOOST_AUTO_TEST_CASE(zero_workers_is_rejected) {
  auto path = write("zero.toml", valid_base + "\n[send]\nworkers = 0\n");
  auto err = expect_error(path);
  check_names(err, path, "send.workers");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "between 1 and 256"));
}

BOOST_AUTO_TEST_CASE(too_many_workers_is_rejected) {
  auto path = write("many.toml", valid_base + "\n[send]\nworkers = 4294967297\n");
  check_names(expect_error(path), path, "send.workers");
}

BOOST_AUTO_TEST_CASE(too_short_reclaim_idle_is_rejected) {
  auto path = write("reclaim.toml", valid_base + "\n[timing]\nreclaim_idle_ms = 99\n");
  check_names(expect_error(path), path, "timing.reclaim_idle_ms");
}

BOOST_AUTO_TEST_CASE(bad_messagebox_address_is_named) {
  for (std::string address : {"127.0.0.1:notaport", "127.0.0.1:70000", "127.0.0.1:0",
                              "127.0.0.1:", "127.0.0.1:123456"}) {
    BOOST_TEST_CONTEXT("address " << address) {
      auto path = write("address.toml", "[messagebox]\naddress = \"" + address + "\"\n");
      auto err = expect_error(path);
      check_names(err, path, "messagebox.address");
      BOOST_TEST_INFO("error: " << err);
      BOOST_TEST(contains(err, "'" + address + "'"));
    }
  }
}

BOOST_AUTO_TEST_CASE(password_env_naming_an_unset_variable_is_named) {
  const char* var = "CONVOY_NODE_CONFIG_TEST_UNSET_VARIABLE";
  ::unsetenv(var);
  auto path = write("pwunset.toml", valid_base + "password_env = \"" + var + "\"\n");
  auto err = expect_error(path);
  check_names(err, path, "messagebox.password_env");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, var));
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "not set"));
}

BOOST_AUTO_TEST_CASE(invalid_log_level_is_named) {
  auto path = write("loglevel.toml", "[node]\nlog_level = \"loud\"\n");
  auto err = expect_error(path);
  check_names(err, path, "node.log_level");
  BOOST_TEST_INFO("error: " << err);
  BOOST_TEST(contains(err, "'loud'"));
}

// -- layers: file < environment < --set ------------------------------------------------------

namespace {

std::variant<rt::node_config, std::string>
load_layers(const std::string& file, std::vector<std::pair<std::string, std::string>> env,
            std::vector<std::string> flags = {}) {
  return load_node_config(rt::config_sources{file, std::move(env), std::move(flags)});
}

} // namespace

BOOST_AUTO_TEST_CASE(environment_overrides_the_file_and_flags_override_both) {
  auto path = write("layers.toml", valid_base + "durability = \"local\"\nreplicas = 1\n");
  auto loaded = load_layers(path,
                            {{"CONVOY_MESSAGEBOX_DURABILITY", "replicated"},
                             {"CONVOY_MESSAGEBOX_REPLICAS", "2"},
                             {"CONVOY_NODE_NAME", "from-env"},
                             {"CONVOY_NODE_HOSTS", "[\"processing\", \"send\"]"},
                             {"CONVOY_REDIS", "not-a-config-key:1"}}, // the CLI's, ignored here
                            {"messagebox.replicas=3", "timing.reclaim_idle_ms=1500"});
  auto* err = std::get_if<std::string>(&loaded);
  BOOST_TEST_REQUIRE(!err, (err ? *err : std::string()));
  auto cfg = std::get<rt::node_config>(loaded);
  BOOST_TEST(cfg.durability == "replicated");        // environment over file
  BOOST_TEST(cfg.replicas == 3);                     // flag over environment
  BOOST_TEST(cfg.name == "from-env");                // a bare word is a string
  BOOST_TEST(cfg.hosts == (std::vector<std::string>{"processing", "send"}));
  BOOST_TEST(cfg.reclaim_idle == 1500ms);
  BOOST_TEST(cfg.redis.port == 6379);                // the file's value stays
}

BOOST_AUTO_TEST_CASE(no_file_at_all_is_defaults_plus_overrides) {
  auto loaded = load_layers("", {{"CONVOY_NODE_NAME", "bare"}});
  BOOST_TEST_REQUIRE(std::holds_alternative<rt::node_config>(loaded));
  BOOST_TEST(std::get<rt::node_config>(loaded).name == "bare");
}

BOOST_AUTO_TEST_CASE(a_bad_environment_value_names_the_variable_and_the_key) {
  auto err = std::get<std::string>(load_layers("", {{"CONVOY_SEND_WORKERS", "many"}}));
  BOOST_TEST(err.rfind("environment CONVOY_SEND_WORKERS: send.workers must be", 0) == 0u, err);
  err = std::get<std::string>(load_layers("", {{"CONVOY_MESSAGEBOX_DURABLITY", "replicated"}}));
  BOOST_TEST(err == "environment CONVOY_MESSAGEBOX_DURABLITY: unknown key messagebox.durablity");
}

BOOST_AUTO_TEST_CASE(a_bad_flag_names_itself) {
  auto err = std::get<std::string>(load_layers("", {}, {"messagebox.replicas"}));
  BOOST_TEST(err == "--set 'messagebox.replicas' is not section.key=value");
  err = std::get<std::string>(load_layers("", {}, {"replicas=2"}));
  BOOST_TEST(err == "--set replicas=2: 'replicas' is not section.key");
  err = std::get<std::string>(load_layers("", {}, {"timing.poll_block_ms=-5"}));
  BOOST_TEST(err.rfind("--set timing.poll_block_ms=-5: timing.poll_block_ms must be", 0) == 0u, err);
}

// Found by tests/fuzz/node_config_fuzz: a plain value with a byte that is not UTF-8 was kept,
// and --dump-config then printed another value (TOML holds only UTF-8 strings).
BOOST_AUTO_TEST_CASE(a_plain_override_value_that_is_not_utf8_is_refused_naming_its_source) {
  auto err = std::get<std::string>(load_layers("", {}, {"admin.listen=er\xacor"}));
  BOOST_TEST(err == "--set admin.listen=er\xacor: the value of admin.listen is not UTF-8 text");
  err = std::get<std::string>(load_layers("", {{"CONVOY_NODE_NAME", "\xed\xa0\x80"}}));
  BOOST_TEST(err.rfind("environment CONVOY_NODE_NAME: the value of node.name is not UTF-8", 0) == 0u,
             err);
  auto loaded = load_layers("", {{"CONVOY_MESSAGEBOX_USER", "\xc3\xb6-\xf0\x9f\x9a\x9a"}});
  BOOST_TEST(std::holds_alternative<rt::node_config>(loaded));
}

BOOST_AUTO_TEST_CASE(the_dumped_configuration_loads_back_to_the_same_values) {
  auto loaded = load_layers("", {{"CONVOY_NODE_NAME", "dumped"}},
                            {"messagebox.sentinels=[\"127.0.0.1:26379\"]",
                             "messagebox.durability=replicated", "processing.max_instances=77"});
  BOOST_TEST_REQUIRE(std::holds_alternative<rt::node_config>(loaded));
  auto text = rt::dump_config(std::get<rt::node_config>(loaded));
  auto again = expect_config(write("dumped.toml", text));
  BOOST_TEST(rt::dump_config(again) == text);
  BOOST_TEST(again.name == "dumped");
  BOOST_TEST(again.max_instances == 77u);
  BOOST_TEST(again.redis.sentinels == (std::vector<std::string>{"127.0.0.1:26379"}));
  BOOST_TEST((contains(text, "durability = 'replicated'")
              || contains(text, "durability = \"replicated\"")), text);
}

BOOST_AUTO_TEST_CASE(durability_by_type_is_read_checked_and_dumped) {
  auto path = write("bytype.toml", valid_base + "[messagebox.durability_by_type]\n"
                                                "payment = \"replicated\"\npoller = \"local\"\n");
  auto cfg = expect_config(path);
  BOOST_TEST(cfg.durability == "local");
  BOOST_TEST(cfg.durability_by_type.at("payment") == "replicated");
  BOOST_TEST(cfg.durability_by_type.at("poller") == "local");
  BOOST_TEST(contains(rt::dump_config(cfg), "[messagebox.durability_by_type]"));
  auto bad = write("bytype-bad.toml", valid_base + "[messagebox.durability_by_type]\n"
                                                   "payment = \"eventually\"\n");
  auto err = expect_error(bad);
  check_names(err, bad, "messagebox.durability_by_type.payment");
  auto env = load_layers("", {{"CONVOY_MESSAGEBOX_DURABILITY_BY_TYPE", "{ payment = 3 }"}});
  BOOST_TEST(std::get<std::string>(env).find("must be a table of strings") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
