// Built against the installed package: parla::mpi links, and a duplicated communicator sums
// the ranks.
#include <cstdio>
#include <parla/mpi/mpi.hpp>

int main(int argc, char** argv) {
  parla::mpi::Environment env(&argc, &argv);
  parla::mpi::Communicator comm;
  const long long n = comm.size();
  const long long sum = comm.allreduce_sum(static_cast<long long>(comm.rank()));
  if (comm.rank() == 0) {
    std::printf("%lld ranks, sum of ranks %lld\n", n, sum);
  }
  return sum == n * (n - 1) / 2 ? 0 : 1;
}
