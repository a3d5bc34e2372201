# convoy_add_component(NAME SOURCES ... DEPENDS ...)
# Creates the library convoy_<NAME> with alias convoy::<NAME>; the folder is its include root.
function(convoy_add_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS" ${ARGN})
  add_library(convoy_${name} STATIC ${ARG_SOURCES})
  add_library(convoy::${name} ALIAS convoy_${name})
  target_include_directories(convoy_${name} PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}")
  target_link_libraries(convoy_${name} PUBLIC ${ARG_DEPENDS})
  convoy_set_warnings(convoy_${name})
endfunction()

function(convoy_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
endfunction()

if(CONVOY_SANITIZE)
  # -fno-sanitize=null: CAF's init_fun_factory.hpp trips a benign null-reference report.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize=null -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
