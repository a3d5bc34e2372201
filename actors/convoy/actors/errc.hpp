#pragma once

#include <cstdint>
#include <string_view>

namespace convoy {

/// Error codes of Convoy. Every failure that crosses a component boundary is one of these,
/// carried as a value (never as an exception) together with a message naming what went wrong.
enum class errc : uint8_t {
  /// Success; never stored in an error.
  none = 0,
  /// Bytes read back from the MessageBox or a file did not decode (bad magic, version, size).
  malformed,
  /// A value exceeded a configured size limit.
  too_large,
  /// A persistence point carried an owner epoch older than the instance's: its writer was fenced.
  stale_epoch,
  /// The MessageBox could not be reached or did not answer; the outcome of a write is unknown.
  unavailable,
  /// The MessageBox answered with an error we did not expect.
  store_error,
  /// Replay asked for a different operation than the journal recorded.
  nondeterminism,
  /// No orchestration or activity of the requested name (and version) is registered.
  unknown_type,
  /// The referenced instance does not exist.
  no_such_instance,
  /// A configuration value or command-line argument was invalid.
  bad_config,
};

/// Returns the enumerator's name, for logs and CLI output.
std::string_view to_string(errc x) noexcept;

} // namespace convoy
