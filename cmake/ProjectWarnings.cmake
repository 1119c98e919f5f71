# project_warnings(target): the warning set every project target compiles with.
function(project_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast -Wnon-virtual-dtor)
  if(TRADING_HEAL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
