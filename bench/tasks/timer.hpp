#pragma once

#include <chrono>

namespace parla::bench {

/// Wall-clock stopwatch started at construction.
class Timer {
 public:
  [[nodiscard]] double seconds() const noexcept {
    return std::chrono::duration<double>(Clock::now() - m_start).count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point m_start = Clock::now();
};

}  // namespace parla::bench
