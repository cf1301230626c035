// Resources: vcus and memory reservations, sharing up to capacity, errors at spawn.
#include <atomic>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

class ResourceTest : public RuntimeSweep {
 protected:
  parla::RuntimeConfig small_gpus() const {
    parla::RuntimeConfig c = config();
    c.sim_gpu_memory = 100;
    return c;
  }
};

// Tasks that defer completion hold their reservation until the token is fulfilled, so the
// number holding a device at once is observable without timing: exactly capacity/request.
TEST_P(ResourceTest, ReservationsShareADeviceUpToItsCapacity) {
  parla::Runtime rt(small_gpus());
  for (const parla::Placement& where : all_devices()) {
    std::mutex m;
    std::condition_variable cv;
    std::vector<parla::CompletionToken> tokens;
    std::atomic<int> holding{0};
    std::atomic<int> max_holding{0};
    std::vector<parla::Task> tasks;
    for (int i = 0; i < 10; ++i) {
      tasks.push_back(rt.spawn({.placement = where, .vcus = 0.25}, [&](parla::TaskContext& ctx) {
        const int now = holding.fetch_add(1) + 1;
        int seen = max_holding.load();
        while (now > seen && !max_holding.compare_exchange_weak(seen, now)) {
        }
        std::lock_guard<std::mutex> lock(m);
        tokens.push_back(ctx.defer_completion());
        cv.notify_all();
      }));
    }
    std::size_t fulfilled = 0;
    while (fulfilled < tasks.size()) {
      ASSERT_TRUE(parla::test::wait_for(m, cv, [&] {
        return tokens.size() == std::min<std::size_t>(tasks.size(), fulfilled + 4);
      })) << where.to_string() << ": " << tokens.size() << " tokens, " << fulfilled << " fulfilled";
      // Four hold the device; the rest are ready but parked for resources.
      const std::size_t started = tokens.size();
      std::size_t parked = 0;
      for (auto& t : tasks) parked += t.state() == parla::TaskState::ready ? 1 : 0;
      EXPECT_EQ(parked, tasks.size() - started) << where.to_string();
      // Release one holder: exactly one more may start.
      parla::CompletionToken t;
      {
        std::lock_guard<std::mutex> lock(m);
        t = std::move(tokens[fulfilled]);
      }
      holding.fetch_sub(1);
      t.fulfill();
      ++fulfilled;
    }
    for (auto& t : tasks) rt.wait(t);
    EXPECT_EQ(max_holding.load(), 4) << where.to_string();
  }
}

TEST_P(ResourceTest, MemoryIsAccountedPerDevice) {
  parla::Runtime rt(small_gpus());
  for (int g = 0; g < gpus(); ++g) {
    std::atomic<int> holding{0};
    std::atomic<int> violations{0};
    std::vector<parla::Task> tasks;
    for (int i = 0; i < 12; ++i) {
      tasks.push_back(rt.spawn({.placement = parla::gpu(g), .memory = 40}, [&] {
        if (holding.fetch_add(1) + 1 > 2) violations.fetch_add(1);  // 2 x 40 <= 100 < 3 x 40
        holding.fetch_sub(1);
      }));
    }
    for (auto& t : tasks) rt.wait(t);
    EXPECT_EQ(violations.load(), 0);
  }
}

TEST_P(ResourceTest, RequestLargerThanCapacityFailsAtSpawn) {
  parla::Runtime rt(small_gpus());
  EXPECT_THROW(rt.spawn({.vcus = 1.5}, [] {}), parla::Error);
  EXPECT_THROW(rt.spawn({.vcus = -0.5}, [] {}), parla::Error);
  if (gpus() > 0) {
    try {
      rt.spawn({.placement = parla::gpu(0), .memory = 101, .name = "huge"}, [] {});
      FAIL() << "101 bytes on a 100-byte GPU must fail at spawn";
    } catch (const parla::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("huge"), std::string::npos) << what;
      EXPECT_NE(what.find("gpu(0), which has 100"), std::string::npos) << what;
    }
    // A per-option hint overrides the task's request.
    parla::Task ok = rt.spawn({.placement = parla::gpu(0).with({.vcus = 0.5, .memory = 10}), .memory = 101},
                              [] { return 1; });
    rt.wait(ok);
    EXPECT_EQ(ok.get<int>(), 1);
  }
}

TEST_P(ResourceTest, ZeroResourceTasksNeverWaitForResources) {
  parla::Runtime rt(config());
  std::mutex m;
  std::condition_variable cv;
  parla::CompletionToken hog;
  // A task holding the whole cpu does not block tasks that reserve nothing.
  parla::Task big = rt.spawn({.vcus = 1.0}, [&](parla::TaskContext& ctx) {
    std::lock_guard<std::mutex> lock(m);
    hog = ctx.defer_completion();
    cv.notify_all();
  });
  ASSERT_TRUE(parla::test::wait_for(m, cv, [&] { return hog.pending(); }));
  parla::Task free_task = rt.spawn({}, [] { return 3; });
  rt.wait(free_task);
  EXPECT_EQ(free_task.get<int>(), 3);
  EXPECT_FALSE(big.done());
  {
    std::lock_guard<std::mutex> lock(m);
    hog.fulfill();
  }
  rt.wait(big);
}

PARLA_INSTANTIATE_SWEEP(ResourceTest);

}  // namespace
