# project_warnings(target): the warning set every project target compiles with.
function(project_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast -Wnon-virtual-dtor)
  if(ENABLE_SANITIZERS)
    # GCC 12 reports false "may be used uninitialized" warnings inside <regex> and nlohmann::json
    # when ASan instrumentation changes inlining; the plain build keeps the warning.
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
  if(TRADING_HEAL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
