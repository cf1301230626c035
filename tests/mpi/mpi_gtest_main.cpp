// GoogleTest main for tests run under mpiexec: MPI is initialised with MPI_THREAD_MULTIPLE,
// only rank 0 prints, and the first failed assertion on any rank aborts the whole job
// (a rank waiting in a collective for a failed peer would otherwise hang until the timeout).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

namespace {

class AbortOnFailure : public testing::EmptyTestEventListener {
 public:
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) {
      return;
    }
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::fprintf(stderr, "[rank %d] %s:%d: %s\n[rank %d] aborting the job\n", rank,
                 result.file_name() != nullptr ? result.file_name() : "?", result.line_number(),
                 result.summary(), rank);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
};

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  auto& listeners = testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
  }
  listeners.Append(new AbortOnFailure);  // GoogleTest takes ownership.
  const int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
