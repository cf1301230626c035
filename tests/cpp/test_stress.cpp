// 1,000,000 tasks (label stress): independent, chained, and fanned out from bodies; task
// records that outlive the thread that spawned them.
#include <atomic>
#include <thread>
#include <vector>

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

// Task records come from per-thread pools: a record spawned by a thread that has exited, and
// freed by a worker or by the main thread afterwards, must stay valid and be reclaimed (asan's
// leak check covers the pools' thread-exit path).
TEST(Stress, RecordsOutliveTheThreadsThatSpawnedThem) {
  parla::Runtime rt({.num_workers = 2, .sim_gpus = 0});
  std::atomic<long> sum{0};
  std::vector<parla::Task> kept;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::vector<parla::Task>> handles(4);
    std::vector<std::thread> spawners;
    for (int t = 0; t < 4; ++t) {
      spawners.emplace_back([&, t] {
        parla::Task prev;
        for (int i = 0; i < 2000; ++i) {
          prev = rt.spawn({.dependencies = {prev.valid() ? parla::Dep(prev) : parla::Dep{}}},
                          [&sum] { sum.fetch_add(1, std::memory_order_relaxed); });
          if (i % 100 == 0) handles[static_cast<std::size_t>(t)].push_back(prev);
        }
      });
    }
    for (std::thread& th : spawners) th.join();  // the spawners exit with tasks still running
    for (auto& h : handles) kept.insert(kept.end(), h.begin(), h.end());
  }
  rt.wait_all();
  EXPECT_EQ(sum.load(), 20L * 4 * 2000);
  for (const parla::Task& t : kept) EXPECT_EQ(t.state(), parla::TaskState::completed);
}

}  // namespace
