// Task Bench on Parla-MPI: the graph's columns are split across the ranks; every point is a
// Parla task keyed T[{t, p}] whose dependencies are the tasks it reads; an edge that crosses
// ranks is a send task (after the producer) on one side and a receive task (before the
// consumer) on the other, both parla::mpi::Comm communication tasks on the point's small
// output buffer. The whole graph is spawned up front; the main thread then helps the workers.
//
//   mpirun -n 2 --bind-to none build/apps/taskbench/parla_taskbench --type stencil_1d --width 4
//   mpirun -n 1 --bind-to none build/apps/taskbench/parla_taskbench --workers 2 --metg
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>
#include <string>
#include <vector>

#include "task_graph.hpp"

namespace {

using taskbench::Graph;
using taskbench::Layout;
using taskbench::RunResult;
using taskbench::StepPlan;

/// Everything one run of the graph touches; the tasks hold a pointer to it.
struct RunState {
  const Graph* graph = nullptr;
  std::vector<StepPlan> plans;
  long local_lo = 0;
  long local_n = 0;
  std::size_t words = 0;                          // int64 words per output
  std::vector<std::int64_t> outputs;              // [t][local point][words]
  std::vector<std::vector<std::int64_t>> ghosts;  // [t][ghost][words]: row t - 1, from elsewhere
  std::vector<std::uint64_t> digests;             // [t][local point]
  std::vector<unsigned char> bad;                 // [t][local point]

  std::int64_t* output(long t, long p) {
    return outputs.data() + (static_cast<std::size_t>(t) * static_cast<std::size_t>(local_n) +
                             static_cast<std::size_t>(p - local_lo)) * words;
  }
  [[nodiscard]] std::size_t slot(long t, long p) const {
    return static_cast<std::size_t>(t) * static_cast<std::size_t>(local_n) +
           static_cast<std::size_t>(p - local_lo);
  }
  [[nodiscard]] bool local(long q) const { return q >= local_lo && q < local_lo + local_n; }

  /// The body of task (t, p): gather the inputs, check them, write the output, run the kernel.
  void execute(long t, const StepPlan::Point& pt) {
    const std::vector<long>& in = pt.inputs;
    constexpr std::size_t k_inline = 16;
    const std::int64_t* inline_ptrs[k_inline];
    std::vector<const std::int64_t*> heap_ptrs;
    const std::int64_t** ptrs = inline_ptrs;
    if (in.size() > k_inline) {
      heap_ptrs.resize(in.size());
      ptrs = heap_ptrs.data();
    }
    const StepPlan& sp = plans[static_cast<std::size_t>(t)];
    for (std::size_t k = 0; k < in.size(); ++k) {
      const long q = in[k];
      ptrs[k] = local(q) ? output(t - 1, q)
                         : ghosts[static_cast<std::size_t>(t)].data() +
                               static_cast<std::size_t>(sp.ghost_index(q)) * words;
    }
    const taskbench::TaskCheck c = taskbench::check_inputs(*graph, t, pt.p, in, ptrs);
    taskbench::write_output(*graph, t, pt.p, output(t, pt.p));
    taskbench::run_kernel(*graph);
    digests[slot(t, pt.p)] = c.digest;
    bad[slot(t, pt.p)] = c.ok ? 0 : 1;
  }
};

RunResult run_graph(parla::Runtime& rt, parla::mpi::Comm& comm, const Graph& g, bool keyed) {
  const int rank = comm.rank();
  const Layout layout{g.width, comm.size()};
  auto st = std::make_unique<RunState>();
  st->graph = &g;
  st->plans = taskbench::plan(g, layout, rank);
  st->local_lo = layout.first(rank);
  st->local_n = layout.first(rank + 1) - st->local_lo;
  st->words = g.output_bytes / sizeof(std::int64_t);
  const std::size_t slots = static_cast<std::size_t>(g.steps) * static_cast<std::size_t>(st->local_n);
  st->outputs.assign(slots * st->words, -1);
  st->digests.assign(slots, 0);
  st->bad.assign(slots, 0);
  st->ghosts.resize(static_cast<std::size_t>(g.steps));
  long messages = 0;
  for (long t = 0; t < g.steps; ++t) {
    st->ghosts[static_cast<std::size_t>(t)].assign(
        st->plans[static_cast<std::size_t>(t)].ghosts.size() * st->words, -1);
  }

  comm.communicator().barrier();
  const double start = taskbench::now_seconds();
  double spawned = start;
  double finished = start;
  RunState* s = st.get();
  if (keyed) {
    // Tasks keyed T[{t, p}] in a TaskSpace, receives R[{t, q}]: dependencies name keys.
    // Shaped: a space this small keeps its elements in a dense array (no hash, no lock).
    parla::TaskSpace T(rt, "point", {g.steps, g.width});
    parla::TaskSpace R(rt, "ghost", {g.steps, g.width});
    for (long t = 0; t < g.steps; ++t) {
      const StepPlan& sp = s->plans[static_cast<std::size_t>(t)];
      // Receives of the remote outputs of row t - 1 this row reads.
      for (std::size_t k = 0; k < sp.ghosts.size(); ++k) {
        comm.recv(s->ghosts[static_cast<std::size_t>(t)].data() + k * s->words, g.output_bytes,
                  sp.ghost_owner[k], 0, {.key = R[{t, sp.ghosts[k]}]});
      }
      for (const StepPlan::Point& pt : sp.points) {
        std::vector<parla::Dep> deps;
        deps.reserve(pt.inputs.size());
        for (long q : pt.inputs) deps.emplace_back(s->local(q) ? T[{t - 1, q}] : R[{t, q}]);
        rt.spawn({.key = T[{t, pt.p}], .dependencies = std::move(deps)},
                 [s, t, &pt] { s->execute(t, pt); });
      }
      // Sends of this row's outputs that other ranks read in row t + 1.
      for (const auto& [q, dst] : sp.sends) {
        comm.send(s->output(t, q), g.output_bytes, dst, 0, {.dependencies = {T[{t, q}]}});
      }
      messages += static_cast<long>(sp.sends.size());
    }
    spawned = taskbench::now_seconds();
    rt.wait_all();
    finished = taskbench::now_seconds();  // before the spaces' bookkeeping is torn down
  } else {
    // The same graph with anonymous tasks spawned with spawn_after: dependencies are the Task
    // handles of row t - 1 (and of this row's receives), so no key is ever looked up and no
    // dependency list is built. A point whose inputs are a run of local columns (a stencil's
    // p - 1, p, p + 1) passes that run of the previous row's handles as it is; any other
    // gathers copies of the handles into a reused buffer.
    std::vector<parla::Task> prev(static_cast<std::size_t>(s->local_n));
    std::vector<parla::Task> cur(static_cast<std::size_t>(s->local_n));
    std::vector<parla::Task> ghost_tasks;
    std::vector<parla::Task> gathered;
    for (long t = 0; t < g.steps; ++t) {
      const StepPlan& sp = s->plans[static_cast<std::size_t>(t)];
      ghost_tasks.clear();
      for (std::size_t k = 0; k < sp.ghosts.size(); ++k) {
        ghost_tasks.push_back(comm.recv(s->ghosts[static_cast<std::size_t>(t)].data() + k * s->words,
                                        g.output_bytes, sp.ghost_owner[k], 0));
      }
      for (const StepPlan::Point& pt : sp.points) {
        const std::vector<long>& in = pt.inputs;
        std::span<const parla::Task> after;
        if (!in.empty() && s->local(in.front()) && s->local(in.back()) &&
            in.back() - in.front() + 1 == static_cast<long>(in.size()) &&
            std::is_sorted(in.begin(), in.end())) {
          after = std::span<const parla::Task>(prev).subspan(
              static_cast<std::size_t>(in.front() - s->local_lo), in.size());
        } else {
          gathered.clear();
          for (long q : in) {
            gathered.push_back(s->local(q) ? prev[static_cast<std::size_t>(q - s->local_lo)]
                                           : ghost_tasks[static_cast<std::size_t>(sp.ghost_index(q))]);
          }
          after = gathered;
        }
        cur[static_cast<std::size_t>(pt.p - s->local_lo)] =
            rt.spawn_after(after, [s, t, &pt] { s->execute(t, pt); });
      }
      for (const auto& [q, dst] : sp.sends) {
        comm.send(s->output(t, q), g.output_bytes, dst, 0,
                  {.dependencies = {cur[static_cast<std::size_t>(q - s->local_lo)]}});
      }
      messages += static_cast<long>(sp.sends.size());
      std::swap(prev, cur);
    }
    spawned = taskbench::now_seconds();
    rt.wait_all();
    finished = taskbench::now_seconds();
  }
  const double seconds = finished - start;

  long bad = 0;
  std::uint64_t checksum = 0;
  for (std::size_t i = 0; i < slots; ++i) {
    bad += st->bad[i];
    checksum += st->digests[i];
  }
  long tasks = 0;
  for (const StepPlan& sp : st->plans) tasks += static_cast<long>(sp.points.size());
  return taskbench::reduce(MPI_COMM_WORLD, seconds, tasks, bad, checksum, messages,
                           spawned - start);
}

int run(int argc, char** argv) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::optional<taskbench::Options> parsed =
      taskbench::parse_for_job(argc, argv, /*parla=*/true, "parla_taskbench", rank, size);
  if (!parsed) return 2;
  const taskbench::Options& options = *parsed;
  const Graph& g = options.graph;
  parla::Runtime rt(parla::RuntimeConfig{.num_workers = options.workers});
  const int workers = rt.num_workers();
  int code = 1;
  {
    parla::mpi::Comm comm(rt);
    if (rank == 0) {
      std::fprintf(stderr, "parla_taskbench: %d rank(s) x %d worker(s), width %ld, %s, transport %s\n",
                   size, workers, g.width, options.metg ? "METG sweep" : "one run per graph",
                   comm.transport_name());
    }
    code = taskbench::run_job(
        MPI_COMM_WORLD, options, "parla_taskbench", "parla", workers,
        [&](const Graph& graph) { return run_graph(rt, comm, graph, !options.task_handles); },
        [&] {
          const parla::mpi::ProgressStats ps = comm.progress_stats();
          return ", \"progress_polls_rank0\": " + std::to_string(ps.polls) +
                 ", \"progress_sleeps_rank0\": " + std::to_string(ps.sleeps);
        });
    comm.finish();
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) { return parla::mpi::run_main(argc, argv, "parla_taskbench", run); }
