#pragma once
/// The pause between two polls of a spin loop (the node runtime's waits, the MPI engine).

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace parla::detail {

/// Tells the core this is a spin-wait (x86 `pause`): the sibling hyper-thread gets the
/// pipeline and leaving the loop costs no memory-order mis-speculation. A no-op elsewhere.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

}  // namespace parla::detail
