// CoreSet: the cores this process was given, and which of them context tasks hold.
//
// A cpu task that reserves vcus v (a "library context", Parla's Virtual Library Context)
// gets max(1, round(v * N)) of the N cores of the process's affinity mask, pinned to its
// worker for the body's duration, so concurrent tasks' library thread pools never share a
// core. The mask is read once, when the runtime is built: mpirun/srun set it per rank, and
// the runtime never widens it. Only tasks with vcus > 0 touch this (one short mutex section
// on each side of the body); tasks with vcus = 0 make no affinity call at all.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace parla::detail {

class CoreSet {
 public:
  /// Reads the calling thread's affinity mask (the process's cores).
  CoreSet();

  /// The process's cores, ascending.
  [[nodiscard]] const std::vector<int>& cores() const noexcept { return m_cores; }
  /// How many cores a reservation of `vcus_units` (k_vcus_unit = the whole device) gets.
  [[nodiscard]] int count_for(std::int64_t vcus_units) const noexcept;
  /// Takes `n` cores, the least used first (free ones while there are any), and returns them.
  std::vector<int> acquire(int n);
  void release(const std::vector<int>& cores);

  /// Confines the calling thread to the process's cores (false when the call failed).
  bool confine_current_thread() const noexcept;

 private:
  std::vector<int> m_cores;
  std::mutex m_mutex;
  std::vector<int> m_users;  // per index of m_cores: running context tasks pinned there
};

/// Pins the calling thread to `cores` and restores its previous mask on destruction (no-op
/// when `cores` is empty or the platform has no thread affinity).
class ScopedAffinity {
 public:
  explicit ScopedAffinity(const std::vector<int>& cores) noexcept;
  ~ScopedAffinity();
  ScopedAffinity(const ScopedAffinity&) = delete;
  ScopedAffinity& operator=(const ScopedAffinity&) = delete;

 private:
  bool m_pinned = false;
  std::vector<int> m_previous;
};

/// The cores in the calling thread's affinity mask, ascending (empty when unknown).
std::vector<int> current_thread_cores();

}  // namespace parla::detail
