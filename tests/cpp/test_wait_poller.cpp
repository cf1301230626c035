// Runtime::add_wait_poller: a thread that waits (and an idle worker) drives registered
// pollers itself instead of sleeping, as the MPI layer's progress engine is driven by the
// thread that waits for a message.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "test_common.hpp"

namespace {

class WaitPollerTest : public parla::test::RuntimeSweep {};

/// Completes handed-over tokens, one per poll, from whichever thread polls; remembers who.
class TokenPoller final : public parla::WaitPoller {
 public:
  void add(parla::CompletionToken t) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_tokens.push_back(std::move(t));
    m_outstanding.fetch_add(1);
  }
  parla::PollResult poll() override {
    if (m_outstanding.load() == 0)
      return parla::PollResult::idle;
    m_polls.fetch_add(1);
    parla::CompletionToken t;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (m_tokens.empty())
        return parla::PollResult::busy;
      t = std::move(m_tokens.back());
      m_tokens.pop_back();
      m_pollers.push_back(std::this_thread::get_id());
    }
    m_outstanding.fetch_sub(1);
    t.fulfill();
    return parla::PollResult::progressed;
  }
  std::vector<std::thread::id> pollers() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_pollers;
  }
  std::atomic<int> m_polls{0};

 private:
  std::mutex m_mutex;
  std::vector<parla::CompletionToken> m_tokens;
  std::vector<std::thread::id> m_pollers;
  std::atomic<int> m_outstanding{0};
};

// Nothing but the waiting thread fulfils the tokens: the wait returns because it polled.
TEST_P(WaitPollerTest, TheWaitingThreadDrivesThePoller) {
  parla::Runtime rt(config());
  TokenPoller poller;
  rt.add_wait_poller(&poller);
  parla::TaskSpace msgs(rt, "msg");
  constexpr int k_tasks = 20;
  for (int i = 0; i < k_tasks; ++i) {
    parla::SpawnOptions o{.key = msgs[{i}], .run_inline = true};
    if (i > 0)
      o.dependencies = {msgs[{i - 1}]};  // a chain: each released by the last's poll
    rt.spawn(std::move(o),
             [&poller](parla::TaskContext& ctx) { poller.add(ctx.defer_completion()); });
  }
  rt.wait(msgs);
  EXPECT_EQ(static_cast<int>(poller.pollers().size()), k_tasks);
  rt.remove_wait_poller(&poller);
}

// A worker with nothing to run polls too, so a message completes while nobody waits.
TEST_P(WaitPollerTest, IdleWorkersPoll) {
  parla::Runtime rt(config());
  TokenPoller poller;
  rt.add_wait_poller(&poller);
  rt.spawn({}, [&](parla::TaskContext& ctx) { poller.add(ctx.defer_completion()); });
  rt.spawn({}, [] {});  // wakes the workers
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (poller.pollers().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(poller.pollers().size(), 1U) << "no worker polled within 20 s";
  EXPECT_NE(poller.pollers()[0], std::this_thread::get_id());
  rt.wait_all();
  rt.remove_wait_poller(&poller);
}

// After remove_wait_poller returns, no thread polls it any more.
TEST_P(WaitPollerTest, RemovedPollersAreNotPolled) {
  parla::Runtime rt(config());
  TokenPoller gone;
  rt.add_wait_poller(&gone);
  rt.remove_wait_poller(&gone);
  const int before = gone.m_polls.load();
  TokenPoller live;
  rt.add_wait_poller(&live);
  rt.spawn({.run_inline = true},
           [&live](parla::TaskContext& ctx) { live.add(ctx.defer_completion()); });
  rt.wait_all();
  EXPECT_EQ(gone.m_polls.load(), before);
  EXPECT_EQ(live.pollers().size(), 1U);
  rt.remove_wait_poller(&live);
}

PARLA_INSTANTIATE_SWEEP(WaitPollerTest);

}  // namespace
