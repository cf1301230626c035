// The CUDA stencil kernels against the CPU kernels, bit for bit (label gpu; skipped without a
// CUDA device).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <parla/kernels/stencil.hpp>

namespace {

using parla::kernels::Box;
using parla::kernels::Strides;

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

double value_at(std::size_t i) {
  return static_cast<double>((i * 0x9E3779B97F4A7C15ULL) >> 11) * 0x1.0p-53;
}

/// Runs `launch(d_in, d_out)` on a device copy of `in`; returns the device's `out`.
template <class Launch>
std::vector<double> on_device(const std::vector<double>& in, double fill, const Launch& launch) {
  const std::size_t bytes = in.size() * sizeof(double);
  double* d_in = nullptr;
  double* d_out = nullptr;
  EXPECT_EQ(cudaMalloc(&d_in, bytes), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&d_out, bytes), cudaSuccess);
  std::vector<double> out(in.size(), fill);
  EXPECT_EQ(cudaMemcpy(d_in, in.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d_out, out.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  cudaStream_t s = nullptr;
  EXPECT_EQ(cudaStreamCreate(&s), cudaSuccess);
  launch(static_cast<void*>(s), d_in, d_out);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(out.data(), d_out, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  cudaStreamDestroy(s);
  cudaFree(d_in);
  cudaFree(d_out);
  return out;
}

TEST(GpuStencil, Jacobi2d5MatchesTheCpuKernel) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  const std::ptrdiff_t r = 131;
  const std::ptrdiff_t c = 517;
  std::vector<double> in(static_cast<std::size_t>(r * c));
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = value_at(i);
  const Strides<2> s{c, 1};
  for (const Box<2>& box : {Box<2>{{1, 1}, {r - 1, c - 1}}, Box<2>{{2, 3}, {r - 2, c - 4}},
                            Box<2>{{1, 1}, {2, c - 1}}}) {
    std::vector<double> want(in.size(), -1.0);
    parla::kernels::jacobi_2d5(in.data(), want.data(), s, box, {}, 1);
    const auto got = on_device(in, -1.0, [&](void* st, const double* a, double* b) {
      parla::kernels::jacobi_2d5_cuda(st, a, b, s, box, {});
    });
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), in.size() * sizeof(double)));
  }
}

TEST(GpuStencil, Jacobi3d7MatchesTheCpuKernel) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  const std::ptrdiff_t e0 = 19;
  const std::ptrdiff_t e1 = 33;
  const std::ptrdiff_t e2 = 70;
  std::vector<double> in(static_cast<std::size_t>(e0 * e1 * e2));
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = value_at(i);
  const Strides<3> s{e1 * e2, e2, 1};
  const Box<3> box{{1, 1, 1}, {e0 - 1, e1 - 1, e2 - 1}};
  std::vector<double> want(in.size(), -1.0);
  parla::kernels::jacobi_3d7(in.data(), want.data(), s, box, {0.25, 0.125}, 1);
  const auto got = on_device(in, -1.0, [&](void* st, const double* a, double* b) {
    parla::kernels::jacobi_3d7_cuda(st, a, b, s, box, {0.25, 0.125});
  });
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), in.size() * sizeof(double)));
}

}  // namespace
