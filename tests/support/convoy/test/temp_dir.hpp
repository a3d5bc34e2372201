#pragma once

#include <filesystem>

namespace convoy::test {

/// A fresh, uniquely named directory that is removed with everything in it when the
/// object dies.
///
/// Created as `$TMPDIR/convoy-test-XXXXXX` (or under `/tmp` when `TMPDIR` is unset or
/// empty). Set `CONVOY_KEEP_TEST_DIRS=1` to keep the directory for a post-mortem; its
/// path is then printed to stderr.
class temp_dir {
public:
  // -- constructors, destructors, and assignment operators -------------------

  /// Creates the directory; throws `std::system_error` if it cannot.
  temp_dir();

  temp_dir(temp_dir&& other) noexcept;

  temp_dir& operator=(temp_dir&& other) noexcept;

  temp_dir(const temp_dir&) = delete;

  temp_dir& operator=(const temp_dir&) = delete;

  ~temp_dir();

  // -- properties ------------------------------------------------------------

  /// The absolute path of the directory; empty after a move from this object.
  [[nodiscard]] const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  void remove() noexcept;

  std::filesystem::path path_;
};

} // namespace convoy::test
