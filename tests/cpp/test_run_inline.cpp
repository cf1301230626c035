// SpawnOptions::run_inline (hand-off bodies run by the thread that releases them) and
// Runtime::unreported_failure (what the MPI layer's failure watchdog reads).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_common.hpp"

namespace {

class RunInlineTest : public parla::test::RuntimeSweep {};

// A chain of hand-off tasks, each completed from an outside thread (as a progress engine
// completes messages): every released run_inline task runs on that outside thread, so no
// worker is woken; an ordinary task released the same way still runs on a worker.
TEST_P(RunInlineTest, ReleasedHandOffTasksRunOnTheFulfillingThread) {
  parla::Runtime rt(config());
  constexpr int k_links = 200;  // more than one thread runs back to back: the rest go to workers
  std::mutex m;
  std::condition_variable cv;
  std::vector<parla::CompletionToken> tokens;
  std::vector<std::thread::id> ran_on(k_links);
  std::thread::id ordinary_ran_on;
  parla::TaskSpace links(rt, "link");
  for (int i = 0; i < k_links; ++i) {
    parla::SpawnOptions o{.key = links[{i}], .run_inline = true};
    if (i > 0) o.dependencies = {links[{i - 1}]};
    rt.spawn(std::move(o), [&, i](parla::TaskContext& ctx) {
      ran_on[static_cast<std::size_t>(i)] = std::this_thread::get_id();
      std::lock_guard<std::mutex> lock(m);
      tokens.push_back(ctx.defer_completion());
      cv.notify_all();
    });
  }
  parla::Task ordinary = rt.spawn({.dependencies = {links[{0}]}},
                                  [&] { ordinary_ran_on = std::this_thread::get_id(); });
  // The first link had no dependencies: the spawner ran it.
  ASSERT_EQ(ran_on[0], std::this_thread::get_id());
  std::thread engine([&] {
    for (int i = 0; i < k_links; ++i) {
      parla::CompletionToken t;
      {
        std::unique_lock<std::mutex> lock(m);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !tokens.empty(); }));
        t = std::move(tokens.back());
        tokens.pop_back();
      }
      t.fulfill();
    }
  });
  rt.wait(links.range(0, k_links));
  const std::thread::id engine_id = engine.get_id();
  engine.join();
  rt.wait(ordinary);
  for (int i = 1; i < k_links; ++i) {
    EXPECT_EQ(ran_on[static_cast<std::size_t>(i)], engine_id) << "link " << i;
  }
  EXPECT_NE(ordinary_ran_on, engine_id) << "a task without run_inline ran on the fulfilling thread";
}

// A run_inline body that completes at once releases the next one: a long chain runs to the
// end without recursion (the thread's worklist is bounded, the rest go to the workers).
TEST_P(RunInlineTest, ImmediateChainsRunToTheEnd) {
  parla::Runtime rt(config());
  constexpr int k_links = 5000;
  std::atomic<int> count{0};
  parla::TaskSpace links(rt, "link");
  // The first link waits for a gate so the whole chain is spawned before anything runs.
  std::mutex m;
  std::condition_variable cv;
  parla::CompletionToken gate;
  parla::Task first = rt.spawn({.name = "gate"}, [&](parla::TaskContext& ctx) {
    std::lock_guard<std::mutex> lock(m);
    gate = ctx.defer_completion();
    cv.notify_all();
  });
  for (int i = 0; i < k_links; ++i) {
    parla::SpawnOptions o{.key = links[{i}], .run_inline = true};
    o.dependencies = {i > 0 ? parla::Dep(links[{i - 1}]) : parla::Dep(first)};
    rt.spawn(std::move(o), [&count] { count.fetch_add(1, std::memory_order_relaxed); });
  }
  ASSERT_TRUE(parla::test::wait_for(m, cv, [&] { return gate.pending(); }));
  std::thread([&] { gate.fulfill(); }).join();
  rt.wait(links.range(0, k_links));
  EXPECT_EQ(count.load(), k_links);
}

PARLA_INSTANTIATE_SWEEP(RunInlineTest);

// A worker finishing a task that releases a hand-off task (the send of what it computed) and
// an ordinary one runs the hand-off first: queued, it would wait for the other task's body
// while a peer waits for the message.
TEST(RunInlineOnWorkers, AHandOffTaskRunsRightAfterTheTaskThatReleasedIt) {
  parla::Runtime rt({.num_workers = 1, .sim_gpus = 0, .cuda_gpus = 0});
  std::mutex m;
  std::vector<std::string> order;
  auto log = [&](const char* what) {
    std::lock_guard<std::mutex> lock(m);
    order.emplace_back(what);
  };
  std::atomic<bool> go{false};
  parla::Task producer = rt.spawn({.name = "producer"}, [&] {
    while (!go.load()) std::this_thread::yield();
    log("producer");
  });
  // The ordinary task is spawned last: its edge is walked first, so it is the worker's next
  // task (it never enters a queue), and the hand-off is the one that would be queued.
  parla::Task send = rt.spawn({.dependencies = {producer}, .name = "send", .run_inline = true},
                              [&] { log("send"); });
  parla::Task next = rt.spawn({.dependencies = {producer}, .name = "next"}, [&] { log("next"); });
  go.store(true);
  rt.wait(next);
  rt.wait(send);
  EXPECT_EQ(order, (std::vector<std::string>{"producer", "send", "next"}));
}

TEST(UnreportedFailure, ReportsAFailureNobodyPickedUpAfterTheGrace) {
  parla::Runtime rt({.num_workers = 2, .sim_gpus = 0, .cuda_gpus = 0});
  EXPECT_FALSE(rt.unreported_failure(std::chrono::milliseconds(0)).has_value());
  parla::Task t = rt.spawn({.name = "boom"}, []() -> void { throw std::runtime_error("kaboom"); });
  // Let it fail without waiting for it (a wait would report it).
  while (t.state() != parla::TaskState::failed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(rt.unreported_failure(std::chrono::hours(1)).has_value()) << "inside the grace period";
  const auto message = rt.unreported_failure(std::chrono::milliseconds(0));
  ASSERT_TRUE(message.has_value());
  EXPECT_NE(message->find("task 'boom' failed"), std::string::npos) << *message;
  EXPECT_NE(message->find("kaboom"), std::string::npos) << *message;
  EXPECT_THROW(rt.wait(t), parla::TaskError);
  EXPECT_FALSE(rt.unreported_failure(std::chrono::milliseconds(0)).has_value())
      << "a failure a wait rethrew is the program's to handle";
}

}  // namespace
