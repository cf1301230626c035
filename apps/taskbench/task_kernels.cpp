// The kernels of task_graph.hpp, compiled once into an object library that both programs
// link, so Parla's tasks and the MPI baseline's run the same machine code.
//
// Why a file of their own: inlined into each program, the compute_bound loop (load, multiply,
// add, store; 27 bytes) landed at a different offset in each binary. In parla_taskbench it
// straddled a 64-byte boundary and ran about 1.7 x slower than in mpi_taskbench on this
// machine's cores (same instructions; one rank, one thread, 200 tasks of 65,536 iterations:
// 0.36-0.46 s against 0.22-0.25 s), which no runtime overhead explains and which made every
// large-task point of Parla's sweeps look slower than MPI's. Built here with functions and
// loops aligned to 64 bytes (CMakeLists.txt), the code and its placement in a cache line are
// the same in both programs.
#include <cstddef>
#include <cstring>
#include <vector>

#include "task_graph.hpp"

namespace taskbench {

namespace {

/// Keeps the compiler from deleting a computation whose result is otherwise unused.
template <class T>
void do_not_optimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// The working set of memory_bound tasks: one per thread, since tasks of one point may run
/// at once (trivial), and a shared buffer would be a data race.
std::vector<char>& thread_scratch(std::size_t bytes) {
  thread_local std::vector<char> scratch;
  if (scratch.size() < bytes) scratch.assign(bytes, 1);
  return scratch;
}

}  // namespace

void run_kernel(const Graph& g) {
  switch (g.kernel) {
    case KernelKind::empty:
      return;
    case KernelKind::busy_wait: {
      long long acc = 113;
      for (long i = 0; i < g.iterations; ++i) acc = acc * 139 % 2147483647;
      do_not_optimize(acc);
      return;
    }
    case KernelKind::compute_bound: {
      double a[64];
      for (int j = 0; j < 64; ++j) a[j] = 1.0 + 1e-3 * j;
      for (long i = 0; i < g.iterations; ++i) {
        for (double& x : a) x = x * x + x;
        // One barrier per iteration keeps the 64 chains in registers as 64 independent
        // multiply-adds (no reassociation across iterations).
        do_not_optimize(a);
      }
      double s = 0;
      for (double x : a) s += x;
      do_not_optimize(s);
      return;
    }
    case KernelKind::memory_bound: {
      std::vector<char>& scratch = thread_scratch(g.scratch_bytes);
      const std::size_t half = g.scratch_bytes / 2;
      for (long i = 0; i < g.iterations; ++i) {
        char* src = scratch.data() + (i % 2 == 0 ? 0 : half);
        char* dst = scratch.data() + (i % 2 == 0 ? half : 0);
        std::memcpy(dst, src, half);
        do_not_optimize(dst[0]);
      }
      return;
    }
  }
}

}  // namespace taskbench
