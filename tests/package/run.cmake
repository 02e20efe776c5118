# Installs wsreg into a temporary prefix, then builds and runs a consumer
# project that finds it with find_package(wsreg). Run with cmake -P and
# -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=...
foreach(var SOURCE_DIR WORK_DIR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "package test: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "package test: step failed (${rc}): ${ARGN}")
  endif()
endfunction()

step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/wsreg-build
     -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_INSTALL_PREFIX=${prefix}
     -DWSREG_BUILD_TESTS=OFF -DWSREG_BUILD_EXAMPLES=OFF -DWSREG_BUILD_BENCHMARKS=OFF)
step(${CMAKE_COMMAND} --install ${WORK_DIR}/wsreg-build)
step(${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/consumer -B ${WORK_DIR}/consumer-build
     -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
step(${WORK_DIR}/consumer-build/consumer)
message(STATUS "package test: consumer built against ${prefix} and ran")
