#include <parla/device.hpp>
#include <parla/task_state.hpp>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include <parla/error.hpp>

#include "cpu_device.hpp"

namespace parla {

const char* to_string(DeviceKind kind) noexcept {
  switch (kind) {
    case DeviceKind::cpu: return "cpu";
    case DeviceKind::gpu: return "gpu";
  }
  return "?";
}

std::string Device::name() const {
  if (m_kind == DeviceKind::cpu) return "cpu";
  return std::string(to_string(m_kind)) + "(" + std::to_string(m_index) + ")";
}

const char* to_string(TaskState s) noexcept {
  switch (s) {
    case TaskState::placeholder: return "placeholder";
    case TaskState::pending: return "pending";
    case TaskState::ready: return "ready";
    case TaskState::running: return "running";
    case TaskState::completed: return "completed";
    case TaskState::failed: return "failed";
    case TaskState::cancelled: return "cancelled";
  }
  return "?";
}

namespace detail {

void* CpuDevice::allocate(std::size_t bytes) {
  void* p = std::calloc(bytes == 0 ? 1 : bytes, 1);
  if (p == nullptr) throw Error("cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  return p;
}

void CpuDevice::deallocate(void* p, std::size_t /*bytes*/) noexcept { std::free(p); }

BackendStream& DeviceBackend::compute_stream() {
  throw Error("the cpu has no streams: ctx.stream() is for tasks placed on a GPU");
}
BackendStream& DeviceBackend::copy_in_stream() { return compute_stream(); }
BackendStream& DeviceBackend::copy_out_stream() { return compute_stream(); }

std::size_t host_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::size_t{1} << 34;  // unknown: 16 GiB
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page);
}

}  // namespace detail
}  // namespace parla
