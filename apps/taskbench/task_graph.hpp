// Task-Bench-style task graphs, shared by the Parla program (parla_taskbench.cpp) and the
// plain-MPI baseline (mpi_taskbench.cpp): the dependence patterns, the kernels, the
// verification of every task's inputs, the per-rank communication plan, the command line,
// the METG sweep and the JSON result line.
//
// The graph is the one of Task Bench (Slaughter et al., "Task Bench: A Parameterized
// Benchmark for Evaluating Parallel Runtime Performance", SC'20; StanfordLegion/task-bench,
// core/core.cc): `steps` rows of at most `width` points; the task (t, p) reads the outputs of
// the points dependencies(dset(t), p) of row t - 1 that exist in that row, and writes an
// output that encodes (t, p), which its consumers check. Written from the paper's definitions;
// the formulas of each pattern match core.cc so results are comparable.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "../shared/parse_int.hpp"

namespace taskbench {

/// Seconds since an arbitrary point (steady clock).
inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- the graph ---------------------------------------------------------------------------

enum class Pattern {
  trivial,
  no_comm,
  stencil_1d,
  stencil_1d_periodic,
  nearest,
  tree,
  fft,
  all_to_all,
};

enum class KernelKind { empty, busy_wait, compute_bound, memory_bound };

inline constexpr std::array<std::pair<std::string_view, Pattern>, 8> k_patterns{{
    {"trivial", Pattern::trivial},
    {"no_comm", Pattern::no_comm},
    {"stencil_1d", Pattern::stencil_1d},
    {"stencil_1d_periodic", Pattern::stencil_1d_periodic},
    {"nearest", Pattern::nearest},
    {"tree", Pattern::tree},
    {"fft", Pattern::fft},
    {"all_to_all", Pattern::all_to_all},
}};

inline constexpr std::array<std::pair<std::string_view, KernelKind>, 4> k_kernels{{
    {"empty", KernelKind::empty},
    {"busy_wait", KernelKind::busy_wait},
    {"compute_bound", KernelKind::compute_bound},
    {"memory_bound", KernelKind::memory_bound},
}};

inline std::string_view name_of(Pattern p) {
  for (const auto& [name, value] : k_patterns) {
    if (value == p) return name;
  }
  return "?";
}

inline std::string_view name_of(KernelKind k) {
  for (const auto& [name, value] : k_kernels) {
    if (value == k) return name;
  }
  return "?";
}

/// An inclusive range of points [first, last] of the previous row.
using Span = std::pair<long, long>;

/// One task graph: its shape, its pattern and its kernel.
struct Graph {
  Pattern pattern = Pattern::stencil_1d;
  long width = 4;
  long steps = 16;
  long radix = 3;  // nearest: how many points of the previous row a task reads
  KernelKind kernel = KernelKind::empty;
  long iterations = 0;
  std::size_t output_bytes = 16;    // per task; a multiple of 16 (pairs (step, point))
  std::size_t scratch_bytes = 65536;  // memory_bound: working set of one task
  bool inject_fault = false;  // tests: task (steps / 2, width / 2) writes a wrong output

  /// First point of row t: 0 for every pattern here (Task Bench's dom pattern, not
  /// implemented, is the one whose rows start later).
  [[nodiscard]] long offset_at(long /*t*/) const { return 0; }
  /// Number of points of row t (0 before the first row).
  [[nodiscard]] long width_at(long t) const {
    if (t < 0) return 0;
    if (pattern == Pattern::tree) return std::min(width, 1L << std::min(t, 62L));
    return width;
  }
  /// Number of distinct dependence sets (fft: log2 width, rounded up; else 1).
  [[nodiscard]] long dependence_sets() const {
    if (pattern != Pattern::fft) return 1;
    long sets = 0;
    while ((1L << sets) < width) ++sets;
    return std::max(1L, sets);
  }
  /// The dependence set row t uses.
  [[nodiscard]] long dset_at(long t) const {
    const long sets = dependence_sets();
    return pattern == Pattern::fft ? (t + sets - 1) % sets : 0;
  }

  /// The points of row t - 1 the task (t, point) reads, before clipping to that row.
  [[nodiscard]] std::vector<Span> dependencies(long dset, long point) const {
    switch (pattern) {
      case Pattern::trivial:
        return {};
      case Pattern::no_comm:
        return {{point, point}};
      case Pattern::stencil_1d:
        return {{std::max(0L, point - 1), std::min(point + 1, width - 1)}};
      case Pattern::stencil_1d_periodic: {
        std::vector<Span> deps{{std::max(0L, point - 1), std::min(point + 1, width - 1)}};
        // The wrap-around neighbours, unless the clipped range already holds them.
        if (point - 1 < 0 && width - 1 > point + 1) deps.emplace_back(width - 1, width - 1);
        if (point + 1 >= width && 0 < point - 1) deps.emplace_back(0, 0);
        return deps;
      }
      case Pattern::nearest:
        if (radix <= 0) return {};
        return {{std::max(0L, point - radix / 2), std::min(point + (radix - 1) / 2, width - 1)}};
      case Pattern::tree:
        return {{point / 2, point / 2}};
      case Pattern::fft: {
        std::vector<Span> deps;
        const long d1 = point - (1L << dset);
        const long d2 = point + (1L << dset);
        if (d1 >= 0) deps.emplace_back(d1, d1);
        deps.emplace_back(point, point);
        if (d2 < width) deps.emplace_back(d2, d2);
        return deps;
      }
      case Pattern::all_to_all:
        return {{0, width - 1}};
    }
    return {};
  }

  /// The points of row t - 1 that the task (t, point) reads, in order, clipped to that row.
  [[nodiscard]] std::vector<long> inputs(long t, long point) const {
    std::vector<long> in;
    if (t == 0) return in;
    const long lo = offset_at(t - 1);
    const long hi = lo + width_at(t - 1);
    for (const Span& s : dependencies(dset_at(t), point)) {
      for (long q = std::max(s.first, lo); q <= std::min(s.second, hi - 1); ++q) in.push_back(q);
    }
    return in;
  }

  /// FLOPs (compute_bound) or bytes moved (memory_bound) by one task.
  [[nodiscard]] double work_per_task() const {
    switch (kernel) {
      case KernelKind::compute_bound:
        return 128.0 * static_cast<double>(iterations);  // 64 lanes × (mul + add)
      case KernelKind::memory_bound:
        return static_cast<double>(scratch_bytes) * static_cast<double>(iterations);
      default:
        return 0.0;
    }
  }
  /// Tasks in the whole graph.
  [[nodiscard]] long total_tasks() const {
    long n = 0;
    for (long t = 0; t < steps; ++t) n += width_at(t);
    return n;
  }
};

// ---- kernels -----------------------------------------------------------------------------

/// Runs the task's kernel (Task Bench's definitions: busy_wait is a modular multiply chain,
/// compute_bound 64 independent multiply-adds per iteration, memory_bound copies its
/// working set's halves into each other once per iteration). Defined in task_kernels.cpp, not
/// here: both programs then run the same machine code, placed alike (see there).
void run_kernel(const Graph& g);

// ---- verification ------------------------------------------------------------------------

/// Writes the output of task (t, p): (t, p) repeated over the buffer.
inline void write_output(const Graph& g, long t, long p, std::int64_t* out) {
  for (std::size_t i = 0; i < g.output_bytes / 16; ++i) {
    out[2 * i] = t;
    out[2 * i + 1] = p;
  }
  if (g.inject_fault && t == g.steps / 2 && p == g.width_at(t) / 2) out[0] = -7;
}

/// Mixes 64 bits (splitmix64's finaliser): order-sensitive input hashing.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Result of one task's check of its inputs.
struct TaskCheck {
  std::uint64_t digest = 0;  // hash of (t, p, every input's (step, point)); summed into the checksum
  bool ok = true;
};

/// Checks that input k of task (t, p) holds (t - 1, inputs[k]) everywhere, as Task Bench does,
/// and folds what was read into the task's digest. The graph checksum is the wrapping sum of
/// the digests, so it does not depend on the order tasks ran or on how columns were split.
inline TaskCheck check_inputs(const Graph& g, long t, long p, const std::vector<long>& inputs,
                              const std::int64_t* const* data) {
  TaskCheck c;
  std::uint64_t h = mix((static_cast<std::uint64_t>(t) << 32) ^ static_cast<std::uint64_t>(p));
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const std::int64_t* in = data[k];
    for (std::size_t i = 0; i < g.output_bytes / 16; ++i) {
      if (in[2 * i] != t - 1 || in[2 * i + 1] != inputs[k]) c.ok = false;
    }
    h = mix(h ^ ((static_cast<std::uint64_t>(in[0]) << 32) ^ static_cast<std::uint64_t>(in[1])));
  }
  c.digest = h;
  return c;
}

/// The checksum a correct run must give: every task's digest computed from the inputs it
/// should read (sequentially, without running anything).
inline std::uint64_t expected_checksum(const Graph& g) {
  std::uint64_t sum = 0;
  std::vector<std::int64_t> buf;
  std::vector<const std::int64_t*> ptrs;
  for (long t = 0; t < g.steps; ++t) {
    for (long p = g.offset_at(t); p < g.offset_at(t) + g.width_at(t); ++p) {
      const std::vector<long> in = g.inputs(t, p);
      buf.assign(2 * in.size(), 0);
      ptrs.resize(in.size());
      for (std::size_t k = 0; k < in.size(); ++k) {
        buf[2 * k] = t - 1;
        buf[2 * k + 1] = in[k];
        ptrs[k] = buf.data() + 2 * k;
      }
      Graph one = g;
      one.output_bytes = 16;  // the digest reads the first pair of each input
      sum += check_inputs(one, t, p, in, ptrs.data()).digest;
    }
  }
  return sum;
}

// ---- the plan of one rank ----------------------------------------------------------------

/// Columns are split in contiguous blocks: rank r owns points [first(r), first(r + 1)).
struct Layout {
  long width = 1;
  int ranks = 1;
  [[nodiscard]] long first(int r) const { return width * r / ranks; }
  [[nodiscard]] int owner(long point) const {
    // The last r with first(r) <= point.
    int r = static_cast<int>((point * ranks) / width);
    while (r + 1 < ranks && first(r + 1) <= point) ++r;
    while (r > 0 && first(r) > point) --r;
    return r;
  }
};

/// What one rank does in row t.
struct StepPlan {
  struct Point {
    long p = 0;
    std::vector<long> inputs;  // points of row t - 1, in dependency order
  };
  std::vector<Point> points;  // this rank's tasks of row t
  /// Points of row t - 1 owned elsewhere that this rank's tasks of row t read, ascending,
  /// with their owners: one message each.
  std::vector<long> ghosts;
  std::vector<int> ghost_owner;
  /// This rank's outputs of row t that other ranks read in row t + 1: (point, rank),
  /// ascending by point, then by rank: one message each.
  std::vector<std::pair<long, int>> sends;

  [[nodiscard]] long ghost_index(long q) const {
    return std::lower_bound(ghosts.begin(), ghosts.end(), q) - ghosts.begin();
  }
};

/// Plans every row for `rank`. Both sides of a message enumerate it in the same order
/// (row, then point ascending), which is what pairs sends with receives.
inline std::vector<StepPlan> plan(const Graph& g, const Layout& layout, int rank) {
  std::vector<StepPlan> plans(static_cast<std::size_t>(g.steps));
  const long mine_lo = layout.first(rank);
  const long mine_hi = layout.first(rank + 1);
  for (long t = 0; t < g.steps; ++t) {
    StepPlan& sp = plans[static_cast<std::size_t>(t)];
    const long lo = std::max(mine_lo, g.offset_at(t));
    const long hi = std::min(mine_hi, g.offset_at(t) + g.width_at(t));
    for (long p = lo; p < hi; ++p) {
      StepPlan::Point pt{p, g.inputs(t, p)};
      for (long q : pt.inputs) {
        if (q < mine_lo || q >= mine_hi) sp.ghosts.push_back(q);
      }
      sp.points.push_back(std::move(pt));
    }
    std::sort(sp.ghosts.begin(), sp.ghosts.end());
    sp.ghosts.erase(std::unique(sp.ghosts.begin(), sp.ghosts.end()), sp.ghosts.end());
    for (long q : sp.ghosts) sp.ghost_owner.push_back(layout.owner(q));
    // Consumers in row t + 1 on other ranks of this rank's outputs of row t.
    if (t + 1 < g.steps) {
      const long nlo = g.offset_at(t + 1);
      const long nhi = nlo + g.width_at(t + 1);
      for (long p = nlo; p < nhi; ++p) {
        const int r = layout.owner(p);
        if (r == rank) continue;
        for (long q : g.inputs(t + 1, p)) {
          if (q >= mine_lo && q < mine_hi) sp.sends.emplace_back(q, r);
        }
      }
      std::sort(sp.sends.begin(), sp.sends.end());
      sp.sends.erase(std::unique(sp.sends.begin(), sp.sends.end()), sp.sends.end());
    }
  }
  return plans;
}

// ---- command line ------------------------------------------------------------------------

struct Options {
  Graph graph;                        // the first of `graphs`
  std::vector<Graph> graphs;          // every --type x --kernel combination, in order
  int workers = 0;  // Parla only: cpu workers per rank (0: PARLA_NUM_WORKERS or all)
  bool task_handles = false;  // Parla only: depend on Task handles instead of TaskSpace keys
  bool metg = false;
  long metg_max_iterations = 1L << 16;
  double metg_target_seconds = 0.05;  // wall time of one run of the sweep
  bool metg_kernel_peak = false;      // peak = the kernel alone x cores (else the sweep's best)
  int metg_repeats = 5;               // runs per point; the fastest counts
  int cores = 0;                      // cores the job uses, for granularity (0: ask the OS)
};

inline void usage(const char* program, bool parla) {
  std::fprintf(
      stderr,
      "usage: %s [options]\n"
      "Runs a Task-Bench-style task graph%s and checks every task's inputs.\n"
      "  --type P[,P..]  pattern(s): trivial, no_comm, stencil_1d (default), stencil_1d_periodic,\n"
      "                  nearest, tree, fft, all_to_all; a list runs each (x each kernel)\n"
      "  --width W       points per row (default 4)\n"
      "  --steps S       rows (default 16)\n"
      "  --radix R       nearest: points of the previous row each task reads (default 3)\n"
      "  --kernel K[,K..]  empty (default), busy_wait, compute_bound, memory_bound\n"
      "  --iterations N  kernel iterations per task (default 0)\n"
      "  --output B      output bytes per task, a multiple of 16 (default 16)\n"
      "  --scratch B     memory_bound working set per task in bytes (default 65536)\n"
      "%s"
      "  --metg          sweep compute_bound iterations from --max-iterations down to 1 and\n"
      "                  report efficiency vs task granularity and the METG at 50%%\n"
      "  --max-iterations N  largest task of the sweep (default 65536)\n"
      "  --target-seconds T  wall time of each run of the sweep (default 0.05)\n"
      "  --peak P        sweep (default: the sweep's best FLOP/s) or kernel (the kernel\n"
      "                  alone on one core, best of 200 trials, x cores)\n"
      "  --repeats N     runs per sweep point, the fastest counts (default 5)\n"
      "  --cores C       cores of the job, for granularity = wall x cores / tasks\n"
      "                  (default: the machine's hardware threads)\n"
      "  --inject-fault  (tests) one task writes a wrong output; the check must then fail\n"
      "The last line on stdout is a JSON object; progress goes to stderr.\n",
      program, parla ? " with Parla tasks (columns split across MPI ranks)" : " in plain MPI",
      parla ? "  --workers N     Parla cpu workers per rank (default PARLA_NUM_WORKERS or all)\n"
              "  --deps D        keys (default: tasks keyed T[{t, p}] in a TaskSpace, dependencies\n"
              "                  by key) or handles (anonymous tasks, dependencies on Task handles)\n"
            : "");
}

/// "a,b,c" -> {"a", "b", "c"}.
inline std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

template <class Table>
auto lookup(const Table& table, const std::string& name, const char* what) {
  std::string known;
  for (const auto& [n, value] : table) {
    if (n == name) return value;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  throw std::invalid_argument(std::string(what) + " '" + name + "' (known: " + known + ")");
}

using parla_apps::parse_int;

/// Parses the command line; --help prints the usage and exits 0.
inline Options parse(int argc, char** argv, bool parla, bool print_help) {
  Options o;
  std::string types = "stencil_1d";
  std::string kernels = "empty";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      if (print_help) usage(argv[0], parla);
      MPI_Finalize();
      std::exit(0);
    }
    if (arg == "--metg") {
      o.metg = true;
      continue;
    }
    if (arg == "--inject-fault") {
      o.graph.inject_fault = true;
      continue;
    }
    if (i + 1 >= argc) {
      throw std::invalid_argument("unknown or incomplete argument '" + std::string(arg) +
                                  "' (see --help)");
    }
    const char* value = argv[++i];
    if (arg == "--type") {
      types = value;
    } else if (arg == "--kernel") {
      kernels = value;
    } else if (arg == "--width") {
      o.graph.width = parse_int(arg, value, 1);
    } else if (arg == "--steps") {
      o.graph.steps = parse_int(arg, value, 1);
    } else if (arg == "--radix") {
      o.graph.radix = parse_int(arg, value, 0);
    } else if (arg == "--iterations") {
      o.graph.iterations = parse_int(arg, value, 0);
    } else if (arg == "--output") {
      o.graph.output_bytes = static_cast<std::size_t>(parse_int(arg, value, 16));
      if (o.graph.output_bytes % 16 != 0) {
        throw std::invalid_argument("--output must be a multiple of 16 bytes");
      }
    } else if (arg == "--scratch") {
      o.graph.scratch_bytes = static_cast<std::size_t>(parse_int(arg, value, 16));
    } else if (arg == "--deps" && parla) {
      const std::string_view v = value;
      if (v != "keys" && v != "handles") throw std::invalid_argument("--deps expects keys or handles");
      o.task_handles = v == "handles";
    } else if (arg == "--workers" && parla) {
      o.workers = static_cast<int>(parse_int(arg, value, 1));
    } else if (arg == "--max-iterations") {
      o.metg_max_iterations = parse_int(arg, value, 1);
    } else if (arg == "--target-seconds") {
      o.metg_target_seconds = std::atof(value);
      if (!(o.metg_target_seconds > 0)) throw std::invalid_argument("--target-seconds must be > 0");
    } else if (arg == "--peak") {
      const std::string_view v = value;
      if (v != "sweep" && v != "kernel") throw std::invalid_argument("--peak expects sweep or kernel");
      o.metg_kernel_peak = v == "kernel";
    } else if (arg == "--repeats") {
      o.metg_repeats = static_cast<int>(parse_int(arg, value, 1));
    } else if (arg == "--cores") {
      o.cores = static_cast<int>(parse_int(arg, value, 1));
    } else {
      throw std::invalid_argument("unknown argument '" + std::string(arg) + "' (see --help)");
    }
  }
  for (const std::string& type : split(types)) {
    for (const std::string& kernel : split(kernels)) {
      Graph g = o.graph;
      g.pattern = lookup(k_patterns, type, "--type: unknown pattern");
      g.kernel = lookup(k_kernels, kernel, "--kernel: unknown kernel");
      o.graphs.push_back(g);
    }
  }
  if (o.graphs.empty()) throw std::invalid_argument("--type and --kernel need at least one name");
  o.graph = o.graphs.front();
  return o;
}

/// The command line of `program` on `size` ranks: the options, or nothing after printing
/// why they cannot run (on rank 0) — then exit with status 2.
inline std::optional<Options> parse_for_job(int argc, char** argv, bool parla, const char* program,
                                            int rank, int size) {
  Options options;
  try {
    options = parse(argc, argv, parla, rank == 0);
  } catch (const std::exception& e) {
    if (rank == 0) std::fprintf(stderr, "%s: %s\n", program, e.what());
    return std::nullopt;
  }
  if (options.graph.width < size) {
    if (rank == 0) {
      std::fprintf(stderr, "%s: --width %ld is less than the %d ranks; every rank needs at least "
                           "one column\n", program, options.graph.width, size);
    }
    return std::nullopt;
  }
  return options;
}

// ---- results -----------------------------------------------------------------------------

/// What one run of the graph measured (already reduced over the ranks).
struct RunResult {
  double seconds = 0;       // wall time, slowest rank, from a barrier to the end
  long tasks = 0;           // tasks run, all ranks
  long bad_tasks = 0;       // tasks whose inputs were wrong, all ranks
  std::uint64_t checksum = 0;
  long messages = 0;        // point-to-point messages, all ranks
  double spawn_seconds = 0; // Parla: time to spawn the graph, slowest rank
};

/// Reduces a rank's counters over the job; the time is the slowest rank's.
inline RunResult reduce(MPI_Comm comm, double seconds, long tasks, long bad, std::uint64_t checksum,
                        long messages, double spawn_seconds = 0) {
  RunResult r;
  MPI_Allreduce(&spawn_seconds, &r.spawn_seconds, 1, MPI_DOUBLE, MPI_MAX, comm);
  MPI_Allreduce(&seconds, &r.seconds, 1, MPI_DOUBLE, MPI_MAX, comm);
  MPI_Allreduce(&tasks, &r.tasks, 1, MPI_LONG, MPI_SUM, comm);
  MPI_Allreduce(&bad, &r.bad_tasks, 1, MPI_LONG, MPI_SUM, comm);
  MPI_Allreduce(&checksum, &r.checksum, 1, MPI_UINT64_T, MPI_SUM, comm);
  MPI_Allreduce(&messages, &r.messages, 1, MPI_LONG, MPI_SUM, comm);
  return r;
}

/// One point of the METG sweep.
struct SweepPoint {
  long iterations = 0;
  long steps = 0;
  long tasks = 0;
  double seconds = 0;
  double spawn_seconds = 0;   // Parla: of those seconds, spawning the graph (slowest rank)
  double flops_per_second = 0;
  double granularity_us = 0;  // wall × cores / tasks
  double efficiency = 0;      // flops_per_second / that of the largest task size
  bool ok = true;
};

struct Sweep {
  std::vector<SweepPoint> points;
  double peak_flops_per_second = 0;
  double metg_us = NAN;          // granularity where efficiency falls through 50% (interpolated)
  double metg_measured_us = NAN; // smallest measured granularity with efficiency >= 50%
  bool ok = true;
};

/// Runs the METG sweep: compute_bound tasks from `max_iterations` down to 1 iteration,
/// halving; each point sized to take about `target_seconds`; the fastest of `repeats` runs,
/// one per pass over the points (short runs, best of several, spread over the sweep: robust
/// to other processes and slow spells of a shared machine).
/// `run(graph)` runs one graph on every rank and returns the reduced result; every rank
/// calls this with the same arguments (the step counts are decided on rank 0 and broadcast).
inline Sweep metg_sweep(MPI_Comm comm, const Options& o, int cores,
                        const std::function<RunResult(const Graph&)>& run) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  Sweep sweep;
  Graph g = o.graph;
  g.kernel = KernelKind::compute_bound;
  // The kernel alone on each rank's thread, best of many short trials, times the job's cores:
  // the peak with --peak kernel (an idle machine's), printed either way. By default the peak
  // is the sweep's best FLOP/s, as in Task Bench, which on a machine shared with other
  // processes measures every point under the same conditions.
  {
    Graph k = g;
    k.iterations = 4096;
    double best = 1e30;
    for (int trial = 0; trial < 200; ++trial) {
      const double t0 = now_seconds();
      run_kernel(k);
      best = std::min(best, now_seconds() - t0);
    }
    double slowest = best;
    MPI_Allreduce(&best, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
    if (o.metg_kernel_peak) sweep.peak_flops_per_second = k.work_per_task() / slowest * cores;
    if (rank == 0) {
      std::fprintf(stderr, "  kernel alone: %.3f GFLOP/s per core, peak %.3f GFLOP/s on %d cores\n",
                   k.work_per_task() / slowest * 1e-9, sweep.peak_flops_per_second * 1e-9, cores);
    }
  }
  // The points, largest tasks first, each sized on the first pass to take about
  // target_seconds, then `repeats` passes over all of them keeping each point's fastest run
  // (the sizing run of the first point is its run of the first pass). Passes rather than
  // back-to-back repeats: on a shared machine a core's speed swings by up to 2 x for seconds
  // at a time, and runs of one point spread over the sweep are not all caught by one slow
  // spell (which would set that point's efficiency, and the METG, by the machine rather than
  // by the runtime).
  double per_iteration_s = 0;  // core time per task per iteration, from the first point
  for (long iterations = o.metg_max_iterations; iterations >= 1; iterations /= 2) {
    SweepPoint p;
    p.iterations = iterations;
    // Steps so the run takes about target_seconds (at full efficiency), within [8, 4000].
    long steps = 32;
    if (per_iteration_s > 0) {
      const double task_s = per_iteration_s * static_cast<double>(iterations);
      steps = static_cast<long>(o.metg_target_seconds * cores / (task_s * static_cast<double>(g.width)));
    }
    steps = std::clamp(steps, 8L, 4000L);
    MPI_Bcast(&steps, 1, MPI_LONG, 0, comm);
    p.steps = steps;
    sweep.points.push_back(p);
    if (per_iteration_s == 0) {
      // The first point's first run sizes the others (its run counts as its first repeat).
      g.iterations = iterations;
      g.steps = steps;
      const RunResult r = run(g);
      SweepPoint& first = sweep.points.back();
      first.seconds = r.seconds;
      first.spawn_seconds = r.spawn_seconds;
      first.tasks = r.tasks;
      first.ok = r.bad_tasks == 0 && r.tasks == g.total_tasks();
      double pi =
          r.seconds * cores / (static_cast<double>(r.tasks) * static_cast<double>(iterations));
      MPI_Bcast(&pi, 1, MPI_DOUBLE, 0, comm);  // every rank sizes the next points alike
      per_iteration_s = pi;
    }
  }
  for (int rep = 0; rep < o.metg_repeats; ++rep) {
    if (rank == 0 && o.metg_repeats > 1) {
      std::fprintf(stderr, "  pass %d/%d over %zu points\n", rep + 1, o.metg_repeats,
                   sweep.points.size());
    }
    for (std::size_t i = 0; i < sweep.points.size(); ++i) {
      SweepPoint& p = sweep.points[i];
      if (rep == 0 && i == 0) continue;  // ran above
      g.iterations = p.iterations;
      g.steps = p.steps;
      const RunResult r = run(g);
      const bool ok = r.bad_tasks == 0 && r.tasks == g.total_tasks();
      if (p.tasks == 0 || r.seconds < p.seconds) {
        p.seconds = r.seconds;
        p.spawn_seconds = r.spawn_seconds;
        p.tasks = r.tasks;
      }
      p.ok = p.ok && ok;
    }
  }
  for (SweepPoint& p : sweep.points) {
    g.iterations = p.iterations;
    p.flops_per_second = g.work_per_task() * static_cast<double>(p.tasks) / p.seconds;
    p.granularity_us = p.seconds * cores / static_cast<double>(p.tasks) * 1e6;
    sweep.peak_flops_per_second = std::max(sweep.peak_flops_per_second, p.flops_per_second);
    sweep.ok = sweep.ok && p.ok;
    if (rank == 0) {
      // Parla: spawning time per task of a rank; when it is most of the run, the one thread
      // that spawns the graph bounds the granularity (cores x spawn time per task).
      char spawn[48] = "";
      if (p.spawn_seconds > 0) {
        std::snprintf(spawn, sizeof spawn, "  spawn %6.3f us/task",
                      p.spawn_seconds * 1e6 * size / static_cast<double>(p.tasks));
      }
      std::fprintf(stderr,
                   "  iterations %7ld  steps %5ld  tasks %6ld  %8.4f s  granularity %10.3f us  "
                   "%7.3f GFLOP/s%s%s\n",
                   p.iterations, p.steps, p.tasks, p.seconds, p.granularity_us,
                   p.flops_per_second * 1e-9, spawn, p.ok ? "" : "  CHECK FAILED");
    }
  }
  // Efficiency against the peak (Task Bench normalises to the best FLOP/s the system reaches;
  // the largest tasks give it unless other processes slowed them, hence the calibration).
  for (SweepPoint& p : sweep.points) p.efficiency = p.flops_per_second / sweep.peak_flops_per_second;
  for (std::size_t i = 0; i < sweep.points.size(); ++i) {
    const SweepPoint& a = sweep.points[i];
    if (a.efficiency < 0.5) continue;
    if (std::isnan(sweep.metg_measured_us) || a.granularity_us < sweep.metg_measured_us) {
      sweep.metg_measured_us = a.granularity_us;
    }
    // The last crossing towards smaller tasks: a at or above 50%, the next point below.
    if (i + 1 < sweep.points.size() && sweep.points[i + 1].efficiency < 0.5) {
      const SweepPoint& b = sweep.points[i + 1];
      // Interpolated in log(granularity) between the two points around 50%.
      const double f = (a.efficiency - 0.5) / (a.efficiency - b.efficiency);
      sweep.metg_us = std::exp(std::log(a.granularity_us) +
                               f * (std::log(b.granularity_us) - std::log(a.granularity_us)));
    }
  }
  if (std::isnan(sweep.metg_us)) sweep.metg_us = sweep.metg_measured_us;  // never fell below 50%
  if (rank == 0) {
    std::fprintf(stderr, "  peak %.3f GFLOP/s; METG(50%%) = %.3f us (smallest measured >= 50%%: %.3f us)\n",
                 sweep.peak_flops_per_second * 1e-9, sweep.metg_us, sweep.metg_measured_us);
  }
  return sweep;
}

/// Cores the job runs on: --cores, else the machine's hardware threads.
inline int job_cores(const Options& o) {
  if (o.cores > 0) return o.cores;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

inline std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

/// The "params" object.
inline std::string json_params(const Options& o) {
  const Graph& g = o.graph;
  std::string types;
  std::string kernels;
  for (const Graph& x : o.graphs) {
    const std::string t(name_of(x.pattern));
    const std::string k(name_of(o.metg ? KernelKind::compute_bound : x.kernel));
    if (types.find(t) == std::string::npos) types += (types.empty() ? "" : ",") + t;
    if (kernels.find(k) == std::string::npos) kernels += (kernels.empty() ? "" : ",") + k;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"type\": \"%s\", \"width\": %ld, \"steps\": %ld, \"radix\": %ld, \"kernel\": \"%s\", "
                "\"iterations\": %ld, \"output_bytes\": %zu, \"scratch_bytes\": %zu, \"metg\": %s, "
                "\"deps\": \"%s\"}",
                types.c_str(), g.width, g.steps, g.radix, kernels.c_str(), g.iterations,
                g.output_bytes, g.scratch_bytes, o.metg ? "true" : "false",
                o.task_handles ? "handles" : "keys");
  return buf;
}

/// The "metrics" of a METG sweep.
inline std::string json_sweep(const Sweep& s, int cores) {
  std::string out = "{\"metg_us\": " + json_number(s.metg_us) +
                    ", \"metg_measured_us\": " + json_number(s.metg_measured_us) +
                    ", \"peak_gflops\": " + json_number(s.peak_flops_per_second * 1e-9) +
                    ", \"cores\": " + std::to_string(cores) + ", \"sweep\": [";
  for (std::size_t i = 0; i < s.points.size(); ++i) {
    const SweepPoint& p = s.points[i];
    if (i) out += ", ";
    out += "{\"iterations\": " + std::to_string(p.iterations) +
           ", \"steps\": " + std::to_string(p.steps) + ", \"tasks\": " + std::to_string(p.tasks) +
           ", \"seconds\": " + json_number(p.seconds) +
           ", \"spawn_seconds\": " + json_number(p.spawn_seconds) +
           ", \"granularity_us\": " + json_number(p.granularity_us) +
           ", \"efficiency\": " + json_number(p.efficiency) +
           ", \"gflops\": " + json_number(p.flops_per_second * 1e-9) + "}";
  }
  return out + "]}";
}

/// The hexadecimal form of a checksum ("0123456789abcdef").
inline std::string hex(std::uint64_t x) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

/// Runs what the options ask for (a METG sweep, or every graph once), prints the JSON line on
/// rank 0 and returns the exit code (0 when every check passed). `run` runs one graph on
/// every rank; `extra_metrics` (", \"key\": value...") is appended to the metrics.
inline int run_job(MPI_Comm comm, const Options& o, const char* program, const char* impl,
                   int workers, const std::function<RunResult(const Graph&)>& run,
                   const std::function<std::string()>& extra_metrics = {}) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const int cores = job_cores(o);
  std::string metrics;
  std::string check;
  bool ok = true;
  double seconds = 0;
  if (o.metg) {
    const Sweep sweep = metg_sweep(comm, o, cores, run);
    ok = sweep.ok;
    for (const SweepPoint& p : sweep.points) seconds += p.seconds;
    metrics = json_sweep(sweep, cores);
    metrics.pop_back();  // reopen the object for extra_metrics
    check = ", \"points\": " + std::to_string(sweep.points.size());
  } else {
    std::string graphs;
    std::uint64_t combined = 0;
    long tasks = 0;
    long bad = 0;
    for (const Graph& g : o.graphs) {
      const RunResult r = run(g);
      const std::uint64_t expected = expected_checksum(g);
      const bool good = r.bad_tasks == 0 && r.tasks == g.total_tasks() && r.checksum == expected;
      ok = ok && good;
      seconds += r.seconds;
      tasks += r.tasks;
      bad += r.bad_tasks;
      combined += r.checksum;
      if (rank == 0) {
        std::fprintf(stderr, "  %-20s %-14s %6ld tasks %6ld messages %9.6f s  %8.3f us/task  %s\n",
                     std::string(name_of(g.pattern)).c_str(), std::string(name_of(g.kernel)).c_str(),
                     r.tasks, r.messages, r.seconds, r.seconds * cores / static_cast<double>(r.tasks) * 1e6,
                     good ? "ok" : "CHECK FAILED");
      }
      graphs += std::string(graphs.empty() ? "" : ", ") + "{\"type\": \"" +
                std::string(name_of(g.pattern)) + "\", \"kernel\": \"" + std::string(name_of(g.kernel)) +
                "\", \"tasks\": " + std::to_string(r.tasks) + ", \"messages\": " +
                std::to_string(r.messages) + ", \"seconds\": " + json_number(r.seconds) +
                ", \"us_per_task\": " + json_number(r.seconds * cores / static_cast<double>(r.tasks) * 1e6) +
                (r.spawn_seconds > 0 ? ", \"spawn_us_per_task\": " +
                                           json_number(r.spawn_seconds * size / static_cast<double>(r.tasks) * 1e6)
                                     : std::string()) +
                ", \"checksum\": \"" + hex(r.checksum) + "\", \"ok\": " + (good ? "true" : "false") + "}";
    }
    metrics = "{\"tasks\": " + std::to_string(tasks) + ", \"us_per_task\": " +
              json_number(seconds * cores / static_cast<double>(tasks) * 1e6) +
              ", \"cores\": " + std::to_string(cores) + ", \"graphs\": [" + graphs + "]";
    check = ", \"tasks\": " + std::to_string(tasks) + ", \"bad_tasks\": " + std::to_string(bad) +
            ", \"checksum\": \"" + hex(combined) + "\"";
  }
  if (extra_metrics) metrics += extra_metrics();
  metrics += "}";
  if (rank == 0) {
    std::printf("{\"app\": \"taskbench\", \"impl\": \"%s\", \"ranks\": %d, \"workers\": %d, "
                "\"devices\": [\"cpu\"], \"params\": %s, \"seconds\": %.6f, \"metrics\": %s, "
                "\"check\": {\"ok\": %s%s}}\n",
                impl, size, workers, json_params(o).c_str(), seconds, metrics.c_str(),
                ok ? "true" : "false", check.c_str());
    std::fflush(stdout);
    if (!ok) std::fprintf(stderr, "%s: CHECK FAILED\n", program);
  }
  return ok ? 0 : 1;
}

}  // namespace taskbench
