// Stream and Event: ordered device work queues and the markers recorded on them.
#pragma once

#include <functional>
#include <memory>

#include <parla/fwd.hpp>

namespace parla {

/// A marker recorded on a stream: it fires when everything enqueued on that stream before
/// it has finished. Other streams can wait for it without blocking any thread
/// (`Stream::wait`). Shared: keep the `shared_ptr` as long as you need it.
class Event {
 public:
  virtual ~Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Whether the event has fired (never blocks).
  [[nodiscard]] virtual bool query() = 0;
  /// Blocks the calling thread until the event fires. Not for task bodies: make a stream
  /// wait for it instead.
  virtual void synchronize() = 0;

 protected:
  Event() = default;
};

/// An ordered queue of work on one device: kernels (through `native_handle()` on CUDA),
/// host functions, copies, and event waits run in the order they were enqueued. A GPU task
/// gets one from its device's pool as `ctx.stream()`; its body enqueues work and returns,
/// and the task completes when that work has finished (the runtime records an event after
/// the body). Thread-safe. Streams belong to their device; never destroy one.
class Stream {
 public:
  virtual ~Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  /// The device the stream runs on.
  [[nodiscard]] virtual const Device& device() const noexcept = 0;
  /// Runs `fn` on a host thread once the work enqueued before it has finished (simulated
  /// GPU: the stream's helper thread; CUDA: cudaLaunchHostFunc, so `fn` must not call CUDA).
  virtual void enqueue(std::function<void()> fn) = 0;
  /// Copies `bytes` from `src` to `dst` in stream order; either may be host or device
  /// memory of this stream's device.
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  /// Sets `bytes` bytes at `dst` (device memory) to `value`, in stream order.
  virtual void memset(void* dst, int value, std::size_t bytes) = 0;
  /// Records an event after the work enqueued so far.
  [[nodiscard]] virtual std::shared_ptr<Event> record() = 0;
  /// Work enqueued after this call starts only once `event` has fired (no thread blocks).
  virtual void wait(const std::shared_ptr<Event>& event) = 0;
  /// Blocks the calling thread until everything enqueued so far has finished.
  virtual void synchronize() = 0;
  /// The backend's handle: a `cudaStream_t` for CUDA devices, nullptr for simulated GPUs.
  [[nodiscard]] virtual void* native_handle() const noexcept = 0;

 protected:
  Stream() = default;
};

}  // namespace parla
