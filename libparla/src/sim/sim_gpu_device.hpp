// SimGpuDevice: a simulated GPU (PARLA_SIM_GPUS=N) so every GPU code path runs without one.
#pragma once

#include <parla/device.hpp>

namespace parla::detail {

/// A GPU backed by host memory, with its own memory capacity and its own worker thread.
/// Later issues add its streams (ordered queues run by a helper thread), events and copies.
class SimGpuDevice final : public Device {
 public:
  SimGpuDevice(int index, std::size_t memory_capacity) noexcept
      : Device(DeviceKind::gpu, index, index + 1, memory_capacity, 1) {}
  [[nodiscard]] const char* backend() const noexcept override { return "sim"; }
};

}  // namespace parla::detail
