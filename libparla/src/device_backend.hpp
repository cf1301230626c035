// DeviceBackend: the contract behind parla::Device (allocate, free, streams, events), one
// implementation per folder: cpu (here), src/sim/ (simulated GPUs), src/cuda/ (CUDA).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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
};

/// The name of the task whose body runs on this thread (for labelling its stream work),
/// or null outside bodies.
[[nodiscard]] const std::string* current_task_label() noexcept;

}  // namespace parla::detail
