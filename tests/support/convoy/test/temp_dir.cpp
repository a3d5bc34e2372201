#include "convoy/test/temp_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <system_error>
#include <utility>

namespace convoy::test {

namespace {

bool keep_test_dirs() {
  const char* value = std::getenv("CONVOY_KEEP_TEST_DIRS");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

} // namespace

temp_dir::temp_dir() {
  std::filesystem::path base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0')
    base = tmp;
  std::string pattern = (base / "convoy-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(),
                            "convoy::test::temp_dir: mkdtemp " + pattern);
  path_ = std::filesystem::absolute(pattern);
}

temp_dir::temp_dir(temp_dir&& other) noexcept
  : path_(std::exchange(other.path_, {})) {
}

temp_dir& temp_dir::operator=(temp_dir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

temp_dir::~temp_dir() {
  remove();
}

void temp_dir::remove() noexcept {
  if (path_.empty())
    return;
  if (keep_test_dirs()) {
    std::cerr << "convoy::test::temp_dir: keeping " << path_.string() << '\n';
  } else {
    // Errors are ignored on purpose: a destructor has nobody to report them to, and a
    // leftover directory under $TMPDIR must not fail an otherwise passing test.
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  path_.clear();
}

} // namespace convoy::test
