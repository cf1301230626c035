#include "record_pool.hpp"

#include <parla/detail/task_record.hpp>

#include <cstdint>
#include <deque>
#include <mutex>
#include <new>

namespace parla::detail {

namespace {

constexpr std::size_t k_block = sizeof(TaskRecord);
constexpr std::size_t k_align = alignof(TaskRecord);
constexpr int k_batch = 16;
constexpr std::size_t k_line = 64;
constexpr std::size_t k_max_shared = 1024;  // batches (16384 records) kept for reuse

struct FreeBlock {
  FreeBlock* next;
};

static_assert(k_block >= sizeof(FreeBlock));

// Plain operator new when it aligns enough (glibc's aligned path skips its thread cache).
constexpr bool k_plain = k_align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;
void* heap_block() {
  if constexpr (k_plain) return ::operator new(k_block);
  return ::operator new(k_block, std::align_val_t{k_align});
}
void heap_free(void* p) noexcept {
  if constexpr (k_plain) {
    ::operator delete(p);
  } else {
    ::operator delete(p, std::align_val_t{k_align});
  }
}

/// Batches handed between threads (k_batch blocks each), oldest first.
class SharedBatches {
 public:
  bool take(FreeBlock*& out) {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_batches.empty()) return false;
    // The oldest batch: the longest out of its freeing core's cache.
    out = m_batches.front();
    m_batches.pop_front();
    return true;
  }
  void give(FreeBlock* batch) noexcept {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (m_batches.size() < k_max_shared) {
        try {
          m_batches.push_back(batch);
          return;
        } catch (...) {  // NOLINT(bugprone-empty-catch): fall through to the heap
        }
      }
    }
    release(batch);
  }
  static void release(FreeBlock* list) noexcept {
    while (list != nullptr) {
      FreeBlock* next = list->next;
      heap_free(list);
      list = next;
    }
  }

 private:
  std::mutex m_mutex;
  std::deque<FreeBlock*> m_batches;
};

SharedBatches& shared() {
  // Never destroyed: records may be freed by threads that outlive static destruction.
  static SharedBatches* s = new SharedBatches();  // NOLINT(cppcoreguidelines-owning-memory)
  return *s;
}

// Set once the thread's cache is destroyed: a record freed later by another thread_local's
// destructor goes straight to the heap.
thread_local bool t_cache_gone = false;

class LocalCache {
 public:
  LocalCache() = default;
  LocalCache(const LocalCache&) = delete;
  LocalCache& operator=(const LocalCache&) = delete;
  ~LocalCache() {
    // The thread ends: its blocks go back to the heap (a batch would also do, but the
    // thread's blocks may be many and nobody may need them).
    SharedBatches::release(m_head);
    m_head = nullptr;
    m_count = 0;
    t_cache_gone = true;
  }

  void* allocate() {
    if (m_head == nullptr && !refill()) return heap_block();
    FreeBlock* b = m_head;
    m_head = b->next;
    --m_count;
    // The next block was most likely freed on another core: ask for all of its lines now, for
    // writing, so the next spawn's constructor does not stall on them one miss at a time (a
    // record is 8 lines; its stores used to wait at the spawn's first atomic instruction).
    if (m_head != nullptr) {
      for (std::size_t off = 0; off < k_block; off += k_line) {
        __builtin_prefetch(reinterpret_cast<const char*>(m_head) + off, 1, 3);
      }
    }
    return b;
  }

  void free(void* p) noexcept {
    auto* b = static_cast<FreeBlock*>(p);
    b->next = m_head;
    m_head = b;
    if (++m_count >= 2 * k_batch) {
      // Keep the k_batch most recently freed blocks (warm in this core's cache, for this
      // thread's next spawns) and hand the older ones to the shared batches.
      FreeBlock* last_kept = m_head;
      for (int i = 1; i < k_batch; ++i) last_kept = last_kept->next;
      FreeBlock* older = last_kept->next;
      last_kept->next = nullptr;
      m_count = k_batch;
      shared().give(older);
    }
  }

 private:
  bool refill() {
    FreeBlock* batch = nullptr;
    if (!shared().take(batch)) return false;
    m_head = batch;
    m_count = k_batch;
    return true;
  }

  FreeBlock* m_head = nullptr;
  int m_count = 0;
};

thread_local LocalCache t_cache;

}  // namespace

void* pool_allocate_record(std::size_t bytes) {
  // TaskRecord is final, so every request is for one block.
  if (bytes != k_block) throw std::bad_alloc();
  if (t_cache_gone) return heap_block();
  return t_cache.allocate();
}

void pool_free_record(void* p) noexcept {
  if (p == nullptr) return;
  if (t_cache_gone) {
    heap_free(p);
    return;
  }
  t_cache.free(p);
}

}  // namespace parla::detail
