// parla::kernels stencil sweeps against a naive reference: every box, layout and thread count
// must give the reference's bits exactly and leave every cell outside the box untouched.
// This file is built with -ffp-contract=off (tests/cpp/CMakeLists.txt) so the reference
// evaluates the normative formula exactly like the kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <parla/error.hpp>
#include <parla/kernels/stencil.hpp>
#include <parla/parla.hpp>

namespace {

using parla::kernels::Box;
using parla::kernels::JacobiCoefficients;
using parla::kernels::Strides;
using Index = std::ptrdiff_t;

constexpr double sentinel = -12345.678;

/// Deterministic values with full mantissas (so a reordered sum would show in the last bit).
double value_at(Index i) {
  const auto h = static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ULL;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

/// A ghosted array of `extents` cells laid out with `strides` (elements), padded as needed.
template <std::size_t N>
struct Layout {
  std::array<Index, N> extents;
  Strides<N> strides;
  [[nodiscard]] Index size() const {
    Index last = 0;
    for (std::size_t d = 0; d < N; ++d) last += (extents[d] - 1) * strides[d];
    return last + 1;
  }
};

void reference_2d5(const double* u, double* o, const Strides<2>& s, const Box<2>& b,
                   JacobiCoefficients c) {
  for (Index i = b.lo[0]; i < b.hi[0]; ++i) {
    for (Index j = b.lo[1]; j < b.hi[1]; ++j) {
      const Index p = i * s[0] + j * s[1];
      const double sum = ((u[p - s[0]] + u[p + s[0]]) + u[p - s[1]]) + u[p + s[1]];
      o[p] = c.c0 * u[p] + c.c1 * sum;
    }
  }
}

void reference_3d7(const double* u, double* o, const Strides<3>& s, const Box<3>& b,
                   JacobiCoefficients c) {
  for (Index i = b.lo[0]; i < b.hi[0]; ++i) {
    for (Index j = b.lo[1]; j < b.hi[1]; ++j) {
      for (Index k = b.lo[2]; k < b.hi[2]; ++k) {
        const Index p = i * s[0] + j * s[1] + k * s[2];
        const double sum =
            ((((u[p - s[0]] + u[p + s[0]]) + u[p - s[1]]) + u[p + s[1]]) + u[p - s[2]]) +
            u[p + s[2]];
        o[p] = c.c0 * u[p] + c.c1 * sum;
      }
    }
  }
}

/// Row-major strides of `extents`, the last axis padded by `pad` elements and strided by `step`.
template <std::size_t N>
Strides<N> row_major(const std::array<Index, N>& extents, Index pad, Index step) {
  Strides<N> s{};
  s[N - 1] = step;
  Index span = extents[N - 1] * step + pad;
  for (std::size_t d = N - 1; d-- > 0;) {
    s[d] = span;
    span *= extents[d];
  }
  return s;
}

struct Case2 {
  std::string name;
  Layout<2> layout;
  Box<2> box;
};

std::vector<Case2> cases_2d() {
  std::vector<Case2> out;
  const std::array<Index, 2> e{19, 37};
  const std::vector<Box<2>> boxes{
      {{1, 1}, {18, 36}},  // the whole interior
      {{2, 2}, {17, 35}},  // an inner box (what overlaps communication)
      {{1, 1}, {2, 36}},   // one boundary row
      {{1, 35}, {18, 36}}, // one boundary column
      {{5, 7}, {6, 8}},    // one cell
      {{4, 4}, {4, 9}},    // empty
  };
  const std::vector<std::pair<std::string, Strides<2>>> layouts{
      {"dense", row_major<2>(e, 0, 1)},
      {"padded", row_major<2>(e, 5, 1)},
      {"strided", row_major<2>(e, 0, 2)},
      {"column_major", Strides<2>{1, e[0]}},
  };
  for (const auto& [lname, s] : layouts) {
    for (std::size_t b = 0; b < boxes.size(); ++b) {
      out.push_back({lname + "_box" + std::to_string(b), Layout<2>{e, s}, boxes[b]});
    }
  }
  return out;
}

std::string thread_name(const testing::TestParamInfo<int>& p) {
  return "t" + std::to_string(p.param);
}

class Stencil2d : public testing::TestWithParam<int> {};

TEST_P(Stencil2d, MatchesReferenceBitForBitAndTouchesOnlyTheBox) {
  const int threads = GetParam();
  for (const JacobiCoefficients coef : {JacobiCoefficients{0.5, 0.125}, JacobiCoefficients{0.3, 0.175}}) {
    for (const Case2& c : cases_2d()) {
      SCOPED_TRACE(c.name + " threads " + std::to_string(threads));
      const Index size = c.layout.size();
      std::vector<double> u(static_cast<std::size_t>(size));
      for (Index i = 0; i < size; ++i) u[static_cast<std::size_t>(i)] = value_at(i);
      std::vector<double> want(u.size(), sentinel);
      std::vector<double> got(u.size(), sentinel);
      reference_2d5(u.data(), want.data(), c.layout.strides, c.box, coef);
      parla::kernels::jacobi_2d5(u.data(), got.data(), c.layout.strides, c.box, coef, threads);
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(double)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, Stencil2d, testing::Values(1, 2, 3, 7),
                         thread_name);

class Stencil3d : public testing::TestWithParam<int> {};

TEST_P(Stencil3d, MatchesReferenceBitForBitAndTouchesOnlyTheBox) {
  const int threads = GetParam();
  const std::array<Index, 3> e{7, 11, 23};
  const std::vector<Box<3>> boxes{
      {{1, 1, 1}, {6, 10, 22}}, {{2, 2, 2}, {5, 9, 21}}, {{1, 1, 1}, {2, 10, 22}},
      {{1, 9, 1}, {6, 10, 22}}, {{1, 1, 21}, {6, 10, 22}}, {{3, 3, 3}, {3, 5, 5}},
  };
  const std::vector<std::pair<std::string, Strides<3>>> layouts{
      {"dense", row_major<3>(e, 0, 1)},
      {"padded", row_major<3>(e, 3, 1)},
      {"strided", row_major<3>(e, 0, 3)},
      {"column_major", Strides<3>{1, e[0], e[0] * e[1]}},
  };
  const JacobiCoefficients coef{0.25, 0.125};
  for (const auto& [lname, s] : layouts) {
    for (std::size_t b = 0; b < boxes.size(); ++b) {
      SCOPED_TRACE(lname + " box " + std::to_string(b) + " threads " + std::to_string(threads));
      const Layout<3> layout{e, s};
      const Index size = layout.size();
      std::vector<double> u(static_cast<std::size_t>(size));
      for (Index i = 0; i < size; ++i) u[static_cast<std::size_t>(i)] = value_at(i);
      std::vector<double> want(u.size(), sentinel);
      std::vector<double> got(u.size(), sentinel);
      reference_3d7(u.data(), want.data(), s, boxes[b], coef);
      parla::kernels::jacobi_3d7(u.data(), got.data(), s, boxes[b], coef, threads);
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(double)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, Stencil3d, testing::Values(1, 2, 3, 7),
                         thread_name);

TEST(StencilKernels, SplitBoxesComposeToTheWholeSweep) {
  // Interior first, then the four boundary strips: what an overlapped halo step does.
  const std::array<Index, 2> e{34, 66};
  const Strides<2> s = row_major<2>(e, 0, 1);
  std::vector<double> u(static_cast<std::size_t>(e[0] * e[1]));
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = value_at(static_cast<Index>(i));
  std::vector<double> whole(u.size(), 0.0);
  std::vector<double> split(u.size(), 0.0);
  const JacobiCoefficients coef{};
  parla::kernels::jacobi_2d5(u.data(), whole.data(), s, Box<2>{{1, 1}, {33, 65}}, coef, 2);
  for (const Box<2>& b : {Box<2>{{2, 2}, {32, 64}}, Box<2>{{1, 1}, {2, 65}}, Box<2>{{32, 1}, {33, 65}},
                          Box<2>{{2, 1}, {32, 2}}, Box<2>{{2, 64}, {32, 65}}}) {
    parla::kernels::jacobi_2d5(u.data(), split.data(), s, b, coef, 1);
  }
  EXPECT_EQ(0, std::memcmp(whole.data(), split.data(), whole.size() * sizeof(double)));
}

TEST(StencilKernels, LargeBoxesTakeTheStreamingStorePathWithTheSameBits) {
  // Boxes of >= 8 MiB output are written with non-temporal stores; odd row lengths make the
  // rows start at both alignments, so the scalar peel and tail run too.
  for (const int threads : {1, 2}) {
    const std::array<Index, 2> e{1041, 1043};
    const Strides<2> s = row_major<2>(e, 0, 1);
    std::vector<double> u(static_cast<std::size_t>(e[0] * e[1]));
    for (std::size_t i = 0; i < u.size(); ++i) u[i] = value_at(static_cast<Index>(i));
    std::vector<double> want(u.size(), sentinel);
    std::vector<double> got(u.size(), sentinel);
    const Box<2> box{{1, 1}, {e[0] - 1, e[1] - 1}};
    ASSERT_GE(box.cells() * sizeof(double), std::size_t{8} << 20);
    reference_2d5(u.data(), want.data(), s, box, {});
    parla::kernels::jacobi_2d5(u.data(), got.data(), s, box, {}, threads);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(double)));
  }
  const std::array<Index, 3> e{106, 105, 107};
  const Strides<3> s = row_major<3>(e, 0, 1);
  std::vector<double> u(static_cast<std::size_t>(e[0] * e[1] * e[2]));
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = value_at(static_cast<Index>(i));
  std::vector<double> want(u.size(), sentinel);
  std::vector<double> got(u.size(), sentinel);
  const Box<3> box{{1, 1, 1}, {e[0] - 1, e[1] - 1, e[2] - 1}};
  ASSERT_GE(box.cells() * sizeof(double), std::size_t{8} << 20);
  reference_3d7(u.data(), want.data(), s, box, {0.25, 0.125});
  parla::kernels::jacobi_3d7(u.data(), got.data(), s, box, {0.25, 0.125}, 2);
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(double)));
}

TEST(StencilKernels, ReportsBadArguments) {
  std::vector<double> u(100, 1.0);
  std::vector<double> o(100, 0.0);
  const Strides<2> s{10, 1};
  EXPECT_THROW(parla::kernels::jacobi_2d5(u.data(), o.data(), s, Box<2>{{1, 1}, {9, 9}}, {}, 0),
               parla::Error);
  EXPECT_THROW(parla::kernels::jacobi_2d5(u.data(), o.data(), s, Box<2>{{0, 1}, {9, 9}}, {}, 1),
               parla::Error);
  EXPECT_THROW(parla::kernels::jacobi_2d5(u.data(), o.data(), Strides<2>{10, 0},
                                          Box<2>{{1, 1}, {9, 9}}, {}, 1),
               parla::Error);
  try {
    parla::kernels::jacobi_2d5(u.data(), o.data(), s, Box<2>{{1, 1}, {9, 9}}, {}, -2);
    FAIL() << "expected an error";
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("threads must be >= 1, got -2"), std::string::npos);
  }
}

TEST(StencilKernels, OnASimulatedGpuStreamMatchesTheCpuKernel) {
  parla::RuntimeConfig config;
  config.num_workers = 2;
  config.sim_gpus = 1;
  config.cuda_gpus = 0;
  config.deadlock_timeout = 10.0;
  parla::Runtime rt(config);
  const std::array<Index, 3> e{6, 9, 17};
  const Strides<3> s = row_major<3>(e, 0, 1);
  const auto count = static_cast<std::size_t>(e[0] * e[1] * e[2]);
  std::vector<double> host_in(count);
  for (std::size_t i = 0; i < count; ++i) host_in[i] = value_at(static_cast<Index>(i));
  std::vector<double> host_out(count, sentinel);
  const Box<3> box{{1, 1, 1}, {5, 8, 16}};
  std::vector<double> want(count, sentinel);
  parla::kernels::jacobi_3d7(host_in.data(), want.data(), s, box, {0.25, 0.125}, 1);

  parla::DataBlock in(rt, host_in.data(), count * sizeof(double), "in");
  parla::DataBlock out(rt, host_out.data(), count * sizeof(double), "out");
  rt.spawn({.placement = parla::gpu(0), .in = {in}, .inout = {out}}, [&](parla::TaskContext& ctx) {
    parla::kernels::jacobi_3d7(ctx.stream(), ctx.data_as<const double>(in),
                               ctx.data_as<double>(out), s, box, {0.25, 0.125});
  });
  rt.finish();
  rt.sync_to_host(out);
  EXPECT_EQ(0, std::memcmp(want.data(), host_out.data(), count * sizeof(double)));
}

TEST(StencilKernels, CudaEntryPointsReportWhenNotBuilt) {
  if (parla::kernels::have_cuda_kernels()) GTEST_SKIP() << "built with CUDA (tested in tests/gpu)";
  std::vector<double> u(100, 1.0);
  std::vector<double> o(100, 0.0);
  try {
    parla::kernels::jacobi_2d5_cuda(nullptr, u.data(), o.data(), Strides<2>{10, 1},
                                    Box<2>{{1, 1}, {9, 9}}, {});
    FAIL() << "expected an error";
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("without CUDA"), std::string::npos);
  }
}

TEST(StencilKernels, TriadMeasuresAPositiveBandwidth) {
  const auto r = parla::kernels::stream_triad(1 << 16, 2, 3);
  EXPECT_GT(r.best_gbs, 0.0);
  EXPECT_GE(r.best_gbs, r.median_gbs);
  EXPECT_EQ(r.elements, std::size_t{1} << 16);
  EXPECT_THROW((void)parla::kernels::stream_triad(0, 1, 1), parla::Error);
}

}  // namespace
