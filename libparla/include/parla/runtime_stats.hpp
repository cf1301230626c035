// RuntimeStats: a short summary of what a runtime did.
#pragma once

#include <cstddef>
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
  /// Per device (cpu first): memory and the data copies brought into it.
  struct Device {
    std::string name;
    std::size_t memory_capacity = 0;
    std::size_t memory_in_use = 0;  // data instances + task reservations, now
    std::size_t memory_peak = 0;    // highest memory_in_use seen
    std::uint64_t copies_in = 0;    // copies whose destination is this device
    std::uint64_t bytes_in = 0;
    std::uint64_t evictions = 0;    // instances freed to make room
  };
  std::vector<Device> devices;
  std::uint64_t copies_h2d = 0, copies_d2h = 0, copies_d2d = 0;
  std::uint64_t bytes_h2d = 0, bytes_d2h = 0, bytes_d2d = 0;

  /// A few lines: tasks, then one line per worker with its busy fraction.
  [[nodiscard]] std::string to_string() const;
};

}  // namespace parla
