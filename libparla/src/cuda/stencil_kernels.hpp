// Launchers of the CUDA stencil kernels (stencil_kernels.cu, compiled by nvcc as C++17): plain
// types only, so the C++20 side (src/kernels/stencil.cpp) and nvcc both read this header.
#pragma once

#include <cstddef>

namespace parla::kernels::detail {

/// Enqueues the 2-D 5-point sweep over rows [i0, i1) x columns [j0, j1) on `stream` (a
/// cudaStream_t). Returns the cudaError_t of the launch (0: success).
int launch_jacobi_2d5(void* stream, const double* in, double* out, std::ptrdiff_t s0,
                      std::ptrdiff_t s1, std::ptrdiff_t i0, std::ptrdiff_t i1, std::ptrdiff_t j0,
                      std::ptrdiff_t j1, double c0, double c1);

/// Enqueues the 3-D 7-point sweep over [i0, i1) x [j0, j1) x [k0, k1) on `stream`.
int launch_jacobi_3d7(void* stream, const double* in, double* out, std::ptrdiff_t s0,
                      std::ptrdiff_t s1, std::ptrdiff_t s2, std::ptrdiff_t i0, std::ptrdiff_t i1,
                      std::ptrdiff_t j0, std::ptrdiff_t j1, std::ptrdiff_t k0, std::ptrdiff_t k1,
                      double c0, double c1);

/// cudaGetErrorString of a code returned above.
const char* cuda_error_string(int code);

}  // namespace parla::kernels::detail
