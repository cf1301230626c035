// heat: the explicit heat equation / Jacobi sweep (2-D 5-point, 3-D 7-point) on a
// parla::mpi::DistArray, with the library's fused kernels (parla/kernels/stencil.hpp).
//
// The numerical definition (initial condition, update formula and its operation order,
// boundary, checksum) is the one of apps/heat/heat_mpi4py.py, and this program reproduces
// that baseline's checksum bit for bit at any rank count and decomposition. Each iteration:
// one halo exchange of u (tasks), then v = sweep(u) as two tasks per partition: the interior
// (no ghost cell read, so it runs while the halos travel) and the boundary band (waits for
// them). The same run measures a STREAM triad so the achieved bandwidth is reported as a
// fraction of what this machine can do, and the time of the exchanges alone and of the
// sweeps alone, from which the fraction of communication hidden behind compute follows.
//
// Progress goes to stderr; the last line on stdout is the JSON result (DESIGN §6).
#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <parla/kernels/stencil.hpp>
#include <parla/mpi/dist_array.hpp>
#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include "../shared/parse_int.hpp"

namespace {

using parla::mpi::Boundary;
using parla::mpi::DistArray;
using parla::mpi::Region;

constexpr double k_c1 = 0.125;
constexpr int k_digit_bits = 24;
constexpr int k_digits = 6;

struct Options {
  std::int64_t n = 1024;
  int dims = 2;
  int iters = 100;
  bool periodic = false;
  int workers = 0;    // 0: PARLA_NUM_WORKERS, else all hardware threads
  int threads = 0;    // kernel threads per task; 0: the task's cores, else 1
  int sim_gpus = -1;  // simulated GPUs per rank (-1: PARLA_SIM_GPUS, or auto, see run())
  int devices = 0;    // partitions per rank on GPUs (0: one partition on the cpu)
  int overlap_iters = -1;  // iterations per timed round of hidden_comm_fraction (-1: iters/10)
  int overlap_rounds = 3;  // rounds of (overlapped, exchange-only, sweep-only); medians count
  std::size_t triad_elements = std::size_t{1} << 24;
  int verify = -1;    // -1 auto (n^dims <= 2^18), 0 no, 1 yes
  int progress = 0;
};

void usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s [--n N] [--dims 2|3] [--iters I] [--boundary fixed|periodic]\n"
               "          [--kernel native] [--devices D] [--sim-gpus G] [--workers W]\n"
               "          [--threads T] [--overlap-iters K] [--overlap-rounds R] [--triad-elements E]\n"
               "          [--verify yes|no|auto] [--progress P]\n"
               "Explicit heat / Jacobi sweep on a parla::mpi::DistArray with the library's fused\n"
               "stencil kernels; the numerics of apps/heat/heat_mpi4py.py, bit for bit.\n"
               "  --n N              global cells per axis (default 1024)\n"
               "  --dims 2|3         5-point or 7-point stencil (default 2)\n"
               "  --iters I          iterations (default 100)\n"
               "  --boundary B       fixed (Dirichlet 0) or periodic (default fixed)\n"
               "  --kernel native    the only kernel of the C++ app (accepted for symmetry)\n"
               "  --devices D        cpu (default), or gpu:N / N: split each rank's block over N\n"
               "                     GPUs (simulated when the rank has fewer CUDA devices)\n"
               "  --sim-gpus G       simulate G GPUs per rank (default: PARLA_SIM_GPUS, else\n"
               "                     CUDA devices, else as many as --devices names)\n"
               "  --workers W        cpu worker threads per rank (default PARLA_NUM_WORKERS or all)\n"
               "  --threads T        kernel threads per cpu task (default 1)\n"
               "  --overlap-iters K  iterations per timed round behind hidden_comm_fraction\n"
               "                     (default iters/10, at least 1; 0: skip)\n"
               "  --overlap-rounds R rounds of overlapped, exchange-only and sweep-only runs;\n"
               "                     medians count (default 3)\n"
               "  --triad-elements E elements per array of the STREAM triad (default 2^24; 0: skip)\n"
               "  --verify V         gather and compare with a serial loop bit for bit\n"
               "                     (auto: when n^dims <= 2^18)\n"
               "  --progress P       report every P iterations on stderr (default 0: never)\n",
               program);
}

using parla_apps::parse_int;

/// `cpu` (0 GPUs), `gpu:N` or `N` (N GPUs).
int parse_devices(const char* text) {
  const std::string_view t = text;
  if (t == "cpu") return 0;
  const char* count = t.starts_with("gpu:") ? text + 4 : text;
  char* end = nullptr;
  const long value = std::strtol(count, &end, 10);
  if (end == count || *end != '\0' || value < 0 || value > 64) {
    throw std::invalid_argument(std::string("--devices is cpu, gpu:N or N (GPUs per rank), not '") +
                                text + "'");
  }
  return static_cast<int>(value);
}

/// Returns false after --help.
bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(argv[0]);
      return false;
    }
    if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value (see --help)");
    const char* v = argv[++i];
    if (a == "--n") o.n = parse_int(a, v, 1);
    else if (a == "--dims") o.dims = static_cast<int>(parse_int(a, v, 2));
    else if (a == "--iters") o.iters = static_cast<int>(parse_int(a, v, 0));
    else if (a == "--workers") o.workers = static_cast<int>(parse_int(a, v, 1));
    else if (a == "--threads") o.threads = static_cast<int>(parse_int(a, v, 1));
    else if (a == "--sim-gpus") o.sim_gpus = static_cast<int>(parse_int(a, v, 0));
    else if (a == "--devices") o.devices = parse_devices(v);
    else if (a == "--overlap-iters") o.overlap_iters = static_cast<int>(parse_int(a, v, 0));
    else if (a == "--overlap-rounds") o.overlap_rounds = static_cast<int>(parse_int(a, v, 1));
    else if (a == "--triad-elements") o.triad_elements = static_cast<std::size_t>(parse_int(a, v, 0));
    else if (a == "--progress") o.progress = static_cast<int>(parse_int(a, v, 0));
    else if (a == "--boundary") {
      const std::string_view b = v;
      if (b != "fixed" && b != "periodic") throw std::invalid_argument("--boundary is fixed or periodic, not " + std::string(b));
      o.periodic = b == "periodic";
    } else if (a == "--kernel") {
      if (std::string_view(v) != "native") {
        throw std::invalid_argument(std::string("the C++ heat app runs the native kernel only, not '") + v +
                                    "' (numpy/numba kernels: apps/heat/heat.py)");
      }
    } else if (a == "--verify") {
      const std::string_view b = v;
      o.verify = b == "yes" ? 1 : b == "no" ? 0 : b == "auto" ? -1 : -2;
      if (o.verify == -2) throw std::invalid_argument("--verify is yes, no or auto");
    } else {
      throw std::invalid_argument("unknown option " + std::string(a) + " (see --help)");
    }
  }
  if (o.dims != 2 && o.dims != 3) throw std::invalid_argument("--dims is 2 or 3");
  return true;
}

double initial_value(std::int64_t i, std::int64_t j, std::int64_t k, int dims) {
  const std::int64_t t = dims == 2 ? 13 * i + 7 * j : 13 * i + 7 * j + 3 * k;
  return static_cast<double>(t % 64) / 64.0;
}

/// Exact per-digit sums of the checksum (see heat_mpi4py.py).
void add_digits(const double* values, std::size_t count, std::array<std::int64_t, k_digits>& sums) {
  constexpr double scale = static_cast<double>(1 << k_digit_bits);
  for (std::size_t e = 0; e < count; ++e) {
    double a = values[e];
    for (int d = 0; d < k_digits; ++d) {
      a *= scale;
      const double digit = std::floor(a);
      a -= digit;
      sums[static_cast<std::size_t>(d)] += static_cast<std::int64_t>(digit);
    }
  }
}

double checksum_from_digits(std::array<std::int64_t, k_digits> d) {
  constexpr std::int64_t mask = (std::int64_t{1} << k_digit_bits) - 1;
  for (int k = k_digits - 1; k > 0; --k) {
    d[static_cast<std::size_t>(k - 1)] += d[static_cast<std::size_t>(k)] >> k_digit_bits;
    d[static_cast<std::size_t>(k)] &= mask;
  }
  double total = 0.0;
  for (int k = k_digits - 1; k >= 0; --k) {
    total += static_cast<double>(d[static_cast<std::size_t>(k)]) * std::ldexp(1.0, -k_digit_bits * (k + 1));
  }
  return total;
}

/// The checksum of the array's owned cells over all ranks, plus its local min and max.
struct Summary {
  double checksum = 0.0;
  double min = 0.0;
  double max = 0.0;
  bool finite = true;
};

Summary summarise(const DistArray& a) {
  std::array<std::int64_t, k_digits> digits{};
  Summary s{0.0, 1.0, 0.0, true};
  for (std::size_t p = 0; p < a.partitions().size(); ++p) {
    const auto bytes = a.local_copy(static_cast<int>(p));
    const auto* v = reinterpret_cast<const double*>(bytes.data());
    const std::size_t count = bytes.size() / sizeof(double);
    for (std::size_t e = 0; e < count; ++e) {
      s.finite = s.finite && std::isfinite(v[e]);
      s.min = std::min(s.min, v[e]);
      s.max = std::max(s.max, v[e]);
    }
    add_digits(v, count, digits);
  }
  std::array<std::int64_t, k_digits> global{};
  MPI_Allreduce(digits.data(), global.data(), k_digits, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  s.checksum = checksum_from_digits(global);
  MPI_Allreduce(MPI_IN_PLACE, &s.min, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &s.max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  int finite = s.finite ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &finite, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  s.finite = finite != 0;
  return s;
}

/// The whole run on one array with plain loops, independent of the kernels (--verify): the
/// grid is held as planes x rows x columns with a ghost layer (2-D: one plane, no ghosts
/// along it), ghosts refreshed from the opposite face (periodic) or left at 0 (fixed).
std::vector<double> serial_reference(const Options& o) {
  const std::int64_t n = o.n;
  const bool three = o.dims == 3;
  const std::int64_t g = n + 2;
  const std::int64_t planes = three ? g : 1;
  auto at = [g](std::int64_t i, std::int64_t j, std::int64_t k) {
    return static_cast<std::size_t>((i * g + j) * g + k);
  };
  std::vector<double> u(static_cast<std::size_t>(planes * g * g), 0.0);
  std::vector<double> v(u.size(), 0.0);
  const std::int64_t i_lo = three ? 1 : 0;
  const std::int64_t i_hi = three ? n + 1 : 1;
  for (std::int64_t i = i_lo; i < i_hi; ++i) {
    for (std::int64_t j = 1; j <= n; ++j) {
      for (std::int64_t k = 1; k <= n; ++k) {
        u[at(i, j, k)] = three ? initial_value(i - 1, j - 1, k - 1, 3) : initial_value(j - 1, k - 1, 0, 2);
      }
    }
  }
  const double c0 = 1.0 - 2.0 * o.dims * k_c1;
  auto wrap = [n](std::int64_t x) { return x == 0 ? n : x == n + 1 ? std::int64_t{1} : x; };
  for (int it = 0; it < o.iters; ++it) {
    if (o.periodic) {
      for (std::int64_t i = 0; i < planes; ++i) {
        for (std::int64_t j = 0; j < g; ++j) {
          for (std::int64_t k = 0; k < g; ++k) {
            const bool gi = three && (i == 0 || i == n + 1);
            const bool gj = j == 0 || j == n + 1;
            const bool gk = k == 0 || k == n + 1;
            if (gi + gj + gk == 1) {  // a face ghost (edges and corners are never read)
              u[at(i, j, k)] = u[at(three ? wrap(i) : i, wrap(j), wrap(k))];
            }
          }
        }
      }
    }
    for (std::int64_t i = i_lo; i < i_hi; ++i) {
      for (std::int64_t j = 1; j <= n; ++j) {
        for (std::int64_t k = 1; k <= n; ++k) {
          const std::size_t p = at(i, j, k);
          double sum = 0.0;
          if (three) {
            sum = ((((u[at(i - 1, j, k)] + u[at(i + 1, j, k)]) + u[at(i, j - 1, k)]) +
                    u[at(i, j + 1, k)]) + u[at(i, j, k - 1)]) + u[at(i, j, k + 1)];
          } else {
            sum = ((u[at(i, j - 1, k)] + u[at(i, j + 1, k)]) + u[at(i, j, k - 1)]) + u[at(i, j, k + 1)];
          }
          v[p] = c0 * u[p] + k_c1 * sum;
        }
      }
    }
    std::swap(u, v);
  }
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>((i_hi - i_lo) * n * n));
  for (std::int64_t i = i_lo; i < i_hi; ++i) {
    for (std::int64_t j = 1; j <= n; ++j) {
      for (std::int64_t k = 1; k <= n; ++k) out.push_back(u[at(i, j, k)]);
    }
  }
  return out;
}

/// The sweep of one task: every box of the view, in ghosted-local coordinates, with the CPU
/// kernel on the cpu or the device kernel on the task's stream.
void sweep(parla::mpi::PartitionView& view, int dims, int threads) {
  const parla::mpi::Partition& part = view.partition(0);
  const auto* in = view.data_as<const double>(0);
  auto* out = view.data_as<double>(1);
  const parla::kernels::JacobiCoefficients coef{1.0 - 2.0 * dims * k_c1, k_c1};
  const bool on_cpu = view.context().device().kind() == parla::DeviceKind::cpu;
  for (const parla::mpi::Box& b : view.boxes()) {
    if (b.empty()) continue;
    if (dims == 2) {
      const parla::kernels::Strides<2> s{part.strides[0], part.strides[1]};
      const parla::kernels::Box<2> box{{b.lo[0] + part.ghosts[0], b.lo[1] + part.ghosts[1]},
                                       {b.hi[0] + part.ghosts[0], b.hi[1] + part.ghosts[1]}};
      if (on_cpu) parla::kernels::jacobi_2d5(in, out, s, box, coef, threads);
      else parla::kernels::jacobi_2d5(view.context().stream(), in, out, s, box, coef);
    } else {
      const parla::kernels::Strides<3> s{part.strides[0], part.strides[1], part.strides[2]};
      const parla::kernels::Box<3> box{
          {b.lo[0] + part.ghosts[0], b.lo[1] + part.ghosts[1], b.lo[2] + part.ghosts[2]},
          {b.hi[0] + part.ghosts[0], b.hi[1] + part.ghosts[1], b.hi[2] + part.ghosts[2]}};
      if (on_cpu) parla::kernels::jacobi_3d7(in, out, s, box, coef, threads);
      else parla::kernels::jacobi_3d7(view.context().stream(), in, out, s, box, coef);
    }
  }
}

double now() { return MPI_Wtime(); }

int run(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 0;
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  auto log = [&](const std::string& msg) {
    if (rank == 0) std::fprintf(stderr, "[heat] %s\n", msg.c_str());
  };

  parla::RuntimeConfig config;
  config.num_workers = o.workers;
  config.sim_gpus = o.sim_gpus;
  if (o.sim_gpus < 0 && o.devices > 0 && std::getenv("PARLA_SIM_GPUS") == nullptr) {
    // GPUs asked for and no simulation requested: the CUDA devices if the rank has enough
    // (a probe runtime counts them), else simulated ones, said on stderr.
    parla::RuntimeConfig probe_config;
    probe_config.num_workers = 1;
    probe_config.sim_gpus = 0;
    const int have = parla::Runtime(probe_config).num_gpus();
    config.sim_gpus = have >= o.devices ? 0 : o.devices;
    if (have < o.devices) {
      log(std::to_string(have) + " CUDA GPU(s) here: simulating " + std::to_string(o.devices) +
          " (--sim-gpus)");
    }
  }
  parla::Runtime rt(config);
  parla::mpi::Comm comm(rt);
  const int threads = o.threads > 0 ? o.threads : 1;

  parla::mpi::DistArrayOptions ao;
  ao.shape.assign(static_cast<std::size_t>(o.dims), o.n);
  ao.ghosts = {1};
  ao.boundary = o.periodic ? Boundary::periodic : Boundary::constant;
  ao.boundary_value = 0.0;
  std::vector<std::string> device_names;
  for (int d = 0; d < o.devices; ++d) {
    ao.devices.push_back({parla::DeviceKind::gpu, d});
    device_names.push_back("gpu(" + std::to_string(d) + ")");
  }
  if (device_names.empty()) device_names.push_back("cpu");
  ao.name = "u";
  DistArray u(rt, comm, ao);
  ao.name = "v";
  DistArray v(rt, comm, ao);
  log(std::to_string(o.dims) + "-D n=" + std::to_string(o.n) + " iters=" + std::to_string(o.iters) +
      " boundary=" + (o.periodic ? "periodic" : "fixed") + " ranks=" + std::to_string(size) +
      " workers=" + std::to_string(rt.num_workers()) + " partitions/rank=" +
      std::to_string(u.partitions().size()));

  // Initial condition from global indices, on each partition's device (host code in the
  // task's device order: now on the cpu, on the stream of a simulated GPU).
  const int dims = o.dims;
  u.for_each({parla::mpi::write(u)}, Region::all, [dims](parla::mpi::PartitionView& view) {
    // The host function may run after the body returned (a simulated GPU's stream): it
    // captures the partition (owned by the array) and the pointer, not the view.
    const parla::mpi::Partition* p = &view.partition(0);
    double* data = view.data_as<double>(0);
    view.run_host([p, data, dims] {
      const std::int64_t e2 = dims == 3 ? p->extent[2] : 1;
      for (std::int64_t i = 0; i < p->extent[0]; ++i) {
        for (std::int64_t j = 0; j < p->extent[1]; ++j) {
          for (std::int64_t k = 0; k < e2; ++k) {
            data[p->offset_of(i, j, k)] =
                dims == 3 ? initial_value(p->offset[0] + i, p->offset[1] + j, p->offset[2] + k, 3)
                          : initial_value(p->offset[0] + i, p->offset[1] + j, 0, 2);
          }
        }
      }
    });
  }, "init");
  u.wait();
  const Summary initial = summarise(u);

  auto step = [&](DistArray& from, DistArray& to) {
    from.exchange_halos();
    to.for_each({parla::mpi::read(from, true), parla::mpi::write(to)}, Region::split,
                [dims, threads](parla::mpi::PartitionView& view) { sweep(view, dims, threads); },
                "sweep");
  };
  // Warm-up, not timed: build the halo plans and open the connections (an exchange only
  // rewrites ghost cells with what they will hold anyway).
  for (int w = 0; w < 2; ++w) {
    u.exchange_halos();
    v.exchange_halos();
  }
  u.wait();
  v.wait();
  DistArray* cur = &u;
  DistArray* nxt = &v;
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = now();
  for (int it = 0; it < o.iters; ++it) {
    step(*cur, *nxt);
    std::swap(cur, nxt);
    if (o.progress > 0 && (it + 1) % o.progress == 0) {
      cur->wait();
      log("iteration " + std::to_string(it + 1) + "/" + std::to_string(o.iters));
    }
  }
  cur->wait();
  nxt->wait();
  double elapsed = now() - t0;
  MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  const Summary final_state = summarise(*cur);

  // Verification against a serial loop (gathered on rank 0), before the timing-only runs.
  const double cells = std::pow(static_cast<double>(o.n), o.dims);
  const bool verify = o.verify == 1 || (o.verify == -1 && cells <= 262144.0);
  int serial_identical = -1;
  if (verify) {
    const std::vector<double> whole = cur->gather_as<double>(0);
    if (rank == 0) {
      const std::vector<double> ref = serial_reference(o);
      serial_identical = whole.size() == ref.size() &&
                         std::equal(whole.begin(), whole.end(), ref.begin(), [](double a, double b) {
                           return std::memcmp(&a, &b, sizeof a) == 0;
                         });
    }
    MPI_Bcast(&serial_identical, 1, MPI_INT, 0, MPI_COMM_WORLD);
  }

  // hidden_comm_fraction, as apps/heat/heat.py measures it: rounds of K iterations three
  // ways, the overlapped loop (t_both), the exchanges alone (t_exchange) and the sweeps alone
  // (t_sweep); from the medians, (t_exchange + t_sweep - t_both) / t_exchange, clipped to
  // [0, 1], is the share of the exchange time the overlapped loop did not pay.
  const int k = o.overlap_iters >= 0 ? o.overlap_iters : std::max(1, o.iters / 10);
  double hidden = -1.0;
  double t_exchange = 0.0;
  double t_sweep = 0.0;
  double t_both = 0.0;
  if (k > 0) {
    auto timed = [&](bool exchange, bool compute) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t = now();
      for (int it = 0; it < k; ++it) {
        if (exchange) cur->exchange_halos();
        // In the loop each exchange sits between two sweeps: it cannot be pipelined with the
        // next one, so neither is it here.
        if (exchange && !compute) cur->wait();
        if (compute) {
          nxt->for_each({parla::mpi::read(*cur, exchange), parla::mpi::write(*nxt)}, Region::split,
                        [dims, threads](parla::mpi::PartitionView& view) { sweep(view, dims, threads); },
                        exchange ? "sweep_both" : "sweep_only");
          std::swap(cur, nxt);
        }
      }
      cur->wait();
      nxt->wait();
      double seconds = now() - t;
      MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      return seconds;
    };
    std::array<std::vector<double>, 3> rounds;
    for (int r = 0; r < o.overlap_rounds; ++r) {
      rounds[0].push_back(timed(true, true));
      rounds[1].push_back(timed(true, false));
      rounds[2].push_back(timed(false, true));
    }
    auto median = [](std::vector<double> times) {
      std::sort(times.begin(), times.end());
      const std::size_t m = times.size() / 2;
      return times.size() % 2 ? times[m] : 0.5 * (times[m - 1] + times[m]);
    };
    t_both = median(rounds[0]);
    t_exchange = median(rounds[1]);
    t_sweep = median(rounds[2]);
    hidden = t_exchange > 0 ? std::clamp((t_exchange + t_sweep - t_both) / t_exchange, 0.0, 1.0) : 1.0;
  }

  // STREAM triad per node: the node's first rank runs it on as many threads as the node's
  // ranks ran workers (the cores the sweep had, at most the hardware threads) while the
  // node's other ranks sleep; the nodes' rates add up. Summing every rank's own best rate
  // instead overstates the machine whenever the ranks' best repetitions do not coincide,
  // which on a shared machine they rarely do.
  double triad = 0.0;
  int triad_threads = 0;
  if (o.triad_elements > 0) {
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int node_rank = 0;
    int node_size = 1;
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_size(node, &node_size);
    const int hardware = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
    triad_threads = std::clamp(node_size * rt.num_workers() * threads, 1, hardware);
    MPI_Barrier(MPI_COMM_WORLD);
    if (node_rank == 0) {
      triad = parla::kernels::stream_triad_gbs(o.triad_elements, triad_threads, 10);
    }
    // Wait without a blocking MPI call, whose busy polling would take a core from the triad.
    MPI_Request done = MPI_REQUEST_NULL;
    MPI_Ibarrier(node, &done);
    for (int flag = 0; !flag;) {
      MPI_Test(&done, &flag, MPI_STATUS_IGNORE);
      if (!flag) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    MPI_Comm_free(&node);
    MPI_Allreduce(MPI_IN_PLACE, &triad, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  comm.finish();

  const char* sim_env = std::getenv("PARLA_SIM_GPUS");
  const int sim_gpus = config.sim_gpus >= 0 ? config.sim_gpus : sim_env ? std::atoi(sim_env) : 0;
  const double updates = cells * o.iters;
  const double mlups = elapsed > 0 ? updates / elapsed / 1e6 : 0.0;
  const double gbs = elapsed > 0 ? 16.0 * updates / elapsed / 1e9 : 0.0;
  const double drift = std::abs(final_state.checksum - initial.checksum) / initial.checksum;
  const bool mass_ok = o.periodic ? drift <= 1e-12 * std::max(o.iters, 1)
                                  : final_state.checksum <= initial.checksum;
  const bool bounds_ok = final_state.finite && final_state.min >= 0.0 && final_state.max < 1.0;
  const bool ok = bounds_ok && mass_ok && serial_identical != 0;

  log("done in " + std::to_string(elapsed) + " s, ok=" + (ok ? "true" : "false"));
  if (rank == 0) {
    std::string devs;
    for (const auto& d : device_names) devs += (devs.empty() ? "\"" : ", \"") + d + "\"";
    std::printf(
        "{\"app\": \"heat\", \"ranks\": %d, \"workers\": %d, \"devices\": [%s], "
        "\"params\": {\"n\": %lld, \"dims\": %d, \"iters\": %d, \"boundary\": \"%s\", "
        "\"kernel\": \"native\", \"threads\": %d, \"sim_gpus\": %d, \"grid\": [%d%s%s]}, "
        "\"seconds\": %.9g, \"metrics\": {\"mlups\": %.6g, \"gbs\": %.6g, \"bytes_per_update\": 16, "
        "\"stream_triad_gbs\": %.6g, \"stream_triad_threads\": %d, \"fraction_of_stream\": %.4f, \"hidden_comm_fraction\": %.4f, "
        "\"overlap_seconds\": {\"both\": %.6g, \"exchange_only\": %.6g, \"sweep_only\": %.6g}, "
        "\"overlap_iters\": %d, \"overlap_rounds\": %d}, "
        "\"check\": {\"ok\": %s, \"checksum\": %.17g, \"initial_checksum\": %.17g, "
        "\"bounds\": %s, \"mass\": %s%s}}\n",
        size, rt.num_workers(), devs.c_str(), static_cast<long long>(o.n), o.dims, o.iters,
        o.periodic ? "periodic" : "fixed", threads, sim_gpus, u.process_grid()[0],
        o.dims > 1 ? (", " + std::to_string(u.process_grid()[1])).c_str() : "",
        o.dims > 2 ? (", " + std::to_string(u.process_grid()[2])).c_str() : "", elapsed, mlups,
        gbs, triad, triad_threads, triad > 0 ? gbs / triad : 0.0, hidden, t_both, t_exchange, t_sweep, k, o.overlap_rounds,
        ok ? "true" : "false", final_state.checksum, initial.checksum, bounds_ok ? "true" : "false",
        mass_ok ? "true" : "false",
        serial_identical < 0 ? "" : serial_identical ? ", \"serial_identical\": true" : ", \"serial_identical\": false");
    std::fflush(stdout);
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return parla::mpi::run_main(argc, argv, "heat", run); }
