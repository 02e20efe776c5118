# Compiles HEADER (an adapter header) as C++20 with GCC and checks that the
# build stops with wsreg's one #error (detail/cxx_check.hpp) and nothing from
# inside websocketpp. Run with cmake -P and -DCXX=... -DINCLUDE_DIR=...
# -DHEADER=wsreg/websocketpp/server.hpp -DWORK_DIR=...
foreach(var CXX INCLUDE_DIR HEADER WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "cxx20 test: -D${var}=... is required")
  endif()
endforeach()

file(MAKE_DIRECTORY ${WORK_DIR})
string(MAKE_C_IDENTIFIER "${HEADER}" stem)
set(source ${WORK_DIR}/${stem}.cpp)
file(WRITE ${source} "#include <${HEADER}>\nint main() { return 0; }\n")
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE_DIR} ${source}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")

set(expected "wsreg: websocketpp 0\\.8\\.2 does not compile as C\\+\\+20")  # a regex
if(rc EQUAL 0)
  message(FATAL_ERROR "cxx20 test: ${HEADER} compiled as C++20; expected wsreg's #error")
endif()
string(REGEX MATCHALL "error: #error \"${expected}" found "${all}")
list(LENGTH found times)
if(NOT times EQUAL 1)
  message(FATAL_ERROR "cxx20 test: wsreg's #error appeared ${times} times, expected once:\n${all}")
endif()
# Every other diagnostic is the deliberate stop right after the #error; a
# line from websocketpp's headers means the check came too late.
string(REPLACE ";" "," lines "${all}")  # the message's ';' would split the list
string(REGEX MATCHALL "[^\n]*error:[^\n]*" errors "${lines}")
foreach(line IN LISTS errors)
  if(line MATCHES "/websocketpp/[^/]+\\.hpp:" AND NOT line MATCHES "wsreg/websocketpp/detail/cxx_check\\.hpp:")
    message(FATAL_ERROR "cxx20 test: an error from inside websocketpp:\n${line}\n\n${all}")
  endif()
  if(NOT line MATCHES "#error \"${expected}" AND NOT line MATCHES "compilation-stopped-by-the-error-above")
    message(FATAL_ERROR "cxx20 test: unexpected error:\n${line}\n\n${all}")
  endif()
endforeach()
message(STATUS "cxx20 test: ${HEADER} as C++20 stopped with wsreg's one #error")
