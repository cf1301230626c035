// Resources: what a task reserves on each device it runs on.
#pragma once

#include <cstddef>

namespace parla {

/// A reservation on one device: a fraction of its compute units ("vcus", 1.0 = the whole
/// device) and bytes of its memory. A task is launched only when its reservation fits on
/// every device it runs on, and gives it back when it completes. All zero (the default)
/// means "no accounting": such tasks never wait for resources.
struct Resources {
  double vcus = 0.0;
  std::size_t memory = 0;

  [[nodiscard]] bool empty() const noexcept { return vcus <= 0.0 && memory == 0; }
  friend bool operator==(const Resources&, const Resources&) = default;
};

}  // namespace parla
