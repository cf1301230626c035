// Helpers of the DistArray tests: device lists per simulated-GPU count, uneven split points,
// a fill with the global index, and the global NumPy-style reference of a ghosted partition.
#pragma once

#include <gtest/gtest.h>

#include <parla/mpi/mpi.hpp>
#include <parla/parla.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace parla::mpi::test {

/// The devices a rank splits its block over for `gpus` simulated GPUs: the cpu twice (two
/// partitions on one device), one or two GPUs, or the cpu between three GPUs (mixed).
inline std::vector<DeviceSpec> devices_for(int gpus) {
  const DeviceSpec c{DeviceKind::cpu, 0};
  auto g = [](int i) { return DeviceSpec{DeviceKind::gpu, i}; };
  switch (gpus) {
    case 0: return {c, c};
    case 1: return {g(0)};
    case 2: return {g(0), g(1)};
    default: return {g(0), c, g(1), g(2)};
  }
}

/// `parts` + 1 strictly increasing points from 0 to n: part i gets at least `min` cells and
/// an extra share growing with i (uneven ownership).
inline std::vector<std::int64_t> uneven_points(std::int64_t n, int parts, std::int64_t min) {
  std::vector<std::int64_t> pts{0};
  const std::int64_t spare = n - parts * min;
  const std::int64_t weights = static_cast<std::int64_t>(parts) * (parts + 1) / 2;
  std::int64_t used = 0;
  for (int i = 0; i < parts; ++i) {
    std::int64_t extra = (i + 1 == parts) ? spare - used : spare * (i + 1) / weights;
    used += extra;
    pts.push_back(pts.back() + min + extra);
  }
  return pts;
}

/// Row-major linear index of a global cell.
inline std::int64_t linear(const std::vector<std::int64_t>& shape, const std::int64_t* g) {
  std::int64_t k = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) k = k * shape[d] + g[d];
  return k;
}

/// Writes each owned cell's global linear index (times `scale`, plus `shift`).
template <class T>
TaskSpace fill_with_index(DistArray& x, double scale = 1.0, double shift = 0.0) {
  const std::vector<std::int64_t> shape = x.shape();
  return x.for_each({write(x)}, Region::all, [shape, scale, shift](PartitionView& v) {
    const Partition& p = v.partition(0);
    T* base = v.data_as<T>(0);
    const Box box = v.boxes().front();
    v.run_host([=, &p] {
      for (std::int64_t i0 = box.lo[0]; i0 < box.hi[0]; ++i0) {
        for (std::int64_t i1 = box.lo[1]; i1 < box.hi[1]; ++i1) {
          for (std::int64_t i2 = box.lo[2]; i2 < box.hi[2]; ++i2) {
            const std::int64_t i[3] = {i0, i1, i2};
            std::int64_t g[3] = {0, 0, 0};
            for (std::size_t d = 0; d < shape.size(); ++d) g[d] = p.offset[d] + i[d];
            base[p.offset_of(i0, i1, i2)] = static_cast<T>(static_cast<double>(linear(shape, g)) * scale + shift);
          }
        }
      }
    });
  });
}

/// What ghosted cell `i` (owned-relative) of partition `p` must hold after an exchange of an
/// array filled by fill_with_index: NumPy-style indexing of the global array, wrapped for
/// periodic boundaries; `initial` where nothing is exchanged (outside a non-periodic domain,
/// and the edge/corner cells of a star stencil).
inline double expected_ghosted(const DistArray& x, const Partition& p, const std::int64_t* i, double initial) {
  const auto& shape = x.shape();
  int outside = 0;
  bool beyond_domain = false;
  std::int64_t g[3] = {0, 0, 0};
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (i[d] < 0 || i[d] >= p.extent[d]) ++outside;
    g[d] = p.offset[d] + i[d];
    if (g[d] < 0 || g[d] >= shape[d]) {
      beyond_domain = true;
      g[d] = (g[d] + shape[d]) % shape[d];
    }
  }
  if (outside == 0) return static_cast<double>(linear(shape, g));
  if (x.stencil() == Stencil::star && outside > 1) return initial;
  if (beyond_domain && x.boundary() != Boundary::periodic) return initial;
  return static_cast<double>(linear(shape, g));
}

}  // namespace parla::mpi::test
