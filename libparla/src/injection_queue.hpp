// InjectionQueue: how tasks reach a device's workers from other threads.
#pragma once

#include <atomic>

#include <parla/detail/task_record.hpp>

namespace parla::detail {

/// A lock-free multi-producer stack of tasks, intrusive through TaskRecord::m_next.
/// Producers push with one CAS; a consumer takes everything at once with one exchange (so
/// there is no ABA problem and no consumer lock) and moves the batch into its own
/// work-stealing deque, from which idle siblings steal. Order inside a batch is
/// newest-first; tasks here are independent, so no order is promised.
class InjectionQueue {
 public:
  void push(TaskRecord* task) noexcept {
    TaskRecord* head = m_head.load(std::memory_order_relaxed);
    do {
      task->m_next.store(head, std::memory_order_relaxed);
      // release: the task's fields (and m_next) are visible to the consumer's acquire.
    } while (!m_head.compare_exchange_weak(head, task, std::memory_order_release,
                                           std::memory_order_relaxed));
  }

  /// Takes every queued task (newest first, linked by m_next), or nullptr.
  TaskRecord* take_all() noexcept {
    // Cheap check first so idle polling does not bounce the line between cores.
    // seq_cst: part of the sleep protocol (EventCount): a worker rechecks the queues
    // after announcing it is about to sleep.
    if (m_head.load(std::memory_order_seq_cst) == nullptr) return nullptr;
    // acquire: pairs with the producers' release CAS.
    return m_head.exchange(nullptr, std::memory_order_acquire);
  }

  [[nodiscard]] bool empty() const noexcept {
    return m_head.load(std::memory_order_seq_cst) == nullptr;
  }

 private:
  alignas(64) std::atomic<TaskRecord*> m_head{nullptr};
};

}  // namespace parla::detail
