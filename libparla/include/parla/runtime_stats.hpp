// RuntimeStats: a short summary of what a runtime did.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace parla {

/// Counters of a runtime, from `Runtime::stats()`. Busy times are measured only when the
/// runtime traces or collects stats (RuntimeConfig::collect_stats, PARLA_STATS=1).
struct RuntimeStats {
  struct Worker {
    std::string device;      // "cpu", "gpu(0)"
    std::uint64_t tasks = 0;  // bodies run
    double busy_seconds = 0;  // time inside bodies
    double busy_fraction = 0; // busy_seconds / wall_seconds
  };
  std::uint64_t tasks_run = 0;         // bodies run, by workers and helping threads
  std::uint64_t tasks_failed = 0;
  double wall_seconds = 0;             // since the runtime started
  bool timed = false;                  // whether busy times were measured
  std::vector<Worker> workers;

  /// A few lines: tasks, then one line per worker with its busy fraction.
  [[nodiscard]] std::string to_string() const;
};

}  // namespace parla
