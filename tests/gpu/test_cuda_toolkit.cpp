// Checks that the CUDA build path works end to end on a real device: a kernel compiled by
// this build runs, on a stream, and produces the right numbers. Skipped without a device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

#include "saxpy_kernel.hpp"

#define ASSERT_CUDA(call)                                                          \
  do {                                                                             \
    const cudaError_t err_ = (call);                                               \
    ASSERT_EQ(err_, cudaSuccess) << #call << ": " << cudaGetErrorString(err_);     \
  } while (0)

namespace {
int visible_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    return 0;  // no driver or no device: a normal configuration, reported as a skip
  }
  return count;
}
}  // namespace

TEST(CudaToolkit, SaxpyOnEveryVisibleDevice) {
  const int devices = visible_devices();
  if (devices == 0) {
    GTEST_SKIP() << "no CUDA device visible to this process";
  }
  constexpr int n = 1 << 20;
  std::vector<float> x(n);
  std::vector<float> y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i);
    y[i] = 1.0F;
  }
  for (int d = 0; d < devices; ++d) {
    ASSERT_CUDA(cudaSetDevice(d));
    cudaStream_t stream = nullptr;
    ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    float* dx = nullptr;
    float* dy = nullptr;
    ASSERT_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&dx), n * sizeof(float), stream));
    ASSERT_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&dy), n * sizeof(float), stream));
    ASSERT_CUDA(cudaMemcpyAsync(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream));
    ASSERT_CUDA(cudaMemcpyAsync(dy, y.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream));
    ASSERT_CUDA(launch_saxpy(n, 2.0F, dx, dy, stream));
    std::vector<float> out(n);
    ASSERT_CUDA(cudaMemcpyAsync(out.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost, stream));
    ASSERT_CUDA(cudaStreamSynchronize(stream));
    for (int i = 0; i < n; i += 4099) {
      ASSERT_FLOAT_EQ(out[i], 2.0F * static_cast<float>(i) + 1.0F) << "device " << d << " i " << i;
    }
    ASSERT_CUDA(cudaFreeAsync(dx, stream));
    ASSERT_CUDA(cudaFreeAsync(dy, stream));
    ASSERT_CUDA(cudaStreamDestroy(stream));
  }
}
