// Byte kernels for the data-block cases on CUDA devices (C++17: nvcc cannot build C++20 here).
#include "data_kernels.hpp"

namespace {

__global__ void affine_kernel(unsigned char* x, size_t n, int a, int b) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < n) x[i] = static_cast<unsigned char>(x[i] * a + b);
}

__global__ void fill_kernel(unsigned char* x, size_t n, int a, int b) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < n) x[i] = static_cast<unsigned char>(static_cast<int>(i) * a + b);
}

unsigned blocks_for(size_t n) { return static_cast<unsigned>((n + 255) / 256); }

}  // namespace

cudaError_t launch_affine(unsigned char* x, size_t n, int a, int b, cudaStream_t s) {
  affine_kernel<<<blocks_for(n), 256, 0, s>>>(x, n, a, b);
  return cudaGetLastError();
}

cudaError_t launch_fill(unsigned char* x, size_t n, int a, int b, cudaStream_t s) {
  fill_kernel<<<blocks_for(n), 256, 0, s>>>(x, n, a, b);
  return cudaGetLastError();
}
