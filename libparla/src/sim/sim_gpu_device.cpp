#include "sim/sim_gpu_device.hpp"

#include <cstdlib>
#include <cstring>
#include <utility>

#include <parla/error.hpp>

namespace parla::detail {

// ---- SimEvent --------------------------------------------------------------------------------

namespace {
/// Set while a thread resumes parked streams, so a record among their items wakes further
/// streams' helpers instead of nesting.
thread_local bool t_resuming = false;
}  // namespace

void SimEvent::synchronize() {
  if (query()) return;
  std::unique_lock<std::mutex> lock(m_mutex);
  ++m_blocked;
  m_cv.wait(lock, [&] { return m_fired.load(std::memory_order_acquire); });
  --m_blocked;
}

bool SimEvent::park(SimStream* s) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_fired.load(std::memory_order_relaxed)) return false;
  m_parked.push_back(s);
  return true;
}

void SimEvent::fire() {
  std::vector<SimStream*> parked;
  bool blocked = false;
  {
    // The store is made under the mutex so a waiter between its check and its sleep (or its
    // park) cannot miss it.
    std::lock_guard<std::mutex> lock(m_mutex);
    // release: the work before the event (copies, host functions) happened-before any
    // thread that observes it fired.
    m_fired.store(true, std::memory_order_release);
    parked.swap(m_parked);
    blocked = m_blocked > 0;
  }
  if (blocked) m_cv.notify_all();  // no system call when nobody sleeps on it
  for (SimStream* s : parked) s->resume();
}

// ---- SimStream -------------------------------------------------------------------------------

SimStream::SimStream(const Device& device, std::string label, double copy_gbps, const TraceClock& clock)
    : m_device(&device), m_label(std::move(label)), m_copy_gbps(copy_gbps), m_clock(&clock) {
  m_thread = std::thread([this] { run(); });
}

SimStream::~SimStream() { stop(); }

void SimStream::stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_stop) return;
    m_stop = true;
  }
  m_cv.notify_one();
  if (m_thread.joinable()) m_thread.join();
}

void SimStream::push(Item item) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_stop) throw Error("stream '" + m_label + "' of " + m_device->name() + " is stopped (the runtime is ending)");
    m_queue.push_back(std::move(item));
    // A busy helper finds the item without a wake-up system call; a parked stream is resumed
    // by the event's firer.
    wake = m_sleeping && !m_parked && !m_running;
  }
  if (wake) m_cv.notify_one();
}

void SimStream::enqueue(std::function<void()> fn) {
  const std::string* task = current_task_label();
  Item it{Item::Kind::host, std::move(fn), {}, nullptr, nullptr, 0, 0, {}, {}};
  if (m_clock->enabled) it.label = task != nullptr && !task->empty() ? *task : std::string("host function");
  push(std::move(it));
}

void SimStream::copy(void* dst, const void* src, std::size_t bytes) {
  copy_labeled(dst, src, bytes, m_clock->enabled ? "copy " + std::to_string(bytes) + " B" : std::string());
}

void SimStream::copy_labeled(void* dst, const void* src, std::size_t bytes, std::string label) {
  push(Item{Item::Kind::copy, {}, {}, dst, src, bytes, 0, {}, std::move(label)});
}

void SimStream::memset(void* dst, int value, std::size_t bytes) {
  push(Item{Item::Kind::fill, {}, {}, dst, nullptr, bytes, value, {}, {}});
}

std::shared_ptr<Event> SimStream::record() {
  auto ev = std::make_shared<SimEvent>();
  push(Item{Item::Kind::record, {}, {}, nullptr, nullptr, 0, 0, ev, {}});
  return ev;
}

void SimStream::wait(const std::shared_ptr<Event>& event) {
  if (!event || event->query()) return;
  push(Item{Item::Kind::wait, {}, {}, nullptr, nullptr, 0, 0, event, {}});
}

void SimStream::synchronize() { record()->synchronize(); }

void SimStream::enqueue_completion(std::function<void(std::exception_ptr)> done) {
  push(Item{Item::Kind::completion, {}, std::move(done), nullptr, nullptr, 0, 0, {}, {}});
}

void SimStream::run() {
  std::unique_lock<std::mutex> lock(m_mutex);
  for (;;) {
    // Idle while there is nothing to do, the stream waits for an event, or the thread that
    // fired that event is running the stream's items.
    if (m_queue.empty() || m_parked || m_running) {
      if (m_stop && m_queue.empty() && !m_running) return;  // everything enqueued has run
      m_sleeping = true;
      m_cv.wait(lock, [&] {
        return !m_running && ((!m_queue.empty() && !m_parked) || (m_stop && m_queue.empty()));
      });
      m_sleeping = false;
      continue;
    }
    Item item = std::move(m_queue.front());
    m_queue.pop_front();
    m_running = true;
    lock.unlock();
    if (item.kind != Item::Kind::wait || !park_on(item)) run_item(item);
    lock.lock();
    m_running = false;
  }
}

bool SimStream::park_on(Item& item) {
  auto* sim = dynamic_cast<SimEvent*>(item.event.get());
  if (sim == nullptr || sim->query()) return false;  // another kind of event: block on it
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_parked = true;
    m_parked_on = item.event;
  }
  if (sim->park(this)) return true;
  std::lock_guard<std::mutex> lock(m_mutex);  // it fired meanwhile: go on
  m_parked = false;
  m_parked_on.reset();
  return true;
}

void SimStream::resume() {
  std::unique_lock<std::mutex> lock(m_mutex);
  m_parked = false;
  std::shared_ptr<Event> keep = std::move(m_parked_on);
  if (!m_running && !t_resuming) {
    // The stream's helper sleeps: run what follows the wait here when it is short.
    m_running = true;
    t_resuming = true;
    drain_short(lock);
    t_resuming = false;
    m_running = false;
  }
  // The helper takes over the device work that follows (or finishes stopping).
  const bool wake = m_sleeping && !m_running && (m_stop || (!m_queue.empty() && !m_parked));
  lock.unlock();
  if (wake) m_cv.notify_one();
}

void SimStream::drain_short(std::unique_lock<std::mutex>& lock) {
  while (!m_queue.empty() && !m_parked) {
    const Item::Kind k = m_queue.front().kind;
    // Copies, fills and host functions are the device's work: its helper runs those.
    if (k != Item::Kind::record && k != Item::Kind::completion && k != Item::Kind::wait) return;
    Item item = std::move(m_queue.front());
    m_queue.pop_front();
    lock.unlock();
    if (item.kind != Item::Kind::wait || !park_on(item)) run_item(item);
    lock.lock();
  }
}

void SimStream::run_item(Item& it) {
  const bool traced = m_clock->enabled && !it.label.empty();
  const std::int64_t start = traced ? m_clock->now_ns() : 0;
  switch (it.kind) {
    case Item::Kind::host:
      try {
        it.fn();
      } catch (...) {
        if (!m_error) m_error = std::current_exception();
      }
      break;
    case Item::Kind::copy: {
      const auto t0 = std::chrono::steady_clock::now();
      if (it.bytes != 0 && it.dst != it.src) std::memcpy(it.dst, it.src, it.bytes);
      if (m_copy_gbps > 0) {
        // The copy engine's bandwidth: a copy takes at least bytes / bandwidth.
        const auto need = std::chrono::duration<double>(static_cast<double>(it.bytes) / (m_copy_gbps * 1e9));
        std::this_thread::sleep_until(t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(need));
      }
      break;
    }
    case Item::Kind::fill:
      std::memset(it.dst, it.value, it.bytes);
      break;
    case Item::Kind::record:
      static_cast<SimEvent&>(*it.event).fire();
      break;
    case Item::Kind::wait:
      it.event->synchronize();
      break;
    case Item::Kind::completion: {
      std::exception_ptr e = std::exchange(m_error, nullptr);
      it.done(std::move(e));
      break;
    }
  }
  if (traced) {
    m_trace.push_back(StreamTraceEvent{std::move(it.label), it.kind == Item::Kind::copy ? "copy" : "stream",
                                       start, m_clock->now_ns()});
  }
}

// ---- SimGpuDevice ----------------------------------------------------------------------------

SimGpuDevice::SimGpuDevice(int index, std::size_t memory_capacity, double copy_gbps, const TraceClock& clock)
    : Device(DeviceKind::gpu, index, index + 1, memory_capacity, 1) {
  for (int i = 0; i < k_compute_streams; ++i) {
    // The copy engine's bandwidth limits copies on every stream of the device, as on a GPU.
    m_compute.push_back(std::make_unique<SimStream>(*this, "stream " + std::to_string(i), copy_gbps, clock));
  }
  m_copy_in = std::make_unique<SimStream>(*this, "copy in", copy_gbps, clock);
  m_copy_out = std::make_unique<SimStream>(*this, "copy out", copy_gbps, clock);
}

SimGpuDevice::~SimGpuDevice() { stop(); }

void* SimGpuDevice::allocate(std::size_t bytes) {
  void* p = std::calloc(bytes == 0 ? 1 : bytes, 1);
  if (p == nullptr) {
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes of host memory backing simulated " +
                name() + "; lower PARLA_SIM_GPU_MEMORY or the data size");
  }
  return p;
}

void SimGpuDevice::deallocate(void* p, std::size_t /*bytes*/) noexcept { std::free(p); }

BackendStream& SimGpuDevice::compute_stream() {
  // relaxed: any stream will do; round robin only spreads the work.
  const unsigned i = m_next.fetch_add(1, std::memory_order_relaxed);
  return *m_compute[i % m_compute.size()];
}

std::vector<BackendStream*> SimGpuDevice::streams() {
  std::vector<BackendStream*> out;
  for (auto& s : m_compute) out.push_back(s.get());
  out.push_back(m_copy_in.get());
  out.push_back(m_copy_out.get());
  return out;
}

void SimGpuDevice::stop() noexcept {
  for (auto& s : m_compute) s->stop();
  m_copy_in->stop();
  m_copy_out->stop();
}

}  // namespace parla::detail
