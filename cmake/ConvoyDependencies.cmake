# Every dependency comes from a Debian 12 package (see scripts/install-deps).
# CAF 0.17.6 and hiredis ship no CMake package: CAF is found by path, the rest via pkg-config.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
foreach(part core io openssl)
  find_library(CAF_${part}_LIBRARY NAMES caf_${part} REQUIRED)
  if(NOT TARGET caf::${part})
    add_library(caf::${part} UNKNOWN IMPORTED)
    set_target_properties(caf::${part} PROPERTIES
      IMPORTED_LOCATION "${CAF_${part}_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}")
  endif()
endforeach()
set_property(TARGET caf::io APPEND PROPERTY INTERFACE_LINK_LIBRARIES caf::core)
set_property(TARGET caf::openssl APPEND PROPERTY INTERFACE_LINK_LIBRARIES caf::io)

pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent)
find_package(OpenSSL 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
if(CONVOY_BUILD_TESTS)
  find_package(Boost 1.74 REQUIRED COMPONENTS unit_test_framework)
endif()
# cpp-httplib: Debian builds it as a shared library (libcpp-httplib) whose header must be
# compiled with the same CPPHTTPLIB_* feature macros; the .pc file carries them.
pkg_check_modules(CPPHTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
