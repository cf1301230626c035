// Data-block test cases written once and run on simulated GPUs (tests/cpp, label unit) and
// on CUDA devices (tests/gpu, label gpu). A case needs "kernels": small operations a task
// body enqueues on its device.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <parla/parla.hpp>

namespace parla::test {

/// What a task body runs on its device (the cpu runs it inline; a GPU enqueues it on
/// ctx.stream()). Byte arithmetic is mod 256.
class Kernels {
 public:
  virtual ~Kernels() = default;
  /// x[i] = x[i] * a + b
  virtual void affine(TaskContext& ctx, std::uint8_t* x, std::size_t n, int a, int b) = 0;
  /// x[i] = (i * a + b), i counted from the slice's start
  virtual void fill(TaskContext& ctx, std::uint8_t* x, std::size_t n, int a, int b) = 0;
  /// *out = sum of (i + 1) * x[i] once the work before it has finished
  virtual void checksum(TaskContext& ctx, const std::uint8_t* x, std::size_t n, std::uint64_t* out) = 0;
};

inline std::uint64_t host_checksum(const std::uint8_t* x, std::size_t n) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += (i + 1) * x[i];
  return s;
}

/// Kernels for the cpu and simulated GPUs (their memory is host memory).
class HostKernels final : public Kernels {
 public:
  void affine(TaskContext& ctx, std::uint8_t* x, std::size_t n, int a, int b) override {
    run(ctx, [=] {
      for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<std::uint8_t>(x[i] * a + b);
    });
  }
  void fill(TaskContext& ctx, std::uint8_t* x, std::size_t n, int a, int b) override {
    run(ctx, [=] {
      for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<std::uint8_t>(static_cast<int>(i) * a + b);
    });
  }
  void checksum(TaskContext& ctx, const std::uint8_t* x, std::size_t n, std::uint64_t* out) override {
    run(ctx, [=] { *out = host_checksum(x, n); });
  }

 private:
  template <class F>
  static void run(TaskContext& ctx, F f) {
    if (ctx.device().kind() == DeviceKind::cpu) {
      f();
    } else {
      ctx.stream().enqueue(f);
    }
  }
};

/// One operation of a random program.
struct Op {
  int block;
  std::size_t offset;
  std::size_t bytes;
  int mode;    // 0 in (checksum), 1 out (fill), 2 inout (affine)
  int device;  // -1 cpu, else gpu(device)
  int a;
  int b;
};

inline std::vector<Op> random_program(std::uint32_t seed, int blocks, std::size_t block_bytes, int gpus, int n) {
  std::mt19937 rng(seed);
  std::vector<Op> ops;
  for (int k = 0; k < n; ++k) {
    Op op{};
    op.block = static_cast<int>(rng() % static_cast<unsigned>(blocks));
    const unsigned parts = 1U << (rng() % 3);  // whole, halves or quarters
    const std::size_t part = block_bytes / parts;
    op.offset = part * (rng() % parts);
    op.bytes = part;
    op.mode = static_cast<int>(rng() % 3);
    op.device = static_cast<int>(rng() % static_cast<unsigned>(gpus + 1)) - 1;
    op.a = 1 + 2 * static_cast<int>(rng() % 5);
    op.b = static_cast<int>(rng() % 251);
    ops.push_back(op);
  }
  return ops;
}

/// Runs a random program of reads and writes of slices on random devices and checks every
/// read and the final host copies against a sequential reference. With `infer` off the
/// program is made sequential by explicit dependencies instead.
inline void run_random_program(RuntimeConfig cfg, Kernels& k, std::uint32_t seed, bool infer = true) {
  constexpr int k_blocks = 4;
  constexpr std::size_t k_bytes = 4096;
  constexpr int k_ops = 80;
  cfg.infer_dependencies = infer;
  std::vector<std::vector<std::uint8_t>> ref(k_blocks, std::vector<std::uint8_t>(k_bytes));
  for (int b = 0; b < k_blocks; ++b) {
    for (std::size_t i = 0; i < k_bytes; ++i) ref[b][i] = static_cast<std::uint8_t>(i * 7 + b);
  }
  std::vector<std::uint8_t> host_copy[k_blocks];
  std::vector<std::uint64_t> expect(k_ops, 0);
  auto got = std::make_unique<std::uint64_t[]>(k_ops);
  std::vector<DataBlock> blocks;  // outlive the runtime: their host copies are then final
  {
    Runtime rt(cfg);
    ASSERT_EQ(rt.infers_dependencies(), infer);
    for (int b = 0; b < k_blocks; ++b) {
      blocks.emplace_back(rt, k_bytes, "B" + std::to_string(b));
      std::copy(ref[b].begin(), ref[b].end(), blocks.back().host_as<std::uint8_t>());
    }
    const auto ops = random_program(seed, k_blocks, k_bytes, rt.num_gpus(), k_ops);
    Task prev;
    for (int i = 0; i < k_ops; ++i) {
      const Op op = ops[static_cast<std::size_t>(i)];
      std::vector<std::uint8_t>& r = ref[static_cast<std::size_t>(op.block)];
      SpawnOptions o;
      o.name = "op" + std::to_string(i);
      o.placement = op.device < 0 ? Placement(parla::cpu) : parla::gpu(op.device);
      if (!infer && prev) o.dependencies.emplace_back(prev);
      DataSlice s = blocks[static_cast<std::size_t>(op.block)].slice(op.offset, op.bytes);
      std::uint64_t* out = &got[static_cast<std::size_t>(i)];
      if (op.mode == 0) {
        o.in = {s};
        expect[static_cast<std::size_t>(i)] = host_checksum(r.data() + op.offset, op.bytes);
      } else if (op.mode == 1) {
        o.out = {s};
        for (std::size_t j = 0; j < op.bytes; ++j) r[op.offset + j] = static_cast<std::uint8_t>(static_cast<int>(j) * op.a + op.b);
      } else {
        o.inout = {s};
        for (std::size_t j = 0; j < op.bytes; ++j) r[op.offset + j] = static_cast<std::uint8_t>(r[op.offset + j] * op.a + op.b);
      }
      prev = rt.spawn(std::move(o), [&k, s, op, out](TaskContext& ctx) {
        auto* p = ctx.data_as<std::uint8_t>(s);
        if (op.mode == 0) k.checksum(ctx, p, op.bytes, out);
        if (op.mode == 1) k.fill(ctx, p, op.bytes, op.a, op.b);
        if (op.mode == 2) k.affine(ctx, p, op.bytes, op.a, op.b);
      });
    }
    // Half the blocks are read back while the runtime lives, the others when it ends.
    if (!infer) rt.wait(prev);  // sync_to_host is ordered by inferred dependencies only
    for (int b = 0; b < k_blocks; b += 2) {
      rt.sync_to_host(blocks[static_cast<std::size_t>(b)]);
      const auto* h = blocks[static_cast<std::size_t>(b)].host_as<std::uint8_t>();
      host_copy[b].assign(h, h + k_bytes);
    }
    rt.finish();
    for (int i = 0; i < k_ops; ++i) {
      if (ops[static_cast<std::size_t>(i)].mode == 0) {
        EXPECT_EQ(got[static_cast<std::size_t>(i)], expect[static_cast<std::size_t>(i)]) << "read op" << i;
      }
    }
    for (int b = 0; b < k_blocks; b += 2) EXPECT_EQ(host_copy[b], ref[b]) << "B" << b << " (sync_to_host)";
  }
  for (int b = 0; b < k_blocks; ++b) {
    const auto* h = blocks[static_cast<std::size_t>(b)].host_as<std::uint8_t>();
    EXPECT_EQ(std::vector<std::uint8_t>(h, h + k_bytes), ref[b]) << "B" << b << " after the runtime ended";
  }
}

}  // namespace parla::test
