// Task Bench in plain MPI, the baseline: one rank per core, the graph's columns split across
// the ranks as in parla_taskbench; every row, each rank posts MPI_Irecv for the remote inputs
// it needs and MPI_Isend for its previous row's outputs that others need, waits for all of
// them, then runs its tasks of the row (Task Bench's "MPI nonblocking" implementation style).
//
//   mpirun -n 2 build/apps/taskbench/mpi_taskbench --type stencil_1d --width 4 --metg
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "task_graph.hpp"

namespace {

using taskbench::Graph;
using taskbench::Layout;
using taskbench::RunResult;
using taskbench::StepPlan;

// Tags cycle through this many values; MPI keeps messages of one (source, tag) in order, and
// both sides enumerate a row's messages in the same order, so a small cycle is enough.
constexpr int k_tag_cycle = 4096;

RunResult run_graph(MPI_Comm comm, const Graph& g) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const Layout layout{g.width, size};
  const std::vector<StepPlan> plans = taskbench::plan(g, layout, rank);
  const long local_lo = layout.first(rank);
  const long local_n = layout.first(rank + 1) - local_lo;
  const std::size_t words = g.output_bytes / sizeof(std::int64_t);
  const int bytes = static_cast<int>(g.output_bytes);
  const std::size_t slots = static_cast<std::size_t>(g.steps) * static_cast<std::size_t>(local_n);
  std::vector<std::int64_t> outputs(slots * words, -1);
  auto output = [&](long t, long p) {
    return outputs.data() + (static_cast<std::size_t>(t) * static_cast<std::size_t>(local_n) +
                             static_cast<std::size_t>(p - local_lo)) * words;
  };
  std::vector<std::vector<std::int64_t>> ghosts(static_cast<std::size_t>(g.steps));
  std::size_t max_requests = 0;
  for (long t = 0; t < g.steps; ++t) {
    const StepPlan& sp = plans[static_cast<std::size_t>(t)];
    ghosts[static_cast<std::size_t>(t)].assign(sp.ghosts.size() * words, -1);
    // Row t receives its ghosts and sends row t - 1's outputs.
    const std::size_t sends = t > 0 ? plans[static_cast<std::size_t>(t - 1)].sends.size() : 0;
    max_requests = std::max(max_requests, sp.ghosts.size() + sends);
  }
  std::vector<MPI_Request> requests(max_requests);
  std::vector<const std::int64_t*> ptrs;
  std::uint64_t checksum = 0;
  long bad = 0;
  long tasks = 0;
  long messages = 0;

  MPI_Barrier(comm);
  const double start = taskbench::now_seconds();
  for (long t = 0; t < g.steps; ++t) {
    const StepPlan& sp = plans[static_cast<std::size_t>(t)];
    const int tag = static_cast<int>(t % k_tag_cycle);
    int n = 0;
    std::int64_t* ghost = ghosts[static_cast<std::size_t>(t)].data();
    for (std::size_t k = 0; k < sp.ghosts.size(); ++k) {
      MPI_Irecv(ghost + k * words, bytes, MPI_BYTE, sp.ghost_owner[k], tag, comm, &requests[n++]);
    }
    if (t > 0) {
      for (const auto& [q, dst] : plans[static_cast<std::size_t>(t - 1)].sends) {
        MPI_Isend(output(t - 1, q), bytes, MPI_BYTE, dst, tag, comm, &requests[n++]);
        ++messages;
      }
    }
    MPI_Waitall(n, requests.data(), MPI_STATUSES_IGNORE);
    for (const StepPlan::Point& pt : sp.points) {
      ptrs.resize(pt.inputs.size());
      for (std::size_t k = 0; k < pt.inputs.size(); ++k) {
        const long q = pt.inputs[k];
        ptrs[k] = (q >= local_lo && q < local_lo + local_n)
                      ? output(t - 1, q)
                      : ghost + static_cast<std::size_t>(sp.ghost_index(q)) * words;
      }
      const taskbench::TaskCheck c = taskbench::check_inputs(g, t, pt.p, pt.inputs, ptrs.data());
      taskbench::write_output(g, t, pt.p, output(t, pt.p));
      taskbench::run_kernel(g);
      checksum += c.digest;
      bad += c.ok ? 0 : 1;
      ++tasks;
    }
  }
  const double seconds = taskbench::now_seconds() - start;
  return taskbench::reduce(comm, seconds, tasks, bad, checksum, messages);
}

int run(int argc, char** argv) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::optional<taskbench::Options> parsed =
      taskbench::parse_for_job(argc, argv, /*parla=*/false, "mpi_taskbench", rank, size);
  if (!parsed) return 2;
  const taskbench::Options& options = *parsed;
  const Graph& g = options.graph;
  if (rank == 0) {
    std::fprintf(stderr, "mpi_taskbench: %d rank(s), width %ld, %s\n", size, g.width,
                 options.metg ? "METG sweep" : "one run per graph");
  }
  return taskbench::run_job(MPI_COMM_WORLD, options, "mpi_taskbench", "mpi", 1,
                            [](const Graph& graph) { return run_graph(MPI_COMM_WORLD, graph); });
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int code = 1;
  try {
    code = run(argc, argv);
  } catch (const std::exception& e) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::fprintf(stderr, "[rank %d] mpi_taskbench failed: %s\n", rank, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return code;
}
