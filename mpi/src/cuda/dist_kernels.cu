// CUDA kernels of DistArray: strided box copy (pack, unpack, intra-device halo copy), fill,
// and a deterministic two-stage reduction. C++17 device code; see dist_kernels.hpp.
#include "dist_kernels.hpp"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace parla::mpi::detail::cuda {

namespace {

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) {
    throw std::runtime_error(std::string("parla::mpi DistArray: ") + what + " failed: " +
                             cudaGetErrorString(rc));
  }
}

struct Geom {
  std::int64_t e1, e2;  // extents of the two inner axes
  std::int64_t n;       // cells
};

Geom geom(const std::int64_t extent[3]) {
  return Geom{extent[1], extent[2], extent[0] * extent[1] * extent[2]};
}

__device__ inline std::int64_t at(const std::int64_t* s, std::int64_t i0, std::int64_t i1,
                                  std::int64_t i2) {
  return i0 * s[0] + i1 * s[1] + i2 * s[2];
}

struct Strides {
  std::int64_t s[3];
};

Strides strides_of(const DevBox& b) { return Strides{{b.strides[0], b.strides[1], b.strides[2]}}; }

template <class T>
__global__ void copy_kernel(T* dst, Strides ds, const T* src, Strides ss, Geom g) {
  for (std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; k < g.n;
       k += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i2 = k % g.e2;
    const std::int64_t r = k / g.e2;
    const std::int64_t i1 = r % g.e1;
    const std::int64_t i0 = r / g.e1;
    dst[at(ds.s, i0, i1, i2)] = src[at(ss.s, i0, i1, i2)];
  }
}

template <class T>
__global__ void fill_kernel(T* dst, Strides ds, T value, Geom g) {
  for (std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; k < g.n;
       k += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i2 = k % g.e2;
    const std::int64_t r = k / g.e2;
    dst[at(ds.s, r / g.e1, r % g.e1, i2)] = value;
  }
}

constexpr int k_threads = 256;
constexpr int k_blocks = 256;  // stage one of the reduction: fixed, so the tree is fixed

__device__ inline double combine(int op, double a, double b) {
  if (op == 1) return a < b ? a : b;
  if (op == 2) return a > b ? a : b;
  return a + b;
}

__device__ inline double identity(int op) {
  if (op == 1) return __longlong_as_double(0x7ff0000000000000LL);   // +inf
  if (op == 2) return __longlong_as_double(static_cast<long long>(0xfff0000000000000ULL));  // -inf
  return 0.0;
}

__device__ double block_reduce(int op, double v) {
  __shared__ double buf[k_threads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = k_threads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) buf[threadIdx.x] = combine(op, buf[threadIdx.x], buf[threadIdx.x + s]);
    __syncthreads();
  }
  return buf[0];
}

template <class T>
__global__ void reduce_stage1(const T* a, Strides as, const T* b, Strides bs, Geom g, int op,
                              double* partial) {
  double acc = identity(op);
  for (std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; k < g.n;
       k += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i2 = k % g.e2;
    const std::int64_t r = k / g.e2;
    const std::int64_t i0 = r / g.e1;
    const std::int64_t i1 = r % g.e1;
    const double x = static_cast<double>(a[at(as.s, i0, i1, i2)]);
    double v = x;
    if (op == 3) v = x * x;
    if (op == 4) v = x * static_cast<double>(b[at(bs.s, i0, i1, i2)]);
    acc = combine(op == 1 || op == 2 ? op : 0, acc, v);
  }
  const double r = block_reduce(op == 1 || op == 2 ? op : 0, acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = r;
}

__global__ void reduce_stage2(const double* partial, int n, int op, double* out) {
  const int cop = op == 1 || op == 2 ? op : 0;
  double acc = identity(cop);
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc = combine(cop, acc, partial[i]);
  const double r = block_reduce(cop, acc);
  if (threadIdx.x == 0) *out = r;
}

int blocks_for(std::int64_t n) {
  const std::int64_t b = (n + k_threads - 1) / k_threads;
  return static_cast<int>(b < 1 ? 1 : (b > 4096 ? 4096 : b));
}

template <class F>
void by_type(int dtype, F&& f) {
  switch (dtype) {
    case 0: f(static_cast<int*>(nullptr)); break;
    case 1: f(static_cast<long long*>(nullptr)); break;
    case 3: f(static_cast<float*>(nullptr)); break;
    case 4: f(static_cast<double*>(nullptr)); break;
    default: throw std::runtime_error("parla::mpi DistArray: unsupported dtype on CUDA");
  }
}

}  // namespace

void copy_box(DevBox dst, DevBox src, const std::int64_t extent[3], int elem_size, void* stream) {
  const Geom g = geom(extent);
  if (g.n == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (elem_size == 8) {
    copy_kernel<<<blocks_for(g.n), k_threads, 0, s>>>(static_cast<long long*>(dst.ptr), strides_of(dst),
                                                     static_cast<const long long*>(src.ptr), strides_of(src), g);
  } else {
    copy_kernel<<<blocks_for(g.n), k_threads, 0, s>>>(static_cast<int*>(dst.ptr), strides_of(dst),
                                                     static_cast<const int*>(src.ptr), strides_of(src), g);
  }
  check(cudaGetLastError(), "copy kernel launch");
}

void fill_box(DevBox dst, const std::int64_t extent[3], int dtype, double value, void* stream) {
  const Geom g = geom(extent);
  if (g.n == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  by_type(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_kernel<<<blocks_for(g.n), k_threads, 0, s>>>(static_cast<T*>(dst.ptr), strides_of(dst),
                                                     static_cast<T>(value), g);
  });
  check(cudaGetLastError(), "fill kernel launch");
}

void reduce_box(DevBox a, DevBox b, const std::int64_t extent[3], int dtype, int op, double* out,
                void* stream) {
  const Geom g = geom(extent);
  auto s = static_cast<cudaStream_t>(stream);
  void* scratch = nullptr;
  check(cudaMallocAsync(&scratch, k_blocks * sizeof(double), s), "cudaMallocAsync");
  by_type(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    reduce_stage1<<<k_blocks, k_threads, 0, s>>>(static_cast<const T*>(a.ptr), strides_of(a),
                                                 static_cast<const T*>(b.ptr), strides_of(b), g, op,
                                                 static_cast<double*>(scratch));
  });
  check(cudaGetLastError(), "reduce kernel launch");
  reduce_stage2<<<1, k_threads, 0, s>>>(static_cast<const double*>(scratch), k_blocks, op, out);
  check(cudaGetLastError(), "reduce kernel launch");
  check(cudaFreeAsync(scratch, s), "cudaFreeAsync");
}

}  // namespace parla::mpi::detail::cuda
