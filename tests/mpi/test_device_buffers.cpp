// Device buffers in communication tasks: blocks on simulated GPUs always take the staged path
// (host instance) even with PARLA_CUDA_AWARE_MPI=1, the direct-path decision follows
// PARLA_CUDA_AWARE_MPI, and the progress engine posts an operation only once its readiness
// event has fired. Registered with PARLA_CUDA_AWARE_MPI=1 at 2, 3 and 4 ranks; the CUDA side
// of the same paths is tests/gpu/test_gpu_mpi.cpp.
#include <gtest/gtest.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "scoped_env.hpp"

using parla::DataBlock;
using parla::Runtime;
using parla::TaskContext;
using parla::mpi::Comm;
using parla::test::ScopedEnv;

namespace {


/// Byte i of the message of round `round` from rank `from`.
std::uint8_t pattern(int from, int round, std::size_t i) {
  return static_cast<std::uint8_t>(
      (from * 131 + round * 17 + static_cast<int>(i) * 7 + static_cast<int>(i >> 8)) & 0xff);
}

class DeviceBuffers : public testing::TestWithParam<int> {};  // parameter: cpu workers

}  // namespace

TEST_P(DeviceBuffers, SimulatedGpuBlocksAreStagedEvenWhenForcedCudaAware) {
  const ScopedEnv forced("PARLA_CUDA_AWARE_MPI", "1");
  Runtime rt({.num_workers = GetParam(), .sim_gpus = 2});
  Comm comm(rt);
  EXPECT_TRUE(parla::mpi::cuda_aware_mpi());
  EXPECT_FALSE(comm.cuda_aware());
  EXPECT_NE(comm.cuda_aware_reason().find("no CUDA device"), std::string::npos)
      << comm.cuda_aware_reason();

  const int n = comm.size();
  const int me = comm.rank();
  const int next = (me + 1) % n;
  const int prev = (me + n - 1) % n;
  constexpr std::size_t k_bytes = 150000;  // rendezvous-sized
  constexpr std::size_t k_part = 4096;     // a sub-range message too
  constexpr int k_rounds = 4;
  DataBlock a(rt, k_bytes, "a");
  DataBlock b(rt, k_bytes, "b");
  std::atomic<long> bad{-1};
  for (int r = 0; r < k_rounds; ++r) {
    // Written on gpu(r % 2) only: the send's bytes must come from that simulated GPU.
    rt.spawn({.placement = parla::gpu(r % 2), .out = {a}}, [=](TaskContext& ctx) {
      auto* p = ctx.data_as<std::uint8_t>(a);
      ctx.stream().enqueue([=] {
        for (std::size_t i = 0; i < k_bytes; ++i) p[i] = pattern(me, r, i);
      });
    });
    comm.send(a.slice(0, k_bytes - k_part), next, 1);
    comm.send(a.slice(k_bytes - k_part, k_part), next, 2);
    comm.recv(b.slice(0, k_bytes - k_part), prev, 1);
    comm.recv(b.slice(k_bytes - k_part, k_part), prev, 2);
    rt.spawn({.placement = parla::gpu((r + 1) % 2), .in = {b}}, [=, &bad](TaskContext& ctx) {
      const auto* p = ctx.data_as<std::uint8_t>(b);
      ctx.stream().enqueue([=, &bad] {
        for (std::size_t i = 0; i < k_bytes; ++i) {
          if (p[i] != pattern(prev, r, i)) {
            bad.store(static_cast<long>(i));
            break;
          }
        }
      });
    });
  }
  rt.finish();
  EXPECT_EQ(bad.load(), -1) << "first wrong byte";
  const parla::mpi::BufferPathStats paths = comm.buffer_paths();
  EXPECT_EQ(paths.device, 0u);
  EXPECT_EQ(paths.host, 4u * k_rounds);
  // Staged: every round's data went GPU -> host before its sends.
  EXPECT_GE(rt.stats().copies_d2h, static_cast<std::uint64_t>(k_rounds));
}

INSTANTIATE_TEST_SUITE_P(Workers, DeviceBuffers, testing::Values(1, 2));

TEST(DirectPathDecision, ZeroTurnsItOffWithoutASelfTest) {
  const ScopedEnv off("PARLA_CUDA_AWARE_MPI", "0");
  Runtime rt({.num_workers = 1, .sim_gpus = 1});
  Comm comm(rt);
  EXPECT_FALSE(parla::mpi::cuda_aware_mpi());
  EXPECT_FALSE(comm.cuda_aware());
  EXPECT_EQ(comm.cuda_aware_reason(), "PARLA_CUDA_AWARE_MPI=0");
  // Host data still goes through the host path.
  const int n = comm.size();
  const int me = comm.rank();
  int out = 100 + me;
  DataBlock in(rt, sizeof(int), "in");
  DataBlock src(rt, &out, sizeof out, "out");
  comm.send(src, (me + 1) % n, 0);
  comm.recv(in, (me + n - 1) % n, 0);
  rt.finish();
  EXPECT_EQ(*in.host_as<int>(), 100 + (me + n - 1) % n);
  EXPECT_EQ(comm.buffer_paths().host, 2u);
  EXPECT_EQ(comm.buffer_paths().device, 0u);
}

TEST(DirectPathDecision, UnsetAsksTheMpiAndNeedsACudaDevice) {
  const ScopedEnv unset("PARLA_CUDA_AWARE_MPI", std::nullopt);
  Runtime rt({.num_workers = 1, .sim_gpus = 0, .cuda_gpus = 0});
  Comm comm(rt);
  EXPECT_FALSE(comm.cuda_aware());  // no CUDA device in this runtime, whatever the MPI is
  EXPECT_FALSE(comm.cuda_aware_reason().empty());
  if (!parla::mpi::cuda_aware_mpi()) {
    EXPECT_NE(comm.cuda_aware_reason().find("CUDA-aware"), std::string::npos)
        << comm.cuda_aware_reason();
  } else {
    EXPECT_NE(comm.cuda_aware_reason().find("no CUDA device"), std::string::npos)
        << comm.cuda_aware_reason();
  }
}

TEST(ProgressEngineReadiness, PostsOnlyOnceTheEventFired) {
  // A send whose buffer a (simulated GPU) stream fills 150 ms after the operation reaches the
  // engine: posted at once, it would send the zeros that are there before.
  Runtime rt({.num_workers = 1, .sim_gpus = 1});
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  int me = 0;
  int n = 1;
  MPI_Comm_rank(dup, &me);
  MPI_Comm_size(dup, &n);
  const int next = (me + 1) % n;
  const int prev = (me + n - 1) % n;
  constexpr int k_count = 1000;
  std::vector<std::int32_t> out(k_count, 0);
  std::vector<std::int32_t> in(k_count, -1);
  std::atomic<bool> received{false};
  {
    parla::mpi::ProgressEngine engine(dup);
    parla::mpi::Operation recv;
    recv.kind = parla::mpi::OpKind::recv;
    recv.buffer = in.data();
    recv.count = k_count * 4;
    recv.peer = prev;
    recv.tag = 7;
    recv.on_done = [&received] { received.store(true, std::memory_order_release); };
    engine.submit(std::move(recv));
    parla::Task send = rt.spawn({.placement = parla::gpu(0)}, [&](TaskContext& ctx) {
      std::int32_t* p = out.data();
      ctx.stream().enqueue([p, me] {
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        for (int i = 0; i < k_count; ++i) p[i] = me * 100000 + i;
      });
      parla::mpi::Operation op;
      op.kind = parla::mpi::OpKind::send;
      op.buffer = p;
      op.count = k_count * 4;
      op.peer = next;
      op.tag = 7;
      op.host_memory = true;
      op.ready = ctx.stream().record();
      op.token = ctx.defer_completion();
      engine.submit(std::move(op));
    });
    rt.wait(send);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!received.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(received.load(std::memory_order_acquire)) << "the receive never completed";
    const parla::mpi::ProgressStats s = engine.stats();
    EXPECT_EQ(s.posted, 2u);
    EXPECT_EQ(s.failed, 0u);
  }
  MPI_Comm_free(&dup);
  for (int i = 0; i < k_count; ++i) {
    ASSERT_EQ(in[static_cast<std::size_t>(i)], prev * 100000 + i) << "element " << i;
  }
  rt.finish();
}
