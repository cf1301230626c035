#include <gtest/gtest.h>

#include <parla/mpi/mpi.hpp>

#include <string>

using parla::mpi::Communicator;

namespace {
int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}
}  // namespace

TEST(Communicator, MatchesTheCommunicatorItDuplicates) {
  Communicator comm;
  EXPECT_EQ(comm.rank(), world_rank());
  EXPECT_EQ(comm.size(), world_size());
  int result = MPI_UNEQUAL;
  MPI_Comm_compare(comm.native(), MPI_COMM_WORLD, &result);
  EXPECT_EQ(result, MPI_CONGRUENT) << "the runtime must work on a duplicate, not on WORLD itself";
}

TEST(Communicator, DuplicateTrafficNeverMatchesTheApplications) {
  // The application and the runtime both send tag 0 from rank 0 to rank 1; each receive must
  // get the message sent on its own communicator, whatever order they arrive in.
  Communicator comm;
  const int n = comm.size();
  const int next = (comm.rank() + 1) % n;
  const int prev = (comm.rank() + n - 1) % n;
  int app_value = 1000 + comm.rank();
  int runtime_value = 2000 + comm.rank();
  MPI_Request requests[2];
  MPI_Isend(&runtime_value, 1, MPI_INT, next, 0, comm.native(), &requests[0]);
  MPI_Isend(&app_value, 1, MPI_INT, next, 0, MPI_COMM_WORLD, &requests[1]);
  int got_app = -1;
  int got_runtime = -1;
  MPI_Recv(&got_app, 1, MPI_INT, prev, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  MPI_Recv(&got_runtime, 1, MPI_INT, prev, 0, comm.native(), MPI_STATUS_IGNORE);
  MPI_Waitall(2, requests, MPI_STATUSES_IGNORE);
  EXPECT_EQ(got_app, 1000 + prev);
  EXPECT_EQ(got_runtime, 2000 + prev);
}

TEST(Communicator, AllreduceSumsOverEveryRank) {
  Communicator comm;
  const long long n = comm.size();
  EXPECT_EQ(comm.allreduce_sum(static_cast<long long>(comm.rank())), n * (n - 1) / 2);
  EXPECT_DOUBLE_EQ(comm.allreduce_sum(0.5), 0.5 * static_cast<double>(n));
}

TEST(Communicator, FromSubCommunicator) {
  MPI_Comm half = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank() % 2, world_rank(), &half);
  {
    Communicator comm(half);
    const int expected = (world_size() + 1 - world_rank() % 2) / 2;
    EXPECT_EQ(comm.size(), expected);
    EXPECT_EQ(comm.rank(), world_rank() / 2);
  }
  MPI_Comm_free(&half);
}

TEST(Communicator, NullCommunicatorIsRejectedWithAClearMessage) {
  try {
    Communicator comm(MPI_COMM_NULL);
    FAIL() << "MPI_COMM_NULL was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_COMM_NULL"), std::string::npos) << e.what();
  }
}

TEST(Communicator, FailingCallBecomesAnExceptionNamingTheOperation) {
  Communicator comm;
  int value = 0;
  const int bad_peer = comm.size() + 7;
  try {
    parla::mpi::check_mpi(MPI_Send(&value, 1, MPI_INT, bad_peer, 5, comm.native()), "MPI_Send",
                          "peer " + std::to_string(bad_peer) + ", tag 5");
    FAIL() << "sending to a rank that does not exist succeeded";
  } catch (const parla::mpi::MpiError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("MPI_Send failed"), std::string::npos) << what;
    EXPECT_NE(what.find("peer " + std::to_string(bad_peer)), std::string::npos) << what;
    EXPECT_NE(e.error_code(), MPI_SUCCESS);
  }
}

TEST(Environment, ThreadLevelIsCheckedAndExplained) {
  int provided = 0;
  MPI_Query_thread(&provided);
  if (provided >= MPI_THREAD_MULTIPLE) {
    EXPECT_NO_THROW(parla::mpi::require_thread_level(parla::mpi::ThreadUse::concurrent));
  } else {
    EXPECT_THROW(parla::mpi::require_thread_level(parla::mpi::ThreadUse::concurrent),
                 std::runtime_error);
  }
  EXPECT_STREQ(parla::mpi::thread_level_name(MPI_THREAD_SERIALIZED), "MPI_THREAD_SERIALIZED");
}
