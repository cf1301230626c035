#include "parla/mpi/environment.hpp"

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include "parla/mpi/mpi_error.hpp"

namespace parla::mpi {

const char* thread_level_name(int level) noexcept {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "an unknown MPI thread level";
  }
}

Environment::Environment(int* argc, char*** argv) {
  int initialized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  if (initialized == 0) {
    check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &m_provided), "MPI_Init_thread");
    m_owns = true;
  } else {
    check_mpi(MPI_Query_thread(&m_provided), "MPI_Query_thread");
  }
}

Environment::~Environment() {
  if (!m_owns) {
    return;
  }
  int finalized = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && finalized == 0) {
    MPI_Finalize();
  }
}

void require_thread_level(ThreadUse use) {
  int initialized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  if (initialized == 0) {
    throw std::runtime_error(
        "MPI is not initialised: create a parla::mpi::Environment, call MPI_Init_thread, or "
        "import mpi4py before using parla::mpi");
  }
  int provided = MPI_THREAD_SINGLE;
  check_mpi(MPI_Query_thread(&provided), "MPI_Query_thread");
  const int needed = use == ThreadUse::concurrent ? MPI_THREAD_MULTIPLE : MPI_THREAD_SERIALIZED;
  if (provided < needed) {
    throw std::runtime_error(
        std::string("MPI was initialised with ") + thread_level_name(provided) +
        " but the Parla runtime calls MPI from its progress thread and needs " +
        thread_level_name(needed) +
        (use == ThreadUse::concurrent ? " because the application also calls MPI while tasks run"
                                      : "") +
        ". Initialise MPI with MPI_Init_thread(..., " + thread_level_name(needed) +
        ", ...) (mpi4py: leave mpi4py.rc.thread_level at its default 'multiple').");
  }
}

int run_main(int argc, char** argv, const char* program, int (*body)(int, char**)) {
  Environment env(&argc, &argv);
  try {
    return body(argc, argv);
  } catch (const std::exception& e) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::fprintf(stderr, "[rank %d] %s failed: %s\n", rank, program, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}

}  // namespace parla::mpi
