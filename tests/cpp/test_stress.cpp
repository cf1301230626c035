// 1,000,000 tasks (label stress): independent, chained, and fanned out from bodies.
#include <atomic>

#include "test_common.hpp"

namespace {

TEST(Stress, MillionIndependentTasks) {
  parla::Runtime rt({.num_workers = 2, .sim_gpus = 0});
  std::atomic<long> sum{0};
  for (int i = 0; i < 1'000'000; ++i) rt.spawn({}, [&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); });
  rt.wait_all();
  EXPECT_EQ(sum.load(), 999'999L * 1'000'000L / 2);
}

TEST(Stress, MillionTasksInTenChains) {
  parla::Runtime rt({.num_workers = 4, .sim_gpus = 2});
  std::vector<std::atomic<int>> next(10);
  std::atomic<int> out_of_order{0};
  for (int c = 0; c < 10; ++c) {
    parla::Task prev;
    for (int i = 0; i < 100'000; ++i) {
      prev = rt.spawn({.dependencies = {prev.valid() ? parla::Dep(prev) : parla::Dep{}}}, [&, c, i] {
        if (next[static_cast<std::size_t>(c)].fetch_add(1) != i) out_of_order.fetch_add(1);
      });
    }
  }
  rt.wait_all();
  EXPECT_EQ(out_of_order.load(), 0);
  for (auto& n : next) EXPECT_EQ(n.load(), 100'000);
}

TEST(Stress, MillionTasksSpawnedFromBodies) {
  parla::Runtime rt({.num_workers = 8, .sim_gpus = 4});
  std::atomic<int> count{0};
  for (int p = 0; p < 1000; ++p) {
    rt.spawn({}, [&](parla::TaskContext& ctx) {
      for (int i = 0; i < 1000; ++i) ctx.runtime().spawn({}, [&] { count.fetch_add(1, std::memory_order_relaxed); });
    });
  }
  rt.wait_all();
  EXPECT_EQ(count.load(), 1'000'000);
}

}  // namespace
