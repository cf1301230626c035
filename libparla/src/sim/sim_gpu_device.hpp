// SimGpuDevice: a simulated GPU (PARLA_SIM_GPUS=N) so every GPU code path runs without one:
// host-backed memory with its own capacity, ordered streams each run by a helper thread,
// events, and a copy engine with an optional artificial bandwidth.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <parla/device.hpp>

#include "device_backend.hpp"

namespace parla::detail {

class SimStream;

/// An event of a simulated stream: fired by the thread executing that stream. Streams that
/// reach a wait on it before it fires park on it (no thread blocks); firing resumes them.
class SimEvent final : public Event {
 public:
  SimEvent() = default;
  [[nodiscard]] bool query() override { return m_fired.load(std::memory_order_acquire); }
  void synchronize() override;
  void fire();
  /// Registers `s` to be resumed when the event fires; false when it has fired already.
  bool park(SimStream* s);

 private:
  std::atomic<bool> m_fired{false};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  int m_blocked = 0;                 // threads in synchronize() (guarded by m_mutex)
  std::vector<SimStream*> m_parked;  // streams waiting on this event (guarded by m_mutex)
};

/// An ordered queue executed by its helper thread (which may block: it is the "GPU"). A wait
/// on an unfired event parks the stream instead of blocking the helper; the thread that fires
/// the event then runs the stream's short items that follow (records, completions) itself and
/// wakes the helper only for real work (copies, kernels), so a copy engine feeding a compute
/// stream costs no wake-up per copy. At most one thread executes a stream at a time.
class SimStream final : public BackendStream {
 public:
  /// `copy_gbps` > 0 makes copies take at least bytes / bandwidth.
  SimStream(const Device& device, std::string label, double copy_gbps, const TraceClock& clock);
  ~SimStream() override;

  [[nodiscard]] const Device& device() const noexcept override { return *m_device; }
  void enqueue(std::function<void()> fn) override;
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void memset(void* dst, int value, std::size_t bytes) override;
  [[nodiscard]] std::shared_ptr<Event> record() override;
  void wait(const std::shared_ptr<Event>& event) override;
  void synchronize() override;
  [[nodiscard]] void* native_handle() const noexcept override { return nullptr; }

  [[nodiscard]] const std::string& label() const noexcept override { return m_label; }
  void copy_labeled(void* dst, const void* src, std::size_t bytes, std::string label) override;
  void enqueue_completion(std::function<void(std::exception_ptr)> done) override;
  [[nodiscard]] const std::vector<StreamTraceEvent>& trace() const noexcept override { return m_trace; }
  void stop() noexcept;
  /// The event this stream parked on fired (called by the firing thread, no lock held).
  void resume();

 private:
  struct Item {
    enum class Kind : unsigned char { host, copy, fill, record, wait, completion } kind;
    std::function<void()> fn;
    std::function<void(std::exception_ptr)> done;
    void* dst = nullptr;
    const void* src = nullptr;
    std::size_t bytes = 0;
    int value = 0;
    std::shared_ptr<Event> event;
    std::string label;
  };
  void push(Item item);
  void run();
  void run_item(Item& item);
  /// Runs the front items while they are short, with m_running held; `lock` holds m_mutex.
  void drain_short(std::unique_lock<std::mutex>& lock);
  /// Executes a popped wait item: true when it is done with it (parked on an unfired event,
  /// or found it fired meanwhile); false leaves it to run_item. Lock not held.
  bool park_on(Item& item);

  const Device* m_device;
  std::string m_label;
  double m_copy_gbps;
  const TraceClock* m_clock;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Item> m_queue;
  bool m_stop = false;
  bool m_sleeping = false;     // the helper waits on m_cv (guarded by m_mutex)
  bool m_running = false;      // a thread is executing an item (guarded by m_mutex)
  bool m_parked = false;       // waiting for m_parked_on to fire (guarded by m_mutex)
  std::shared_ptr<Event> m_parked_on;  // kept alive while parked (guarded by m_mutex)
  std::exception_ptr m_error;  // the executing thread only (m_running)
  std::vector<StreamTraceEvent> m_trace;  // the executing thread only; read after stop()
  std::thread m_thread;
};

/// A GPU backed by host memory, with its own memory capacity, one worker thread, a pool of
/// compute streams and two copy streams (in, out).
class SimGpuDevice final : public Device, public DeviceBackend {
 public:
  static constexpr int k_compute_streams = 4;

  SimGpuDevice(int index, std::size_t memory_capacity, double copy_gbps, const TraceClock& clock);
  ~SimGpuDevice() override;
  [[nodiscard]] const char* backend() const noexcept override { return "sim"; }

  [[nodiscard]] void* allocate(std::size_t bytes) override;
  void deallocate(void* p, std::size_t bytes) noexcept override;
  [[nodiscard]] bool has_streams() const noexcept override { return true; }
  [[nodiscard]] BackendStream& compute_stream() override;
  [[nodiscard]] BackendStream& copy_in_stream() override { return *m_copy_in; }
  [[nodiscard]] BackendStream& copy_out_stream() override { return *m_copy_out; }
  [[nodiscard]] std::vector<BackendStream*> streams() override;
  void stop() noexcept override;

 private:
  std::vector<std::unique_ptr<SimStream>> m_compute;
  std::unique_ptr<SimStream> m_copy_in;
  std::unique_ptr<SimStream> m_copy_out;
  std::atomic<unsigned> m_next{0};
};

}  // namespace parla::detail
