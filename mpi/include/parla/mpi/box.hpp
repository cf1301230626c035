#pragma once
/// Box: a rectangular range of an index space of up to three dimensions.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace parla::mpi {

/// The most dimensions a distributed array has.
inline constexpr int k_max_dims = 3;

/// The cells lo[d] <= i[d] < hi[d] of an index space of `ndim` dimensions; unused dimensions
/// (d >= ndim) hold lo = 0, hi = 1, so loops over all three axes need no special case.
/// Plain data: copy it freely.
struct Box {
  int ndim = 1;
  std::array<std::int64_t, k_max_dims> lo{0, 0, 0};
  std::array<std::int64_t, k_max_dims> hi{0, 1, 1};

  /// hi[d] - lo[d] (0 when negative).
  [[nodiscard]] std::int64_t extent(int d) const noexcept {
    const std::int64_t e = hi[static_cast<std::size_t>(d)] - lo[static_cast<std::size_t>(d)];
    return e > 0 ? e : 0;
  }
  /// Number of cells.
  [[nodiscard]] std::int64_t size() const noexcept { return extent(0) * extent(1) * extent(2); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  /// This box shifted by `by` along every axis.
  [[nodiscard]] Box shifted(const std::array<std::int64_t, k_max_dims>& by) const noexcept {
    Box b = *this;
    for (std::size_t d = 0; d < k_max_dims; ++d) {
      b.lo[d] += by[d];
      b.hi[d] += by[d];
    }
    return b;
  }
  /// "[0:4, 2:3]".
  [[nodiscard]] std::string to_string() const {
    std::string s = "[";
    for (int d = 0; d < ndim; ++d) {
      s += (d != 0 ? ", " : "") + std::to_string(lo[static_cast<std::size_t>(d)]) + ":" +
           std::to_string(hi[static_cast<std::size_t>(d)]);
    }
    return s + "]";
  }
  friend bool operator==(const Box&, const Box&) = default;
};

}  // namespace parla::mpi
