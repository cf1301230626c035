// Library contexts: a cpu task with vcus runs pinned to its share of the process's cores, and
// the workers keep to the cores the process (rank) was given.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <latch>
#include <thread>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

using parla::test::thread_cores;

void set_thread_cores(const std::vector<int>& cores) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) CPU_SET(c, &set);
  ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0);
}

bool subset(const std::vector<int>& a, const std::vector<int>& b) {
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

/// Restores the calling thread's mask at the end of a test that narrows it.
struct MaskGuard {
  std::vector<int> saved = thread_cores();
  ~MaskGuard() { set_thread_cores(saved); }
};

struct Seen {
  int cores = -1;
  std::vector<int> mask;
};

Seen run_seen(parla::Runtime& rt, parla::Placement where, double vcus) {
  Seen seen;
  rt.wait(rt.spawn({.placement = where, .vcus = vcus}, [&](parla::TaskContext& ctx) {
    seen.cores = ctx.cores();
    seen.mask = thread_cores();
  }));
  return seen;
}

class LibraryContextTest : public RuntimeSweep {};

TEST_P(LibraryContextTest, AContextTaskIsPinnedToItsShareOfTheCores) {
  const std::vector<int> process = thread_cores();
  const int n = static_cast<int>(process.size());
  parla::Runtime rt(config());
  for (double vcus : {1.0, 0.5, 0.01}) {
    const int want = std::max(1, static_cast<int>(std::lround(vcus * n)));
    const Seen s = run_seen(rt, parla::cpu, vcus);
    EXPECT_EQ(s.cores, want) << "vcus=" << vcus;
    EXPECT_EQ(static_cast<int>(s.mask.size()), want) << "vcus=" << vcus;
    EXPECT_TRUE(subset(s.mask, process)) << "vcus=" << vcus;
  }
  // No reservation: no pinning, the whole process mask; and every worker was restored.
  for (int i = 0; i < 4 * workers(); ++i) {
    const Seen s = run_seen(rt, parla::cpu, 0.0);
    EXPECT_EQ(s.cores, 0);
    EXPECT_EQ(s.mask, process);
  }
  // GPU tasks hold a GPU's compute units, not cores.
  for (int g = 0; g < gpus(); ++g) {
    const Seen s = run_seen(rt, parla::gpu(g), 0.5);
    EXPECT_EQ(s.cores, 0);
    EXPECT_TRUE(subset(s.mask, process));
  }
}

TEST_P(LibraryContextTest, ConcurrentContextTasksHoldDisjointCores) {
  const std::vector<int> process = thread_cores();
  const int n = std::min<int>(static_cast<int>(process.size()), workers());
  if (n < 2) GTEST_SKIP() << "needs two cores and two workers";
  parla::Runtime rt(config());
  std::latch all_running(n);
  std::vector<std::vector<int>> masks(static_cast<std::size_t>(n));
  std::vector<parla::Task> tasks;
  for (int i = 0; i < n; ++i) {
    // 1/n of the cores each, all running at once (each waits for the others).
    tasks.push_back(rt.spawn({.vcus = 1.0 / n - 1e-9}, [&, i](parla::TaskContext&) {
      masks[static_cast<std::size_t>(i)] = thread_cores();
      all_running.arrive_and_wait();
    }));
  }
  for (auto& t : tasks) rt.wait(t);
  std::vector<int> all;
  for (const auto& m : masks) {
    EXPECT_GE(m.size(), 1U);
    all.insert(all.end(), m.begin(), m.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "two tasks share a core";
  EXPECT_TRUE(subset(all, process));
}

TEST_P(LibraryContextTest, WorkersKeepToTheProcessMask) {
  // As under `taskset -c <core>` or a rank bound by mpirun/srun: the runtime is built on a
  // thread confined to one core, and never widens that.
  const std::vector<int> process = thread_cores();
  MaskGuard guard;
  const std::vector<int> one{process.back()};
  set_thread_cores(one);
  {
    parla::Runtime rt(config());
    std::vector<std::vector<int>> masks(8 * static_cast<std::size_t>(workers()));
    std::vector<parla::Task> tasks;
    for (std::size_t i = 0; i < masks.size(); ++i) {
      tasks.push_back(rt.spawn({}, [&masks, i](parla::TaskContext&) { masks[i] = thread_cores(); }));
    }
    for (auto& t : tasks) rt.wait(t);
    for (const auto& m : masks) EXPECT_EQ(m, one);
    const Seen whole = run_seen(rt, parla::cpu, 1.0);
    EXPECT_EQ(whole.cores, 1);
    EXPECT_EQ(whole.mask, one);
  }
}

TEST(LibraryContext, RuntimesWithDisjointMasksKeepToThem) {
  // Two "ranks" on one node: each runtime built on a thread with its own cores.
  const std::vector<int> process = thread_cores();
  if (process.size() < 2) GTEST_SKIP() << "needs two cores";
  std::vector<std::vector<int>> seen(2);
  std::vector<std::thread> ranks;
  for (std::size_t r = 0; r < 2; ++r) {
    ranks.emplace_back([&seen, &process, r] {
      const std::vector<int> mine{process[r]};
      set_thread_cores(mine);
      parla::RuntimeConfig c;
      c.num_workers = 2;
      c.sim_gpus = 0;
      c.cuda_gpus = 0;
      c.deadlock_timeout = 10.0;
      parla::Runtime rt(c);
      std::vector<parla::Task> tasks;
      std::mutex m;
      for (int i = 0; i < 16; ++i) {
        tasks.push_back(rt.spawn({.vcus = i % 2 == 0 ? 0.0 : 1.0}, [&](parla::TaskContext&) {
          const std::vector<int> mask = thread_cores();
          std::lock_guard<std::mutex> lock(m);
          seen[r].insert(seen[r].end(), mask.begin(), mask.end());
        }));
      }
      for (auto& t : tasks) rt.wait(t);
    });
  }
  for (auto& t : ranks) t.join();
  for (std::size_t r = 0; r < 2; ++r) {
    ASSERT_EQ(seen[r].size(), 16U);
    for (int c : seen[r]) EXPECT_EQ(c, process[r]) << "rank " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Sweep, LibraryContextTest, testing::ValuesIn(parla::test::sweep()),
                         parla::test::sweep_name);

}  // namespace
