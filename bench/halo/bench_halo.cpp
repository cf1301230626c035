// bench_halo: one halo exchange of a 2-D periodic array (ghost width 1), Parla's halo plan
// against the hand-written exchange users write today (MPI_Cart_create + MPI_Sendrecv with a
// vector datatype for the columns), in the same run on the same decomposition.
//
//   mpiexec -n 2 --bind-to none build/bench/bench_halo [--n 8192] [--iters 40] [--repeats 25]
//                                                       [--workers 2]
//
// Each exchange is timed from its spawn to the completion of every ghost write (Parla: a wait
// on the TaskSpace exchange_halos returns; MPI: the four Sendrecv calls return), averaged
// over --iters exchanges; the figure is the median of --repeats such runs, Parla and MPI
// alternating (short runs, many repeats: both see the same machine load), and parla_over_mpi
// the median of each repeat's own ratio (the slower rank's). At 2 ranks the
// grid is 2 x 1: each rank sends and receives two rows of n doubles and exchanges its columns
// with itself (periodic). The ghost cells of both versions are checked against each other
// and against the global array. Last line on stdout: one JSON object
// (metrics.us_per_exchange = {"parla", "mpi"}).
#include <mpi.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Args {
  std::int64_t n = 8192;
  int iters = 40;
  int repeats = 25;
  int workers = 2;
};

Args parse(int argc, char** argv, int rank) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        if (rank == 0) std::fprintf(stderr, "bench_halo: %s needs a value\n", k.c_str());
        MPI_Abort(MPI_COMM_WORLD, 2);
      }
      return argv[++i];
    };
    if (k == "--n") {
      a.n = std::atoll(value());
    } else if (k == "--iters") {
      a.iters = std::atoi(value());
    } else if (k == "--repeats") {
      a.repeats = std::atoi(value());
    } else if (k == "--workers") {
      a.workers = std::atoi(value());
    } else {
      if (rank == 0) {
        std::fprintf(stderr,
                     "usage: mpiexec -n 2 --bind-to none bench_halo [--n EDGE] [--iters N] [--repeats R] "
                     "[--workers W]\n");
      }
      MPI_Abort(MPI_COMM_WORLD, k == "--help" ? 0 : 2);
    }
  }
  if (a.n < 4 || a.iters < 1 || a.repeats < 1 || a.workers < 1) {
    if (rank == 0) std::fprintf(stderr, "bench_halo: --n >= 4, --iters/--repeats/--workers >= 1\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return a;
}

/// The hand-written exchange: a (rows+2) x (cols+2) block on a periodic Cartesian grid.
struct HandWritten {
  MPI_Comm cart = MPI_COMM_NULL;
  std::int64_t rows = 0, cols = 0;  // owned
  std::int64_t row0 = 0, col0 = 0;  // global offset
  std::vector<double> a;
  MPI_Datatype column = MPI_DATATYPE_NULL;
  int up = 0, down = 0, left = 0, right = 0;

  HandWritten(std::int64_t n, const int dims[2]) {
    int periods[2] = {1, 1};
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
    int coords[2] = {0, 0};
    int me = 0;
    MPI_Comm_rank(cart, &me);
    MPI_Cart_coords(cart, me, 2, coords);
    auto split = [n](int parts, int c, std::int64_t& off, std::int64_t& len) {
      const std::int64_t base = n / parts;
      const std::int64_t rem = n % parts;
      off = c * base + std::min<std::int64_t>(c, rem);
      len = base + (c < rem ? 1 : 0);
    };
    split(dims[0], coords[0], row0, rows);
    split(dims[1], coords[1], col0, cols);
    a.assign(static_cast<std::size_t>((rows + 2) * (cols + 2)), 0.0);
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t j = 0; j < cols; ++j) at(i, j) = static_cast<double>((row0 + i) * n + col0 + j);
    }
    MPI_Type_vector(static_cast<int>(rows), 1, static_cast<int>(cols + 2), MPI_DOUBLE, &column);
    MPI_Type_commit(&column);
    MPI_Cart_shift(cart, 0, 1, &up, &down);
    MPI_Cart_shift(cart, 1, 1, &left, &right);
  }
  ~HandWritten() {
    MPI_Type_free(&column);
    MPI_Comm_free(&cart);
  }
  double& at(std::int64_t i, std::int64_t j) { return a[static_cast<std::size_t>((i + 1) * (cols + 2) + j + 1)]; }

  void exchange() {
    const int c = static_cast<int>(cols);
    // Rows: send the first owned row up, receive the bottom ghost row from below; and back.
    MPI_Sendrecv(&at(0, 0), c, MPI_DOUBLE, up, 0, &at(rows, 0), c, MPI_DOUBLE, down, 0, cart, MPI_STATUS_IGNORE);
    MPI_Sendrecv(&at(rows - 1, 0), c, MPI_DOUBLE, down, 1, &at(-1, 0), c, MPI_DOUBLE, up, 1, cart, MPI_STATUS_IGNORE);
    // Columns (a vector datatype).
    MPI_Sendrecv(&at(0, 0), 1, column, left, 2, &at(0, cols), 1, column, right, 2, cart, MPI_STATUS_IGNORE);
    MPI_Sendrecv(&at(0, cols - 1), 1, column, right, 3, &at(0, -1), 1, column, left, 3, cart, MPI_STATUS_IGNORE);
  }
};

}  // namespace

int main(int argc, char** argv) {
  parla::mpi::Environment env(&argc, &argv);
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const Args args = parse(argc, argv, rank);
  const std::int64_t n = args.n;

  parla::Runtime rt({.num_workers = args.workers, .sim_gpus = 0});
  parla::mpi::Comm comm(rt);
  namespace pm = parla::mpi;

  pm::DistArray x(rt, comm, {.shape = {n, n}, .ghosts = {1}, .boundary = pm::Boundary::periodic, .name = "u"});
  x.for_each({pm::write(x)}, pm::Region::all, [n](pm::PartitionView& v) {
    const pm::Partition& p = v.partition(0);
    double* d = v.data_as<double>(0);
    for (std::int64_t i = 0; i < p.extent[0]; ++i) {
      for (std::int64_t j = 0; j < p.extent[1]; ++j) {
        d[p.offset_of(i, j)] = static_cast<double>((p.offset[0] + i) * n + p.offset[1] + j);
      }
    }
  });
  x.wait();
  const int dims[2] = {x.process_grid()[0], x.process_grid()[1]};
  HandWritten hw(n, dims);

  auto time_parla = [&] {
    comm.communicator().barrier();
    const auto t0 = Clock::now();
    for (int i = 0; i < args.iters; ++i) rt.wait(x.exchange_halos());
    x.wait();
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / args.iters;
  };
  auto time_mpi = [&] {
    MPI_Barrier(hw.cart);
    const auto t0 = Clock::now();
    for (int i = 0; i < args.iters; ++i) hw.exchange();
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / args.iters;
  };
  // Warm up both (the plan is built, buffers and connections made), then alternate.
  for (int i = 0; i < 3; ++i) rt.wait(x.exchange_halos());
  x.wait();
  hw.exchange();
  std::vector<double> parla_us;
  std::vector<double> mpi_us;
  const auto start = Clock::now();
  for (int r = 0; r < args.repeats; ++r) {
    parla_us.push_back(time_parla());
    mpi_us.push_back(time_mpi());
    if (rank == 0) {
      std::fprintf(stderr, "bench_halo: n=%lld repeat %d: parla %.1f us, mpi %.1f us per exchange\n",
                   static_cast<long long>(n), r, parla_us.back(), mpi_us.back());
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // Check: Parla's face ghosts equal the hand-written ones and the global array (periodic).
  bool ok = x.partitions().size() == 1;
  std::int64_t mismatches = 0;
  if (ok) {
    const pm::Partition& p = x.partitions()[0];
    const std::vector<std::byte> raw = x.local_copy(0, true);
    const auto* g = reinterpret_cast<const double*>(raw.data());
    const std::int64_t w = p.extent[1] + 2;
    auto global = [n](std::int64_t i, std::int64_t j) {
      return static_cast<double>(((i + n) % n) * n + (j + n) % n);
    };
    ok = p.extent[0] == hw.rows && p.extent[1] == hw.cols && p.offset[0] == hw.row0 && p.offset[1] == hw.col0;
    for (std::int64_t i = -1; ok && i <= p.extent[0]; ++i) {
      for (std::int64_t j = -1; j <= p.extent[1]; ++j) {
        const bool row_ghost = i == -1 || i == p.extent[0];
        const bool col_ghost = j == -1 || j == p.extent[1];
        if (row_ghost == col_ghost) continue;  // owned cells and (unexchanged) corners
        const double v = g[(i + 1) * w + (j + 1)];
        if (v != hw.at(i, j) || v != global(p.offset[0] + i, p.offset[1] + j)) ++mismatches;
      }
    }
  }
  long long bad = ok ? mismatches : 1;
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  double pm_us = median(parla_us);
  double mp_us = median(mpi_us);
  // Each repeat's own Parla/MPI ratio (the two ran back to back), median over the repeats.
  std::vector<double> pairs;
  for (std::size_t i = 0; i < parla_us.size(); ++i) pairs.push_back(parla_us[i] / mpi_us[i]);
  double ratio = median(pairs);
  MPI_Allreduce(MPI_IN_PLACE, &ratio, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  double pm_min = *std::min_element(parla_us.begin(), parla_us.end());
  double mp_min = *std::min_element(mpi_us.begin(), mpi_us.end());
  MPI_Allreduce(MPI_IN_PLACE, &pm_min, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &mp_min, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  // The slower rank's figure counts.
  MPI_Allreduce(MPI_IN_PLACE, &pm_us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &mp_us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  rt.finish();
  if (rank == 0) {
    const double face_kib = static_cast<double>(hw.cols) * sizeof(double) / 1024.0;
    std::printf(
        "{\"app\":\"bench_halo\",\"ranks\":%d,\"workers\":%d,\"devices\":[\"cpu\"],"
        "\"params\":{\"n\":%lld,\"iters\":%d,\"repeats\":%d,\"ghosts\":1,\"boundary\":\"periodic\","
        "\"grid\":[%d,%d],\"face_kib\":%.1f},\"seconds\":%.3f,"
        "\"metrics\":{\"us_per_exchange\":{\"parla\":%.2f,\"mpi\":%.2f},\"parla_over_mpi\":%.3f,"
        "\"us_per_exchange_min\":{\"parla\":%.2f,\"mpi\":%.2f}},"
        "\"check\":{\"ok\":%s,\"ghost_mismatches\":%lld}}\n",
        size, rt.num_workers(), static_cast<long long>(n), args.iters, args.repeats, dims[0], dims[1], face_kib,
        seconds, pm_us, mp_us, ratio, pm_min, mp_min, bad == 0 ? "true" : "false", bad);
  }
  return bad == 0 ? 0 : 1;
}
