# Task Bench (apps/taskbench): every pattern x three kernels on small graphs, at 1-4 ranks.
# Each program checks every task's inputs and the graph checksum against a sequential
# computation of it, and exits non-zero otherwise; the agreement tests also compare the Parla
# and the plain-MPI versions' checksums. Included from tests/mpi/CMakeLists.txt.
if(NOT TARGET parla_taskbench OR NOT TARGET mpi_taskbench)
  return()
endif()
set(_tb_args --type trivial,no_comm,stencil_1d,stencil_1d_periodic,nearest,tree,fft,all_to_all
             --kernel empty,busy_wait,memory_bound --iterations 100 --scratch 4096
             --width 8 --steps 12 --radix 5)
parla_add_mpi_test(mpi.taskbench.parla COMMAND $<TARGET_FILE:parla_taskbench> ${_tb_args}
                   --workers 2 RANKS 1 2 3 4 TIMEOUT 60)
parla_add_mpi_test(mpi.taskbench.mpi COMMAND $<TARGET_FILE:mpi_taskbench> ${_tb_args}
                   RANKS 1 2 4 TIMEOUT 60)
foreach(n 1 2 4)
  add_test(NAME mpi.taskbench.agree.np${n}
    COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DNP=${n}
            "-DFLAGS=${PARLA_MPIEXEC_PREFLAGS}" -DPARLA=$<TARGET_FILE:parla_taskbench>
            -DMPI=$<TARGET_FILE:mpi_taskbench> "-DARGS=${_tb_args}"
            -P ${CMAKE_CURRENT_SOURCE_DIR}/taskbench_check.cmake)
  set_tests_properties(mpi.taskbench.agree.np${n} PROPERTIES LABELS mpi TIMEOUT 120
    PROCESSORS ${n} ENVIRONMENT "${PARLA_MPI_TEST_ENV}")
endforeach()
# A wrong input is detected: one task writes a bad output, both versions must fail the check.
set(_tb_fault_args --type stencil_1d --width 4 --steps 8 --inject-fault)
add_test(NAME mpi.taskbench.detects_bad_input
  COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DNP=2
          "-DFLAGS=${PARLA_MPIEXEC_PREFLAGS}" -DPARLA=$<TARGET_FILE:parla_taskbench>
          -DMPI=$<TARGET_FILE:mpi_taskbench> "-DARGS=${_tb_fault_args}" -DEXPECT_FAILURE=1
          -P ${CMAKE_CURRENT_SOURCE_DIR}/taskbench_check.cmake)
set_tests_properties(mpi.taskbench.detects_bad_input PROPERTIES LABELS mpi TIMEOUT 120
  PROCESSORS 2 ENVIRONMENT "${PARLA_MPI_TEST_ENV}")
# --help works without MPI errors and says what the program does.
foreach(program parla_taskbench mpi_taskbench)
  add_test(NAME mpi.taskbench.help.${program} COMMAND $<TARGET_FILE:${program}> --help)
  set_tests_properties(mpi.taskbench.help.${program} PROPERTIES LABELS mpi TIMEOUT 30
    PASS_REGULAR_EXPRESSION "--metg" ENVIRONMENT "${PARLA_MPI_TEST_ENV}")
endforeach()
