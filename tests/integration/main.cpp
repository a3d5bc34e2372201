#define BOOST_TEST_MODULE convoy integration tests
#include <boost/test/unit_test.hpp>

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace {

/// In-process nodes log at warning level and above, so that a failing check stands out in
/// ctest's output; CONVOY_TEST_LOG=info (or debug, trace) shows every step when debugging.
struct quiet_logs {
  quiet_logs() {
    const char* level = std::getenv("CONVOY_TEST_LOG");
    spdlog::set_level(level && *level ? spdlog::level::from_str(level) : spdlog::level::warn);
  }
};

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(quiet_logs);
