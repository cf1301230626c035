// DistArray at 1-4 ranks: halo exchanges against a global NumPy-style reference over
// simulated GPUs x dimensions x boundaries x stencils x ghost widths x even/uneven splits;
// Jacobi steps bit for bit against a serial loop; reductions; scatter/gather; save/load
// across rank counts and grids; every error case.
#include <gtest/gtest.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "test_dist_array_util.hpp"

using parla::Runtime;
using parla::mpi::Boundary;
using parla::mpi::Comm;
using parla::mpi::Datatype;
using parla::mpi::DistArray;
using parla::mpi::DistArrayOptions;
using parla::mpi::Partition;
using parla::mpi::PartitionView;
using parla::mpi::Region;
using parla::mpi::Stencil;
namespace pt = parla::mpi::test;

namespace {

parla::RuntimeConfig config(int gpus) {
  return {.num_workers = 2, .sim_gpus = gpus, .deadlock_timeout = 30.0};
}

/// Shapes small enough for 2 cores, large enough that 4 ranks x 4 devices keep every
/// partition at least 2 cells thick along the split axes.
std::vector<std::int64_t> shape_for(int ndim) {
  switch (ndim) {
    case 1: return {64};
    case 2: return {30, 20};
    default: return {24, 12, 10};
  }
}

int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

/// The options of one case: even splits along axis 0 for the devices, or uneven ownership
/// on every axis and the devices along the last axis.
DistArrayOptions case_options(int ndim, int gpus, Boundary b, Stencil s, int ghosts, bool uneven) {
  DistArrayOptions o;
  o.shape = shape_for(ndim);
  o.ghosts = {ghosts};
  o.boundary = b;
  o.boundary_value = -7.0;
  o.stencil = s;
  o.devices = pt::devices_for(gpus);
  if (uneven) {
    std::vector<int> dims(static_cast<std::size_t>(ndim), 0);
    MPI_Dims_create(world_size(), ndim, dims.data());
    o.process_grid = dims;
    o.device_axis = ndim - 1;
    for (int d = 0; d < ndim; ++d) {
      const std::int64_t min = (d == o.device_axis ? static_cast<std::int64_t>(o.devices.size()) : 1) * 2;
      o.splits.push_back(pt::uneven_points(o.shape[static_cast<std::size_t>(d)], dims[static_cast<std::size_t>(d)], min));
    }
  }
  return o;
}

std::string case_name(int ndim, Boundary b, Stencil s, int ghosts, bool uneven) {
  return std::to_string(ndim) + "d " + parla::mpi::to_string(b) + " " + parla::mpi::to_string(s) + " g" +
         std::to_string(ghosts) + (uneven ? " uneven" : " even");
}

/// Every ghosted cell of every local partition against the global reference.
void check_ghosts(const DistArray& x, double initial, const std::string& what) {
  for (const Partition& p : x.partitions()) {
    const std::vector<std::byte> raw = x.local_copy(p.local_index, true);
    const auto* v = reinterpret_cast<const double*>(raw.data());
    const parla::mpi::Box gb = p.ghosted_box();
    std::int64_t k = 0;
    int bad = 0;
    for (std::int64_t i0 = gb.lo[0]; i0 < gb.hi[0]; ++i0) {
      for (std::int64_t i1 = gb.lo[1]; i1 < gb.hi[1]; ++i1) {
        for (std::int64_t i2 = gb.lo[2]; i2 < gb.hi[2]; ++i2, ++k) {
          const std::int64_t i[3] = {i0, i1, i2};
          const double want = pt::expected_ghosted(x, p, i, initial);
          if (v[k] != want && bad++ < 3) {
            ADD_FAILURE() << what << ": partition " << p.local_index << " (global " << p.global_index << ") cell ("
                          << i0 << ", " << i1 << ", " << i2 << ") holds " << v[k] << ", expected " << want;
          }
        }
      }
    }
  }
}

class HaloExchange : public testing::TestWithParam<std::tuple<int, int>> {};  // (sim GPUs, ndim)

std::string halo_name(const testing::TestParamInfo<std::tuple<int, int>>& p) {
  return "gpus" + std::to_string(std::get<0>(p.param)) + "_" + std::to_string(std::get<1>(p.param)) + "d";
}

}  // namespace

TEST_P(HaloExchange, GhostsEqualTheGlobalReference) {
  const auto [gpus, ndim] = GetParam();
  Runtime rt(config(gpus));
  Comm comm(rt);
  for (Boundary b : {Boundary::periodic, Boundary::none, Boundary::constant}) {
    for (Stencil s : {Stencil::star, Stencil::box}) {
      for (int g : {1, 2}) {
        for (bool uneven : {false, true}) {
          if (b == Boundary::constant && (g == 2 || uneven)) continue;  // constant: one case each
          const std::string what = case_name(ndim, b, s, g, uneven);
          DistArray x(rt, comm, case_options(ndim, gpus, b, s, g, uneven));
          pt::fill_with_index<double>(x);
          // Twice: the second run reuses the plan and its buffers.
          x.exchange_halos();
          const std::size_t recvs = x.halo_plan().recvs().size();
          x.exchange_halos();
          EXPECT_EQ(x.halo_plan().executions(), 2u) << what;
          EXPECT_EQ(x.halo_plan().recvs().size(), recvs) << what;
          check_ghosts(x, b == Boundary::constant ? -7.0 : 0.0, what);
        }
      }
    }
  }
  rt.finish();
}

INSTANTIATE_TEST_SUITE_P(DistArray, HaloExchange,
                         testing::Combine(testing::Values(0, 1, 2, 3), testing::Values(1, 2, 3)),
                         halo_name);

// ---- Jacobi --------------------------------------------------------------------------------

namespace {

/// One Jacobi sweep of the star stencil over the boxes of a partition, into `out`.
void jacobi_body(PartitionView& v) {
  const Partition& pu = v.partition(0);
  const Partition& pv = v.partition(1);
  const double* u = v.data_as<double>(0);
  double* out = v.data_as<double>(1);
  const std::vector<parla::mpi::Box> boxes = v.boxes();
  const int nd = static_cast<int>(pu.extent.size());
  v.run_host([=, &pu, &pv] {
    for (const parla::mpi::Box& b : boxes) {
      for (std::int64_t i0 = b.lo[0]; i0 < b.hi[0]; ++i0) {
        for (std::int64_t i1 = b.lo[1]; i1 < b.hi[1]; ++i1) {
          for (std::int64_t i2 = b.lo[2]; i2 < b.hi[2]; ++i2) {
            const std::int64_t c = pu.offset_of(i0, i1, i2);
            double acc = 0.0;
            for (int d = 0; d < nd; ++d) {
              const std::int64_t s = pu.strides[static_cast<std::size_t>(d)];
              acc = acc + u[c - s];
              acc = acc + u[c + s];
            }
            out[pv.offset_of(i0, i1, i2)] = acc / (2.0 * nd);
          }
        }
      }
    }
  });
}

/// The same sweep over the global array, with the boundary's ghost values.
std::vector<double> jacobi_serial(std::vector<double> u, const std::vector<std::int64_t>& shape, Boundary b,
                                  double value, int steps) {
  const int nd = static_cast<int>(shape.size());
  std::int64_t sh[3] = {1, 1, 1};
  for (int d = 0; d < nd; ++d) sh[d] = shape[static_cast<std::size_t>(d)];
  std::vector<double> v(u.size());
  auto get = [&](const std::vector<double>& a, std::int64_t* g) {
    for (int d = 0; d < nd; ++d) {
      if (g[d] < 0 || g[d] >= sh[d]) {
        if (b != Boundary::periodic) return b == Boundary::constant ? value : 0.0;
        g[d] = (g[d] + sh[d]) % sh[d];
      }
    }
    return a[static_cast<std::size_t>((g[0] * sh[1] + g[1]) * sh[2] + g[2])];
  };
  for (int s = 0; s < steps; ++s) {
    for (std::int64_t i0 = 0; i0 < sh[0]; ++i0) {
      for (std::int64_t i1 = 0; i1 < sh[1]; ++i1) {
        for (std::int64_t i2 = 0; i2 < sh[2]; ++i2) {
          double acc = 0.0;
          for (int d = 0; d < nd; ++d) {
            std::int64_t lo[3] = {i0, i1, i2};
            std::int64_t hi[3] = {i0, i1, i2};
            --lo[d];
            ++hi[d];
            acc = acc + get(u, lo);
            acc = acc + get(u, hi);
          }
          v[static_cast<std::size_t>((i0 * sh[1] + i1) * sh[2] + i2)] = acc / (2.0 * nd);
        }
      }
    }
    std::swap(u, v);
  }
  return u;
}

class Jacobi : public testing::TestWithParam<std::tuple<int, int, Boundary>> {};  // (gpus, ndim, boundary)

std::string jacobi_name(const testing::TestParamInfo<std::tuple<int, int, Boundary>>& p) {
  return "gpus" + std::to_string(std::get<0>(p.param)) + "_" + std::to_string(std::get<1>(p.param)) + "d_" +
         parla::mpi::to_string(std::get<2>(p.param));
}

}  // namespace

TEST_P(Jacobi, FiftyStepsEqualASerialLoopBitForBit) {
  const auto [gpus, ndim, boundary] = GetParam();
  Runtime rt(config(gpus));
  Comm comm(rt);
  DistArrayOptions o = case_options(ndim, gpus, boundary, Stencil::star, 1, gpus == 2);
  o.boundary_value = 1.5;
  std::vector<std::int64_t> shape = o.shape;
  const auto n = static_cast<std::size_t>(std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>()));
  std::vector<double> global(n);
  for (std::size_t i = 0; i < n; ++i) global[i] = std::sin(static_cast<double>(i) * 0.37) + static_cast<double>(i % 7);
  DistArray u = DistArray::from_global(rt, comm, o, global.data(), 0);
  DistArray v(rt, comm, o);
  constexpr int k_steps = 50;
  for (int s = 0; s < k_steps; ++s) {
    u.exchange_halos();
    v.for_each({parla::mpi::read(u, true), parla::mpi::write(v)}, Region::split, jacobi_body, "jacobi");
    std::swap(u, v);
  }
  const std::vector<double> got = u.gather_all_as<double>();
  const std::vector<double> want = jacobi_serial(global, shape, boundary, 1.5, k_steps);
  ASSERT_EQ(got.size(), want.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(double)) != 0 && bad++ < 3) {
      ADD_FAILURE() << "cell " << i << ": " << got[i] << " vs serial " << want[i];
    }
  }
  rt.finish();
}

INSTANTIATE_TEST_SUITE_P(DistArray, Jacobi,
                         testing::Combine(testing::Values(0, 2, 3), testing::Values(2, 3),
                                          testing::Values(Boundary::periodic, Boundary::constant)),
                         jacobi_name);

// ---- reductions, scatter/gather ------------------------------------------------------------

namespace {

class Reductions : public testing::TestWithParam<std::tuple<int, Datatype>> {};  // (gpus, dtype)

std::string reduction_name(const testing::TestParamInfo<std::tuple<int, Datatype>>& p) {
  static const char* const k_types[] = {"i32", "i64", "u64", "f32", "f64", "byte"};
  return "gpus" + std::to_string(std::get<0>(p.param)) + "_" + k_types[static_cast<int>(std::get<1>(p.param))];
}

template <class T>
void check_reductions(Runtime& rt, Comm& comm, int gpus, Datatype type) {
  DistArrayOptions o = case_options(2, gpus, Boundary::none, Stencil::star, 1, true);
  o.dtype = type;
  DistArray x(rt, comm, o);
  DistArray y(rt, comm, o);
  pt::fill_with_index<T>(x);
  pt::fill_with_index<T>(y, 0.0, 2.0);  // all 2
  const double n = static_cast<double>(x.size());
  // Non-blocking first: every future in flight at once.
  auto s = x.sum_async();
  auto mn = x.min_async();
  auto mx = x.max_async();
  auto nrm = x.norm2_async();
  auto dt = x.dot_async(y);
  double sumsq = 0;
  for (double i = 0; i < n; ++i) sumsq += i * i;
  EXPECT_EQ(s.get(), n * (n - 1) / 2);
  EXPECT_EQ(mn.get(), 0.0);
  EXPECT_EQ(mx.get(), n - 1);
  EXPECT_DOUBLE_EQ(nrm.get(), std::sqrt(sumsq));
  EXPECT_EQ(dt.get(), n * (n - 1));
  EXPECT_EQ(y.sum(), 2 * n);
  // gather / gather_all hold the global array in row-major order.
  const std::vector<T> all = x.gather_all_as<T>();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(x.size()));
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<T>(i)) << "element " << i;
  const std::vector<T> at1 = x.gather_as<T>(comm.size() - 1);
  EXPECT_EQ(at1.size(), comm.rank() == comm.size() - 1 ? all.size() : 0u);
  // copy_from, fill.
  DistArray z(rt, comm, o);
  z.copy_from(x);
  EXPECT_EQ(z.sum(), n * (n - 1) / 2);
  z.fill(3);
  EXPECT_EQ(z.max(), 3.0);
  EXPECT_EQ(z.sum(), 3 * n);
}

}  // namespace

TEST_P(Reductions, EqualSerialOnes) {
  const auto [gpus, type] = GetParam();
  Runtime rt(config(gpus));
  Comm comm(rt);
  switch (type) {
    case Datatype::f64: check_reductions<double>(rt, comm, gpus, type); break;
    case Datatype::f32: check_reductions<float>(rt, comm, gpus, type); break;
    case Datatype::i64: check_reductions<std::int64_t>(rt, comm, gpus, type); break;
    default: check_reductions<std::int32_t>(rt, comm, gpus, type); break;
  }
  rt.finish();
}

INSTANTIATE_TEST_SUITE_P(DistArray, Reductions,
                         testing::Combine(testing::Values(0, 3),
                                          testing::Values(Datatype::f64, Datatype::f32, Datatype::i64, Datatype::i32)),
                         reduction_name);

// ---- save / load ---------------------------------------------------------------------------

TEST(DistArrayIo, SaveAtNRanksLoadsAtOtherRankCountsAndGrids) {
  Runtime rt(config(2));
  Comm comm(rt);
  const int n = comm.size();
  char path[256];
  std::snprintf(path, sizeof path, "/tmp/parla_dist_io_%d.bin", static_cast<int>(getppid()));
  for (int ndim : {1, 2, 3}) {
    DistArrayOptions o = case_options(ndim, 0, Boundary::none, Stencil::star, 1, ndim == 2);
    DistArray x(rt, comm, o);
    pt::fill_with_index<double>(x, 0.5, 1.0);
    x.save(path);
    // Every rank, another grid and devices.
    DistArrayOptions o2;
    o2.devices = pt::devices_for(2);
    o2.device_axis = ndim - 1;
    if (ndim > 1) {
      std::vector<int> grid(static_cast<std::size_t>(ndim), 1);
      grid.back() = n;
      o2.process_grid = grid;
    }
    DistArray y = DistArray::load(rt, comm, path, o2);
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(y.dtype(), Datatype::f64);
    const std::vector<double> a = x.gather_all_as<double>();
    const std::vector<double> b = y.gather_all_as<double>();
    EXPECT_EQ(a, b) << ndim << "-d, same rank count, other grid";
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], 0.5 * static_cast<double>(i) + 1.0);
    // Fewer ranks: the first n - 1 (or the only one) read the file back.
    MPI_Comm sub = MPI_COMM_NULL;
    const int keep = comm.rank() < std::max(1, n - 1) ? 1 : MPI_UNDEFINED;
    MPI_Comm_split(MPI_COMM_WORLD, keep, comm.rank(), &sub);
    if (sub != MPI_COMM_NULL) {
      Comm small(rt, sub);
      DistArray z = DistArray::load(rt, small, path, {.devices = pt::devices_for(0)});
      EXPECT_EQ(z.gather_all_as<double>(), a) << ndim << "-d read back at " << small.size() << " ranks";
      z = DistArray();
      rt.wait_all();
      small.close();
      MPI_Comm_free(&sub);
    }
    comm.barrier();
    rt.wait_all();
  }
  if (comm.rank() == 0) std::remove(path);
  rt.finish();
}

// ---- errors --------------------------------------------------------------------------------

namespace {

struct ErrorCase {
  const char* name;
  DistArrayOptions options;
  const char* expect;  // a substring of the message
};

std::vector<ErrorCase> error_cases() {
  const int n = world_size();
  using V = std::vector<std::int64_t>;
  std::vector<ErrorCase> out;
  out.push_back({"grid_product", {.shape = {40, 40}, .process_grid = {n, 2}}, "ranks but the communicator has"});
  out.push_back({"shape_smaller_than_grid", {.shape = {n - 1, 40}, .process_grid = {n, 1}},
                 n > 1 ? "every rank needs at least one cell" : "every extent must be >= 1"});
  out.push_back({"ghost_wider_than_partition", {.shape = {3 * n}, .ghosts = {4}, .boundary = Boundary::periodic}, "is larger than partition"});
  out.push_back({"ghost_wider_periodic_single", {.shape = {2}, .process_grid = {}, .ghosts = {3},
                                                 .boundary = Boundary::periodic},
                 n > 2 ? "every rank needs at least one cell" : "is larger than partition"});
  out.push_back({"bad_split_points", {.shape = {10 * n}, .splits = {V{0, 5}}}, "strictly increasing points"});
  out.push_back({"unsupported_dtype", {.shape = {10 * n}, .dtype = Datatype::byte}, "is not supported"});
  out.push_back({"missing_device", {.shape = {10 * n}, .devices = {parla::DeviceSpec{parla::DeviceKind::gpu, 5}}},
                 "gpu(5) requested but the runtime"});
  out.push_back({"four_dims", {.shape = {2, 2, 2, 2}}, "a distributed array has 1 to 3"});
  out.push_back({"bad_device_splits", {.shape = {10 * n}, .devices = pt::devices_for(0), .device_splits = {0, 20, 3}},
                 "device_splits"});
  return out;
}

class Errors : public testing::TestWithParam<ErrorCase> {};

std::string error_name(const testing::TestParamInfo<ErrorCase>& p) { return p.param.name; }

}  // namespace

TEST_P(Errors, AreClearOnEveryRank) {
  Runtime rt(config(1));
  Comm comm(rt);
  const ErrorCase& c = GetParam();
  try {
    DistArray x(rt, comm, c.options);
    FAIL() << c.name << ": no error";
  } catch (const parla::Error& e) {
    // A rank whose own options were fine names the other rank's rejection instead.
    const std::string msg = e.what();
    EXPECT_TRUE(msg.find(c.expect) != std::string::npos || msg.find("another rank rejected") != std::string::npos)
        << c.name << ": " << msg;
  }
  rt.finish();
}

INSTANTIATE_TEST_SUITE_P(DistArray, Errors, testing::ValuesIn(error_cases()),
                         error_name);

TEST(DistArrayErrors, MismatchedArraysNameBothShapes) {
  Runtime rt(config(0));
  Comm comm(rt);
  const std::int64_t n = comm.size();
  DistArray a(rt, comm, {.shape = {8 * n, 6}});
  DistArray b(rt, comm, {.shape = {8 * n, 7}});
  try {
    a.for_each({parla::mpi::read(b), parla::mpi::write(a)}, Region::all, [](PartitionView&) {});
    FAIL() << "no error";
  } catch (const parla::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("(" + std::to_string(8 * n) + ", 6)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(" + std::to_string(8 * n) + ", 7)"), std::string::npos) << msg;
  }
  EXPECT_THROW((void)a.dot(b), parla::Error);
  DistArray c(rt, comm, {.shape = {8 * n, 6}, .dtype = Datatype::i32});
  EXPECT_THROW(a.copy_from(c), parla::Error);
  rt.finish();
}
