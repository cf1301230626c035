// Fused stencil kernels shipped with the library: the Jacobi / explicit-heat sweeps of
// apps/heat (2-D 5-point, 3-D 7-point) on one ghosted partition, threaded on the CPU and as
// CUDA kernels on a stream, plus a STREAM-like triad to measure the machine's bandwidth.
#pragma once

#include <array>
#include <cstddef>

#include <parla/fwd.hpp>

namespace parla::kernels {

/// Element strides of a ghosted row-major partition: `strides[d]` is the distance, in
/// elements (not bytes), between neighbouring cells along axis `d`. `in` and `out` share
/// them. The fast path wants the last axis contiguous (stride 1); any other positive
/// strides work, scalar.
template <std::size_t N>
using Strides = std::array<std::ptrdiff_t, N>;

/// A half-open box of cells `[lo[d], hi[d])` in the partition's local coordinates (the ghost
/// cells included, so a partition with one ghost layer and `e` interior cells per axis has its
/// interior at `[1, e + 1)`). Every cell in the box must have its stencil neighbours inside
/// the allocation: `lo[d] >= 1` and `hi[d] <= extent[d] - 1`. An empty box is allowed.
template <std::size_t N>
struct Box {
  std::array<std::ptrdiff_t, N> lo{};
  std::array<std::ptrdiff_t, N> hi{};

  /// Number of cells in the box (0 when any side is empty).
  [[nodiscard]] std::size_t cells() const noexcept {
    std::size_t c = 1;
    for (std::size_t d = 0; d < N; ++d) {
      if (hi[d] <= lo[d]) return 0;
      c *= static_cast<std::size_t>(hi[d] - lo[d]);
    }
    return c;
  }
};

/// `out = c0 * u + c1 * (sum of the 2*dims face neighbours)`.
struct JacobiCoefficients {
  double c0 = 0.5;
  double c1 = 0.125;
};

/// One Jacobi sweep of the 2-D 5-point stencil over `box`:
///   out[i,j] = c0*u[i,j] + c1*(((u[i-1,j] + u[i+1,j]) + u[i,j-1]) + u[i,j+1])
/// evaluated in exactly this order without fused multiply-adds (this translation unit is
/// built with -ffp-contract=off), so the result is bit-identical to the NumPy expression of
/// apps/heat/heat_mpi4py.py. `in` and `out` point at local cell (0, 0) and must not overlap.
/// Runs on `threads` threads (>= 1; pass TaskContext::cores(), or 1 outside a vcus
/// reservation): the rows of the box are split into contiguous chunks.
void jacobi_2d5(const double* in, double* out, const Strides<2>& strides, const Box<2>& box,
                JacobiCoefficients coefficients, int threads = 1);

/// One Jacobi sweep of the 3-D 7-point stencil over `box`:
///   out = c0*u + c1*(((((u[i-1] + u[i+1]) + u[j-1]) + u[j+1]) + u[k-1]) + u[k+1])
/// (neighbours along axes 0, 1, 2 in this order), same rules as jacobi_2d5.
void jacobi_3d7(const double* in, double* out, const Strides<3>& strides, const Box<3>& box,
                JacobiCoefficients coefficients, int threads = 1);

/// The CUDA versions: enqueue the sweep on `stream` (a GPU task's `ctx.stream()`; `in` and
/// `out` are device memory of the stream's device) and return without waiting. Same
/// formula, evaluated with round-to-nearest intrinsics (no contraction), so the results are
/// bit-identical to the CPU kernels. Throws parla::Error when the library was built without
/// CUDA, for a stream that is not a CUDA stream (simulated GPUs: use the CPU kernels from a
/// host function), or when the launch fails.
void jacobi_2d5(Stream& stream, const double* in, double* out, const Strides<2>& strides,
                const Box<2>& box, JacobiCoefficients coefficients);
void jacobi_3d7(Stream& stream, const double* in, double* out, const Strides<3>& strides,
                const Box<3>& box, JacobiCoefficients coefficients);

/// The same launches on a raw `cudaStream_t` (passed as `void*`; nullptr is the legacy
/// default stream), for code that manages its own streams.
void jacobi_2d5_cuda(void* cuda_stream, const double* in, double* out, const Strides<2>& strides,
                     const Box<2>& box, JacobiCoefficients coefficients);
void jacobi_3d7_cuda(void* cuda_stream, const double* in, double* out, const Strides<3>& strides,
                     const Box<3>& box, JacobiCoefficients coefficients);

/// Whether the CUDA kernels were compiled in (PARLA_ENABLE_CUDA).
[[nodiscard]] bool have_cuda_kernels() noexcept;

/// Result of stream_triad().
struct TriadResult {
  double best_gbs = 0.0;     ///< best repetition: 24 bytes per element / seconds
  double median_gbs = 0.0;   ///< median repetition
  std::size_t elements = 0;  ///< per array
  int threads = 0;
};

/// A STREAM-like triad `a[i] = b[i] + s * c[i]` over three arrays of `elements` doubles
/// (first-touched by the threads that use them), run `repetitions` times on `threads`
/// threads. Bandwidth counts 24 bytes per element (two reads and one write, no write-allocate:
/// STREAM's convention). Arrays should be several times the last-level cache (the default
/// 2^24 elements is 3 x 128 MiB).
[[nodiscard]] TriadResult stream_triad(std::size_t elements = std::size_t{1} << 24,
                                       int threads = 1, int repetitions = 10);

/// stream_triad(...).best_gbs: the number STREAM reports as "Best Rate".
[[nodiscard]] double stream_triad_gbs(std::size_t elements = std::size_t{1} << 24,
                                      int threads = 1, int repetitions = 10);

}  // namespace parla::kernels
