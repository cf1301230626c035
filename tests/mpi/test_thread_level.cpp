// A program that initialises MPI with MPI_THREAD_SINGLE must be told what to change.
#include <mpi.h>

#include <cstdio>
#include <parla/mpi/mpi.hpp>
#include <string>

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
  int failures = 0;
  try {
    parla::mpi::require_thread_level(parla::mpi::ThreadUse::between_phases);
    if (provided < MPI_THREAD_SERIALIZED) {
      std::fprintf(stderr, "FAIL: thread level %d accepted\n", provided);
      ++failures;
    }
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.find("MPI_THREAD_SERIALIZED") == std::string::npos ||
        what.find("MPI_Init_thread") == std::string::npos) {
      std::fprintf(stderr, "FAIL: unhelpful message: %s\n", e.what());
      ++failures;
    }
  }
  MPI_Finalize();
  if (failures == 0) {
    std::printf("thread level check ok (provided %d)\n", provided);
  }
  return failures == 0 ? 0 : 1;
}
