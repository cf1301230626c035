// CUDA versions of the Jacobi sweeps of parla/kernels/stencil.hpp. Every multiply and add is an
// explicit round-to-nearest intrinsic (__dmul_rn, __dadd_rn): nvcc would otherwise contract
// c0*u + c1*s into an FMA, and the results must match the CPU kernels and NumPy bit for bit.
#include "stencil_kernels.hpp"

#include <cuda_runtime.h>

namespace parla::kernels::detail {
namespace {

using Index = std::ptrdiff_t;

// One thread per cell; x runs along the contiguous last axis so loads and stores coalesce.
__global__ void jacobi_2d5_kernel(const double* __restrict__ in, double* __restrict__ out,
                                  Index s0, Index s1, Index i0, Index i1, Index j0, Index j1,
                                  double c0, double c1) {
  const Index j = j0 + static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  const Index i = i0 + static_cast<Index>(blockIdx.y) * blockDim.y + threadIdx.y;
  if (i >= i1 || j >= j1) return;
  const Index p = i * s0 + j * s1;
  double sum = __dadd_rn(in[p - s0], in[p + s0]);
  sum = __dadd_rn(sum, in[p - s1]);
  sum = __dadd_rn(sum, in[p + s1]);
  out[p] = __dadd_rn(__dmul_rn(c0, in[p]), __dmul_rn(c1, sum));
}

__global__ void jacobi_3d7_kernel(const double* __restrict__ in, double* __restrict__ out,
                                  Index s0, Index s1, Index s2, Index i0, Index i1, Index j0,
                                  Index j1, Index k0, Index k1, double c0, double c1) {
  const Index k = k0 + static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  const Index j = j0 + static_cast<Index>(blockIdx.y) * blockDim.y + threadIdx.y;
  if (j >= j1 || k >= k1) return;
  // Planes are walked by a grid-stride loop over z: gridDim.z is capped at 65535.
  for (Index i = i0 + blockIdx.z; i < i1; i += gridDim.z) {
    const Index p = i * s0 + j * s1 + k * s2;
    double sum = __dadd_rn(in[p - s0], in[p + s0]);
    sum = __dadd_rn(sum, in[p - s1]);
    sum = __dadd_rn(sum, in[p + s1]);
    sum = __dadd_rn(sum, in[p - s2]);
    sum = __dadd_rn(sum, in[p + s2]);
    out[p] = __dadd_rn(__dmul_rn(c0, in[p]), __dmul_rn(c1, sum));
  }
}

unsigned blocks(Index cells, unsigned per_block) {
  return static_cast<unsigned>((cells + per_block - 1) / per_block);
}

}  // namespace

int launch_jacobi_2d5(void* stream, const double* in, double* out, Index s0, Index s1, Index i0,
                      Index i1, Index j0, Index j1, double c0, double c1) {
  const dim3 block(128, 2);
  const Index rows = i1 - i0;
  if (rows > 65535L * block.y) return static_cast<int>(cudaErrorInvalidConfiguration);
  const dim3 grid(blocks(j1 - j0, block.x), blocks(rows, block.y));
  jacobi_2d5_kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(
      in, out, s0, s1, i0, i1, j0, j1, c0, c1);
  return static_cast<int>(cudaGetLastError());
}

int launch_jacobi_3d7(void* stream, const double* in, double* out, Index s0, Index s1, Index s2,
                      Index i0, Index i1, Index j0, Index j1, Index k0, Index k1, double c0,
                      double c1) {
  const dim3 block(64, 4);
  const Index planes = i1 - i0;
  if (j1 - j0 > 65535L * block.y) return static_cast<int>(cudaErrorInvalidConfiguration);
  const dim3 grid(blocks(k1 - k0, block.x), blocks(j1 - j0, block.y),
                  static_cast<unsigned>(planes < 65535 ? planes : 65535));
  jacobi_3d7_kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(
      in, out, s0, s1, s2, i0, i1, j0, j1, k0, k1, c0, c1);
  return static_cast<int>(cudaGetLastError());
}

const char* cuda_error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // namespace parla::kernels::detail
