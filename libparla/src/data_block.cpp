// DataBlock and DataSlice (the public handles), and the TaskContext/Runtime entry points
// for data and streams.
#include <parla/data_block.hpp>
#include <parla/error.hpp>
#include <parla/runtime.hpp>
#include <parla/task_context.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "block_state.hpp"
#include "runtime_impl.hpp"

namespace parla {

const char* to_string(Coherence c) noexcept {
  switch (c) {
    case Coherence::invalid: return "invalid";
    case Coherence::shared: return "shared";
    case Coherence::modified: return "modified";
  }
  return "?";
}

DataSlice::DataSlice(const DataBlock& block)
    : m_state(block.state()), m_offset(0), m_bytes(block.valid() ? block.size() : 0) {}

std::string DataSlice::name() const {
  if (!m_state) return "<empty data block>";
  if (m_offset == 0 && m_bytes == m_state->bytes) return m_state->name;
  return m_state->name + "[" + std::to_string(m_offset) + ":" + std::to_string(m_offset + m_bytes) + "]";
}

namespace {

std::string default_name(const void* p) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "block@%p", p);
  return buf;
}

std::shared_ptr<detail::BlockState> make_block(Runtime& rt, void* host, std::size_t bytes, std::string name,
                                               bool owned) {
  if (bytes == 0) throw Error("a DataBlock needs at least one byte (got 0 bytes for '" + name + "')");
  auto st = std::make_shared<detail::BlockState>(&rt.impl(), std::move(name), bytes, host, owned);
  if (st->name.empty()) st->name = default_name(st.get());
  rt.impl().register_block(st);
  return st;
}

/// Asks for transparent huge pages under the 2 MiB-aligned part of a large block, before its
/// pages are first touched (as NumPy does for its arrays). A strided walk over a big array —
/// a column halo, one cell per row — otherwise takes a TLB miss on every cell: the periodic
/// column exchange of an 8192 × 8192 float64 array went 22 → 14 µs cold with them. Advice
/// only: ignored where THP is off, and the memory stays the allocator's to free.
void advise_huge_pages(void* p, std::size_t bytes) {
  constexpr std::uintptr_t k_huge = std::uintptr_t{2} << 20;
  if (p == nullptr || bytes < 2 * k_huge) return;
  const auto at = reinterpret_cast<std::uintptr_t>(p);  // NOLINT: address arithmetic for madvise
  const std::uintptr_t begin = (at + k_huge - 1) & ~(k_huge - 1);
  const std::uintptr_t end = (at + bytes) & ~(k_huge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // NOLINT
}

/// Zeroed host memory for a block the runtime owns. Where a device page-locks host instances
/// (CUDA), whole pages of its own: page-locking works on pages, so a block sharing a page with
/// another could not be pinned, or could stay registered through the other's pinning.
void* allocate_host_instance(Runtime& rt, std::size_t bytes) {
  const std::size_t n = bytes == 0 ? 1 : bytes;
  bool whole_pages = false;
  for (int d = 1; d <= rt.impl().num_gpus(); ++d) whole_pages = whole_pages || rt.impl().slot(d).backend->pins_host();
  if (!whole_pages) {
    // Large blocks are fresh mmap'd pages, zeroed by the kernel on first touch, as long as
    // glibc's mmap threshold (which grows up to 32 MiB as mmap'd chunks are freed) is below
    // their size; a block served from recycled heap memory was zeroed (touched) by calloc
    // already, and the advice then only lets khugepaged collapse it later.
    void* p = std::calloc(n, 1);
    advise_huge_pages(p, n);
    return p;
  }
  const long page_size = sysconf(_SC_PAGESIZE);
  const std::size_t page = page_size > 0 ? static_cast<std::size_t>(page_size) : 4096;
  const std::size_t rounded = (n + page - 1) / page * page;
  void* p = std::aligned_alloc(page, rounded);
  advise_huge_pages(p, rounded);
  if (p != nullptr) std::memset(p, 0, rounded);
  return p;
}

}  // namespace

DataBlock::DataBlock(Runtime& runtime, std::size_t bytes, std::string name) {
  void* host = allocate_host_instance(runtime, bytes);  // owned by the BlockState
  if (host == nullptr) throw Error("cannot allocate " + std::to_string(bytes) + " bytes of host memory for data block '" + name + "'");
  try {
    m_state = make_block(runtime, host, bytes, std::move(name), true);
  } catch (...) {
    std::free(host);
    throw;
  }
}

DataBlock::DataBlock(Runtime& runtime, void* host, std::size_t bytes, std::string name) {
  if (host == nullptr) throw Error("DataBlock over host memory: the pointer is null");
  m_state = make_block(runtime, host, bytes, std::move(name), false);
}

std::size_t DataBlock::size() const noexcept { return m_state ? m_state->bytes : 0; }

const std::string& DataBlock::name() const {
  if (!m_state) throw Error("name() of an empty DataBlock handle");
  return m_state->name;
}

DataSlice DataBlock::slice(std::size_t offset, std::size_t bytes) const {
  if (!m_state) throw Error("slice() of an empty DataBlock handle");
  if (bytes == 0 || offset > m_state->bytes || bytes > m_state->bytes - offset) {
    throw Error("slice(" + std::to_string(offset) + ", " + std::to_string(bytes) + ") of data block '" +
                m_state->name + "' (" + std::to_string(m_state->bytes) +
                " bytes) is empty or outside it; a slice is [offset, offset + bytes) within the block");
  }
  return DataSlice(m_state, offset, bytes);
}

void* DataBlock::host_data() const {
  if (!m_state) throw Error("host_data() of an empty DataBlock handle");
  return m_state->host;
}

namespace {

const detail::BlockState::Segment& segment_at(detail::BlockState& b, std::size_t offset) {
  if (offset >= b.bytes) {
    throw Error("offset " + std::to_string(offset) + " is outside data block '" + b.name + "' (" +
                std::to_string(b.bytes) + " bytes)");
  }
  return b.segments[b.find(offset)];
}

}  // namespace

Coherence DataBlock::state(const Device& device, std::size_t offset) const {
  if (!m_state) throw Error("state() of an empty DataBlock handle");
  std::lock_guard<std::mutex> lock(m_state->mutex);
  const auto& g = segment_at(*m_state, offset);
  const auto d = static_cast<std::size_t>(device.id());
  if (d >= g.dev_version.size()) throw Error("device " + device.name() + " is not a device of this block's runtime");
  if (g.dev_version[d] != g.version) return Coherence::invalid;
  for (std::size_t e = 0; e < g.dev_version.size(); ++e) {
    if (e != d && g.dev_version[e] == g.version) return Coherence::shared;
  }
  return Coherence::modified;
}

std::uint64_t DataBlock::version(std::size_t offset) const {
  if (!m_state) throw Error("version() of an empty DataBlock handle");
  std::lock_guard<std::mutex> lock(m_state->mutex);
  return segment_at(*m_state, offset).version;
}

bool DataBlock::allocated_on(const Device& device) const {
  if (!m_state) throw Error("allocated_on() of an empty DataBlock handle");
  std::lock_guard<std::mutex> lock(m_state->mutex);
  const auto d = static_cast<std::size_t>(device.id());
  return d < m_state->instances.size() && m_state->instances[d].ptr != nullptr;
}

// ---- Runtime and TaskContext -----------------------------------------------------------------

void Runtime::sync_to_host(const DataBlock& block) {
  if (!block.valid()) throw Error("sync_to_host() of an empty DataBlock handle");
  Task t = spawn({.placement = parla::cpu, .in = {block}, .name = "sync_to_host(" + block.name() + ")"}, [] {});
  wait(t);
}

bool Runtime::infers_dependencies() const noexcept { return m_impl->infer_dependencies(); }

Stream& TaskContext::stream() const { return m_task->m_runtime->task_stream(*m_task, 0); }

Stream& TaskContext::stream(std::size_t i) const { return m_task->m_runtime->task_stream(*m_task, i); }

void* TaskContext::data(const DataSlice& slice, std::size_t i) const {
  if (!slice.state()) throw Error("ctx.data() of an empty DataBlock handle");
  return m_task->m_runtime->data_pointer(*m_task, slice, i);
}

namespace detail {
void* declared_data(const TaskContext& ctx, std::size_t access) {
  return ctx.m_task->m_runtime->access_pointer(*ctx.m_task, access);
}
}  // namespace detail

}  // namespace parla
