# Test registration helpers. Every test gets a label and a timeout (DESIGN §7).
include(GoogleTest)
find_package(GTest REQUIRED)

set(PARLA_TEST_TIMEOUT 300 CACHE STRING "Default timeout (seconds) of one test")
set(PARLA_GPU_SKIP_CODE 77)

# Open MPI refuses to run as root without being told, and needs --oversubscribe for more
# ranks than cores; MPICH accepts neither flag, so they are only added for Open MPI.
if(PARLA_ENABLE_MPI)
  execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _mpiexec_version
                  ERROR_QUIET)
  set(PARLA_MPIEXEC_PREFLAGS "")
  set(PARLA_MPI_TEST_ENV "")
  if(_mpiexec_version MATCHES "Open MPI|OpenRTE")
    set(PARLA_MPIEXEC_PREFLAGS --oversubscribe --bind-to none)
    # Root may run the tests (containers, CI); harmless when not root.
    set(PARLA_MPI_TEST_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
                           OMPI_MCA_rmaps_base_oversubscribe=1)
  endif()
endif()

# parla_add_gtest(<name> SOURCES <src>... [LIBS <lib>...] [LABELS <label>...] [TIMEOUT <s>])
# One executable; every GoogleTest case becomes its own CTest test.
function(parla_add_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${PARLA_TEST_TIMEOUT})
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  parla_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    # GTEST_SKIP() (e.g. no CUDA device) shows as skipped in CTest, not as passed.
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} SKIP_REGULAR_EXPRESSION "SKIPPED ]")
endfunction()

# parla_add_mpi_test(<name> COMMAND <cmd>... [RANKS 2 3 4] [LABELS ...] [TIMEOUT <s>])
# Registers <name>.np<N> for each rank count, run through mpiexec.
function(parla_add_mpi_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "COMMAND;RANKS;LABELS;ENVIRONMENT" ${ARGN})
  if(NOT ARG_RANKS)
    set(ARG_RANKS 2 3 4)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${PARLA_TEST_TIMEOUT})
  endif()
  foreach(n IN LISTS ARG_RANKS)
    add_test(NAME ${name}.np${n}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} ${PARLA_MPIEXEC_PREFLAGS}
              ${MPIEXEC_PREFLAGS} ${ARG_COMMAND} ${MPIEXEC_POSTFLAGS})
    set_tests_properties(${name}.np${n} PROPERTIES LABELS "mpi;${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
      PROCESSORS ${n} SKIP_RETURN_CODE ${PARLA_GPU_SKIP_CODE}
      ENVIRONMENT "${PARLA_MPI_TEST_ENV};${ARG_ENVIRONMENT}")
  endforeach()
endfunction()
