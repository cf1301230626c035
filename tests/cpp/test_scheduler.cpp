// Scheduling: every task runs once, spawning from many threads, priorities, idle workers
// sleep, configuration from the environment, stats.
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

class SchedulerTest : public RuntimeSweep {};

TEST_P(SchedulerTest, EveryTaskRunsExactlyOnce) {
  parla::Runtime rt(config());
  const auto devices = all_devices();
  constexpr int n = 20000;
  std::vector<std::atomic<int>> runs(n);
  for (int i = 0; i < n; ++i) {
    rt.spawn({.placement = i % 10 == 0 ? devices[static_cast<std::size_t>(i / 10) % devices.size()] : parla::Placement{}},
             [&runs, i] { runs[static_cast<std::size_t>(i)].fetch_add(1, std::memory_order_relaxed); });
  }
  rt.wait_all();
  for (int i = 0; i < n; ++i) ASSERT_EQ(runs[static_cast<std::size_t>(i)].load(), 1) << "task " << i;
}

TEST_P(SchedulerTest, SpawnFromManyThreadsAndBodies) {
  parla::Runtime rt(config());
  std::atomic<int> count{0};
  std::vector<std::thread> spawners;
  for (int t = 0; t < 4; ++t) {
    spawners.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        rt.spawn({}, [&](parla::TaskContext& ctx) {
          count.fetch_add(1);
          ctx.runtime().spawn({}, [&] { count.fetch_add(1); });  // nested, no wait
        });
      }
    });
  }
  for (auto& s : spawners) s.join();
  rt.wait_all();
  EXPECT_EQ(count.load(), 4000);
}

TEST(SpawnCounts, WaitAllWaitsForTasksOfThreadsThatAlternateBetweenRuntimes) {
  // Each thread that is not a worker counts its spawns in a counter of its own per runtime;
  // wait_all() must see every thread's spawns into its runtime and none of the other's.
  for (int round = 0; round < 3; ++round) {  // new runtimes, likely at the same addresses
    parla::Runtime a({.num_workers = 2});
    parla::Runtime b({.num_workers = 1});
    std::atomic<int> ran_a{0};
    std::atomic<int> ran_b{0};
    std::vector<std::thread> spawners;
    for (int t = 0; t < 3; ++t) {
      spawners.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          (void)a.spawn_after({}, [&] {
            std::this_thread::sleep_for(std::chrono::microseconds(20));
            ran_a.fetch_add(1);
          });
          (void)b.spawn({}, [&] { ran_b.fetch_add(1); });
        }
      });
    }
    for (auto& s : spawners) s.join();
    a.wait_all();
    EXPECT_EQ(ran_a.load(), 600);
    b.wait_all();
    EXPECT_EQ(ran_b.load(), 600);
    // The main thread's own spawns, after the other threads are gone.
    for (int i = 0; i < 50; ++i) {
      (void)a.spawn_after({}, [&] {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        ran_a.fetch_add(1);
      });
    }
    a.wait_all();
    EXPECT_EQ(ran_a.load(), 650);
  }
}

TEST_P(SchedulerTest, PriorityTasksAreTakenFirst) {
  if (workers() != 1) GTEST_SKIP() << "order is only defined with one worker";
  parla::Runtime rt(config());
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::promise<void> started;
  rt.spawn({}, [open, &started] {  // occupies the only cpu worker
    started.set_value();
    open.wait();
  });
  started.get_future().wait();
  std::mutex m;
  std::vector<std::string> order;
  for (int i = 0; i < 5; ++i) {
    rt.spawn({}, [&] { std::lock_guard<std::mutex> l(m); order.push_back("normal"); });
  }
  rt.spawn({.priority = 1}, [&] { std::lock_guard<std::mutex> l(m); order.push_back("urgent"); });
  gate.set_value();
  rt.wait_all();
  ASSERT_EQ(order.size(), 6U);
  EXPECT_EQ(order.front(), "urgent");
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TEST_P(SchedulerTest, IdleWorkersSleep) {
  parla::Runtime rt(config());
  for (int i = 0; i < 1000; ++i) rt.spawn({}, [] {});
  rt.wait_all();
  // Let the workers finish their brief spin, then measure a 300 ms idle window (the one
  // place these tests sleep: measuring idleness needs wall time to pass).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double used = process_cpu_seconds() - before;
  EXPECT_LT(used, 0.015) << "idle runtime with " << workers() << " workers and " << gpus()
                         << " GPUs used " << used * 1000 << " ms of CPU in 300 ms";
}

TEST_P(SchedulerTest, StatsCountTasksPerWorker) {
  parla::RuntimeConfig c = config();
  c.collect_stats = true;
  parla::Runtime rt(c);
  for (int i = 0; i < 100; ++i) rt.spawn({}, [] {});
  for (int g = 0; g < gpus(); ++g) rt.spawn({.placement = parla::gpu(g)}, [] {});
  rt.wait_all();
  const parla::RuntimeStats s = rt.stats();
  EXPECT_EQ(s.tasks_run, static_cast<std::uint64_t>(100 + gpus()));
  ASSERT_EQ(s.workers.size(), static_cast<std::size_t>(workers() + gpus()));
  for (int g = 0; g < gpus(); ++g) {
    EXPECT_EQ(s.workers[static_cast<std::size_t>(workers() + g)].tasks, 1U);
    EXPECT_EQ(s.workers[static_cast<std::size_t>(workers() + g)].device, "gpu(" + std::to_string(g) + ")");
  }
  EXPECT_TRUE(s.timed);
  EXPECT_NE(s.to_string().find("tasks run"), std::string::npos);
}

PARLA_INSTANTIATE_SWEEP(SchedulerTest);

TEST(RuntimeConfigTest, EnvironmentFillsUnsetFields) {
  ::setenv("PARLA_NUM_WORKERS", "3", 1);
  ::setenv("PARLA_SIM_GPUS", "2", 1);
  ::setenv("PARLA_DEADLOCK_TIMEOUT", "5", 1);
  {
    parla::Runtime rt;
    EXPECT_EQ(rt.num_workers(), 3);
    EXPECT_EQ(rt.num_gpus(), 2);
    EXPECT_DOUBLE_EQ(rt.config().deadlock_timeout, 5.0);
  }
  {
    parla::Runtime rt({.num_workers = 1, .sim_gpus = 0});  // explicit values win
    EXPECT_EQ(rt.num_workers(), 1);
    EXPECT_EQ(rt.num_gpus(), 0);
  }
  ::setenv("PARLA_NUM_WORKERS", "many", 1);
  EXPECT_THROW(parla::Runtime rt, parla::Error);
  ::unsetenv("PARLA_NUM_WORKERS");
  ::unsetenv("PARLA_SIM_GPUS");
  ::unsetenv("PARLA_DEADLOCK_TIMEOUT");
}

}  // namespace
