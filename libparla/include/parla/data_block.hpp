// DataBlock: one logical buffer with an instance per device and per-device coherence
// (the core of Parla's PArray).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <parla/fwd.hpp>

namespace parla {

/// State of one device's copy of (part of) a block, MSI-like: `modified` (the only valid
/// copy, written there), `shared` (valid, other valid copies exist), `invalid` (stale or
/// never filled).
enum class Coherence : unsigned char { invalid, shared, modified };

/// "invalid", "shared", "modified".
const char* to_string(Coherence c) noexcept;

/// A byte range of a block: what a task declares it reads or writes
/// (`SpawnOptions::in/out/inout`). A whole block converts to the slice covering it.
class DataSlice {
 public:
  DataSlice() = default;
  DataSlice(const DataBlock& block);  // NOLINT(google-explicit-constructor): `.in = {a}`

  [[nodiscard]] const std::shared_ptr<detail::BlockState>& state() const noexcept { return m_state; }
  [[nodiscard]] std::size_t offset() const noexcept { return m_offset; }
  [[nodiscard]] std::size_t bytes() const noexcept { return m_bytes; }
  /// "A" for a whole block, "A[64:128]" for a byte range.
  [[nodiscard]] std::string name() const;

 private:
  friend class DataBlock;
  DataSlice(std::shared_ptr<detail::BlockState> state, std::size_t offset, std::size_t bytes)
      : m_state(std::move(state)), m_offset(offset), m_bytes(bytes) {}
  std::shared_ptr<detail::BlockState> m_state;
  std::size_t m_offset = 0;
  std::size_t m_bytes = 0;
};

/// One logical buffer of `size()` bytes. Its host (cpu) instance always exists; device
/// instances are allocated when a task on that device first accesses the block, evicted
/// (clean ones first) when the device is full. Tasks declare what they read and write
/// (`.in = {a}`, `.out = {b.slice(0, n)}`, `.inout = {c}`); before a task runs, the runtime
/// copies every input to the task's device from the best valid copy and invalidates other
/// copies of what it writes. Inside the body, `ctx.data(a)` is the pointer on the task's
/// device. Copies share the block. A block must not outlive its runtime's tasks that use it;
/// after the runtime ends, `host_data()` holds the final contents.
class DataBlock {
 public:
  DataBlock() = default;
  /// A block of `bytes` zeroed bytes owned by the runtime.
  DataBlock(Runtime& runtime, std::size_t bytes, std::string name = {});
  /// A block over the caller's host memory `host` (not copied; it must outlive the block
  /// and must not be touched while tasks use the block).
  DataBlock(Runtime& runtime, void* host, std::size_t bytes, std::string name = {});

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_state); }
  explicit operator bool() const noexcept { return valid(); }
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] const std::string& name() const;

  /// Bytes [offset, offset + bytes). Throws parla::Error when outside the block or empty.
  [[nodiscard]] DataSlice slice(std::size_t offset, std::size_t bytes) const;
  /// Elements [first, first + count) of a block viewed as an array of T.
  template <class T>
  [[nodiscard]] DataSlice elements(std::size_t first, std::size_t count) const {
    return slice(first * sizeof(T), count * sizeof(T));
  }

  /// The host instance. Its contents are current only when no task uses the block and the
  /// host copy is valid: after `Runtime::sync_to_host(block)` or after the runtime ended.
  [[nodiscard]] void* host_data() const;
  template <class T>
  [[nodiscard]] T* host_as() const {
    return static_cast<T*>(host_data());
  }

  /// Coherence of `device`'s copy of the byte at `offset`, as of the tasks launched so far.
  [[nodiscard]] Coherence state(const Device& device, std::size_t offset = 0) const;
  /// Version of the byte at `offset` (0 at creation, +1 per task that writes it).
  [[nodiscard]] std::uint64_t version(std::size_t offset = 0) const;
  /// Whether `device` holds memory for this block.
  [[nodiscard]] bool allocated_on(const Device& device) const;

  [[nodiscard]] const std::shared_ptr<detail::BlockState>& state() const noexcept { return m_state; }
  friend bool operator==(const DataBlock& a, const DataBlock& b) noexcept { return a.m_state == b.m_state; }

 private:
  std::shared_ptr<detail::BlockState> m_state;
};

}  // namespace parla
