# Installs the build tree into a temporary prefix, then configures, builds and runs a small
# external project that uses find_package(Parla) — what a user's application does.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR, CXX_COMPILER, WITH_MPI, MPIEXEC
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(f lib/cmake/Parla/ParlaConfig.cmake lib/cmake/Parla/ParlaTargets.cmake
          include/parla/parla.hpp include/parla/mpi/communicator.hpp)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "cmake --install did not produce ${f}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/consumer-build" -G "${GENERATOR}"
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix} -DWITH_MPI=${WITH_MPI})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer-build")
run("${WORK_DIR}/consumer-build/consumer_core")
message(STATUS "consumer_core: ${last_output}")
if(WITH_MPI)
  run(${MPIEXEC} -n 2 --oversubscribe "${WORK_DIR}/consumer-build/consumer_mpi")
  message(STATUS "consumer_mpi: ${last_output}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
