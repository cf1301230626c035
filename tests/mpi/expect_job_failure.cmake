# Runs an MPI job that must fail: exit status non-zero, output containing EXPECT, within
# MAX_SECONDS (a hang is the bug this guards against).
# cmake -DMPIEXEC=... -DNP=... "-DFLAGS=a;b" -DPROGRAM=... [-DARGS=...] -DEXPECT=... -DMAX_SECONDS=... -P this
string(TIMESTAMP start "%s")
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${FLAGS} ${PROGRAM} ${ARGS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT ${MAX_SECONDS})
string(TIMESTAMP stop "%s")
math(EXPR elapsed "${stop} - ${start}")
message(STATUS "exit status: ${rc}, ${elapsed} s\n--- stdout\n${out}\n--- stderr\n${err}")
if(rc STREQUAL "0")
  message(FATAL_ERROR "the job exited 0, but one rank's task failed")
endif()
if(rc MATCHES "timeout|Process terminated due to timeout")
  message(FATAL_ERROR "the job hung: not finished after ${MAX_SECONDS} s")
endif()
string(FIND "${out}${err}" "${EXPECT}" found)
if(found EQUAL -1)
  message(FATAL_ERROR "the output does not contain the failing rank's message '${EXPECT}'")
endif()
