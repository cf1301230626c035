// DeviceBackend: the contract behind parla::Device (allocate, free, streams, events), one
// implementation per folder: cpu (here), src/sim/ (simulated GPUs), src/cuda/ (CUDA).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <parla/stream.hpp>

namespace parla::detail {

/// One traced interval of stream work (simulated GPUs only: CUDA work is not timed).
struct StreamTraceEvent {
  std::string name;
  const char* category;  // "copy" or "stream"
  std::int64_t start_ns;
  std::int64_t end_ns;
};

/// Where streams send their trace: a clock origin, and whether to trace at all.
struct TraceClock {
  bool enabled = false;
  std::chrono::steady_clock::time_point origin{};
  [[nodiscard]] std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - origin)
        .count();
  }
};

/// The runtime's view of a stream: the public Stream plus labelled work (for the trace) and
/// completions that receive the error of the work before them.
class BackendStream : public Stream {
 public:
  /// "stream 0", "copy in", "copy out".
  [[nodiscard]] virtual const std::string& label() const noexcept = 0;
  /// A copy traced as `label` (empty: not traced).
  virtual void copy_labeled(void* dst, const void* src, std::size_t bytes, std::string label) = 0;
  /// Runs `done` on a host thread once the work before it has finished, with the first
  /// error that work raised since the previous completion (null if none). `done` must not
  /// call into the device backend (CUDA forbids API calls from host functions).
  virtual void enqueue_completion(std::function<void(std::exception_ptr)> done) = 0;
  /// Traced intervals; read only after stop().
  [[nodiscard]] virtual const std::vector<StreamTraceEvent>& trace() const noexcept = 0;
};

/// Allocation and streams of one device.
class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  /// `bytes` of device memory (zeroed for host memory). Throws parla::Error when the
  /// allocation fails.
  [[nodiscard]] virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* p, std::size_t bytes) noexcept = 0;
  /// Whether the device has streams (GPUs do, the cpu does not).
  [[nodiscard]] virtual bool has_streams() const noexcept { return false; }
  /// The next compute stream of the device's pool (round robin).
  [[nodiscard]] virtual BackendStream& compute_stream();
  /// The copy engine for copies into this device, and for copies out of it to the host.
  [[nodiscard]] virtual BackendStream& copy_in_stream();
  [[nodiscard]] virtual BackendStream& copy_out_stream();
  /// Every stream (for the trace).
  [[nodiscard]] virtual std::vector<BackendStream*> streams() { return {}; }
  /// Errors a body's launches raised on this thread (CUDA: cudaPeekAtLastError); null if none.
  [[nodiscard]] virtual std::exception_ptr take_launch_error() { return nullptr; }
  /// Finishes queued work and stops helper threads; called once when the runtime ends.
  virtual void stop() noexcept {}

  /// Whether pin_host() pins memory (CUDA). The runtime then allocates the host instances of
  /// its blocks in whole pages, so no two blocks share a page: page-locking is per page, and
  /// a block must never stay DMA-mapped through another block's registration.
  [[nodiscard]] virtual bool pins_host() const noexcept { return false; }
  /// Page-locks `bytes` of host memory at `p` (a host instance the runtime allocated, whole
  /// pages) so copies between it and this device are DMA, asynchronous to the host. True when
  /// it did: the memory must then go back through unpin_host(). False when the backend has
  /// nothing to pin (cpu, simulated GPUs) or pinning failed; the memory stays pageable and
  /// copies still work, staged by the driver (a failure is reported once per device). Called
  /// once per block, on the thread that issues its first copy to or from this device.
  [[nodiscard]] virtual bool pin_host(void* /*p*/, std::size_t /*bytes*/) noexcept { return false; }
  /// Undoes pin_host(p), then std::free(p) when `free_after` (unpinning must come first: a
  /// freed range still registered would be DMA'd to stale pages once reused). On a thread
  /// that may not call the backend (a CUDA host function) both are deferred to the next
  /// allocate() or stop().
  virtual void unpin_host(void* p, bool free_after) noexcept {
    if (free_after) std::free(p);
  }
};

/// The name of the task whose body runs on this thread (for labelling its stream work),
/// or null outside bodies.
[[nodiscard]] const std::string* current_task_label() noexcept;

}  // namespace parla::detail
