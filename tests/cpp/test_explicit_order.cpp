// SpawnOptions::infer_dependencies = false: the task's data accesses move data and keep the
// copies coherent, but add no inferred dependencies and are not recorded for later tasks.
#include <gtest/gtest.h>

#include <parla/parla.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace {

/// Spins (with short sleeps) until `flag` is set or 5 s pass; returns whether it was set.
bool await(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

class ExplicitOrder : public testing::TestWithParam<int> {  // simulated GPUs
 protected:
  parla::RuntimeConfig config() const {
    return {.num_workers = 2, .sim_gpus = GetParam(), .deadlock_timeout = 20.0};
  }
  parla::Placement where() const { return GetParam() > 0 ? parla::gpu(0) : parla::Placement(parla::cpu); }
};

}  // namespace

TEST_P(ExplicitOrder, ItsAccessesAddNoDependencies) {
  parla::Runtime rt(config());
  parla::DataBlock a(rt, 64, "a");
  std::atomic<bool> reader_ran{false};
  std::atomic<bool> writer_saw_reader{false};
  // A writer that waits until the reader below has run: the reader must not wait for it.
  rt.spawn({.out = {a}, .name = "writer"}, [&] { writer_saw_reader = await(reader_ran); });
  rt.spawn({.in = {a}, .name = "reader", .infer_dependencies = false}, [&] { reader_ran = true; });
  rt.finish();
  EXPECT_TRUE(writer_saw_reader);
}

TEST_P(ExplicitOrder, ItIsNotRecordedForLaterTasks) {
  parla::Runtime rt(config());
  parla::DataBlock a(rt, 64, "a");
  std::atomic<bool> writer_ran{false};
  std::atomic<bool> reader_saw_writer{false};
  // An unrecorded reader that waits for a later writer: the writer must not wait for it.
  rt.spawn({.in = {a}, .name = "reader", .infer_dependencies = false},
           [&] { reader_saw_writer = await(writer_ran); });
  rt.spawn({.out = {a}, .name = "writer"}, [&] { writer_ran = true; });
  rt.finish();
  EXPECT_TRUE(reader_saw_writer);
}

TEST_P(ExplicitOrder, ItsDataStillMovesAndStaysCoherent) {
  parla::Runtime rt(config());
  constexpr int k_n = 1000;
  parla::DataBlock a(rt, k_n * sizeof(std::int64_t), "a");
  // Produced on the GPU (when there is one), checked on the cpu: ordered explicitly only.
  parla::Task produce = rt.spawn({.placement = where(), .out = {a}, .infer_dependencies = false},
                                 [&](parla::TaskContext& ctx) {
                                   auto* p = ctx.data_as<std::int64_t>(a);
                                   auto fill = [p] {
                                     for (int i = 0; i < k_n; ++i) p[i] = 3 * i + 1;
                                   };
                                   if (ctx.device().kind() == parla::DeviceKind::gpu) {
                                     ctx.stream().enqueue(fill);
                                   } else {
                                     fill();
                                   }
                                 });
  int bad = -1;
  rt.spawn({.dependencies = {produce}, .in = {a}, .infer_dependencies = false}, [&](parla::TaskContext& ctx) {
    const auto* p = ctx.data_as<std::int64_t>(a);
    bad = 0;
    for (int i = 0; i < k_n; ++i) bad += p[i] != 3 * i + 1 ? 1 : 0;
  });
  rt.finish();
  EXPECT_EQ(bad, 0);
  // A later ordinary task still finds the latest version.
  rt.sync_to_host(a);
  EXPECT_EQ(a.host_as<std::int64_t>()[k_n - 1], 3 * (k_n - 1) + 1);
}

INSTANTIATE_TEST_SUITE_P(Sweep, ExplicitOrder, testing::Values(0, 1),
                         [](const testing::TestParamInfo<int>& p) { return "gpus" + std::to_string(p.param); });
