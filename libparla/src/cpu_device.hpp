// CpuDevice: the host, run by the cpu workers. Its memory is plain host memory.
#pragma once

#include <parla/device.hpp>

#include "device_backend.hpp"

namespace parla::detail {

class CpuDevice final : public Device, public DeviceBackend {
 public:
  CpuDevice(int num_workers, std::size_t memory_capacity) noexcept
      : Device(DeviceKind::cpu, 0, 0, memory_capacity, num_workers) {}
  [[nodiscard]] const char* backend() const noexcept override { return "host"; }
  /// Zeroed host memory.
  [[nodiscard]] void* allocate(std::size_t bytes) override;
  void deallocate(void* p, std::size_t bytes) noexcept override;
};

/// Physical memory of this machine in bytes (the cpu device's memory capacity).
std::size_t host_memory_bytes() noexcept;

}  // namespace parla::detail
