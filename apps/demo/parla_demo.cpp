// The demo: every MPI rank runs a Parla task graph, and the ranks combine their results.
//
// π = ∫₀¹ 4/(1+x²) dx by the midpoint rule over N intervals. Each rank takes its share of the
// intervals and spawns a TaskSpace of integration tasks over it, then a binary tree of
// reduction tasks that depend on them (keys {level, i}); the root's value is the rank's
// partial sum, and an allreduce combines the ranks. An exact integer checksum (the sum of the
// interval indices) proves that every interval was integrated exactly once.
//
// Progress goes to stderr; the last line on stdout is the JSON result (DESIGN §6).
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include "../shared/parse_int.hpp"
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
  std::int64_t intervals = std::int64_t{1} << 24;
  int tasks = 64;      // integration tasks per rank
  int workers = 0;     // 0: PARLA_NUM_WORKERS, else every hardware thread
};

struct Partial {
  double sum = 0.0;            // Σ f(x_i) over the intervals covered
  std::int64_t count = 0;      // how many intervals
  std::int64_t index_sum = 0;  // Σ i over the intervals: exact checksum of coverage
};

Partial operator+(const Partial& a, const Partial& b) {
  return {a.sum + b.sum, a.count + b.count, a.index_sum + b.index_sum};
}

void usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s [--intervals N] [--tasks T] [--workers W]\n"
               "  --intervals N  midpoint-rule intervals in total (default 16777216)\n"
               "  --tasks T      integration tasks per rank (default 64)\n"
               "  --workers W    worker threads per rank (default: PARLA_NUM_WORKERS or all)\n",
               program);
}

using parla_apps::parse_int;

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(argv[0]);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      throw std::invalid_argument("unknown or incomplete argument '" + std::string(arg) +
                                  "' (see --help)");
    }
    if (arg == "--intervals") {
      options.intervals = parse_int(arg, argv[++i], 1);
    } else if (arg == "--tasks") {
      options.tasks = static_cast<int>(parse_int(arg, argv[++i], 1));
    } else if (arg == "--workers") {
      options.workers = static_cast<int>(parse_int(arg, argv[++i], 1));
    } else {
      throw std::invalid_argument("unknown argument '" + std::string(arg) + "' (see --help)");
    }
  }
  return options;
}

// Midpoint rule over intervals [lo, hi) of n.
Partial integrate(std::int64_t lo, std::int64_t hi, std::int64_t n) {
  const double h = 1.0 / static_cast<double>(n);
  Partial p;
  for (std::int64_t i = lo; i < hi; ++i) {
    const double x = (static_cast<double>(i) + 0.5) * h;
    p.sum += 4.0 / (1.0 + x * x);
    p.index_sum += i;
  }
  p.count = hi - lo;
  return p;
}

// Block split of [0, n) into `parts`: part k gets [begin(k), begin(k+1)).
std::int64_t split(std::int64_t n, std::int64_t parts, std::int64_t k) { return n * k / parts; }

}  // namespace

namespace {

int run(int argc, char** argv) {
  parla::mpi::Communicator comm;
  Options options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    if (comm.rank() == 0) {
      std::fprintf(stderr, "parla_demo: %s\n", e.what());
    }
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  const std::int64_t n = options.intervals;
  const std::int64_t rank_lo = split(n, comm.size(), comm.rank());
  const std::int64_t rank_hi = split(n, comm.size(), comm.rank() + 1);
  const std::int64_t tasks = options.tasks;

  Partial rank_partial;
  int workers = 0;
  {
    parla::Runtime rt(parla::RuntimeConfig{.num_workers = options.workers});
    workers = rt.num_workers();
    parla::TaskSpace partial(rt, "partial");
    // Level 0: integration tasks over this rank's intervals.
    for (std::int64_t t = 0; t < tasks; ++t) {
      const std::int64_t lo = rank_lo + split(rank_hi - rank_lo, tasks, t);
      const std::int64_t hi = rank_lo + split(rank_hi - rank_lo, tasks, t + 1);
      rt.spawn({.key = partial[{0, t}]}, [lo, hi, n] { return integrate(lo, hi, n); });
    }
    // Levels 1..: pairwise sums. Spawned without waiting: each depends on its two children.
    std::int64_t width = tasks;
    std::int64_t level = 0;
    while (width > 1) {
      const std::int64_t next = (width + 1) / 2;
      for (std::int64_t i = 0; i < next; ++i) {
        const parla::TaskRef left = partial[{level, 2 * i}];
        const parla::TaskRef right = 2 * i + 1 < width ? partial[{level, 2 * i + 1}] : parla::TaskRef{};
        std::vector<parla::Dep> children{left};
        if (right.valid()) {
          children.emplace_back(right);
        }
        rt.spawn({.key = partial[{level + 1, i}], .dependencies = std::move(children)},
                 [left, right] {
          return right.valid() ? left.result<Partial>() + right.result<Partial>()
                               : left.result<Partial>();
        });
      }
      width = next;
      ++level;
    }
    const parla::TaskRef root = partial[{level, 0}];
    rt.wait(root);
    rank_partial = root.result<Partial>();
  }
  std::fprintf(stderr, "[rank %d] %lld tasks on %d workers: partial %.17g\n", comm.rank(),
               static_cast<long long>(2 * tasks - 1), workers,
               rank_partial.sum / static_cast<double>(n));

  const double pi = comm.allreduce_sum(rank_partial.sum) / static_cast<double>(n);
  const long long counted = comm.allreduce_sum(static_cast<long long>(rank_partial.count));
  const long long index_sum = comm.allreduce_sum(static_cast<long long>(rank_partial.index_sum));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const long long expected_index_sum = static_cast<long long>(n) * (n - 1) / 2;
  const double error = std::abs(pi - std::numbers::pi);
  // Midpoint rule error is h²/24·|f'(1) - f'(0)| ≈ 0.083/n²; rounding adds ~1e-15.
  const double tolerance = 0.1 / (static_cast<double>(n) * static_cast<double>(n)) + 1e-12;
  const bool ok = counted == n && index_sum == expected_index_sum && error <= tolerance;

  if (comm.rank() == 0) {
    std::printf(
        "{\"app\": \"demo\", \"ranks\": %d, \"workers\": %d, \"devices\": [\"cpu\"], "
        "\"params\": {\"intervals\": %lld, \"tasks_per_rank\": %d}, \"seconds\": %.6f, "
        "\"metrics\": {\"pi\": %.17g, \"error\": %.3e, \"tasks_spawned_per_rank\": %lld}, "
        "\"check\": {\"ok\": %s, \"intervals_counted\": %lld, \"intervals_expected\": %lld, "
        "\"index_checksum_ok\": %s, \"tolerance\": %.3e}}\n",
        comm.size(), workers, static_cast<long long>(n), options.tasks, seconds, pi, error,
        static_cast<long long>(2 * tasks - 1), ok ? "true" : "false", counted,
        static_cast<long long>(n), index_sum == expected_index_sum ? "true" : "false", tolerance);
    std::fflush(stdout);
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return parla::mpi::run_main(argc, argv, "parla_demo", run); }
