#pragma once

/// @file
/// The golden journal file: how a whole journal is stored on disk for the replay tests.
///
/// Layout: the 8-byte magic `CVJRNL01`, then for each entry a `u32` little-endian length and
/// that many bytes of `convoy::encode(entry)`. The entries themselves are in the journal's own
/// format (`'CJ'` + version), so a golden file written today holds exactly the bytes that the
/// MessageBox stores, and a later binary must keep decoding them.
///
/// No CAF and no JSON here: the fuzz targets compile this file with `journal.cpp` alone.

#include "convoy/actors/journal.hpp"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace convoy::replay {

/// The first bytes of every golden journal file. A new layout gets a new magic.
inline constexpr std::string_view journal_file_magic{"CVJRNL01", 8};

/// Why a file or a value could not be read: a sentence naming what and where.
struct failure {
  std::string message;
};

/// A value or the reason there is none.
template <class T>
using expected = std::variant<T, failure>;

/// Encodes a whole journal as a golden journal file.
std::string encode_journal_file(const std::vector<journal_entry>& entries);

/// Decodes a golden journal file. Never reads past `bytes`, never trusts a length prefix
/// beyond the bytes present, and names the entry index and byte offset of the first problem.
expected<std::vector<journal_entry>> decode_journal_file(std::string_view bytes);

} // namespace convoy::replay
