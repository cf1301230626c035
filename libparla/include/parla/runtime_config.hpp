// RuntimeConfig: how a Runtime is built.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace parla {

/// Settings of a Runtime. A field left at its "from the environment" value is read from the
/// environment variable named below, then falls back to the default.
struct RuntimeConfig {
  /// cpu worker threads. 0: PARLA_NUM_WORKERS, else the number of hardware threads.
  int num_workers = 0;
  /// Simulated GPUs (each with its own worker, memory and streams). -1: PARLA_SIM_GPUS,
  /// else 0. When > 0 they replace any CUDA devices.
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
  /// Infer dependencies from data accesses in spawn order (reader after writer, writer after
  /// readers), in addition to the explicit ones. Unset: PARLA_INFER_DEPS (0 turns it off),
  /// else on.
  std::optional<bool> infer_dependencies{};
  /// Copy bandwidth of each simulated GPU's copy engine in GB/s, so locality matters in
  /// tests. < 0: PARLA_SIM_COPY_GBPS, else 0 (= unlimited: plain memcpy speed).
  double sim_copy_gbps = -1.0;
  /// CUDA devices to use when no GPUs are simulated (sim_gpus = 0): -1 = every device the
  /// rank sees (CUDA_VISIBLE_DEVICES), 0 = none, N = the first N. Unset (-1) also reads
  /// PARLA_CUDA_GPUS. Without a driver or a device this is 0 GPUs, a normal configuration.
  int cuda_gpus = -1;
};

}  // namespace parla
