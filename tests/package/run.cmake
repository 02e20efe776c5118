# Installs wsreg into a temporary prefix, then builds the consumer project
# (tests/package/consumer), which finds it with find_package(wsreg), and
# runs its tests: each consumer links one wsreg target and nothing else.
# Run with cmake -P and -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=...
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
     -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=RelWithDebInfo)
step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build -j2)
get_filename_component(cmake_bin_dir ${CMAKE_COMMAND} DIRECTORY)
execute_process(COMMAND ${cmake_bin_dir}/ctest --output-on-failure
                WORKING_DIRECTORY ${WORK_DIR}/consumer-build RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "package test: a consumer failed (${rc})")
endif()
message(STATUS "package test: consumers built against ${prefix} and ran")
