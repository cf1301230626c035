// TaskSpace keys, names, slices, placeholders and waits on spaces.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

class TaskSpaceTest : public RuntimeSweep {};

TEST_P(TaskSpaceTest, IntegerTupleAndStringKeysHoldResults) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  rt.spawn({.key = T[1]}, [] { return 1; });
  rt.spawn({.key = T[{1, 2}]}, [] { return 12; });
  rt.spawn({.key = T["setup"]}, [] { return std::string("ready"); });
  rt.wait(T);
  EXPECT_EQ(T[1].result<int>(), 1);
  EXPECT_EQ((T[{1, 2}].result<int>()), 12);
  EXPECT_EQ(T["setup"].result<std::string>(), "ready");
  EXPECT_EQ(T[1].name(), "T[1]");
  EXPECT_EQ((T[{1, 2}].name()), "T[1,2]");
  EXPECT_EQ(T["setup"].name(), "T[\"setup\"]");
  EXPECT_EQ(T.size(), 3U);
}

TEST_P(TaskSpaceTest, ContextSeesItsNameAndDevice) {
  parla::Runtime rt(config());
  parla::TaskSpace S(rt, "S");
  rt.spawn({.key = S[7]}, [](parla::TaskContext& ctx) { return ctx.name() + "@" + ctx.device().name(); });
  rt.wait(S[7]);
  EXPECT_EQ(S[7].result<std::string>(), "S[7]@cpu");
}

TEST_P(TaskSpaceTest, SpawningAKeyTwiceIsAnErrorNamingTheKey) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  rt.spawn({.key = T[3]}, [] {});
  try {
    rt.spawn({.key = T[3]}, [] {});
    FAIL() << "second spawn of T[3] did not throw";
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("T[3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("spawned twice"), std::string::npos) << e.what();
  }
  rt.wait(T[3]);
}

TEST_P(TaskSpaceTest, ShapeBoundsKeys) {
  parla::Runtime rt(config());
  parla::TaskSpace G(rt, "G", {2, 3});
  rt.spawn({.key = G[{1, 2}]}, [] { return 5; });
  EXPECT_THROW(((void)G[{2, 0}].task()), parla::Error);
  EXPECT_THROW((void)G[4].task(), parla::Error);
  EXPECT_FALSE((G[{2, 0}].spawned()));  // asking is not referencing: no error, never spawned
  try {
    (void)G[{0, 3}].task();
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape (2, 3)"), std::string::npos) << e.what();
  }
  rt.wait(G[{1, 2}]);
  EXPECT_EQ((G[{1, 2}].result<int>()), 5);
}

// Threads spawning at once into one space, each naming keys the others spawn (maybe not yet):
// every element is made once, and every task runs after the element it depends on.
void spawn_crossing_chains(parla::Runtime& rt, parla::TaskSpace& T, int rows) {
  constexpr int k_threads = 4;
  std::atomic<int> clock{0};
  std::vector<std::atomic<int>> finished(static_cast<std::size_t>(rows * k_threads));
  std::vector<std::atomic<int>> saw(static_cast<std::size_t>(rows * k_threads));
  auto at = [](int i, int k) { return static_cast<std::size_t>(i * k_threads + k); };
  std::vector<std::thread> spawners;
  for (int k = 0; k < k_threads; ++k) {
    spawners.emplace_back([&, k] {
      for (int i = 0; i < rows; ++i) {
        const int from = (k + 1) % k_threads;  // spawned by the next thread
        std::vector<parla::Dep> deps;
        if (i > 0) deps.emplace_back(T[{i - 1, from}]);
        rt.spawn({.key = T[{i, k}], .dependencies = std::move(deps)}, [&, i, k, from] {
          saw[at(i, k)] = i > 0 ? finished[at(i - 1, from)].load() : 0;
          finished[at(i, k)] = 1 + clock.fetch_add(1);
        });
      }
    });
  }
  for (auto& t : spawners) t.join();
  rt.wait(T);
  for (int i = 0; i < rows; ++i) {
    for (int k = 0; k < k_threads; ++k) {
      ASSERT_GT(finished[at(i, k)].load(), 0) << "T[" << i << ", " << k << "] did not run";
      if (i > 0) {
        EXPECT_GT(saw[at(i, k)].load(), 0) << "T[" << i << ", " << k << "] ran before its dependency";
      }
    }
  }
}

TEST_P(TaskSpaceTest, ShapedSpaceKeysMeetAcrossSpawningThreads) {
  parla::Runtime rt(config());
  constexpr int rows = 300;
  parla::TaskSpace T(rt, "T", {rows, 4});  // small: its elements live in a dense array
  spawn_crossing_chains(rt, T, rows);
}

TEST_P(TaskSpaceTest, UnshapedAndHugeSpacesKeysMeetAcrossSpawningThreads) {
  parla::Runtime rt(config());
  constexpr int rows = 300;
  parla::TaskSpace T(rt, "T");
  spawn_crossing_chains(rt, T, rows);
  parla::TaskSpace H(rt, "H", {std::int64_t{1} << 40, 4});  // too large for a dense array
  spawn_crossing_chains(rt, H, rows);
}

TEST_P(TaskSpaceTest, ElementNeverSpawnedFailsItsDependentsWhenTheSpaceEnds) {
  parla::Runtime rt(config());
  for (std::vector<std::int64_t> shape : {std::vector<std::int64_t>{}, std::vector<std::int64_t>{8}}) {
    parla::Task after;
    {
      parla::TaskSpace S(rt, "S", shape);
      after = rt.spawn({.dependencies = {S[3]}, .name = "after"}, [] {});
    }
    try {
      rt.wait(after);
      FAIL() << "a dependency on an element never spawned must fail";
    } catch (const parla::TaskError& e) {
      EXPECT_NE(std::string(e.what()).find("S[3] was referenced (as a dependency or by a wait) but never spawned "
                                           "before TaskSpace 'S' was destroyed"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST_P(TaskSpaceTest, ElementReferencedBeforeSpawnIsWaitedFor) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  std::atomic<int> clock{0};
  std::atomic<int> first_at{-1};
  std::atomic<int> second_at{-1};
  parla::Task after = rt.spawn({.dependencies = {T[1]}, .name = "after"},
                               [&] { second_at = clock.fetch_add(1); });
  // T[1] is only a placeholder: `after` cannot have become ready.
  EXPECT_EQ(after.state(), parla::TaskState::pending);
  EXPECT_FALSE(T[1].spawned());
  rt.spawn({.key = T[1]}, [&] { first_at = clock.fetch_add(1); });
  rt.wait(after);
  EXPECT_EQ(first_at.load(), 0);
  EXPECT_EQ(second_at.load(), 1);
}

TEST_P(TaskSpaceTest, WaitOnSliceWaitsForExactlyItsElements) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  std::atomic<int> done{0};
  for (int i = 0; i < 8; ++i) rt.spawn({.key = T[i]}, [&, i] { done.fetch_add(1); return i; });
  rt.wait(T.range(0, 4));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(T[i].task().done());
  rt.wait(T);
  EXPECT_EQ(done.load(), 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(T[i].result<int>(), i);
  EXPECT_EQ(T.range(2, 5).name(), "T[2:5]");
  EXPECT_EQ(T.range({0, 0}, {2, 3}).keys().size(), 6U);
}

TEST_P(TaskSpaceTest, ResultTypeMismatchAndEarlyReadAreClearErrors) {
  parla::Runtime rt(config());
  parla::TaskSpace T(rt, "T");
  rt.spawn({.key = T[0]}, [] { return 1.5; });
  rt.wait(T[0]);
  EXPECT_DOUBLE_EQ(T[0].result<double>(), 1.5);
  EXPECT_THROW((void)T[0].result<int>(), parla::Error);
  try {
    (void)T[9].result<int>();  // never spawned: a placeholder
    FAIL();
  } catch (const parla::Error& e) {
    EXPECT_NE(std::string(e.what()).find("wait for it first"), std::string::npos) << e.what();
  }
  rt.spawn({.key = T[9]}, [] { return 0; });  // so the space ends clean
}

TEST_P(TaskSpaceTest, LargeAndMoveOnlyResults) {
  parla::Runtime rt(config());
  parla::Task big = rt.spawn({}, [] { return std::vector<int>(1000, 7); });
  parla::Task ptr = rt.spawn({}, [] { return std::make_unique<int>(42); });
  auto payload = std::make_unique<int>(5);
  parla::Task moved = rt.spawn({}, [p = std::move(payload)] { return *p + 1; });
  rt.wait(big);
  rt.wait(ptr);
  rt.wait(moved);
  EXPECT_EQ(big.get<std::vector<int>>().size(), 1000U);
  EXPECT_EQ(*ptr.get<std::unique_ptr<int>>(), 42);
  EXPECT_EQ(moved.get<int>(), 6);
}

PARLA_INSTANTIATE_SWEEP(TaskSpaceTest);

}  // namespace
