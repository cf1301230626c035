// RecordPool: storage for TaskRecords without a malloc per spawn.
//
// A spawner allocates records and the workers that run them free them, so with malloc every
// free crossed threads (glibc's arena lock, contended by the spawner's next malloc). Each
// thread keeps a free list of record-sized blocks; a thread whose list grows past two
// batches hands its older batch to a shared queue, and a thread whose list is empty takes the
// oldest batch from it (one mutex acquisition per k_batch = 16 allocations or frees; batches
// of 64 cost a ping-pong chain about 0.5 us per message here, 16 nothing measurable).
// Blocks are ordinary operator-new allocations: past k_max_shared shared batches, a surplus
// batch goes back to the heap, so the pool keeps at most 16384 idle records (about 8 MB)
// plus 32 per thread.
#pragma once

#include <cstddef>

namespace parla::detail {

/// One TaskRecord's storage (`bytes` must be sizeof(TaskRecord)); and its release, from any thread.
void* pool_allocate_record(std::size_t bytes);
void pool_free_record(void* p) noexcept;

}  // namespace parla::detail
