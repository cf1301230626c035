#include "cuda/cuda_device.hpp"

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <iostream>

#include <parla/error.hpp>

namespace parla::detail {

namespace {

std::string visible_devices_note() {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  return v != nullptr ? std::string(" (CUDA_VISIBLE_DEVICES=") + v + ")" : std::string();
}

/// Throws parla::Error naming the call, the device and CUDA's message.
void check(cudaError_t err, const char* what, int ordinal) {
  if (err == cudaSuccess) return;
  throw Error(std::string("CUDA error in ") + what + " on CUDA device " + std::to_string(ordinal) + ": " +
              cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + visible_devices_note());
}

/// For noexcept paths (destructors, frees): report on stderr instead of throwing.
void report(cudaError_t err, const char* what, int ordinal) noexcept {
  if (err == cudaSuccess) return;
  std::cerr << "parla: CUDA error in " << what << " on CUDA device " << ordinal << ": "
            << cudaGetErrorString(err) << '\n';
}

/// Set while a host function (cudaLaunchHostFunc) runs on this thread: CUDA forbids API calls
/// there, so work that needs one is deferred (see CudaDevice::unpin_host).
thread_local bool t_in_host_function = false;

struct HostFunctionScope {
  HostFunctionScope() noexcept { t_in_host_function = true; }
  ~HostFunctionScope() { t_in_host_function = false; }
  HostFunctionScope(const HostFunctionScope&) = delete;
  HostFunctionScope& operator=(const HostFunctionScope&) = delete;
};

class CudaEvent final : public Event {
 public:
  explicit CudaEvent(int ordinal) : m_ordinal(ordinal) {
    check(cudaSetDevice(ordinal), "cudaSetDevice", ordinal);
    check(cudaEventCreateWithFlags(&m_event, cudaEventDisableTiming), "cudaEventCreateWithFlags", ordinal);
  }
  ~CudaEvent() override { report(cudaEventDestroy(m_event), "cudaEventDestroy", m_ordinal); }
  [[nodiscard]] bool query() override {
    const cudaError_t err = cudaEventQuery(m_event);
    if (err == cudaErrorNotReady) return false;
    check(err, "cudaEventQuery", m_ordinal);
    return true;
  }
  void synchronize() override { check(cudaEventSynchronize(m_event), "cudaEventSynchronize", m_ordinal); }
  [[nodiscard]] cudaEvent_t handle() const noexcept { return m_event; }

 private:
  int m_ordinal;
  cudaEvent_t m_event = nullptr;
};

class CudaStream final : public BackendStream {
 public:
  CudaStream(const Device& device, int ordinal, std::string label)
      : m_device(&device), m_ordinal(ordinal), m_label(std::move(label)) {
    check(cudaSetDevice(ordinal), "cudaSetDevice", ordinal);
    check(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags", ordinal);
  }
  ~CudaStream() override { stop(); }
  void stop() noexcept {
    if (m_stream == nullptr) return;
    report(cudaSetDevice(m_ordinal), "cudaSetDevice", m_ordinal);
    report(cudaStreamSynchronize(m_stream), "cudaStreamSynchronize", m_ordinal);
    report(cudaStreamDestroy(m_stream), "cudaStreamDestroy", m_ordinal);
    m_stream = nullptr;
  }

  [[nodiscard]] const Device& device() const noexcept override { return *m_device; }
  void enqueue(std::function<void()> fn) override {
    auto* heap = new std::function<void()>(std::move(fn));  // freed by the host function
    launch_host(heap, [](void* p) {
      const HostFunctionScope scope;
      std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(p));
      try {
        (*f)();
      } catch (const std::exception& e) {
        std::cerr << "parla: a host function on a CUDA stream threw: " << e.what() << '\n';
      }
    });
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    set_device();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, m_stream), "cudaMemcpyAsync", m_ordinal);
  }
  void memset(void* dst, int value, std::size_t bytes) override {
    set_device();
    check(cudaMemsetAsync(dst, value, bytes, m_stream), "cudaMemsetAsync", m_ordinal);
  }
  [[nodiscard]] std::shared_ptr<Event> record() override {
    auto ev = std::make_shared<CudaEvent>(m_ordinal);
    check(cudaEventRecord(ev->handle(), m_stream), "cudaEventRecord", m_ordinal);
    return ev;
  }
  void wait(const std::shared_ptr<Event>& event) override {
    if (!event) return;
    auto* ce = dynamic_cast<CudaEvent*>(event.get());
    if (ce == nullptr) {
      throw Error("a CUDA stream cannot wait for an event of another backend; use one backend per runtime");
    }
    set_device();
    check(cudaStreamWaitEvent(m_stream, ce->handle(), 0), "cudaStreamWaitEvent", m_ordinal);
  }
  void synchronize() override {
    set_device();
    check(cudaStreamSynchronize(m_stream), "cudaStreamSynchronize", m_ordinal);
  }
  [[nodiscard]] void* native_handle() const noexcept override { return m_stream; }

  [[nodiscard]] const std::string& label() const noexcept override { return m_label; }
  void copy_labeled(void* dst, const void* src, std::size_t bytes, std::string /*label*/) override {
    copy(dst, src, bytes);
  }
  void enqueue_completion(std::function<void(std::exception_ptr)> done) override {
    auto* heap = new std::function<void(std::exception_ptr)>(std::move(done));  // freed below
    launch_host(heap, [](void* p) {
      const HostFunctionScope scope;
      std::unique_ptr<std::function<void(std::exception_ptr)>> f(
          static_cast<std::function<void(std::exception_ptr)>*>(p));
      (*f)(nullptr);
    });
  }
  [[nodiscard]] const std::vector<StreamTraceEvent>& trace() const noexcept override { return m_trace; }

 private:
  void set_device() { check(cudaSetDevice(m_ordinal), "cudaSetDevice", m_ordinal); }
  template <class T>
  void launch_host(T* heap, cudaHostFn_t fn) {
    set_device();
    const cudaError_t err = cudaLaunchHostFunc(m_stream, fn, heap);
    if (err != cudaSuccess) {
      delete heap;  // NOLINT: never handed to CUDA
      check(err, "cudaLaunchHostFunc", m_ordinal);
    }
  }

  const Device* m_device;
  int m_ordinal;
  std::string m_label;
  cudaStream_t m_stream = nullptr;
  std::vector<StreamTraceEvent> m_trace;  // CUDA stream work is not traced
};

std::size_t device_memory(int ordinal) {
  check(cudaSetDevice(ordinal), "cudaSetDevice", ordinal);
  std::size_t free_bytes = 0;
  std::size_t total = 0;
  check(cudaMemGetInfo(&free_bytes, &total), "cudaMemGetInfo", ordinal);
  return free_bytes;
}

/// cudaHostUnregister, then std::free when `free_after`. Memory CUDA failed to unregister is
/// leaked rather than freed: a reused range that is still registered would be DMA'd wrongly.
void release_pinned(void* p, bool free_after, int ordinal) noexcept {
  const cudaError_t err = cudaHostUnregister(p);
  if (err != cudaSuccess) (void)cudaGetLastError();
  if (err == cudaSuccess || err == cudaErrorHostMemoryNotRegistered) {
    if (free_after) std::free(p);
    return;
  }
  report(err, "cudaHostUnregister", ordinal);
  if (free_after) std::cerr << "parla: leaking the host memory at " << p << " (it may still be registered)\n";
}

}  // namespace

int cuda_device_count(std::string* why) noexcept {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why != nullptr) {
      *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) +
             visible_devices_note();
    }
    // Clear the error so later CUDA calls do not see it.
    (void)cudaGetLastError();
    return 0;
  }
  if (n == 0 && why != nullptr) *why = "no CUDA device visible" + visible_devices_note();
  return n;
}

CudaDevice::CudaDevice(int index, int ordinal)
    // Capacity: the memory free when the runtime starts (others may share the device).
    : Device(DeviceKind::gpu, index, index + 1, device_memory(ordinal), 1), m_ordinal(ordinal) {
  for (int i = 0; i < k_compute_streams; ++i) {
    m_compute.push_back(std::make_unique<CudaStream>(*this, ordinal, "stream " + std::to_string(i)));
  }
  m_copy_in = std::make_unique<CudaStream>(*this, ordinal, "copy in");
  m_copy_out = std::make_unique<CudaStream>(*this, ordinal, "copy out");
}

CudaDevice::~CudaDevice() { stop(); }

void* CudaDevice::allocate(std::size_t bytes) {
  drain_frees();
  check(cudaSetDevice(m_ordinal), "cudaSetDevice", m_ordinal);
  void* p = nullptr;
  // Stream-ordered allocation on the copy stream: no device-wide synchronisation.
  auto* s = static_cast<cudaStream_t>(m_copy_in->native_handle());
  check(cudaMallocAsync(&p, bytes == 0 ? 1 : bytes, s), "cudaMallocAsync", m_ordinal);
  return p;
}

void CudaDevice::deallocate(void* p, std::size_t /*bytes*/) noexcept {
  if (p == nullptr) return;
  try {
    std::lock_guard<std::mutex> lock(m_free_mutex);
    m_pending_frees.push_back(p);
  } catch (...) {
    std::cerr << "parla: out of memory while freeing CUDA memory; leaking " << p << '\n';
  }
}

void CudaDevice::drain_frees() noexcept {
  std::vector<void*> frees;
  std::vector<PendingUnpin> unpins;
  {
    std::lock_guard<std::mutex> lock(m_free_mutex);
    frees.swap(m_pending_frees);
    unpins.swap(m_pending_unpins);
  }
  for (const PendingUnpin& u : unpins) release_pinned(u.p, u.free_after, m_ordinal);
  if (frees.empty()) return;
  report(cudaSetDevice(m_ordinal), "cudaSetDevice", m_ordinal);
  auto* s = static_cast<cudaStream_t>(m_copy_in->native_handle());
  for (void* p : frees) report(cudaFreeAsync(p, s), "cudaFreeAsync", m_ordinal);
}

bool CudaDevice::pin_host(void* p, std::size_t bytes) noexcept {
  if (p == nullptr || bytes == 0) return false;
  cudaError_t err = cudaSetDevice(m_ordinal);
  if (err == cudaSuccess) err = cudaHostRegister(p, bytes, cudaHostRegisterPortable);
  if (err == cudaSuccess) return true;
  // Not sticky, but clear it: take_launch_error() reads this thread's last error after a body.
  (void)cudaGetLastError();
  // Already registered: someone else pinned it (and will unpin it); nothing to report.
  if (err != cudaErrorHostMemoryAlreadyRegistered &&
      !m_pin_warned.exchange(true, std::memory_order_relaxed)) {
    std::cerr
        << "parla: could not page-lock " << bytes
        << " bytes of host memory for copies to and from CUDA device " << m_ordinal
        << " (cudaHostRegister: " << cudaGetErrorName(err) << ": " << cudaGetErrorString(err)
        << "); data blocks stay in pageable memory: correct, but their copies are slower and not "
           "asynchronous (is the locked-memory limit, ulimit -l, too low?). Reported once.\n";
  }
  return false;
}

void CudaDevice::unpin_host(void* p, bool free_after) noexcept {
  if (p == nullptr) return;
  if (t_in_host_function) {
    try {
      std::lock_guard<std::mutex> lock(m_free_mutex);
      m_pending_unpins.push_back({p, free_after});
    } catch (...) {
      std::cerr << "parla: out of memory while releasing pinned host memory; leaking " << p << '\n';
    }
    return;
  }
  release_pinned(p, free_after, m_ordinal);
}

BackendStream& CudaDevice::compute_stream() {
  // relaxed: round robin only spreads the work.
  const unsigned i = m_next.fetch_add(1, std::memory_order_relaxed);
  return *m_compute[i % m_compute.size()];
}

std::vector<BackendStream*> CudaDevice::streams() {
  std::vector<BackendStream*> out;
  for (auto& s : m_compute) out.push_back(s.get());
  out.push_back(m_copy_in.get());
  out.push_back(m_copy_out.get());
  return out;
}

std::exception_ptr CudaDevice::take_launch_error() {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return nullptr;
  try {
    check(err, "a kernel launch of the task body", m_ordinal);
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

void CudaDevice::stop() noexcept {
  if (m_copy_in) drain_frees();
  for (auto& s : m_compute) static_cast<CudaStream&>(*s).stop();
  if (m_copy_in) static_cast<CudaStream&>(*m_copy_in).stop();
  if (m_copy_out) static_cast<CudaStream&>(*m_copy_out).stop();
}

}  // namespace parla::detail
