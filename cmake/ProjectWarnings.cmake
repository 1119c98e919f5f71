# project_warnings(target): the warning set every project target compiles with.
function(project_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast -Wnon-virtual-dtor)
  if(ENABLE_SANITIZERS)
    # GCC 12 reports false "may be used uninitialized" warnings inside <regex> and nlohmann::json
    # when ASan instrumentation changes inlining; the plain build keeps the warning.
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 at -O3 (Release: the package) reports impossible overlaps of 2^63 bytes inside
    # std::string's operator+ (GCC bug 105329): a false -Wrestrict; GCC 13 fixed it.
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(TRADING_HEAL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
