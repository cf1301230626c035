#include <cuda_runtime.h>

#include "saxpy_kernel.hpp"

namespace {
__global__ void saxpy(int n, float a, const float* x, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    y[i] = a * x[i] + y[i];
  }
}
}  // namespace

cudaError_t launch_saxpy(int n, float a, const float* x, float* y, cudaStream_t stream) {
  constexpr int block = 256;
  saxpy<<<(n + block - 1) / block, block, 0, stream>>>(n, a, x, y);
  return cudaGetLastError();
}
