// Runtime::add_wait_driver: a thread blocked in a wait (not a worker) drives a registered
// WaitDriver itself while it is busy, and so completes what it waits for without any other
// thread's help; an idle worker drives it too, a worker blocked in a wait inside a body does
// not; a removed driver is no longer driven.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "test_common.hpp"

namespace {

/// Set on a worker while a body of the test waits there: drives made then are counted.
thread_local bool t_body_waiting = false;

/// Holds completion tokens and fulfils one every `passes_per_completion` calls of drive(),
/// as a progress engine completes messages: with nobody driving it, its tasks never finish.
class TokenDriver final : public parla::WaitDriver {
 public:
  TokenDriver(parla::Runtime& rt, int passes_per_completion)
      : m_rt(rt), m_passes_per_completion(passes_per_completion) {}

  void hold(parla::CompletionToken token) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_tokens.push_back(std::move(token));
    m_pending.fetch_add(1, std::memory_order_release);
  }

  [[nodiscard]] bool busy() const noexcept override {
    return m_pending.load(std::memory_order_acquire) > 0;
  }
  void begin() noexcept override { m_active.fetch_add(1, std::memory_order_relaxed); }
  void end() noexcept override { m_active.fetch_sub(1, std::memory_order_relaxed); }
  bool drive() override {
    if (m_rt.on_worker_thread()) m_worker_drives.fetch_add(1, std::memory_order_relaxed);
    if (t_body_waiting) m_body_drives.fetch_add(1, std::memory_order_relaxed);
    if (m_active.load(std::memory_order_relaxed) <= 0) m_unbegun_drives.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_drivers.push_back(std::this_thread::get_id());
    }
    if (++m_passes % m_passes_per_completion != 0) return false;
    parla::CompletionToken token;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (m_tokens.empty()) return false;
      token = std::move(m_tokens.front());
      m_tokens.erase(m_tokens.begin());
    }
    m_pending.fetch_sub(1, std::memory_order_release);
    token.fulfill();
    return true;
  }

  [[nodiscard]] std::vector<std::thread::id> drivers() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_drivers;
  }
  [[nodiscard]] int active() const { return m_active.load(); }
  [[nodiscard]] int worker_drives() const { return m_worker_drives.load(); }
  [[nodiscard]] int body_drives() const { return m_body_drives.load(); }
  [[nodiscard]] int unbegun_drives() const { return m_unbegun_drives.load(); }

 private:
  parla::Runtime& m_rt;
  int m_passes_per_completion;
  mutable std::mutex m_mutex;
  std::vector<parla::CompletionToken> m_tokens;
  std::vector<std::thread::id> m_drivers;
  std::atomic<int> m_pending{0};
  std::atomic<int> m_active{0};
  std::atomic<int> m_worker_drives{0};
  std::atomic<int> m_body_drives{0};
  std::atomic<int> m_unbegun_drives{0};
  std::atomic<long> m_passes{0};
};

/// A task whose completion is handed to `driver` (it completes when the driver is driven).
/// Its body runs on the thread that releases it (as a communication task's does): the
/// spawner, or the drive() that completed its predecessor. A driver gets no wake-up call
/// when work arrives, so work must be there when a wait starts (the MPI engine's own thread
/// takes what arrives while nobody drives).
parla::Task spawn_driven(parla::Runtime& rt, TokenDriver& driver, parla::SpawnOptions o = {}) {
  o.run_inline = true;
  return rt.spawn(std::move(o),
                  [&driver](parla::TaskContext& ctx) { driver.hold(ctx.defer_completion()); });
}


/// A chain of `n` driven tasks: each link is released by the previous one's completion,
/// inside a drive().
std::vector<parla::Task> spawn_driven_chain(parla::Runtime& rt, TokenDriver& driver, int n) {
  std::vector<parla::Task> chain;
  for (int i = 0; i < n; ++i) {
    parla::SpawnOptions o;
    if (i > 0) o.dependencies = {chain.back()};
    chain.push_back(spawn_driven(rt, driver, std::move(o)));
  }
  return chain;
}

}  // namespace

TEST(WaitDriver, TheWaitingThreadDrivesWhatItWaitsForWhileTheWorkerIsBusy) {
  parla::Runtime rt({.num_workers = 1, .sim_gpus = 0});
  auto driver = std::make_shared<TokenDriver>(rt, 3);
  rt.add_wait_driver(driver);
  EXPECT_FALSE(rt.on_worker_thread());
  // The only worker is busy until the wait is over: no idle worker can drive.
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  parla::Task busy = rt.spawn({}, [&] {
    started = true;
    while (!release.load()) std::this_thread::yield();
  });
  while (!started.load()) std::this_thread::yield();
  std::vector<parla::Task> chain = spawn_driven_chain(rt, *driver, 20);
  rt.wait(chain.back());
  release = true;
  for (const auto& t : chain) EXPECT_EQ(t.state(), parla::TaskState::completed);
  const auto drivers = driver->drivers();
  ASSERT_FALSE(drivers.empty());
  for (const auto& id : drivers) EXPECT_EQ(id, std::this_thread::get_id());
  EXPECT_EQ(driver->active(), 0) << "begin() and end() must pair up when the wait returns";
  EXPECT_EQ(driver->unbegun_drives(), 0) << "drive() called outside begin()/end()";
  rt.wait(busy);
  rt.remove_wait_driver(driver.get());
  rt.finish();
}

TEST(WaitDriver, IdleWorkersDriveWhatNoThreadWaitsFor) {
  // The driver has no thread of its own: a chain the main thread does not wait for (it polls
  // the last task) completes only because idle workers drive it.
  std::shared_ptr<TokenDriver> driver;
  {
    parla::Runtime rt({.num_workers = 2, .sim_gpus = 0});
    driver = std::make_shared<TokenDriver>(rt, 2);
    rt.add_wait_driver(driver);
    std::vector<parla::Task> chain = spawn_driven_chain(rt, *driver, 20);
    // A driver gets no wake-up call when work arrives (the MPI engine's own thread takes it
    // then), and an idle worker sleeps after 20 ms without progress (a loaded machine may
    // deschedule it that long): a task now and then wakes one, which drives once idle.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (chain.back().state() != parla::TaskState::completed &&
           std::chrono::steady_clock::now() < deadline) {
      rt.spawn({}, [] {});
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(chain.back().state(), parla::TaskState::completed) << "no idle worker drove";
    EXPECT_GT(driver->worker_drives(), 0);
    EXPECT_EQ(driver->unbegun_drives(), 0) << "drive() called outside begin()/end()";
    rt.remove_wait_driver(driver.get());
    rt.finish();
    // Not checked here: the pass that completed the last task may still be ending on the
    // worker that made it (its end() follows the drive that fulfilled the token).
  }
  EXPECT_EQ(driver->active(), 0) << "begin() and end() must pair up once the workers stop";
}

TEST(WaitDriver, ABodyBlockedInAWaitDoesNotDrive) {
  parla::Runtime rt({.num_workers = 2, .sim_gpus = 0});
  auto driver = std::make_shared<TokenDriver>(rt, 1);
  rt.add_wait_driver(driver);
  parla::Task inner = spawn_driven(rt, *driver);
  std::atomic<bool> body_on_worker{false};
  // A body blocked in a wait on a worker must not drive (the main thread's wait or the idle
  // worker does): it may hold what the driver's completions need.
  parla::Task outer = rt.spawn({}, [&] {
    body_on_worker = rt.on_worker_thread();
    t_body_waiting = true;
    rt.wait(inner);
    t_body_waiting = false;
  });
  rt.wait(outer);
  EXPECT_TRUE(body_on_worker.load());
  EXPECT_EQ(inner.state(), parla::TaskState::completed);
  EXPECT_EQ(driver->body_drives(), 0);
  rt.remove_wait_driver(driver.get());
  rt.finish();
}

TEST(WaitDriver, ARemovedDriverIsNoLongerDriven) {
  parla::Runtime rt({.num_workers = 1, .sim_gpus = 0});
  auto driver = std::make_shared<TokenDriver>(rt, 1);
  rt.add_wait_driver(driver);
  rt.remove_wait_driver(driver.get());
  parla::Task t = spawn_driven(rt, *driver);
  ASSERT_TRUE(driver->busy());
  // A 50 ms wait for something else: a registered driver would be driven (and t completed).
  rt.wait(rt.spawn({}, [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }));
  EXPECT_TRUE(driver->drivers().empty());
  EXPECT_NE(t.state(), parla::TaskState::completed);
  // Registered again, the next wait completes it.
  rt.add_wait_driver(driver);
  rt.wait(t);
  EXPECT_EQ(t.state(), parla::TaskState::completed);
  rt.remove_wait_driver(driver.get());
  rt.finish();
}

TEST(WaitDriver, NullDriverIsRejected) {
  parla::Runtime rt({.num_workers = 1, .sim_gpus = 0});
  EXPECT_THROW(rt.add_wait_driver(nullptr), parla::Error);
}
