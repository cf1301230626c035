// DistArray: construction (geometry, collective agreement), ordering, compute (for_each,
// fill, copy_from), reductions. The halo plan is in halo_plan.cpp, scatter/gather/I-O in
// dist_array_io.cpp.
#include <parla/error.hpp>
#include <parla/device.hpp>
#include <parla/mpi/dist_array.hpp>
#include <parla/mpi/mpi_error.hpp>
#include <parla/stream.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <utility>

#include "dist_array_state.hpp"
#if defined(PARLA_HAVE_CUDA)
#include "cuda/dist_kernels.hpp"
#endif

namespace parla::mpi {

using detail::DistArrayState;
using detail::Idx3;
using detail::Layout;
using detail::StridedPtr;

const char* to_string(Boundary b) noexcept {
  switch (b) {
    case Boundary::none: return "none";
    case Boundary::periodic: return "periodic";
    case Boundary::constant: return "constant";
  }
  return "?";
}

const char* to_string(Stencil s) noexcept { return s == Stencil::star ? "star" : "box"; }

namespace detail {

namespace {

bool supported(Datatype t) {
  return t == Datatype::f64 || t == Datatype::f32 || t == Datatype::i64 || t == Datatype::i32;
}

std::string spec_name(const DeviceSpec& d) {
  if (d.kind == DeviceKind::cpu) return "cpu";
  return "gpu(" + std::to_string(d.index) + ")";
}

/// Calls f(T{}) with the C++ type of `t`.
template <class F>
decltype(auto) by_type(Datatype t, F&& f) {
  switch (t) {
    case Datatype::f64: return f(double{});
    case Datatype::f32: return f(float{});
    case Datatype::i64: return f(std::int64_t{});
    case Datatype::i32: return f(std::int32_t{});
    default: break;
  }
  throw Error(std::string("DistArray: dtype ") + dtype_name(t) + " is not supported (use f64, f32, i64 or i32)");
}

void add_unique(std::vector<Dep>& out, const Task& t) {
  if (!t.valid() || t.done()) return;
  for (const Dep& d : out) {
    if (const Task* x = std::get_if<Task>(&d.value()); x != nullptr && *x == t) return;
  }
  out.emplace_back(t);
}

/// Cells of the owned box not farther than `r` from any face (clamped so that interior and
/// boundary bands partition the owned cells even when the partition is thin).
struct Bands {
  Box interior;
  std::vector<Box> boundary;
};

Bands bands(int ndim, const Idx3& ext, const Idx3& r) {
  Bands out;
  Idx3 a{};
  Idx3 b{};
  for (std::size_t d = 0; d < k_max_dims; ++d) {
    a[d] = std::min(r[d], ext[d]);
    b[d] = std::max(ext[d] - r[d], a[d]);
  }
  out.interior.ndim = ndim;
  for (std::size_t d = 0; d < k_max_dims; ++d) {
    out.interior.lo[d] = a[d];
    out.interior.hi[d] = b[d];
  }
  // Along axis d: the low and high bands, restricted to the interior on the axes before d
  // and full on the axes after it, so the bands are disjoint.
  for (int d = 0; d < ndim; ++d) {
    const auto du = static_cast<std::size_t>(d);
    for (int side = 0; side < 2; ++side) {
      Box x;
      x.ndim = ndim;
      for (std::size_t e = 0; e < k_max_dims; ++e) {
        if (e < du) {
          x.lo[e] = a[e];
          x.hi[e] = b[e];
        } else {
          x.lo[e] = 0;
          x.hi[e] = ext[e];
        }
      }
      if (side == 0) {
        x.lo[du] = 0;
        x.hi[du] = a[du];
      } else {
        x.lo[du] = b[du];
        x.hi[du] = ext[du];
      }
      if (!x.empty()) out.boundary.push_back(x);
    }
  }
  return out;
}

Placement placement_of(const DeviceSpec& d) {
  return Placement({PlacementOption{{d}, std::nullopt}});
}

std::atomic<int> g_next_array_id{0};  // proposal only; agreed collectively (max over ranks)

}  // namespace

// ---- ordering ------------------------------------------------------------------------------

void RegionTracker::deps(bool write, std::vector<Dep>& out) const {
  for (const Task& t : writers) add_unique(out, t);
  if (write) {
    for (const Task& t : readers) add_unique(out, t);
  }
}

void Uses::commit() {
  // Regions written by this operation: its writers replace the old ones, its readers (that
  // ran concurrently with them) are the new readers.
  std::vector<RegionTracker*> written;
  for (const Use& u : m_uses) {
    if (u.write && std::find(written.begin(), written.end(), u.region) == written.end()) {
      written.push_back(u.region);
    }
  }
  for (RegionTracker* r : written) {
    r->writers.clear();
    r->readers.clear();
  }
  for (Use& u : m_uses) {
    RegionTracker& r = *u.region;
    if (u.write) {
      r.writers.push_back(std::move(u.task));
    } else {
      if (r.readers.size() >= 16) {
        std::erase_if(r.readers, [](const Task& t) { return t.done(); });
      }
      r.readers.push_back(std::move(u.task));
    }
  }
  m_uses.clear();
}

// ---- geometry ------------------------------------------------------------------------------

bool Layout::contiguous(const Box& b) const noexcept {
  // Row-major: contiguous iff, past the first axis with extent > 1, every axis is full.
  Idx3 full{};
  for (std::size_t d = 0; d < k_max_dims; ++d) full[d] = extent[d] + 2 * ghosts[d];
  std::size_t d = 0;
  while (d < k_max_dims && b.extent(static_cast<int>(d)) == 1) ++d;
  for (std::size_t e = d + 1; e < k_max_dims; ++e) {
    if (b.extent(static_cast<int>(e)) != full[e]) return false;
  }
  return true;
}

Idx3 extents(const Box& b) noexcept {
  return Idx3{b.extent(0), b.extent(1), b.extent(2)};
}

Idx3 dense_strides(const Box& b) noexcept {
  const Idx3 e = extents(b);
  return Idx3{e[1] * e[2], e[2], 1};
}

// ---- device work ---------------------------------------------------------------------------

Exec exec_of(const TaskContext& ctx) {
  const char* backend = ctx.device().backend();
  if (std::strcmp(backend, "sim") == 0) return Exec::sim;
  if (std::strcmp(backend, "cuda") == 0) return Exec::cuda;
  return Exec::host;
}

namespace {

template <class W>
void copy_host_words(std::span<const CopyPair> pairs, const Idx3& ext) {
  // The innermost axis with more than one cell; rows along it are memcpy'd when dense on
  // both sides of every pair (the axes after it have one cell).
  int r = 2;
  while (r > 0 && ext[static_cast<std::size_t>(r)] == 1) --r;
  const auto ru = static_cast<std::size_t>(r);
  const bool dense = std::ranges::all_of(pairs, [ru](const CopyPair& p) { return p.dst.strides[ru] == 1 && p.src.strides[ru] == 1; });
  if (dense) {
    const auto row = static_cast<std::size_t>(ext[ru]) * sizeof(W);
    const std::int64_t n0 = r == 0 ? 1 : ext[0];
    const std::int64_t n1 = r <= 1 ? 1 : ext[1];
    for (std::int64_t i0 = 0; i0 < n0; ++i0) {
      for (std::int64_t i1 = 0; i1 < n1; ++i1) {
        for (const CopyPair& p : pairs) {
          auto* d = reinterpret_cast<W*>(p.dst.ptr);  // NOLINT: block memory is suitably aligned
          const auto* s = reinterpret_cast<const W*>(p.src.ptr);
          std::memcpy(d + i0 * p.dst.strides[0] + i1 * p.dst.strides[1], s + i0 * p.src.strides[0] + i1 * p.src.strides[1], row);
        }
      }
    }
    return;
  }
  // Strided: the axes with more than one cell (the same for every pair: one extent), the
  // innermost last, padded at the front so the innermost real axis is index 2. Strides go
  // into locals: a store through a W* may alias the stride arrays as far as the compiler
  // knows, which made it reload them for every element.
  std::int64_t n[3] = {1, 1, 1};
  std::size_t axis[3] = {0, 0, 0};
  int axes = 0;
  for (std::size_t a = 0; a < 3; ++a) {
    if (ext[a] == 1) continue;
    n[axes] = ext[a];
    axis[axes] = a;
    ++axes;
  }
  const int pad = 3 - axes;
  for (int a = 2; a >= 0; --a) n[a] = a - pad >= 0 ? n[a - pad] : 1;
  struct Walk {
    W* d;
    const W* s;
    std::int64_t ds[3];
    std::int64_t ss[3];
  };
  // Two boxes walk their cells together, cell by cell: a periodic self-exchange copies a
  // partition's two opposite columns, and reading one row's cells of both at once touches
  // each row's cache lines (and pages) once instead of once per column.
  constexpr std::size_t k_batch = 2;
  for (std::size_t first = 0; first < pairs.size(); first += k_batch) {
    const std::size_t count = std::min(k_batch, pairs.size() - first);
    Walk w[k_batch];
    for (std::size_t k = 0; k < count; ++k) {
      const CopyPair& p = pairs[first + k];
      w[k].d = reinterpret_cast<W*>(p.dst.ptr);  // NOLINT: block memory is suitably aligned
      w[k].s = reinterpret_cast<const W*>(p.src.ptr);
      for (int a = 0; a < 3; ++a) {
        const int from = a - pad;
        w[k].ds[a] = from >= 0 ? p.dst.strides[axis[from]] : 0;
        w[k].ss[a] = from >= 0 ? p.src.strides[axis[from]] : 0;
      }
    }
    const std::int64_t n0 = n[0], n1 = n[1], n2 = n[2];
    if (count == 1) {
      const Walk& k = w[0];
      const std::int64_t d2 = k.ds[2], s2 = k.ss[2];
      for (std::int64_t i0 = 0; i0 < n0; ++i0) {
        for (std::int64_t i1 = 0; i1 < n1; ++i1) {
          W* out = k.d + i0 * k.ds[0] + i1 * k.ds[1];
          const W* in = k.s + i0 * k.ss[0] + i1 * k.ss[1];
          for (std::int64_t i2 = 0; i2 < n2; ++i2, out += d2, in += s2) *out = *in;
        }
      }
      continue;
    }
    // Two boxes (a partition's opposite faces, the common case), unrolled.
    const std::int64_t a2 = w[0].ds[2], b2 = w[0].ss[2], c2 = w[1].ds[2], e2 = w[1].ss[2];
    for (std::int64_t i0 = 0; i0 < n0; ++i0) {
      for (std::int64_t i1 = 0; i1 < n1; ++i1) {
        W* o0 = w[0].d + i0 * w[0].ds[0] + i1 * w[0].ds[1];
        const W* s0 = w[0].s + i0 * w[0].ss[0] + i1 * w[0].ss[1];
        W* o1 = w[1].d + i0 * w[1].ds[0] + i1 * w[1].ds[1];
        const W* s1 = w[1].s + i0 * w[1].ss[0] + i1 * w[1].ss[1];
        for (std::int64_t i2 = 0; i2 < n2; ++i2, o0 += a2, s0 += b2, o1 += c2, s1 += e2) {
          const W x0 = *s0;
          const W x1 = *s1;
          *o0 = x0;
          *o1 = x1;
        }
      }
    }
  }
}

}  // namespace

void copy_host(std::span<const CopyPair> pairs, const Idx3& ext, std::size_t elem) {
  if (pairs.empty() || ext[0] * ext[1] * ext[2] == 0) return;
  if (elem == 8) {
    copy_host_words<std::uint64_t>(pairs, ext);
  } else {
    copy_host_words<std::uint32_t>(pairs, ext);
  }
}

void copy_host(StridedPtr dst, StridedPtr src, const Idx3& ext, std::size_t elem) {
  const CopyPair pair{dst, src};
  copy_host(std::span<const CopyPair>(&pair, 1), ext, elem);
}

namespace {

template <class T>
void fill_host(StridedPtr dst, const Idx3& ext, T value) {
  T* d = reinterpret_cast<T*>(dst.ptr);  // NOLINT
  for (std::int64_t i0 = 0; i0 < ext[0]; ++i0) {
    for (std::int64_t i1 = 0; i1 < ext[1]; ++i1) {
      T* row = d + i0 * dst.strides[0] + i1 * dst.strides[1];
      for (std::int64_t i2 = 0; i2 < ext[2]; ++i2) row[i2 * dst.strides[2]] = value;
    }
  }
}

template <class T>
double reduce_host(StridedPtr a, StridedPtr b, const Idx3& ext, RedOp op) {
  const T* x = reinterpret_cast<const T*>(a.ptr);  // NOLINT
  const T* y = reinterpret_cast<const T*>(b.ptr);  // NOLINT
  double acc = 0.0;
  if (op == RedOp::min) acc = std::numeric_limits<double>::infinity();
  if (op == RedOp::max) acc = -std::numeric_limits<double>::infinity();
  for (std::int64_t i0 = 0; i0 < ext[0]; ++i0) {
    for (std::int64_t i1 = 0; i1 < ext[1]; ++i1) {
      const T* xr = x + i0 * a.strides[0] + i1 * a.strides[1];
      const T* yr = y != nullptr ? y + i0 * b.strides[0] + i1 * b.strides[1] : nullptr;
      for (std::int64_t i2 = 0; i2 < ext[2]; ++i2) {
        const auto v = static_cast<double>(xr[i2 * a.strides[2]]);
        switch (op) {
          case RedOp::sum: acc += v; break;
          case RedOp::min: acc = std::min(acc, v); break;
          case RedOp::max: acc = std::max(acc, v); break;
          case RedOp::sumsq: acc += v * v; break;
          case RedOp::dot: acc += v * static_cast<double>(yr[i2 * b.strides[2]]); break;
        }
      }
    }
  }
  return acc;
}

#if defined(PARLA_HAVE_CUDA)
cuda::DevBox dev_box(StridedPtr p) {
  cuda::DevBox b;
  b.ptr = p.ptr;
  for (std::size_t d = 0; d < k_max_dims; ++d) b.strides[d] = p.strides[d];
  return b;
}
#else
[[noreturn]] void no_cuda() {
  throw Error("DistArray: a task runs on a CUDA device but parla::mpi was built without "
              "CUDA kernels (PARLA_ENABLE_CUDA=OFF); rebuild with CUDA or use cpu/simulated GPUs");
}
#endif

/// Runs `fn` now (host) or in stream order (simulated GPU).
template <class F>
void host_in_order(TaskContext& ctx, Exec e, F&& fn) {
  if (e == Exec::sim) {
    ctx.stream().enqueue(std::forward<F>(fn));
  } else {
    fn();
  }
}

}  // namespace

void copy_box(TaskContext& ctx, StridedPtr dst, StridedPtr src, const Idx3& ext, std::size_t elem) {
  const Exec e = exec_of(ctx);
  if (e == Exec::cuda) {
#if defined(PARLA_HAVE_CUDA)
    cuda::copy_box(dev_box(dst), dev_box(src), ext.data(), static_cast<int>(elem), ctx.stream().native_handle());
    return;
#else
    no_cuda();
#endif
  }
  host_in_order(ctx, e, [=] { copy_host(dst, src, ext, elem); });
}

void copy_boxes(TaskContext& ctx, std::span<const CopyPair> pairs, const Idx3& ext, std::size_t elem) {
  const Exec e = exec_of(ctx);
  if (e == Exec::host) {
    copy_host(pairs, ext, elem);
    return;
  }
  if (e == Exec::sim) {
    ctx.stream().enqueue([p = std::vector<CopyPair>(pairs.begin(), pairs.end()), ext, elem] { copy_host(p, ext, elem); });
    return;
  }
  for (const CopyPair& p : pairs) copy_box(ctx, p.dst, p.src, ext, elem);
}

void fill_box(TaskContext& ctx, StridedPtr dst, const Idx3& ext, Datatype type, double value) {
  const Exec e = exec_of(ctx);
  if (e == Exec::cuda) {
#if defined(PARLA_HAVE_CUDA)
    cuda::fill_box(dev_box(dst), ext.data(), static_cast<int>(type), value, ctx.stream().native_handle());
    return;
#else
    no_cuda();
#endif
  }
  host_in_order(ctx, e, [=] {
    by_type(type, [&](auto tag) { fill_host(dst, ext, static_cast<decltype(tag)>(value)); });
  });
}

void reduce_box(TaskContext& ctx, StridedPtr a, StridedPtr b, const Idx3& ext, Datatype type, RedOp op,
                double* out) {
  const Exec e = exec_of(ctx);
  if (e == Exec::cuda) {
#if defined(PARLA_HAVE_CUDA)
    cuda::reduce_box(dev_box(a), dev_box(b), ext.data(), static_cast<int>(type), static_cast<int>(op), out,
                     ctx.stream().native_handle());
    return;
#else
    no_cuda();
#endif
  }
  host_in_order(ctx, e, [=] {
    *out = by_type(type, [&](auto tag) { return reduce_host<decltype(tag)>(a, b, ext, op); });
  });
}

// ---- the state -----------------------------------------------------------------------------

int DistArrayState::global_index(const std::array<int, k_max_dims>& c) const noexcept {
  return (c[0] * pgrid[1] + c[1]) * pgrid[2] + c[2];
}

std::array<int, k_max_dims> DistArrayState::global_coords(int g) const noexcept {
  std::array<int, k_max_dims> c{};
  c[2] = g % pgrid[2];
  c[1] = (g / pgrid[2]) % pgrid[1];
  c[0] = g / (pgrid[2] * pgrid[1]);
  return c;
}

GlobalPart DistArrayState::owner(const std::array<int, k_max_dims>& c) const noexcept {
  int rank = 0;
  int local = 0;
  for (int d = 0; d < ndim; ++d) {
    int rc = c[static_cast<std::size_t>(d)];
    if (d == device_axis) {
      local = rc % ndev;
      rc /= ndev;
    }
    rank = rank * grid[static_cast<std::size_t>(d)] + rc;
  }
  return GlobalPart{rank, local};
}

Idx3 DistArrayState::extent_of(const std::array<int, k_max_dims>& c) const noexcept {
  Idx3 e{1, 1, 1};
  for (std::size_t d = 0; d < static_cast<std::size_t>(ndim); ++d) {
    const auto i = static_cast<std::size_t>(c[d]);
    e[d] = bounds[d][i + 1] - bounds[d][i];
  }
  return e;
}

Idx3 DistArrayState::offset_of(const std::array<int, k_max_dims>& c) const noexcept {
  Idx3 o{0, 0, 0};
  for (std::size_t d = 0; d < static_cast<std::size_t>(ndim); ++d) o[d] = bounds[d][static_cast<std::size_t>(c[d])];
  return o;
}

std::vector<Task> DistArrayState::pending_tasks() const {
  std::vector<Task> out;
  auto add = [&](const Task& t) {
    if (t.valid() && !t.done()) out.push_back(t);
  };
  for (const PartTrack& t : tracks) {
    for (const Task& x : t.owned.writers) add(x);
    for (const Task& x : t.owned.readers) add(x);
    for (const Task& x : t.ghost.writers) add(x);
    for (const Task& x : t.ghost.readers) add(x);
  }
  for (const RecvExec& r : recv_exec) add(r.last_use);
  for (const SendExec& s : send_exec) add(s.last_use);
  return out;
}

DistArrayState::~DistArrayState() {
  if (rt == nullptr) return;
  for (const Task& t : pending_tasks()) {
    try {
      rt->wait(t);
    } catch (...) {
      // Reported where the program waits (or at the runtime's end).
    }
  }
}

void check_conformable(const DistArrayState& a, const DistArrayState& b, const char* what) {
  if (&a == &b) return;
  std::string why;
  if (a.shape != b.shape) {
    why = "shapes " + join(a.shape) + " and " + join(b.shape) + " differ";
  } else if (a.grid != b.grid) {
    why = "process grids " + join(a.grid) + " and " + join(b.grid) + " differ";
  } else if (a.bounds != b.bounds) {
    why = "their partitions differ (uneven splits or device splits)";
  } else {
    for (std::size_t p = 0; p < a.parts.size() && why.empty(); ++p) {
      if (!(a.parts[p].device == b.parts[p].device)) {
        why = "partition " + std::to_string(p) + " lives on " + spec_name(a.parts[p].device) + " in '" + a.name +
              "' but on " + spec_name(b.parts[p].device) + " in '" + b.name + "'";
      }
    }
  }
  if (!why.empty()) {
    throw Error(std::string("DistArray::") + what + ": arrays '" + a.name + "' and '" + b.name +
                "' are not conformable: " + why +
                ". Arrays of one operation need the same shape, process grid, splits and devices "
                "(build the second with the first's options)");
  }
}

}  // namespace detail

// ---- Partition and PartitionView -----------------------------------------------------------

Box Partition::owned_box() const noexcept {
  Box b;
  b.ndim = static_cast<int>(extent.size());
  for (std::size_t d = 0; d < extent.size(); ++d) {
    b.lo[d] = 0;
    b.hi[d] = extent[d];
  }
  return b;
}

Box Partition::ghosted_box() const noexcept {
  Box b = owned_box();
  for (std::size_t d = 0; d < extent.size(); ++d) {
    b.lo[d] -= ghosts[d];
    b.hi[d] += ghosts[d];
  }
  return b;
}

std::int64_t Partition::ghosted_size() const noexcept {
  std::int64_t n = 1;
  for (std::int64_t e : ghosted_extent) n *= e;
  return n;
}

void PartitionView::run_host(std::function<void()> fn) const {
  switch (detail::exec_of(*m_ctx)) {
    case detail::Exec::host: fn(); return;
    case detail::Exec::sim:
      // Synchronous, so bodies may capture by reference: the simulated GPU's own worker
      // waits for its stream (its inputs' copies), then runs the host code.
      m_ctx->stream().synchronize();
      fn();
      return;
    case detail::Exec::cuda: break;
  }
  throw Error("PartitionView::run_host: task '" + m_ctx->name() + "' runs on CUDA device " +
              m_ctx->device().name() + "; launch a kernel on context().stream().native_handle() instead");
}

double ReductionFuture::get() const {
  if (m_rt == nullptr || !m_task.valid()) throw Error("ReductionFuture::get: an empty future");
  m_rt->wait(m_task);
  return m_task.get<double>();
}

// ---- construction --------------------------------------------------------------------------

namespace {

/// Everything each rank can check alone; throws parla::Error naming the numbers.
void validate_local(DistArrayState& s, DistArrayOptions& o, int nranks, int rank, Runtime& rt,
                    std::vector<std::int64_t>& local_points) {
  const auto nd = o.shape.size();
  if (nd < 1 || nd > static_cast<std::size_t>(k_max_dims)) {
    throw Error("DistArray: shape " + detail::join(o.shape) + " has " + std::to_string(nd) +
                " dimensions; a distributed array has 1 to 3");
  }
  s.ndim = static_cast<int>(nd);
  for (std::size_t d = 0; d < nd; ++d) {
    if (o.shape[d] < 1) {
      throw Error("DistArray: shape " + detail::join(o.shape) + " has extent " + std::to_string(o.shape[d]) +
                  " on axis " + std::to_string(d) + "; every extent must be >= 1");
    }
  }
  s.shape = o.shape;
  if (!detail::supported(o.dtype)) {
    throw Error(std::string("DistArray: dtype ") + detail::dtype_name(o.dtype) +
                " is not supported; use f64, f32, i64 or i32");
  }
  s.dtype = o.dtype;
  s.elem = size_of(o.dtype);

  // Process grid.
  if (o.process_grid.empty()) {
    std::vector<int> dims(nd, 0);
    check_mpi(MPI_Dims_create(nranks, static_cast<int>(nd), dims.data()), "MPI_Dims_create");
    s.grid = dims;
  } else {
    if (o.process_grid.size() != nd) {
      throw Error("DistArray: process_grid " + detail::join(o.process_grid) + " has " +
                  std::to_string(o.process_grid.size()) + " axes but the shape " + detail::join(o.shape) + " has " +
                  std::to_string(nd));
    }
    long long product = 1;
    for (int g : o.process_grid) {
      if (g < 1) throw Error("DistArray: process_grid " + detail::join(o.process_grid) + " has an entry < 1");
      product *= g;
    }
    if (product != nranks) {
      throw Error("DistArray: process_grid " + detail::join(o.process_grid) + " has " + std::to_string(product) +
                  " ranks but the communicator has " + std::to_string(nranks) +
                  "; give a grid whose product is " + std::to_string(nranks) + " (or none: MPI_Dims_create chooses)");
    }
    s.grid = o.process_grid;
  }
  for (std::size_t d = 0; d < nd; ++d) {
    if (o.shape[d] < s.grid[d]) {
      throw Error("DistArray: axis " + std::to_string(d) + " of shape " + detail::join(o.shape) + " has " +
                  std::to_string(o.shape[d]) + " cells but the process grid " + detail::join(s.grid) + " puts " +
                  std::to_string(s.grid[d]) + " ranks on it; every rank needs at least one cell per axis: "
                  "use a larger array or a process_grid with at most " + std::to_string(o.shape[d]) +
                  " ranks on that axis");
    }
  }
  // Rank coordinates: row-major, as MPI_Cart_create without reordering.
  s.coords.assign(nd, 0);
  int r = rank;
  for (std::size_t d = nd; d-- > 0;) {
    s.coords[d] = r % s.grid[d];
    r /= s.grid[d];
  }
  // Splits.
  if (o.splits.size() > nd) {
    throw Error("DistArray: splits has " + std::to_string(o.splits.size()) + " axes but the shape has " +
                std::to_string(nd));
  }
  s.splits.assign(nd, {});
  for (std::size_t d = 0; d < nd; ++d) {
    const auto g = static_cast<std::size_t>(s.grid[d]);
    std::vector<std::int64_t>& pts = s.splits[d];
    if (d < o.splits.size() && !o.splits[d].empty()) {
      pts = o.splits[d];
      bool ok = pts.size() == g + 1 && pts.front() == 0 && pts.back() == o.shape[d];
      for (std::size_t i = 0; ok && i + 1 < pts.size(); ++i) ok = pts[i] < pts[i + 1];
      if (!ok) {
        throw Error("DistArray: splits on axis " + std::to_string(d) + " are " + detail::join(pts) + "; they must be " +
                    std::to_string(g + 1) + " strictly increasing points from 0 to " + std::to_string(o.shape[d]) +
                    " (one more than the " + std::to_string(g) + " ranks on that axis)");
      }
    } else {
      pts.resize(g + 1);
      const std::int64_t base = o.shape[d] / static_cast<std::int64_t>(g);
      const std::int64_t rem = o.shape[d] % static_cast<std::int64_t>(g);
      pts[0] = 0;
      for (std::size_t i = 0; i < g; ++i) {
        pts[i + 1] = pts[i] + base + (static_cast<std::int64_t>(i) < rem ? 1 : 0);
      }
    }
  }
  // Ghosts.
  if (o.ghosts.empty()) {
    s.ghosts.assign(nd, 0);
  } else if (o.ghosts.size() == 1) {
    s.ghosts.assign(nd, o.ghosts.front());
  } else if (o.ghosts.size() == nd) {
    s.ghosts = o.ghosts;
  } else {
    throw Error("DistArray: ghosts " + detail::join(o.ghosts) + " must have one value or " + std::to_string(nd));
  }
  for (int g : s.ghosts) {
    if (g < 0) throw Error("DistArray: ghost widths " + detail::join(s.ghosts) + " must be >= 0");
  }
  s.boundary = o.boundary;
  s.boundary_value = o.boundary_value;
  s.stencil = o.stencil;
  // Devices.
  if (o.devices.empty()) o.devices.push_back(DeviceSpec{DeviceKind::cpu, 0});
  for (DeviceSpec& d : o.devices) {
    if (d.kind == DeviceKind::cpu) {
      if (d.index > 0) throw Error("DistArray: device cpu(" + std::to_string(d.index) + ") does not exist; use cpu");
      d.index = 0;
    } else if (d.index < 0) {
      throw Error("DistArray: devices must name one GPU each (gpu(i)), not any GPU");
    } else if (d.index >= rt.num_gpus()) {
      throw Error("DistArray: device gpu(" + std::to_string(d.index) + ") requested but the runtime of rank " +
                  std::to_string(rank) + " has " + std::to_string(rt.num_gpus()) +
                  " GPUs (CUDA_VISIBLE_DEVICES, RuntimeConfig::sim_gpus / PARLA_SIM_GPUS)");
    }
  }
  s.ndev = static_cast<int>(o.devices.size());
  if (o.device_axis < 0 || o.device_axis >= static_cast<int>(nd)) {
    throw Error("DistArray: device_axis " + std::to_string(o.device_axis) + " is not an axis of shape " +
                detail::join(o.shape));
  }
  s.device_axis = o.device_axis;
  const auto a = static_cast<std::size_t>(o.device_axis);
  const std::int64_t L = s.splits[a][static_cast<std::size_t>(s.coords[a]) + 1] - s.splits[a][static_cast<std::size_t>(s.coords[a])];
  if (L < s.ndev) {
    throw Error("DistArray: rank " + std::to_string(rank) + " owns " + std::to_string(L) + " cells along device_axis " +
                std::to_string(a) + " but splits them over " + std::to_string(s.ndev) +
                " devices; use fewer devices or a larger array");
  }
  if (!o.device_splits.empty()) {
    local_points = o.device_splits;
    bool ok = local_points.size() == o.devices.size() + 1 && local_points.front() == 0 && local_points.back() == L;
    for (std::size_t i = 0; ok && i + 1 < local_points.size(); ++i) ok = local_points[i] < local_points[i + 1];
    if (!ok) {
      throw Error("DistArray: device_splits " + detail::join(local_points) + " on rank " + std::to_string(rank) +
                  " must be " + std::to_string(s.ndev + 1) + " strictly increasing points from 0 to " +
                  std::to_string(L) + " (this rank's extent along device_axis " + std::to_string(a) + ")");
    }
  } else {
    local_points.resize(static_cast<std::size_t>(s.ndev) + 1);
    const std::int64_t base = L / s.ndev;
    const std::int64_t rem = L % s.ndev;
    local_points[0] = 0;
    for (int i = 0; i < s.ndev; ++i) {
      local_points[static_cast<std::size_t>(i) + 1] = local_points[static_cast<std::size_t>(i)] + base + (i < rem ? 1 : 0);
    }
  }
}

std::int64_t options_hash(const DistArrayState& s) {
  std::ostringstream os;
  os << detail::join(s.shape) << static_cast<int>(s.dtype) << detail::join(s.grid);
  for (const auto& p : s.splits) os << detail::join(p);
  os << detail::join(s.ghosts) << static_cast<int>(s.boundary) << static_cast<int>(s.stencil) << s.device_axis
     << s.ndev;
  return static_cast<std::int64_t>(std::hash<std::string>{}(os.str()) >> 2);
}

/// Blocking allreduce (max) of int64 values through the Comm's progress engine.
void allreduce_max(Runtime& rt, Comm& comm, std::vector<std::int64_t>& v) {
  Task t = comm.allreduce(v.data(), v.size(), Datatype::i64, ReduceOp::max, {.name = "DistArray.setup"});
  rt.wait(t);
}

}  // namespace

DistArray::DistArray(Runtime& rt, Comm& comm, DistArrayOptions o) {
  auto s = std::make_shared<DistArrayState>();
  const int nranks = comm.size();
  const int rank = comm.rank();
  std::vector<std::int64_t> local_points;
  std::string error;
  try {
    validate_local(*s, o, nranks, rank, rt, local_points);
  } catch (const std::exception& e) {
    error = e.what();
  }
  // 1. Agree: any rank's error, the array id, the options, the number of devices. Max of h
  // and of -h are equal (negated) only when every rank has the same h.
  const std::int64_t h = error.empty() ? options_hash(*s) : 0;
  std::vector<std::int64_t> agree{error.empty() ? 0 : 1, detail::g_next_array_id.load(std::memory_order_relaxed),
                                  h, -h};
  allreduce_max(rt, comm, agree);
  if (agree[0] != 0) {
    throw Error(error.empty() ? "DistArray: another rank rejected the array's options (see its message)" : error);
  }
  if (agree[2] != -agree[3]) {
    throw Error("DistArray: the ranks were given different options (shape, dtype, process grid, splits, ghosts, "
                "boundary, stencil, device_axis or number of devices must be the same on every rank)");
  }
  s->id = static_cast<int>(agree[1]);
  detail::g_next_array_id.store(s->id + 1, std::memory_order_relaxed);
  s->rt = &rt;
  s->comm = &comm;
  s->name = o.name.empty() ? "x" + std::to_string(s->id) : o.name;
  s->halo_space_name = s->name + ".halo";

  // 2. Every rank's device split points along device_axis, so every rank knows the global
  // partition grid.
  const auto a = static_cast<std::size_t>(s->device_axis);
  const std::size_t np = static_cast<std::size_t>(s->ndev) + 1;
  std::vector<std::int64_t> pts(static_cast<std::size_t>(nranks) * np, -1);
  std::copy(local_points.begin(), local_points.end(), pts.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(rank) * np));
  allreduce_max(rt, comm, pts);
  s->bounds = s->splits;
  std::vector<std::int64_t>& ab = s->bounds[a];
  ab.assign(1, 0);
  const auto ga = static_cast<std::size_t>(s->grid[a]);
  for (std::size_t c = 0; c < ga; ++c) {
    // The ranks at coordinate c along the device axis must agree on their split.
    const std::vector<std::int64_t>* first = nullptr;
    std::vector<std::int64_t> mine;
    for (int r = 0; r < nranks; ++r) {
      int rr = r;
      std::size_t rc = 0;
      for (std::size_t d = static_cast<std::size_t>(s->ndim); d-- > 0;) {
        if (d == a) rc = static_cast<std::size_t>(rr % s->grid[d]);
        rr /= s->grid[d];
      }
      if (rc != c) continue;
      std::vector<std::int64_t> p(pts.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(r) * np),
                                  pts.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(r + 1) * np));
      if (first == nullptr) {
        mine = std::move(p);
        first = &mine;
      } else if (p != mine) {
        throw Error("DistArray: ranks at process coordinate " + std::to_string(c) + " along device_axis " +
                    std::to_string(a) + " split their blocks differently over their devices (" + detail::join(mine) +
                    " vs " + detail::join(p) + " on rank " + std::to_string(r) +
                    "); they must agree so the partitions form one grid");
      }
    }
    for (std::size_t i = 1; i < np; ++i) ab.push_back(s->splits[a][c] + mine[i]);
  }
  for (std::size_t d = 0; d < k_max_dims; ++d) {
    s->pgrid[d] = d < static_cast<std::size_t>(s->ndim) ? static_cast<int>(s->bounds[d].size()) - 1 : 1;
  }
  // 3. Ghost widths against the thinnest partition on each axis that exchanges.
  for (std::size_t d = 0; d < static_cast<std::size_t>(s->ndim); ++d) {
    const int g = s->ghosts[d];
    if (g == 0) continue;
    if (s->pgrid[d] == 1 && s->boundary != Boundary::periodic) continue;
    for (std::size_t i = 0; i + 1 < s->bounds[d].size(); ++i) {
      const std::int64_t e = s->bounds[d][i + 1] - s->bounds[d][i];
      if (e < g) {
        throw Error("DistArray: ghost width " + std::to_string(g) + " on axis " + std::to_string(d) +
                    " is larger than partition " + std::to_string(i) + "'s extent " + std::to_string(e) +
                    " there (bounds " + detail::join(s->bounds[d]) +
                    "); a halo comes from the next partition only: use a narrower halo, fewer ranks or devices "
                    "along that axis, or a larger array");
      }
    }
  }
  // 4. Local partitions, their blocks, and the tasks that place them on their devices.
  const auto nd = static_cast<std::size_t>(s->ndim);
  for (int l = 0; l < s->ndev; ++l) {
    Partition p;
    p.local_index = l;
    std::array<int, k_max_dims> c{0, 0, 0};
    for (std::size_t d = 0; d < nd; ++d) c[d] = s->coords[d] * (d == a ? s->ndev : 1) + (d == a ? l : 0);
    p.global_index = s->global_index(c);
    p.coords.assign(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(nd));
    p.device = o.devices[static_cast<std::size_t>(l)];
    const Idx3 off = s->offset_of(c);
    const Idx3 ext = s->extent_of(c);
    Layout lay;
    lay.ndim = s->ndim;
    lay.elem = s->elem;
    for (std::size_t d = 0; d < nd; ++d) {
      p.offset.push_back(off[d]);
      p.extent.push_back(ext[d]);
      p.ghosts.push_back(s->ghosts[d]);
      p.ghosted_extent.push_back(ext[d] + 2 * s->ghosts[d]);
      lay.extent[d] = ext[d];
      lay.ghosts[d] = s->ghosts[d];
    }
    // Row-major strides over three axes (unused ones extent 1).
    Idx3 full{1, 1, 1};
    for (std::size_t d = 0; d < nd; ++d) full[d] = p.ghosted_extent[d];
    lay.strides = Idx3{full[1] * full[2], full[2], 1};
    lay.origin = lay.ghosts[0] * lay.strides[0] + lay.ghosts[1] * lay.strides[1] + lay.ghosts[2] * lay.strides[2];
    for (std::size_t d = 0; d < nd; ++d) p.strides.push_back(lay.strides[d]);
    p.origin = lay.origin;
    p.block = DataBlock(rt, static_cast<std::size_t>(p.ghosted_size()) * s->elem, s->name + "." + std::to_string(l));
    s->parts.push_back(std::move(p));
    s->layouts.push_back(lay);
    s->placements.push_back(detail::placement_of(s->parts.back().device));
  }
  s->tracks.resize(s->parts.size());
  detail::Uses uses;
  for (std::size_t l = 0; l < s->parts.size(); ++l) {
    const Partition& p = s->parts[l];
    const Layout lay = s->layouts[l];
    const DataBlock block = p.block;
    const Boundary boundary = s->boundary;
    const double value = s->boundary_value;
    const Datatype type = s->dtype;
    Box ghosted = p.ghosted_box();
    Box owned = p.owned_box();
    // Host memory starts zeroed; device memory is filled (and the block placed there).
    Task t = rt.spawn({.placement = s->placements[l], .out = {block}, .name = s->name + ".init",
                       .infer_dependencies = false},
                      [=](TaskContext& ctx) {
                        auto* base = static_cast<std::byte*>(ctx.data(block));
                        const bool host = detail::exec_of(ctx) == detail::Exec::host;
                        if (boundary == Boundary::constant && value != 0.0) {
                          detail::fill_box(ctx, {base + lay.offset(ghosted) * static_cast<std::int64_t>(lay.elem), lay.strides},
                                           detail::extents(ghosted), type, value);
                          detail::fill_box(ctx, {base + lay.offset(owned) * static_cast<std::int64_t>(lay.elem), lay.strides},
                                           detail::extents(owned), type, 0.0);
                        } else if (!host) {
                          detail::fill_box(ctx, {base + lay.offset(ghosted) * static_cast<std::int64_t>(lay.elem), lay.strides},
                                           detail::extents(ghosted), type, 0.0);
                        }
                      });
    uses.add(s->tracks[l].owned, true, t);
    uses.add(s->tracks[l].ghost, true, t);
  }
  uses.commit();
  m_state = std::move(s);
}

// ---- accessors -----------------------------------------------------------------------------

int DistArray::ndim() const noexcept { return m_state->ndim; }
const std::vector<std::int64_t>& DistArray::shape() const noexcept { return m_state->shape; }
std::int64_t DistArray::size() const noexcept {
  return std::accumulate(m_state->shape.begin(), m_state->shape.end(), std::int64_t{1}, std::multiplies<>());
}
Datatype DistArray::dtype() const noexcept { return m_state->dtype; }
std::size_t DistArray::element_size() const noexcept { return m_state->elem; }
const std::vector<int>& DistArray::process_grid() const noexcept { return m_state->grid; }
const std::vector<int>& DistArray::process_coords() const noexcept { return m_state->coords; }
const std::vector<std::vector<std::int64_t>>& DistArray::splits() const noexcept { return m_state->splits; }
const std::vector<std::vector<std::int64_t>>& DistArray::partition_bounds() const noexcept { return m_state->bounds; }
const std::vector<int>& DistArray::ghosts() const noexcept { return m_state->ghosts; }
Boundary DistArray::boundary() const noexcept { return m_state->boundary; }
double DistArray::boundary_value() const noexcept { return m_state->boundary_value; }
Stencil DistArray::stencil() const noexcept { return m_state->stencil; }
int DistArray::device_axis() const noexcept { return m_state->device_axis; }
const std::string& DistArray::name() const noexcept { return m_state->name; }
int DistArray::id() const noexcept { return m_state->id; }
const std::vector<Partition>& DistArray::partitions() const noexcept { return m_state->parts; }
int DistArray::num_global_partitions() const noexcept {
  return m_state->pgrid[0] * m_state->pgrid[1] * m_state->pgrid[2];
}
Runtime& DistArray::runtime() const noexcept { return *m_state->rt; }
Comm& DistArray::comm() const noexcept { return *m_state->comm; }

const HaloPlan& DistArray::halo_plan() const {
  if (!m_state->plan) m_state->build_plan();
  return *m_state->plan;
}

TaskSpace DistArray::exchange_halos() { return m_state->exchange(); }

void DistArray::wait() const {
  for (const Task& t : m_state->pending_tasks()) m_state->rt->wait(t);
}

std::vector<Dep> DistArray::pending() const {
  std::vector<Dep> out;
  for (const Task& t : m_state->pending_tasks()) out.emplace_back(t);
  return out;
}

// ---- compute -------------------------------------------------------------------------------

TaskSpace DistArray::for_each(const std::vector<Access>& arrays, Region region, PartitionBody body, std::string name) {
  DistArrayState& s = *m_state;
  if (arrays.empty()) throw Error("DistArray::for_each: give at least one access (read(x), write(y), ...)");
  if (!body) throw Error("DistArray::for_each: the body is empty");
  std::vector<DistArrayState*> states;
  for (const Access& a : arrays) {
    if (a.array == nullptr || !a.array->valid()) throw Error("DistArray::for_each: an access names an empty array");
    detail::check_conformable(s, *a.array->m_state, "for_each");
    states.push_back(a.array->m_state.get());
  }
  // The band width: the widest halo read (else the widest ghost layer).
  Idx3 radius{0, 0, 0};
  bool any_ghost_read = false;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    if (arrays[i].with_ghosts && arrays[i].mode != Mode::write) any_ghost_read = true;
  }
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    if (any_ghost_read && !(arrays[i].with_ghosts && arrays[i].mode != Mode::write)) continue;
    for (std::size_t d = 0; d < static_cast<std::size_t>(s.ndim); ++d) {
      radius[d] = std::max<std::int64_t>(radius[d], states[i]->ghosts[d]);
    }
  }
  TaskSpace ts(*s.rt, name.empty() ? s.name + ".for_each" : name);
  auto shared_body = std::make_shared<PartitionBody>(std::move(body));
  detail::Uses uses;
  std::vector<Dep> deps;
  for (std::size_t l = 0; l < s.parts.size(); ++l) {
    const Partition& p = s.parts[l];
    Idx3 ext{1, 1, 1};
    for (std::size_t d = 0; d < static_cast<std::size_t>(s.ndim); ++d) ext[d] = p.extent[d];
    detail::Bands b = detail::bands(s.ndim, ext, radius);
    struct Piece {
      std::vector<Box> boxes;
      bool interior;
      bool needs_ghosts;
    };
    std::vector<Piece> pieces;
    switch (region) {
      case Region::all: pieces.push_back({{p.owned_box()}, false, true}); break;
      case Region::interior: pieces.push_back({{b.interior}, true, false}); break;
      case Region::boundary: pieces.push_back({b.boundary, false, true}); break;
      case Region::split:
        pieces.push_back({{b.interior}, true, false});
        pieces.push_back({b.boundary, false, true});
        break;
    }
    std::vector<const Partition*> parts;
    std::vector<DataBlock> blocks;
    std::vector<DataSlice> in;
    std::vector<DataSlice> inout;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      const Partition& ap = states[i]->parts[l];
      parts.push_back(&ap);
      blocks.push_back(ap.block);
      if (arrays[i].mode == Mode::read) {
        in.push_back(ap.block);
      } else {
        inout.push_back(ap.block);  // writes touch owned cells only: the rest must stay
      }
    }
    for (std::size_t k = 0; k < pieces.size(); ++k) {
      deps.clear();
      for (std::size_t i = 0; i < arrays.size(); ++i) {
        detail::PartTrack& t = states[i]->tracks[l];
        const bool writes = arrays[i].mode != Mode::read;
        const bool reads = arrays[i].mode != Mode::write;
        detail::Uses::deps(t.owned, writes, deps);
        if (reads && arrays[i].with_ghosts && pieces[k].needs_ghosts) detail::Uses::deps(t.ghost, false, deps);
      }
      SpawnOptions so;
      so.key = ts[{static_cast<std::int64_t>(l), static_cast<std::int64_t>(k)}];
      so.dependencies = deps;
      so.placement = s.placements[l];
      so.in = in;
      so.inout = inout;
      so.infer_dependencies = false;
      Task t = s.rt->spawn(std::move(so), [shared_body, parts, blocks, boxes = pieces[k].boxes,
                                          interior = pieces[k].interior](TaskContext& ctx) {
        std::vector<void*> data;
        data.reserve(blocks.size());
        for (const DataBlock& blk : blocks) data.push_back(ctx.data(blk));
        PartitionView view(ctx, parts, std::move(data), boxes, interior);
        (*shared_body)(view);
      });
      for (std::size_t i = 0; i < arrays.size(); ++i) {
        detail::PartTrack& tr = states[i]->tracks[l];
        const bool writes = arrays[i].mode != Mode::read;
        const bool reads = arrays[i].mode != Mode::write;
        uses.add(tr.owned, writes, t);
        if (reads && arrays[i].with_ghosts && pieces[k].needs_ghosts) uses.add(tr.ghost, false, t);
      }
    }
  }
  uses.commit();
  return ts;
}

TaskSpace DistArray::fill(double value) {
  DistArrayState& s = *m_state;
  TaskSpace ts(*s.rt, s.name + ".fill");
  detail::Uses uses;
  std::vector<Dep> deps;
  for (std::size_t l = 0; l < s.parts.size(); ++l) {
    deps.clear();
    detail::Uses::deps(s.tracks[l].owned, true, deps);
    const Layout lay = s.layouts[l];
    const DataBlock block = s.parts[l].block;
    const Box owned = s.parts[l].owned_box();
    const Datatype type = s.dtype;
    Task t = s.rt->spawn({.key = ts[static_cast<std::int64_t>(l)], .dependencies = deps, .placement = s.placements[l],
                          .inout = {block}, .infer_dependencies = false},
                         [=](TaskContext& ctx) {
                           auto* base = static_cast<std::byte*>(ctx.data(block));
                           detail::fill_box(ctx, {base + lay.offset(owned) * static_cast<std::int64_t>(lay.elem), lay.strides},
                                            detail::extents(owned), type, value);
                         });
    uses.add(s.tracks[l].owned, true, t);
  }
  uses.commit();
  return ts;
}

TaskSpace DistArray::copy_from(const DistArray& other) {
  DistArrayState& s = *m_state;
  if (!other.valid()) throw Error("DistArray::copy_from: the source is an empty array");
  DistArrayState& o = *other.m_state;
  detail::check_conformable(s, o, "copy_from");
  if (o.dtype != s.dtype) {
    throw Error(std::string("DistArray::copy_from: dtypes differ (") + detail::dtype_name(o.dtype) + " into " +
                detail::dtype_name(s.dtype) + ")");
  }
  TaskSpace ts(*s.rt, s.name + ".copy");
  if (&o == &s) return ts;
  detail::Uses uses;
  std::vector<Dep> deps;
  for (std::size_t l = 0; l < s.parts.size(); ++l) {
    deps.clear();
    detail::Uses::deps(s.tracks[l].owned, true, deps);
    detail::Uses::deps(o.tracks[l].owned, false, deps);
    const Layout dl = s.layouts[l];
    const Layout sl = o.layouts[l];
    const DataBlock db = s.parts[l].block;
    const DataBlock sb = o.parts[l].block;
    const Box owned = s.parts[l].owned_box();
    Task t = s.rt->spawn({.key = ts[static_cast<std::int64_t>(l)], .dependencies = deps, .placement = s.placements[l],
                          .in = {sb}, .inout = {db}, .infer_dependencies = false},
                         [=](TaskContext& ctx) {
                           auto* d = static_cast<std::byte*>(ctx.data(db));
                           auto* src = static_cast<std::byte*>(ctx.data(sb));
                           detail::copy_box(ctx, {d + dl.offset(owned) * static_cast<std::int64_t>(dl.elem), dl.strides},
                                            {src + sl.offset(owned) * static_cast<std::int64_t>(sl.elem), sl.strides},
                                            detail::extents(owned), dl.elem);
                         });
    uses.add(s.tracks[l].owned, true, t);
    uses.add(o.tracks[l].owned, false, t);
  }
  uses.commit();
  return ts;
}

// ---- reductions ----------------------------------------------------------------------------

namespace {

ReductionFuture reduce(DistArrayState& a, DistArrayState* b, detail::RedOp op) {
  Runtime& rt = *a.rt;
  const std::size_t n = a.parts.size();
  DataBlock partials(rt, n * sizeof(double), a.name + ".partials");
  detail::Uses uses;
  std::vector<Dep> deps;
  std::vector<Dep> partial_tasks;
  for (std::size_t l = 0; l < n; ++l) {
    deps.clear();
    detail::Uses::deps(a.tracks[l].owned, false, deps);
    if (b != nullptr) detail::Uses::deps(b->tracks[l].owned, false, deps);
    const Layout la = a.layouts[l];
    const Layout lb = b != nullptr ? b->layouts[l] : la;
    const DataBlock ba = a.parts[l].block;
    const DataBlock bb = b != nullptr ? b->parts[l].block : DataBlock{};
    const DataSlice slot = partials.elements<double>(l, 1);
    const Box owned = a.parts[l].owned_box();
    const Datatype type = a.dtype;
    SpawnOptions so;
    so.dependencies = deps;
    so.placement = a.placements[l];
    so.in.push_back(ba);
    if (bb.valid()) so.in.push_back(bb);
    so.out.push_back(slot);
    so.infer_dependencies = false;
    so.name = a.name + ".partial";
    Task t = rt.spawn(std::move(so), [=](TaskContext& ctx) {
      auto* pa = static_cast<std::byte*>(ctx.data(ba));
      StridedPtr sb{};
      if (bb.valid()) sb = {static_cast<std::byte*>(ctx.data(bb)) + lb.offset(owned) * static_cast<std::int64_t>(lb.elem), lb.strides};
      detail::reduce_box(ctx, {pa + la.offset(owned) * static_cast<std::int64_t>(la.elem), la.strides}, sb,
                         detail::extents(owned), type, op, ctx.data_as<double>(slot));
    });
    uses.add(a.tracks[l].owned, false, t);
    if (b != nullptr) uses.add(b->tracks[l].owned, false, t);
    partial_tasks.emplace_back(t);
  }
  uses.commit();
  auto value = std::make_shared<double>(0.0);
  Task combine = rt.spawn({.dependencies = partial_tasks, .in = {partials}, .name = a.name + ".combine",
                           .infer_dependencies = false},
                          [=](TaskContext& ctx) {
                            const double* v = ctx.data_as<double>(partials);
                            double acc = op == detail::RedOp::min   ? std::numeric_limits<double>::infinity()
                                         : op == detail::RedOp::max ? -std::numeric_limits<double>::infinity()
                                                                    : 0.0;
                            for (std::size_t i = 0; i < n; ++i) {
                              if (op == detail::RedOp::min) {
                                acc = std::min(acc, v[i]);
                              } else if (op == detail::RedOp::max) {
                                acc = std::max(acc, v[i]);
                              } else {
                                acc += v[i];
                              }
                            }
                            *value = acc;
                          });
  const ReduceOp mop = op == detail::RedOp::min ? ReduceOp::min : op == detail::RedOp::max ? ReduceOp::max : ReduceOp::sum;
  Task all = a.comm->allreduce(value.get(), 1, Datatype::f64, mop,
                               {.dependencies = {combine}, .name = a.name + ".allreduce", .keepalive = value});
  const bool root = op == detail::RedOp::sumsq;
  Task result = rt.spawn({.dependencies = {all}, .name = a.name + ".reduced"},
                         [value, root]() -> double { return root ? std::sqrt(*value) : *value; });
  return ReductionFuture(rt, result);
}

}  // namespace

ReductionFuture DistArray::sum_async() const { return reduce(*m_state, nullptr, detail::RedOp::sum); }
ReductionFuture DistArray::min_async() const { return reduce(*m_state, nullptr, detail::RedOp::min); }
ReductionFuture DistArray::max_async() const { return reduce(*m_state, nullptr, detail::RedOp::max); }
ReductionFuture DistArray::norm2_async() const { return reduce(*m_state, nullptr, detail::RedOp::sumsq); }
ReductionFuture DistArray::dot_async(const DistArray& other) const {
  if (!other.valid()) throw Error("DistArray::dot: the other array is empty");
  detail::check_conformable(*m_state, *other.m_state, "dot");
  if (other.m_state->dtype != m_state->dtype) {
    throw Error(std::string("DistArray::dot: dtypes differ (") + detail::dtype_name(m_state->dtype) + " and " +
                detail::dtype_name(other.m_state->dtype) + ")");
  }
  return reduce(*m_state, other.m_state.get(), detail::RedOp::dot);
}

}  // namespace parla::mpi
