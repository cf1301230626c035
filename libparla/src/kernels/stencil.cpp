// The CPU stencil kernels and the triad. Built with -ffp-contract=off (libparla/CMakeLists.txt):
// a fused multiply-add would change the last bit and break the bit-for-bit agreement with
// the NumPy baseline that apps/heat checks.
#include <parla/kernels/stencil.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <parla/device.hpp>
#include <parla/error.hpp>
#include <parla/stream.hpp>

#if PARLA_HAVE_CUDA
#include "../cuda/stencil_kernels.hpp"
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#endif

namespace parla::kernels {
namespace {

using Index = std::ptrdiff_t;

/// Runs `fn(begin, end)` over `[0, count)` split into at most `threads` contiguous chunks,
/// the calling thread taking the first. A short-lived std::thread per extra chunk: a sweep
/// worth threading costs far more than the ~20 µs to start a thread, and owning no pool keeps
/// the kernel free of global state (the thread count follows the task's reservation).
template <class Fn>
void parallel_chunks(Index count, int threads, const Fn& fn) {
  if (count <= 0) return;
  const Index parts = std::clamp<Index>(threads, 1, count);
  if (parts == 1) {
    fn(Index{0}, count);
    return;
  }
  std::vector<std::jthread> helpers;
  helpers.reserve(static_cast<std::size_t>(parts - 1));
  const Index base = count / parts;
  const Index extra = count % parts;
  auto bounds = [&](Index p) { return p * base + std::min(p, extra); };
  for (Index p = 1; p < parts; ++p) {
    helpers.emplace_back([&fn, b = bounds(p), e = bounds(p + 1)] { fn(b, e); });
  }
  fn(bounds(0), bounds(1));
}

// One row of the 2-D sweep, last axis contiguous: restrict pointers and unit stride let the
// compiler vectorise it. The operation order is the normative one (see the header).
void row_2d5(const double* __restrict c, const double* __restrict north,
             const double* __restrict south, double* __restrict o, Index len, double c0,
             double c1) {
  for (Index k = 0; k < len; ++k) {
    o[k] = c0 * c[k] + c1 * (((north[k] + south[k]) + c[k - 1]) + c[k + 1]);
  }
}

/// Boxes whose output is at least this big are written with non-temporal (streaming) stores:
/// the output will not be read again before it has left the cache anyway, and skipping the
/// write-allocate read saves a third of a sweep's memory traffic. Smaller boxes keep their
/// output in cache for the next sweep, so they use ordinary stores.
constexpr std::size_t k_streaming_bytes = std::size_t{8} << 20;

#if defined(__SSE2__)
/// The 2-D row with 16-byte streaming stores: same operations in the same order (SSE2
/// arithmetic is IEEE double, lane by lane), so the same bits as row_2d5.
void row_2d5_stream(const double* __restrict c, const double* __restrict north,
                    const double* __restrict south, double* __restrict o, Index len, double c0,
                    double c1) {
  Index k = 0;
  for (; k < len && (reinterpret_cast<std::uintptr_t>(o + k) & 15U) != 0; ++k) {
    o[k] = c0 * c[k] + c1 * (((north[k] + south[k]) + c[k - 1]) + c[k + 1]);
  }
  const __m128d vc0 = _mm_set1_pd(c0);
  const __m128d vc1 = _mm_set1_pd(c1);
  for (; k + 2 <= len; k += 2) {
    const __m128d sum = _mm_add_pd(
        _mm_add_pd(_mm_add_pd(_mm_loadu_pd(north + k), _mm_loadu_pd(south + k)),
                   _mm_loadu_pd(c + k - 1)),
        _mm_loadu_pd(c + k + 1));
    _mm_stream_pd(o + k, _mm_add_pd(_mm_mul_pd(vc0, _mm_loadu_pd(c + k)), _mm_mul_pd(vc1, sum)));
  }
  for (; k < len; ++k) o[k] = c0 * c[k] + c1 * (((north[k] + south[k]) + c[k - 1]) + c[k + 1]);
}

void row_3d7_stream(const double* __restrict c, const double* __restrict im,
                    const double* __restrict ip, const double* __restrict jm,
                    const double* __restrict jp, double* __restrict o, Index len, double c0,
                    double c1) {
  Index k = 0;
  auto scalar = [&](Index q) {
    o[q] = c0 * c[q] + c1 * (((((im[q] + ip[q]) + jm[q]) + jp[q]) + c[q - 1]) + c[q + 1]);
  };
  for (; k < len && (reinterpret_cast<std::uintptr_t>(o + k) & 15U) != 0; ++k) scalar(k);
  const __m128d vc0 = _mm_set1_pd(c0);
  const __m128d vc1 = _mm_set1_pd(c1);
  for (; k + 2 <= len; k += 2) {
    __m128d sum = _mm_add_pd(_mm_loadu_pd(im + k), _mm_loadu_pd(ip + k));
    sum = _mm_add_pd(sum, _mm_loadu_pd(jm + k));
    sum = _mm_add_pd(sum, _mm_loadu_pd(jp + k));
    sum = _mm_add_pd(sum, _mm_loadu_pd(c + k - 1));
    sum = _mm_add_pd(sum, _mm_loadu_pd(c + k + 1));
    _mm_stream_pd(o + k, _mm_add_pd(_mm_mul_pd(vc0, _mm_loadu_pd(c + k)), _mm_mul_pd(vc1, sum)));
  }
  for (; k < len; ++k) scalar(k);
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PARLA_AVX2_ROWS 1
// The same rows 4 lanes wide, for CPUs with AVX2 (checked once at run time; the library is
// built for the baseline x86-64 ISA). Same operations in the same order, and no FMA (not
// enabled by target("avx2"), and contraction is off for this file): the same bits as the
// scalar rows. A 2-D sweep ran 15.4 GB/s on one core with SSE2 rows, 21.5 GB/s with these.
__attribute__((target("avx2"))) void row_2d5_avx2(const double* __restrict c,
                                                  const double* __restrict north,
                                                  const double* __restrict south,
                                                  double* __restrict o, Index len, double c0,
                                                  double c1) {
  for (Index k = 0; k < len; ++k) {
    o[k] = c0 * c[k] + c1 * (((north[k] + south[k]) + c[k - 1]) + c[k + 1]);
  }
}

__attribute__((target("avx2"))) void row_3d7_avx2(
    const double* __restrict c, const double* __restrict im, const double* __restrict ip,
    const double* __restrict jm, const double* __restrict jp, double* __restrict o, Index len,
    double c0, double c1) {
  for (Index k = 0; k < len; ++k) {
    o[k] = c0 * c[k] + c1 * (((((im[k] + ip[k]) + jm[k]) + jp[k]) + c[k - 1]) + c[k + 1]);
  }
}

__attribute__((target("avx2"))) void row_2d5_stream_avx2(
    const double* __restrict c, const double* __restrict north, const double* __restrict south,
    double* __restrict o, Index len, double c0, double c1) {
  Index k = 0;
  for (; k < len && (reinterpret_cast<std::uintptr_t>(o + k) & 31U) != 0; ++k) {
    o[k] = c0 * c[k] + c1 * (((north[k] + south[k]) + c[k - 1]) + c[k + 1]);
  }
  const __m256d vc0 = _mm256_set1_pd(c0);
  const __m256d vc1 = _mm256_set1_pd(c1);
  for (; k + 4 <= len; k += 4) {
    const __m256d sum = _mm256_add_pd(
        _mm256_add_pd(_mm256_add_pd(_mm256_loadu_pd(north + k), _mm256_loadu_pd(south + k)),
                      _mm256_loadu_pd(c + k - 1)),
        _mm256_loadu_pd(c + k + 1));
    _mm256_stream_pd(o + k, _mm256_add_pd(_mm256_mul_pd(vc0, _mm256_loadu_pd(c + k)),
                                          _mm256_mul_pd(vc1, sum)));
  }
  for (; k < len; ++k) o[k] = c0 * c[k] + c1 * (((north[k] + south[k]) + c[k - 1]) + c[k + 1]);
}

__attribute__((target("avx2"))) void row_3d7_stream_avx2(
    const double* __restrict c, const double* __restrict im, const double* __restrict ip,
    const double* __restrict jm, const double* __restrict jp, double* __restrict o, Index len,
    double c0, double c1) {
  Index k = 0;
  auto scalar = [&](Index q) {
    o[q] = c0 * c[q] + c1 * (((((im[q] + ip[q]) + jm[q]) + jp[q]) + c[q - 1]) + c[q + 1]);
  };
  for (; k < len && (reinterpret_cast<std::uintptr_t>(o + k) & 31U) != 0; ++k) scalar(k);
  const __m256d vc0 = _mm256_set1_pd(c0);
  const __m256d vc1 = _mm256_set1_pd(c1);
  for (; k + 4 <= len; k += 4) {
    __m256d sum = _mm256_add_pd(_mm256_loadu_pd(im + k), _mm256_loadu_pd(ip + k));
    sum = _mm256_add_pd(sum, _mm256_loadu_pd(jm + k));
    sum = _mm256_add_pd(sum, _mm256_loadu_pd(jp + k));
    sum = _mm256_add_pd(sum, _mm256_loadu_pd(c + k - 1));
    sum = _mm256_add_pd(sum, _mm256_loadu_pd(c + k + 1));
    _mm256_stream_pd(o + k, _mm256_add_pd(_mm256_mul_pd(vc0, _mm256_loadu_pd(c + k)),
                                          _mm256_mul_pd(vc1, sum)));
  }
  for (; k < len; ++k) scalar(k);
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") != 0;
  return yes;
}
#else
bool has_avx2() { return false; }
#endif

/// Whether a box of `cells` takes the streaming-store rows (and the fence they need).
bool use_streaming(std::size_t cells) {
#if defined(__SSE2__)
  return cells * sizeof(double) >= k_streaming_bytes;
#else
  (void)cells;
  return false;
#endif
}

/// Streaming stores are weakly ordered: fence them before the chunk's thread reports done.
void fence_streaming() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

void row_3d7(const double* __restrict c, const double* __restrict im, const double* __restrict ip,
             const double* __restrict jm, const double* __restrict jp, double* __restrict o,
             Index len, double c0, double c1) {
  for (Index k = 0; k < len; ++k) {
    o[k] = c0 * c[k] + c1 * (((((im[k] + ip[k]) + jm[k]) + jp[k]) + c[k - 1]) + c[k + 1]);
  }
}

void check_threads(int threads, const char* what) {
  if (threads < 1) {
    throw Error(std::string(what) + ": threads must be >= 1, got " + std::to_string(threads) +
                " (pass TaskContext::cores(), or 1 when it is 0)");
  }
}

template <std::size_t N>
void check_strides(const Strides<N>& s, const char* what) {
  for (std::size_t d = 0; d < N; ++d) {
    if (s[d] <= 0) {
      throw Error(std::string(what) + ": stride of axis " + std::to_string(d) +
                  " must be positive, got " + std::to_string(s[d]));
    }
  }
}

template <std::size_t N>
void check_box(const Box<N>& b, const char* what) {
  for (std::size_t d = 0; d < N; ++d) {
    if (b.lo[d] < 1 && b.hi[d] > b.lo[d]) {
      throw Error(std::string(what) + ": box starts at " + std::to_string(b.lo[d]) +
                  " on axis " + std::to_string(d) +
                  ", but a stencil cell needs its ghost neighbour at lo - 1 >= 0");
    }
  }
}

}  // namespace

void jacobi_2d5(const double* in, double* out, const Strides<2>& strides, const Box<2>& box,
                JacobiCoefficients coefficients, int threads) {
  check_threads(threads, "jacobi_2d5");
  check_strides(strides, "jacobi_2d5");
  check_box(box, "jacobi_2d5");
  if (box.cells() == 0) return;
  const auto [s0, s1] = strides;
  const Index rows = box.hi[0] - box.lo[0];
  const Index len = box.hi[1] - box.lo[1];
  const double c0 = coefficients.c0;
  const double c1 = coefficients.c1;
  const bool streaming = s1 == 1 && use_streaming(box.cells());
  [[maybe_unused]] const bool avx2 = has_avx2();
  parallel_chunks(rows, threads, [&](Index r0, Index r1) {
    for (Index r = r0; r < r1; ++r) {
      const Index i = box.lo[0] + r;
      const Index at = i * s0 + box.lo[1] * s1;
      if (streaming) {
#if defined(PARLA_AVX2_ROWS)
        if (avx2) {
          row_2d5_stream_avx2(in + at, in + at - s0, in + at + s0, out + at, len, c0, c1);
          continue;
        }
#endif
#if defined(__SSE2__)
        row_2d5_stream(in + at, in + at - s0, in + at + s0, out + at, len, c0, c1);
#endif
      } else if (s1 == 1) {
#if defined(PARLA_AVX2_ROWS)
        if (avx2) {
          row_2d5_avx2(in + at, in + at - s0, in + at + s0, out + at, len, c0, c1);
          continue;
        }
#endif
        row_2d5(in + at, in + at - s0, in + at + s0, out + at, len, c0, c1);
      } else {
        for (Index k = 0; k < len; ++k) {
          const Index p = at + k * s1;
          out[p] = c0 * in[p] + c1 * (((in[p - s0] + in[p + s0]) + in[p - s1]) + in[p + s1]);
        }
      }
    }
    if (streaming) fence_streaming();
  });
}

void jacobi_3d7(const double* in, double* out, const Strides<3>& strides, const Box<3>& box,
                JacobiCoefficients coefficients, int threads) {
  check_threads(threads, "jacobi_3d7");
  check_strides(strides, "jacobi_3d7");
  check_box(box, "jacobi_3d7");
  if (box.cells() == 0) return;
  const auto [s0, s1, s2] = strides;
  const Index planes = box.hi[0] - box.lo[0];
  const Index rows = box.hi[1] - box.lo[1];
  const Index len = box.hi[2] - box.lo[2];
  const double c0 = coefficients.c0;
  const double c1 = coefficients.c1;
  const bool streaming = s2 == 1 && use_streaming(box.cells());
  [[maybe_unused]] const bool avx2 = has_avx2();
  // Planes x rows flattened, so a thin box (few planes) still feeds every thread.
  parallel_chunks(planes * rows, threads, [&](Index r0, Index r1) {
    for (Index r = r0; r < r1; ++r) {
      const Index i = box.lo[0] + r / rows;
      const Index j = box.lo[1] + r % rows;
      const Index at = i * s0 + j * s1 + box.lo[2] * s2;
      if (streaming) {
#if defined(PARLA_AVX2_ROWS)
        if (avx2) {
          row_3d7_stream_avx2(in + at, in + at - s0, in + at + s0, in + at - s1, in + at + s1,
                              out + at, len, c0, c1);
          continue;
        }
#endif
#if defined(__SSE2__)
        row_3d7_stream(in + at, in + at - s0, in + at + s0, in + at - s1, in + at + s1, out + at,
                       len, c0, c1);
#endif
      } else if (s2 == 1) {
#if defined(PARLA_AVX2_ROWS)
        if (avx2) {
          row_3d7_avx2(in + at, in + at - s0, in + at + s0, in + at - s1, in + at + s1, out + at,
                       len, c0, c1);
          continue;
        }
#endif
        row_3d7(in + at, in + at - s0, in + at + s0, in + at - s1, in + at + s1, out + at, len,
                c0, c1);
      } else {
        for (Index k = 0; k < len; ++k) {
          const Index p = at + k * s2;
          out[p] = c0 * in[p] + c1 * (((((in[p - s0] + in[p + s0]) + in[p - s1]) + in[p + s1]) +
                                       in[p - s2]) + in[p + s2]);
        }
      }
    }
    if (streaming) fence_streaming();
  });
}

bool have_cuda_kernels() noexcept {
#if PARLA_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

#if PARLA_HAVE_CUDA
void check_launch(int code, const char* what) {
  if (code != 0) {
    throw Error(std::string(what) + ": CUDA launch failed: " + detail::cuda_error_string(code));
  }
}
#else
[[noreturn]] void no_cuda(const char* what) {
  throw Error(std::string(what) +
              ": this Parla was built without CUDA (PARLA_ENABLE_CUDA=OFF); run the CPU "
              "kernel, or rebuild with a CUDA toolkit");
}
#endif

/// Where a Stream-based launch goes: the CUDA kernel, or, on a simulated GPU (host-backed
/// memory, streams run by a helper thread), the CPU kernel in stream order.
template <class Cuda, class Host>
void on_stream(Stream& stream, const char* what, const Cuda& cuda, const Host& host) {
  const std::string backend = stream.device().backend();
  if (backend == "cuda") {
    cuda(stream.native_handle());
  } else if (backend == "sim") {
    stream.enqueue(host);
  } else {
    throw Error(std::string(what) + ": stream of " + stream.device().name() + " (backend " +
                backend + ") is not a GPU stream; call the CPU overload");
  }
}

}  // namespace

void jacobi_2d5_cuda([[maybe_unused]] void* cuda_stream, [[maybe_unused]] const double* in,
                     [[maybe_unused]] double* out, [[maybe_unused]] const Strides<2>& strides,
                     [[maybe_unused]] const Box<2>& box,
                     [[maybe_unused]] JacobiCoefficients coefficients) {
#if PARLA_HAVE_CUDA
  check_strides(strides, "jacobi_2d5_cuda");
  check_box(box, "jacobi_2d5_cuda");
  if (box.cells() == 0) return;
  check_launch(detail::launch_jacobi_2d5(cuda_stream, in, out, strides[0], strides[1], box.lo[0],
                                         box.hi[0], box.lo[1], box.hi[1], coefficients.c0,
                                         coefficients.c1),
               "jacobi_2d5_cuda");
#else
  no_cuda("jacobi_2d5_cuda");
#endif
}

void jacobi_3d7_cuda([[maybe_unused]] void* cuda_stream, [[maybe_unused]] const double* in,
                     [[maybe_unused]] double* out, [[maybe_unused]] const Strides<3>& strides,
                     [[maybe_unused]] const Box<3>& box,
                     [[maybe_unused]] JacobiCoefficients coefficients) {
#if PARLA_HAVE_CUDA
  check_strides(strides, "jacobi_3d7_cuda");
  check_box(box, "jacobi_3d7_cuda");
  if (box.cells() == 0) return;
  check_launch(detail::launch_jacobi_3d7(cuda_stream, in, out, strides[0], strides[1], strides[2],
                                         box.lo[0], box.hi[0], box.lo[1], box.hi[1], box.lo[2],
                                         box.hi[2], coefficients.c0, coefficients.c1),
               "jacobi_3d7_cuda");
#else
  no_cuda("jacobi_3d7_cuda");
#endif
}

void jacobi_2d5(Stream& stream, const double* in, double* out, const Strides<2>& strides,
                const Box<2>& box, JacobiCoefficients coefficients) {
  on_stream(
      stream, "jacobi_2d5",
      [&](void* s) { jacobi_2d5_cuda(s, in, out, strides, box, coefficients); },
      [=] { jacobi_2d5(in, out, strides, box, coefficients, 1); });
}

void jacobi_3d7(Stream& stream, const double* in, double* out, const Strides<3>& strides,
                const Box<3>& box, JacobiCoefficients coefficients) {
  on_stream(
      stream, "jacobi_3d7",
      [&](void* s) { jacobi_3d7_cuda(s, in, out, strides, box, coefficients); },
      [=] { jacobi_3d7(in, out, strides, box, coefficients, 1); });
}

TriadResult stream_triad(std::size_t elements, int threads, int repetitions) {
  check_threads(threads, "stream_triad");
  if (elements == 0 || repetitions < 1) {
    throw Error("stream_triad: need elements > 0 and repetitions >= 1, got " +
                std::to_string(elements) + " and " + std::to_string(repetitions));
  }
  // Uninitialised storage, first-touched below by the thread that later streams it.
  auto a = std::make_unique_for_overwrite<double[]>(elements);
  auto b = std::make_unique_for_overwrite<double[]>(elements);
  auto c = std::make_unique_for_overwrite<double[]>(elements);
  const auto n = static_cast<Index>(elements);
  parallel_chunks(n, threads, [&](Index lo, Index hi) {
    for (Index i = lo; i < hi; ++i) {
      a[i] = 0.0;
      b[i] = 1.0;
      c[i] = 2.0;
    }
  });
  constexpr double scalar = 3.0;
  double* __restrict pa = a.get();
  const double* __restrict pb = b.get();
  const double* __restrict pc = c.get();
  std::vector<double> seconds;
  for (int rep = 0; rep < repetitions; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_chunks(n, threads, [&](Index lo, Index hi) {
      for (Index i = lo; i < hi; ++i) pa[i] = pb[i] + scalar * pc[i];
    });
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (pa[elements / 2] != 7.0) throw Error("stream_triad: wrong result (memory corrupted?)");
  std::sort(seconds.begin(), seconds.end());
  const double bytes = 24.0 * static_cast<double>(elements);
  TriadResult r;
  r.best_gbs = bytes / seconds.front() / 1e9;
  r.median_gbs = bytes / seconds[seconds.size() / 2] / 1e9;
  r.elements = elements;
  r.threads = threads;
  return r;
}

double stream_triad_gbs(std::size_t elements, int threads, int repetitions) {
  return stream_triad(elements, threads, repetitions).best_gbs;
}

}  // namespace parla::kernels
