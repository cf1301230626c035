// Communication tasks on CUDA-resident blocks (labels mpi and gpu, 2 ranks): a ring exchange
// staged through page-locked host instances (PARLA_CUDA_AWARE_MPI=0), and the same ring on
// the CUDA-aware direct path (skipped when this MPI is not CUDA-aware or fails the self-test).
// Skipped, not failed, where the process sees no CUDA device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data_kernels.hpp"
#include "../mpi/scoped_env.hpp"

using parla::DataBlock;
using parla::Runtime;
using parla::TaskContext;
using parla::mpi::Comm;
using parla::test::ScopedEnv;

namespace {


parla::RuntimeConfig cuda_config() {
  parla::RuntimeConfig c;
  c.num_workers = 2;
  c.sim_gpus = 0;
  c.cuda_gpus = 1;
  c.deadlock_timeout = 30.0;
  return c;
}

bool is_pinned(const void* p) {
  cudaPointerAttributes attr{};
  const cudaError_t err = cudaPointerGetAttributes(&attr, p);
  (void)cudaGetLastError();
  return err == cudaSuccess && attr.type == cudaMemoryTypeHost;
}

/// Byte i sent in round `round` by rank `from` is `i * 7 + from * 31 + round * 13` (mod 256).
int fill_offset(int from, int round) {
  return from * 31 + round * 13;
}

struct RingResult {
  long first_bad = -1;
  parla::mpi::BufferPathStats paths;
};

/// `rounds` rounds of: gpu(0) fills `a`, send it to the next rank, receive the previous rank's
/// into `b`, gpu(0) checks `b`. `b` starts on the GPU too (written there), so every message's
/// newest copy is device memory.
RingResult ring(Runtime& rt, Comm& comm, DataBlock& a, DataBlock& b, int rounds) {
  const int n = comm.size();
  const int me = comm.rank();
  const int next = (me + 1) % n;
  const int prev = (me + n - 1) % n;
  const std::size_t bytes = a.size();
  auto first_bad = std::make_shared<std::atomic<long>>(-1);
  rt.spawn({.placement = parla::gpu(0), .out = {b}},
           [b](TaskContext& ctx) { ctx.stream().memset(ctx.data(b), 0, b.size()); });
  for (int r = 0; r < rounds; ++r) {
    rt.spawn({.placement = parla::gpu(0), .out = {a}}, [=](TaskContext& ctx) {
      const cudaError_t err =
          launch_fill(ctx.data_as<unsigned char>(a), bytes, 7, fill_offset(me, r),
                      static_cast<cudaStream_t>(ctx.stream().native_handle()));
      if (err != cudaSuccess) {
        throw std::runtime_error(std::string("launch_fill: ") + cudaGetErrorString(err));
      }
    });
    comm.send(a, next, 3);
    comm.recv(b, prev, 3);
    rt.spawn({.placement = parla::gpu(0), .in = {b}}, [=](TaskContext& ctx) {
      auto host = std::make_shared<std::vector<unsigned char>>(bytes);
      ctx.stream().copy(host->data(), ctx.data(b), bytes);
      ctx.stream().enqueue([=] {
        for (std::size_t i = 0; i < bytes; ++i) {
          const auto expect =
              static_cast<unsigned char>(static_cast<int>(i) * 7 + fill_offset(prev, r));
          if ((*host)[i] != expect) {
            first_bad->store(static_cast<long>(i));
            break;
          }
        }
      });
    });
  }
  rt.finish();
  return {first_bad->load(), comm.buffer_paths()};
}

class GpuMpi : public testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      (void)cudaGetLastError();
      GTEST_SKIP() << "no CUDA device visible (CUDA_VISIBLE_DEVICES, driver)";
    }
  }
};

}  // namespace

TEST_F(GpuMpi, StagedThroughPinnedHostMemory) {
  const ScopedEnv off("PARLA_CUDA_AWARE_MPI", "0");
  Runtime rt(cuda_config());
  ASSERT_EQ(rt.num_gpus(), 1);
  Comm comm(rt);
  EXPECT_FALSE(comm.cuda_aware());
  constexpr int k_rounds = 4;
  DataBlock a(rt, 1 << 20, "a");
  DataBlock b(rt, 1 << 20, "b");
  const RingResult res = ring(rt, comm, a, b, k_rounds);
  EXPECT_EQ(res.first_bad, -1) << "first wrong byte";
  EXPECT_EQ(res.paths.device, 0u);
  EXPECT_EQ(res.paths.host, 2u * k_rounds);
  EXPECT_GE(rt.stats().copies_d2h, static_cast<std::uint64_t>(k_rounds));
  // The staging copies went through page-locked host instances (until the runtime ends).
  EXPECT_TRUE(is_pinned(a.host_data()));
  EXPECT_TRUE(is_pinned(b.host_data()));
}

TEST_F(GpuMpi, DirectWhenTheMpiIsCudaAware) {
  const ScopedEnv unset("PARLA_CUDA_AWARE_MPI", std::nullopt);
  Runtime rt(cuda_config());
  ASSERT_EQ(rt.num_gpus(), 1);
  Comm comm(rt);
  if (!comm.cuda_aware()) GTEST_SKIP() << "no CUDA-aware direct path: " << comm.cuda_aware_reason();
  constexpr int k_rounds = 4;
  DataBlock a(rt, 1 << 20, "a");
  DataBlock b(rt, 1 << 20, "b");
  const RingResult res = ring(rt, comm, a, b, k_rounds);
  EXPECT_EQ(res.first_bad, -1) << "first wrong byte";
  // Every message's only current copy was on the GPU: MPI got device pointers, no staging.
  EXPECT_EQ(res.paths.device, 2u * k_rounds);
  EXPECT_EQ(res.paths.host, 0u);
  EXPECT_EQ(rt.stats().copies_d2h, 0u);
}
