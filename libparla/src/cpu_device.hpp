// CpuDevice: the host, run by the cpu workers.
#pragma once

#include <parla/device.hpp>

namespace parla::detail {

class CpuDevice final : public Device {
 public:
  CpuDevice(int num_workers, std::size_t memory_capacity) noexcept
      : Device(DeviceKind::cpu, 0, 0, memory_capacity, num_workers) {}
  [[nodiscard]] const char* backend() const noexcept override { return "host"; }
};

/// Physical memory of this machine in bytes (the cpu device's memory capacity).
std::size_t host_memory_bytes() noexcept;

}  // namespace parla::detail
