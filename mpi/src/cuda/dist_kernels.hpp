// Device kernels of DistArray (pack/unpack/copy of strided boxes, fill, reductions) for CUDA
// devices. Plain C++17 declarations: the .cu is compiled by nvcc in C++17, the callers are
// C++20. Every function enqueues on `stream` (a cudaStream_t) and throws std::runtime_error
// naming the CUDA error when a launch fails. Internal.
#pragma once

#include <cstddef>
#include <cstdint>

namespace parla::mpi::detail::cuda {

/// A strided 3-d box: `ptr` is its first cell, `strides` in elements, `extent` per axis
/// (unused axes extent 1).
struct DevBox {
  void* ptr = nullptr;
  std::int64_t strides[3] = {0, 0, 0};
};

/// Copies `extent` cells of `elem_size` bytes (4 or 8) from `src` to `dst`.
void copy_box(DevBox dst, DevBox src, const std::int64_t extent[3], int elem_size, void* stream);

/// Element types, as parla::mpi::Datatype: 0 i32, 1 i64, 3 f32, 4 f64.
/// Sets every cell of `dst` to `value` converted to the type.
void fill_box(DevBox dst, const std::int64_t extent[3], int dtype, double value, void* stream);

/// Reductions: 0 sum, 1 min, 2 max, 3 sum of squares, 4 dot with `b`. Writes one double to
/// device memory `out` (deterministic: a fixed two-stage tree).
void reduce_box(DevBox a, DevBox b, const std::int64_t extent[3], int dtype, int op, double* out,
                void* stream);

}  // namespace parla::mpi::detail::cuda
