// Dependencies (tasks, elements, slices), nested tasks and deferred completion.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <span>
#include <thread>
#include <variant>
#include <vector>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

class DependencyTest : public RuntimeSweep {};

TEST_P(DependencyTest, ChainRunsInOrderAcrossDevices) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  const auto devices = all_devices();
  std::atomic<int> clock{0};
  std::vector<int> at(200, -1);
  for (int i = 0; i < 200; ++i) {
    rt.spawn({.key = T[i],
              .dependencies = {i ? parla::Dep(T[i - 1]) : parla::Dep{}},
              .placement = devices[static_cast<std::size_t>(i) % devices.size()]},
             [&, i] { at[static_cast<std::size_t>(i)] = clock.fetch_add(1); });
  }
  rt.wait(T[199]);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(at[static_cast<std::size_t>(i)], i);
}

TEST_P(DependencyTest, DiamondReadsPredecessorResults) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  rt.spawn({.key = T["a"]}, [] { return 2; });
  rt.spawn({.key = T["b"], .dependencies = {T["a"]}}, [&] { return T["a"].result<int>() * 3; });
  rt.spawn({.key = T["c"], .dependencies = {T["a"]}}, [&] { return T["a"].result<int>() + 5; });
  rt.spawn({.key = T["d"], .dependencies = {T["b"], T["c"]}},
           [&] { return T["b"].result<int>() + T["c"].result<int>(); });
  rt.wait(T["d"]);
  EXPECT_EQ(T["d"].result<int>(), 13);
}

TEST_P(DependencyTest, SliceDependencyWaitsForEveryElement) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  parla::TaskSpace G(rt, "G");
  std::atomic<int> finished{0};
  // The reducers are spawned first: every element is a placeholder when referenced.
  parla::Task sum = rt.spawn({.dependencies = {T.range(0, 16)}}, [&] { return finished.load(); });
  parla::Task grid = rt.spawn({.dependencies = {G.range({0, 0}, {3, 4})}}, [&] { return finished.load(); });
  for (int i = 0; i < 16; ++i) rt.spawn({.key = T[i]}, [&] { finished.fetch_add(1); });
  rt.wait(sum);
  EXPECT_EQ(sum.get<int>(), 16);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) rt.spawn({.key = G[{i, j}]}, [&] { finished.fetch_add(1); });
  }
  rt.wait(grid);
  EXPECT_EQ(grid.get<int>(), 28);
}

TEST_P(DependencyTest, AnonymousTaskHandlesAsDependencies) {
  parla::Runtime rt(config());
  std::atomic<int> order{0};
  parla::Task a = rt.spawn({}, [&] { return order.fetch_add(1); });
  parla::Task b = rt.spawn({.dependencies = {a}}, [&] { return order.fetch_add(1); });
  parla::Task c = rt.spawn({.dependencies = {a, b}}, [&] { return order.fetch_add(1); });
  rt.wait(c);
  EXPECT_EQ(a.get<int>(), 0);
  EXPECT_EQ(b.get<int>(), 1);
  EXPECT_EQ(c.get<int>(), 2);
  // A dependency on a finished task is already satisfied.
  parla::Task d = rt.spawn({.dependencies = {c}}, [] { return 1; });
  rt.wait(d);
  EXPECT_EQ(d.get<int>(), 1);
}

TEST_P(DependencyTest, ADependencyListCanBeGivenToSeveralSpawns) {
  // A spawn takes the references of the handles in its own copy of the options: the caller's
  // list and handles must still name the task afterwards.
  parla::Runtime rt(config());
  std::atomic<int> order{0};
  parla::Task a = rt.spawn({}, [&] { return order.fetch_add(1); });
  const std::vector<parla::Dep> deps{a};
  parla::Task b = rt.spawn({.dependencies = deps}, [&] { return order.fetch_add(1); });
  parla::Task c = rt.spawn({.dependencies = deps}, [&] { return order.fetch_add(1); });
  ASSERT_TRUE(std::holds_alternative<parla::Task>(deps[0].value()));
  EXPECT_EQ(std::get<parla::Task>(deps[0].value()), a);
  rt.wait(b);
  rt.wait(c);
  EXPECT_EQ(a.get<int>(), 0);
  EXPECT_GT(b.get<int>(), 0);
  EXPECT_GT(c.get<int>(), 0);
}

TEST_P(DependencyTest, SpawnAfterOrdersAWideStencilLikeSpawn) {
  // spawn_after (handles, no options) builds the same graph as spawn with dependencies: a
  // 1-D stencil whose every point reads its neighbours of the previous row, more than four
  // predecessors for the wide points (the edges then leave the record's inline array).
  parla::Runtime rt(config());
  constexpr int k_width = 8;
  constexpr int k_steps = 60;
  std::vector<std::vector<long>> value(k_steps, std::vector<long>(k_width, -1));
  std::vector<parla::Task> prev(k_width);
  std::vector<parla::Task> cur(k_width);
  for (int t = 0; t < k_steps; ++t) {
    for (int p = 0; p < k_width; ++p) {
      const int radius = p % 4 == 3 ? 3 : 1;
      const int lo = std::max(0, p - radius);
      const int hi = std::min(k_width - 1, p + radius);
      std::span<const parla::Task> after;
      if (t > 0) after = std::span<const parla::Task>(prev).subspan(lo, hi - lo + 1);
      cur[p] = rt.spawn_after(after, [&value, t, p, lo, hi] {
        long sum = 1;
        if (t > 0) {
          for (int q = lo; q <= hi; ++q) {
            if (value[t - 1][q] < 0) return -1L;  // ran before an input: the order is broken
            sum += value[t - 1][q] % 1000;
          }
        }
        value[t][p] = sum;
        return sum;
      });
    }
    std::swap(prev, cur);
  }
  rt.wait_all();
  for (int p = 0; p < k_width; ++p) EXPECT_EQ(prev[p].get<long>(), value[k_steps - 1][p]);
  for (const auto& row : value) {
    for (long v : row) EXPECT_GT(v, 0);
  }
}

TEST_P(DependencyTest, SpawnAfterTakesAListAndFinishedTasks) {
  parla::Runtime rt(config());
  std::atomic<int> order{0};
  parla::Task a = rt.spawn_after({}, [&] { return order.fetch_add(1); });
  parla::Task b = rt.spawn_after({a}, [&] { return order.fetch_add(1); });
  parla::Task c = rt.spawn_after({a, b}, [&](parla::TaskContext&) { return order.fetch_add(1); });
  rt.wait(c);
  EXPECT_EQ(a.get<int>(), 0);
  EXPECT_EQ(b.get<int>(), 1);
  EXPECT_EQ(c.get<int>(), 2);
  // The handles are not consumed, and a finished predecessor is already satisfied.
  parla::Task d = rt.spawn_after({a, c}, [] { return 7; });
  rt.wait(d);
  EXPECT_EQ(d.get<int>(), 7);
  EXPECT_EQ(a.get<int>(), 0);
}

long fib(parla::Runtime& rt, int n) {
  if (n < 2) return n;
  parla::Task a = rt.spawn({}, [&rt, n] { return fib(rt, n - 1); });
  const long b = fib(rt, n - 2);
  rt.wait(a);  // inside a body: the waiting worker runs other tasks
  return a.get<long>() + b;
}

TEST_P(DependencyTest, NestedSpawnAndWaitDoNotDeadlock) {
  parla::Runtime rt(config());
  parla::Task root = rt.spawn({}, [](parla::TaskContext& ctx) { return fib(ctx.runtime(), 16); });
  rt.wait(root);
  EXPECT_EQ(root.get<long>(), 987);
}

// Bodies run by waiting threads nest on those threads' stacks. The depth must stay bounded by
// the task tree's depth (plus a small constant), not grow with the number of tasks, or deep
// graphs overflow the stack (Python bodies hit the interpreter's recursion limit first).
thread_local int t_body_depth = 0;
std::atomic<int> g_max_body_depth{0};

long fib_depth(parla::Runtime& rt, int n) {
  struct Enter {
    Enter() {
      const int d = ++t_body_depth;
      int seen = g_max_body_depth.load();
      while (d > seen && !g_max_body_depth.compare_exchange_weak(seen, d)) {
      }
    }
    ~Enter() { --t_body_depth; }
  } enter;
  if (n < 2) return n;
  parla::Task a = rt.spawn({}, [&rt, n] { return fib_depth(rt, n - 1); });
  parla::Task b = rt.spawn({}, [&rt, n] { return fib_depth(rt, n - 2); });
  rt.wait(a);
  rt.wait(b);
  return a.get<long>() + b.get<long>();
}

TEST_P(DependencyTest, HelpingWhileWaitingKeepsTheStackBounded) {
  parla::Runtime rt(config());
  constexpr int n = 18;  // 8361 tasks, tree depth 18
  g_max_body_depth = 0;
  long result = 0;
  parla::Task root = rt.spawn({}, [&](parla::TaskContext& ctx) {
    result = fib_depth(ctx.runtime(), n);
  });
  rt.wait(root);  // the main thread helps too
  EXPECT_EQ(result, 2584);
  // Depth-first on the thread's own deque: at most the tree depth, plus the few levels of
  // unrelated work a thread may take before it stops stealing (k_max_help_depth = 8).
  EXPECT_LE(g_max_body_depth.load(), n + 8 + 2);
}

TEST_P(DependencyTest, NestedWaitOnGpuWorker) {
  if (gpus() == 0) GTEST_SKIP() << "needs a simulated GPU";
  parla::Runtime rt(config());
  parla::Task outer = rt.spawn({.placement = parla::gpu(0)}, [](parla::TaskContext& ctx) {
    parla::Task inner = ctx.runtime().spawn({.placement = parla::gpu(0)}, [] { return 41; });
    ctx.runtime().wait(inner);
    return inner.get<int>() + 1;
  });
  rt.wait(outer);
  EXPECT_EQ(outer.get<int>(), 42);
}

TEST_P(DependencyTest, DeferredCompletionWaitsForTheToken) {
  parla::Runtime rt(config());
  std::mutex m;
  std::condition_variable cv;
  parla::CompletionToken token;
  std::atomic<bool> fulfilled{false};
  std::atomic<bool> dependent_saw_fulfilled{false};
  parla::Task external = rt.spawn({.name = "external"}, [&](parla::TaskContext& ctx) {
    std::lock_guard<std::mutex> lock(m);
    token = ctx.defer_completion();
    cv.notify_all();
    return 7;
  });
  parla::Task dependent = rt.spawn({.dependencies = {external}},
                                   [&] { dependent_saw_fulfilled = fulfilled.load(); });
  ASSERT_TRUE(parla::test::wait_for(m, cv, [&] { return token.pending(); }));
  std::thread event([&] {
    std::lock_guard<std::mutex> lock(m);
    fulfilled = true;
    token.fulfill();
  });
  rt.wait(dependent);
  event.join();
  EXPECT_TRUE(dependent_saw_fulfilled.load());
  EXPECT_EQ(external.get<int>(), 7);
}

TEST_P(DependencyTest, DroppedTokenFailsTheTask) {
  parla::Runtime rt(config());
  parla::Task t = rt.spawn({.name = "lost"}, [](parla::TaskContext& ctx) {
    parla::CompletionToken dropped = ctx.defer_completion();
  });
  try {
    rt.wait(t);
    FAIL() << "a dropped token must fail its task";
  } catch (const parla::TaskError& e) {
    EXPECT_EQ(e.task_name(), "lost");
    EXPECT_NE(std::string(e.what()).find("without being fulfilled"), std::string::npos) << e.what();
  }
}

TEST_P(DependencyTest, SelfDependencyIsRejected) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  EXPECT_THROW(rt.spawn({.key = T[0], .dependencies = {T[0]}}, [] {}), parla::Error);
  rt.spawn({.key = T[0]}, [] {});  // the failed spawn did not claim the key
  rt.wait(T[0]);
}

PARLA_INSTANTIATE_SWEEP(DependencyTest);

// One worker on a rank with more cores: the thread waiting in wait_all() has a core of its
// own, so it must take work queued after it started waiting (here: after it had gone to
// sleep) instead of leaving it to the one worker. Two tasks that can only finish together
// prove it: `first` spins until `second` has started, and with the worker inside `first`
// only the waiting thread can run `second`. (Before, the waiting thread slept until
// everything had finished, and `first` gave up after 5 s.)
TEST(WaitingThread, HelpsWithWorkQueuedWhileItSleepsWhenTheWorkersLeaveACoreFree) {
  if (parla::test::thread_cores().size() < 2) GTEST_SKIP() << "needs two cores (one worker and the waiting thread)";
  // The deadlock timeout also bounds how long a waiting thread sleeps: longer than `first` spins.
  parla::Runtime rt(parla::RuntimeConfig{.num_workers = 1, .deadlock_timeout = 30.0});
  std::atomic<bool> second_started{false};
  std::atomic<bool> gave_up{false};
  std::thread::id second_ran_on;
  rt.spawn({}, [&](parla::TaskContext& ctx) {
    // Long enough for the waiting thread to stop spinning and sleep.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    parla::Runtime& r = ctx.runtime();
    // The worker pops the newest task of its queue (`first`) and a thief takes the oldest.
    r.spawn({}, [&] {
      second_ran_on = std::this_thread::get_id();
      second_started = true;
    });
    r.spawn({}, [&] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!second_started.load()) {
        if (std::chrono::steady_clock::now() > deadline) {
          gave_up = true;
          return;
        }
        std::this_thread::yield();
      }
    });
  });
  rt.wait_all();
  EXPECT_FALSE(gave_up.load()) << "the waiting thread never took the second task";
  EXPECT_EQ(second_ran_on, std::this_thread::get_id());
}

}  // namespace
