#pragma once

#include <string_view>

namespace convoy::persistence::internal {

/// The Lua source of lua/convoy.lua, embedded at build time.
extern const std::string_view function_library;

/// The LIBRARY_VERSION the embedded source declares; a node reloads older libraries.
inline constexpr int function_library_version = 10;

} // namespace convoy::persistence::internal
