// RuntimeConfig: how a Runtime is built.
#pragma once

#include <cstddef>
#include <string>

namespace parla {

/// Settings of a Runtime. A field left at its "from the environment" value is read from the
/// environment variable named below, then falls back to the default.
struct RuntimeConfig {
  /// cpu worker threads. 0: PARLA_NUM_WORKERS, else the number of hardware threads.
  int num_workers = 0;
  /// Simulated GPUs (each with its own worker and memory). -1: PARLA_SIM_GPUS, else 0.
  int sim_gpus = -1;
  /// Memory capacity of each simulated GPU in bytes. 0: PARLA_SIM_GPU_MEMORY, else 16 GiB.
  std::size_t sim_gpu_memory = 0;
  /// Chrome-trace/Perfetto JSON written when the runtime is destroyed. Empty: PARLA_TRACE,
  /// else no trace.
  std::string trace_path{};
  /// Seconds without progress before a wait reports a deadlock. <= 0:
  /// PARLA_DEADLOCK_TIMEOUT, else 60.
  double deadlock_timeout = 0.0;
  /// Measure busy time per worker (implied by tracing; PARLA_STATS=1 also prints the
  /// summary on stderr when the runtime is destroyed).
  bool collect_stats = false;
};

}  // namespace parla
