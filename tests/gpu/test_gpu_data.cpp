// The data-block cases of tests/cpp/data_cases.hpp on real CUDA devices (label gpu).
// Skipped, not failed, where the process sees no CUDA device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "../cpp/data_cases.hpp"
#include "data_kernels.hpp"

namespace {

using namespace parla;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

/// Kernels on CUDA devices (the cpu runs them inline).
class CudaKernels final : public test::Kernels {
 public:
  void affine(TaskContext& ctx, std::uint8_t* x, std::size_t n, int a, int b) override {
    if (on_cpu(ctx)) return host.affine(ctx, x, n, a, b);
    check(launch_affine(x, n, a, b, stream(ctx)), "affine kernel");
  }
  void fill(TaskContext& ctx, std::uint8_t* x, std::size_t n, int a, int b) override {
    if (on_cpu(ctx)) return host.fill(ctx, x, n, a, b);
    check(launch_fill(x, n, a, b, stream(ctx)), "fill kernel");
  }
  void checksum(TaskContext& ctx, const std::uint8_t* x, std::size_t n, std::uint64_t* out) override {
    if (on_cpu(ctx)) return host.checksum(ctx, x, n, out);
    // Copy to a host buffer on the task's stream, then sum in a host function.
    auto buf = std::make_shared<std::vector<std::uint8_t>>(n);
    ctx.stream().copy(buf->data(), x, n);
    ctx.stream().enqueue([buf, out] { *out = test::host_checksum(buf->data(), buf->size()); });
  }

 private:
  static bool on_cpu(TaskContext& ctx) { return ctx.device().kind() == DeviceKind::cpu; }
  static cudaStream_t stream(TaskContext& ctx) { return static_cast<cudaStream_t>(ctx.stream().native_handle()); }
  test::HostKernels host;
};

RuntimeConfig cuda_config(int workers) {
  RuntimeConfig c;
  c.num_workers = workers;
  c.sim_gpus = 0;
  c.cuda_gpus = -1;
  c.deadlock_timeout = 30.0;
  return c;
}

int cuda_gpus() {
  Runtime rt(cuda_config(1));
  return rt.num_gpus();
}

class GpuData : public testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (cuda_gpus() == 0) GTEST_SKIP() << "no CUDA device visible (CUDA_VISIBLE_DEVICES, driver)";
  }
};

TEST_P(GpuData, DevicesAreCudaDevices) {
  Runtime rt(cuda_config(GetParam()));
  for (int g = 0; g < rt.num_gpus(); ++g) {
    EXPECT_STREQ(rt.devices()[static_cast<std::size_t>(1 + g)]->backend(), "cuda");
  }
}

TEST_P(GpuData, RandomProgramsMatchTheSequentialReference) {
  CudaKernels k;
  for (std::uint32_t seed : {1U, 2U}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    test::run_random_program(cuda_config(GetParam()), k, seed);
  }
}

TEST_P(GpuData, RandomProgramsWithInferenceOff) {
  CudaKernels k;
  test::run_random_program(cuda_config(GetParam()), k, 7, /*infer=*/false);
}

TEST_P(GpuData, CoherenceAfterAWriteOnTheDevice) {
  Runtime rt(cuda_config(GetParam()));
  DataBlock a(rt, 1 << 20, "A");
  CudaKernels k;
  rt.wait(rt.spawn({.placement = gpu(0), .out = {a}}, [&](TaskContext& ctx) {
    k.fill(ctx, ctx.data_as<std::uint8_t>(a), a.size(), 3, 1);
  }));
  EXPECT_EQ(a.state(*rt.devices()[1]), Coherence::modified);
  EXPECT_EQ(a.state(*rt.devices()[0]), Coherence::invalid);
  rt.sync_to_host(a);
  EXPECT_EQ(rt.stats().copies_d2h, 1U);
  const auto* h = a.host_as<std::uint8_t>();
  for (std::size_t i = 0; i < a.size(); i += 4097) ASSERT_EQ(h[i], static_cast<std::uint8_t>(i * 3 + 1)) << i;
}

INSTANTIATE_TEST_SUITE_P(Workers, GpuData, testing::Values(1, 2),
                         [](const testing::TestParamInfo<int>& i) { return "w" + std::to_string(i.param); });

}  // namespace
