// ChaseLevDeque: the lock-free work-stealing deque of one worker.
//
// Chase & Lev, "Dynamic Circular Work-Stealing Deque" (SPAA 2005), with the memory orders of
// Lê, Pop, Cohen & Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
// Models" (PPoPP 2013). Two deliberate differences from the paper's fence-based version:
//  - the element is published with a release store of `bottom` (read with acquire by
//    thieves) instead of a release fence + relaxed store: the same code on x86 and ARM, and
//    ThreadSanitizer understands it (it does not model standalone fences);
//  - the store/load pairs that race between pop() and steal() are seq_cst operations
//    instead of relaxed operations around a seq_cst fence: on x86 a seq_cst load is a plain
//    load, and the exchange in pop() is the one full barrier the paper's fence costs anyway.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace parla::detail {

template <class T>
class ChaseLevDeque {
  static_assert(std::is_pointer_v<T>, "ChaseLevDeque holds pointers (nullptr means empty)");

 public:
  explicit ChaseLevDeque(std::int64_t capacity = 1024) {
    m_arrays.push_back(std::make_unique<Array>(capacity));
    m_array.store(m_arrays.back().get(), std::memory_order_relaxed);
  }

  /// Owner only.
  void push(T item) {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
    // acquire: a thief's successful CAS on top happened before we reuse its slot.
    const std::int64_t t = m_top.load(std::memory_order_acquire);
    Array* a = m_array.load(std::memory_order_relaxed);
    if (b - t > a->capacity - 1) a = grow(a, t, b);
    a->put(b, item);
    // release: publishes the slot (and the task it points to) to thieves (acquire loads).
    m_bottom.store(b + 1, std::memory_order_release);
  }

  /// Owner only. Takes the most recently pushed item (LIFO: cache-warm).
  T pop() {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed) - 1;
    Array* a = m_array.load(std::memory_order_relaxed);
    // seq_cst: reserve slot b before reading top, so that a concurrent steal() of the same
    // last element is detected by one of us (Dekker-style store->load ordering).
    m_bottom.exchange(b, std::memory_order_seq_cst);
    std::int64_t t = m_top.load(std::memory_order_seq_cst);
    if (t > b) {  // empty
      // release: keeps `bottom` a release sequence for thieves' acquire loads.
      m_bottom.store(b + 1, std::memory_order_release);
      return nullptr;
    }
    T item = a->get(b);
    if (t == b) {
      // Last element: race with thieves through the CAS on top (seq_cst, as above).
      if (!m_top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                         std::memory_order_relaxed)) {
        item = nullptr;
      }
      m_bottom.store(b + 1, std::memory_order_release);
    }
    return item;
  }

  /// Any thread. Takes the oldest item, or nullptr when empty or when it lost a race.
  T steal() {
    // seq_cst loads: top must be read before bottom (paper: acquire + seq_cst fence).
    std::int64_t t = m_top.load(std::memory_order_seq_cst);
    const std::int64_t b = m_bottom.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    // acquire: the array the owner grew into is fully copied before it is published.
    Array* a = m_array.load(std::memory_order_acquire);
    T item = a->get(t);
    if (!m_top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
      return nullptr;  // another thief or the owner took it
    }
    return item;
  }

  /// A snapshot; may be stale by the time it returns.
  [[nodiscard]] bool empty() const noexcept {
    return m_bottom.load(std::memory_order_relaxed) <= m_top.load(std::memory_order_relaxed);
  }

 private:
  struct Array {
    explicit Array(std::int64_t cap)
        : capacity(cap), mask(cap - 1), slots(std::make_unique<std::atomic<T>[]>(static_cast<std::size_t>(cap))) {}
    // relaxed: slots are published by the release/acquire on bottom and on m_array.
    void put(std::int64_t i, T v) noexcept { slots[static_cast<std::size_t>(i & mask)].store(v, std::memory_order_relaxed); }
    T get(std::int64_t i) const noexcept { return slots[static_cast<std::size_t>(i & mask)].load(std::memory_order_relaxed); }
    std::int64_t capacity;
    std::int64_t mask;
    std::unique_ptr<std::atomic<T>[]> slots;
  };

  Array* grow(Array* old, std::int64_t t, std::int64_t b) {
    auto bigger = std::make_unique<Array>(old->capacity * 2);
    for (std::int64_t i = t; i < b; ++i) bigger->put(i, old->get(i));
    Array* a = bigger.get();
    // Thieves may still read the old array; it is kept until the deque dies.
    m_arrays.push_back(std::move(bigger));
    // release: the copied slots are visible to thieves that load the new array (acquire).
    m_array.store(a, std::memory_order_release);
    return a;
  }

  alignas(64) std::atomic<std::int64_t> m_top{0};
  alignas(64) std::atomic<std::int64_t> m_bottom{0};
  alignas(64) std::atomic<Array*> m_array{nullptr};
  std::vector<std::unique_ptr<Array>> m_arrays;  // owner only
};

}  // namespace parla::detail
