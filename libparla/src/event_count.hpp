// EventCount: the two-phase sleep of idle threads (no lost wake-ups, no busy loop).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace parla::detail {

/// A sleeper calls prepare_wait(), rechecks every place work can appear, then either
/// cancel_wait() (found some) or commit_wait(key) (sleeps unless a notify happened since
/// prepare_wait). A notifier publishes its work first, then calls notify_*().
///
/// Why no wake-up is lost: the sleeper's seq_cst increment of m_waiters precedes its
/// recheck; the notifier's publication precedes its seq_cst fence and its read of
/// m_waiters. In the single total order either the notifier sees the waiter (and bumps the
/// epoch, which commit_wait observes under the mutex) or the sleeper's recheck sees the work
/// (the classic Dekker pattern; same design as Taskflow's Notifier and Vyukov's
/// eventcount). The mutex is only taken when somebody actually sleeps, so the hot path of a
/// busy runtime is one fence and one load.
class EventCount {
 public:
  std::uint32_t prepare_wait() noexcept {
    m_waiters.fetch_add(1, std::memory_order_seq_cst);
    return m_epoch.load(std::memory_order_seq_cst);
  }

  void cancel_wait() noexcept { m_waiters.fetch_sub(1, std::memory_order_seq_cst); }

  /// Sleeps until notified after prepare_wait() returned `key`, or until `deadline`.
  /// Returns false on timeout.
  template <class Clock, class Duration>
  bool commit_wait(std::uint32_t key, std::chrono::time_point<Clock, Duration> deadline) {
    bool notified = true;
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      // relaxed: m_epoch only changes under m_mutex, which we hold.
      while (m_epoch.load(std::memory_order_relaxed) == key) {
        if (m_cv.wait_until(lock, deadline) == std::cv_status::timeout) {
          notified = m_epoch.load(std::memory_order_relaxed) != key;
          break;
        }
      }
    }
    m_waiters.fetch_sub(1, std::memory_order_seq_cst);
    return notified;
  }

  /// Sleeps until notified after prepare_wait() returned `key`.
  void commit_wait(std::uint32_t key) {
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      // relaxed: m_epoch only changes under m_mutex, which we hold.
      m_cv.wait(lock, [&] { return m_epoch.load(std::memory_order_relaxed) != key; });
    }
    m_waiters.fetch_sub(1, std::memory_order_seq_cst);
  }

  void notify_one() { notify(false); }
  void notify_all() { notify(true); }

 private:
  void notify(bool all) {
    if (waiters_after_publication() == 0) return;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_epoch.fetch_add(1, std::memory_order_seq_cst);
    }
    if (all) {
      m_cv.notify_all();
    } else {
      m_cv.notify_one();
    }
  }

  std::uint32_t waiters_after_publication() noexcept {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer does not model fences; a seq_cst read-modify-write gives the same
    // ordering (it is ordered after the publication and reads the latest count).
    return m_waiters.fetch_add(0, std::memory_order_seq_cst);
#else
    // seq_cst fence: orders the caller's publication of work before the read of m_waiters.
    // A fence, not an RMW: a busy runtime only reads m_waiters, so its line stays shared.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return m_waiters.load(std::memory_order_relaxed);
#endif
  }

  alignas(64) std::atomic<std::uint32_t> m_waiters{0};
  std::atomic<std::uint32_t> m_epoch{0};
  std::mutex m_mutex;
  std::condition_variable m_cv;
};

}  // namespace parla::detail
