// Device: the small contract every device backend (cpu, simulated GPU, later CUDA) fulfils.
#pragma once

#include <cstddef>
#include <string>

namespace parla {

/// The architecture of a device.
enum class DeviceKind { cpu, gpu };

/// Printable name of a kind ("cpu", "gpu").
const char* to_string(DeviceKind kind) noexcept;

/// One device of a runtime. Devices are created by the runtime and live as long as it does;
/// user code only reads them (`rt.devices()`, `ctx.devices()`).
///
/// Users see identity (kind, index, name), capacities and the backend. Behind it each
/// backend fulfils a small contract (allocate, free, streams with async copies, events),
/// in its own source folder: `src/sim/` (simulated GPUs), `src/cuda/` (CUDA devices).
class Device {
 public:
  virtual ~Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  /// cpu or gpu.
  [[nodiscard]] DeviceKind kind() const noexcept { return m_kind; }
  /// Index among the devices of the same kind (gpu(1) has index 1; the cpu has index 0).
  [[nodiscard]] int index() const noexcept { return m_index; }
  /// Position in `Runtime::devices()`.
  [[nodiscard]] int id() const noexcept { return m_id; }
  /// "cpu" or "gpu(i)", the same spelling placements use.
  [[nodiscard]] std::string name() const;
  /// Compute capacity in vcus: always 1.0 (the whole device).
  [[nodiscard]] double vcus_capacity() const noexcept { return 1.0; }
  /// Memory capacity in bytes.
  [[nodiscard]] std::size_t memory_capacity() const noexcept { return m_memory_capacity; }
  /// Number of worker threads that run this device's tasks.
  [[nodiscard]] int num_workers() const noexcept { return m_num_workers; }
  /// Which backend implements the device: "host", "sim" or "cuda".
  [[nodiscard]] virtual const char* backend() const noexcept = 0;

 protected:
  Device(DeviceKind kind, int index, int id, std::size_t memory_capacity, int num_workers) noexcept
      : m_kind(kind), m_index(index), m_id(id), m_memory_capacity(memory_capacity),
        m_num_workers(num_workers) {}

 private:
  DeviceKind m_kind;
  int m_index;
  int m_id;
  std::size_t m_memory_capacity;
  int m_num_workers;
};

}  // namespace parla
