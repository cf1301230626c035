# Runs the Parla and the plain-MPI Task Bench on the same graphs at NP ranks and checks that
# both pass their own checks and report the same graph checksum (the checksum folds in every
# input every task read, so equal checksums mean both ran the same graph).
# cmake -DMPIEXEC=... -DNP=... "-DFLAGS=a;b" -DPARLA=... -DMPI=... "-DARGS=a;b" -P this
#
# With -DEXPECT_FAILURE=1 (and ARGS holding --inject-fault) each version must instead fail:
# exit non-zero, print "CHECK FAILED" and report check.ok false, within 50 s.
foreach(impl PARLA MPI)
  set(extra "")
  if(impl STREQUAL "PARLA")
    set(extra --workers 2)
  endif()
  execute_process(COMMAND ${MPIEXEC} -n ${NP} ${FLAGS} ${${impl}} ${ARGS} ${extra}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 50)
  if(EXPECT_FAILURE)
    string(FIND "${out}${err}" "CHECK FAILED" found)
    if(rc STREQUAL "0" OR found EQUAL -1 OR NOT out MATCHES "\"check\": {\"ok\": false")
      message(FATAL_ERROR "${impl} version did not report the bad input (exit ${rc}):\n${out}\n${err}")
    endif()
    message(STATUS "${impl}: the bad input was detected (exit ${rc})")
    continue()
  endif()
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "${impl} version failed (exit ${rc}):\n${out}\n${err}")
  endif()
  # The JSON result is the last line of stdout.
  string(STRIP "${out}" out)
  string(REGEX REPLACE ".*\n" "" line "${out}")
  string(JSON ok GET "${line}" check ok)
  string(JSON checksum GET "${line}" check checksum)
  string(JSON tasks GET "${line}" check tasks)
  if(NOT ok)
    message(FATAL_ERROR "${impl} version: check.ok is ${ok}:\n${line}")
  endif()
  set(${impl}_checksum "${checksum}")
  message(STATUS "${impl}: ok, ${tasks} tasks, checksum ${checksum}")
endforeach()
if(NOT EXPECT_FAILURE AND NOT PARLA_checksum STREQUAL MPI_checksum)
  message(FATAL_ERROR "checksums differ: Parla ${PARLA_checksum}, MPI ${MPI_checksum}")
endif()
