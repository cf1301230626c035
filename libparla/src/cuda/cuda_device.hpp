// CudaDevice: a CUDA GPU visible to this rank (CUDA_VISIBLE_DEVICES is honoured by the CUDA
// runtime itself). Compiled only when PARLA_ENABLE_CUDA; every CUDA call is checked.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <parla/device.hpp>

#include "device_backend.hpp"

namespace parla::detail {

/// Number of CUDA devices this process sees. No driver, no device, or any other failure of
/// cudaGetDeviceCount means 0; `why` then says what the CUDA runtime reported.
int cuda_device_count(std::string* why) noexcept;

class CudaDevice final : public Device, public DeviceBackend {
 public:
  static constexpr int k_compute_streams = 4;

  /// `ordinal`: the CUDA device number (after CUDA_VISIBLE_DEVICES); `index`: gpu(index).
  CudaDevice(int index, int ordinal);
  ~CudaDevice() override;
  [[nodiscard]] const char* backend() const noexcept override { return "cuda"; }
  [[nodiscard]] int ordinal() const noexcept { return m_ordinal; }

  [[nodiscard]] void* allocate(std::size_t bytes) override;
  void deallocate(void* p, std::size_t bytes) noexcept override;
  [[nodiscard]] bool has_streams() const noexcept override { return true; }
  [[nodiscard]] BackendStream& compute_stream() override;
  [[nodiscard]] BackendStream& copy_in_stream() override { return *m_copy_in; }
  [[nodiscard]] BackendStream& copy_out_stream() override { return *m_copy_out; }
  [[nodiscard]] std::vector<BackendStream*> streams() override;
  [[nodiscard]] std::exception_ptr take_launch_error() override;
  void stop() noexcept override;
  [[nodiscard]] bool pins_host() const noexcept override { return true; }
  /// cudaHostRegister (portable: pinned for every device of the process).
  [[nodiscard]] bool pin_host(void* p, std::size_t bytes) noexcept override;
  void unpin_host(void* p, bool free_after) noexcept override;

 private:
  int m_ordinal;
  std::vector<std::unique_ptr<BackendStream>> m_compute;
  std::unique_ptr<BackendStream> m_copy_in;
  std::unique_ptr<BackendStream> m_copy_out;
  std::atomic<unsigned> m_next{0};
  // Frees requested by threads that may not call CUDA (host functions run the completions
  // that drop the last reference to a block): done by the next allocate() or stop().
  std::mutex m_free_mutex;  // guards m_pending_frees and m_pending_unpins
  std::vector<void*> m_pending_frees;
  struct PendingUnpin {
    void* p;
    bool free_after;
  };
  std::vector<PendingUnpin> m_pending_unpins;
  std::atomic<bool> m_pin_warned{false};
  void drain_frees() noexcept;
};

}  // namespace parla::detail
