// The shared state behind a DistArray handle, the per-partition region tracker, and the
// device helpers its tasks use. Internal to parla::mpi.
#pragma once

#include <parla/mpi/dist_array.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace parla::mpi::detail {

using Idx3 = std::array<std::int64_t, k_max_dims>;

// ---- ordering ------------------------------------------------------------------------------

/// The tasks that use one region (a partition's owned cells, its ghost cells, a buffer) since
/// its last write: a read depends on the writers; a write on the writers and the readers.
/// Tasks of one operation use the state before the operation (they run concurrently) and
/// are committed together after it (`Uses`).
struct RegionTracker {
  std::vector<Task> writers;
  std::vector<Task> readers;
  void deps(bool write, std::vector<Dep>& out) const;
};

/// The uses of one operation, committed once every task of it is spawned.
class Uses {
 public:
  /// Appends the dependencies of a task that reads (or writes) `r` to `deps`.
  static void deps(const RegionTracker& r, bool write, std::vector<Dep>& out) { r.deps(write, out); }
  void add(RegionTracker& r, bool write, const Task& t) { m_uses.push_back({&r, write, t}); }
  /// Writers of a region replace its writers and readers; readers join its readers.
  void commit();

 private:
  struct Use {
    RegionTracker* region;
    bool write;
    Task task;
  };
  std::vector<Use> m_uses;
};

/// Per local partition: its owned and ghost cells, tracked separately.
struct PartTrack {
  RegionTracker owned;
  RegionTracker ghost;
};

// ---- geometry ------------------------------------------------------------------------------

/// Internal 3-d geometry of a partition (unused axes extent 1, ghost 0): owned-relative
/// boxes become pointers and strides.
struct Layout {
  int ndim = 1;
  Idx3 extent{1, 1, 1};
  Idx3 ghosts{0, 0, 0};
  Idx3 strides{0, 0, 0};  // elements; unused axes 0
  std::int64_t origin = 0;
  std::size_t elem = 8;
  /// Element offset of the box's first cell.
  [[nodiscard]] std::int64_t offset(const Box& b) const noexcept {
    return origin + b.lo[0] * strides[0] + b.lo[1] * strides[1] + b.lo[2] * strides[2];
  }
  /// The box's cells form one contiguous run of the block.
  [[nodiscard]] bool contiguous(const Box& b) const noexcept;
  /// The box as a byte range of the block (only meaningful when contiguous).
  [[nodiscard]] std::size_t byte_offset(const Box& b) const noexcept {
    return static_cast<std::size_t>(offset(b)) * elem;
  }
};

/// Where a strided box lives: a pointer to its first cell and element strides.
struct StridedPtr {
  std::byte* ptr = nullptr;
  Idx3 strides{0, 0, 0};
};

/// "(4, 5)", "(3,)".
inline std::string join(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i != 0 ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}
inline std::string join(const std::vector<int>& v) { return join(std::vector<std::int64_t>(v.begin(), v.end())); }

/// "f64", ...
inline const char* dtype_name(Datatype t) noexcept {
  switch (t) {
    case Datatype::i32: return "i32";
    case Datatype::i64: return "i64";
    case Datatype::u64: return "u64";
    case Datatype::f32: return "f32";
    case Datatype::f64: return "f64";
    case Datatype::byte: return "byte";
  }
  return "?";
}

/// Row-major strides of a dense buffer holding `b`'s cells.
Idx3 dense_strides(const Box& b) noexcept;
Idx3 extents(const Box& b) noexcept;

// ---- device work ---------------------------------------------------------------------------

enum class Exec : unsigned char { host, sim, cuda };
/// How a task body on ctx's device runs its work.
Exec exec_of(const TaskContext& ctx);

/// Copies the cells of a box (extent `ext`) between two strided locations on the task's
/// device: a loop on the host (in stream order on simulated GPUs), a kernel on CUDA.
void copy_box(TaskContext& ctx, StridedPtr dst, StridedPtr src, const Idx3& ext, std::size_t elem);
/// One box's copy: `dst` ← `src`.
struct CopyPair {
  StridedPtr dst;
  StridedPtr src;
};
/// copy_box for several boxes of one extent `ext`: on the host they are walked two at a time,
/// cell by cell (rows memcpy'd where dense), so two boxes that share cache lines and pages (a
/// partition's opposite columns) touch each of them once.
void copy_boxes(TaskContext& ctx, std::span<const CopyPair> pairs, const Idx3& ext, std::size_t elem);
/// The host loop of copy_box (rows memcpy'd where both sides are dense along them).
void copy_host(StridedPtr dst, StridedPtr src, const Idx3& ext, std::size_t elem);
/// The host loop of copy_boxes.
void copy_host(std::span<const CopyPair> pairs, const Idx3& ext, std::size_t elem);
/// Sets the cells to `value` converted to `type`.
void fill_box(TaskContext& ctx, StridedPtr dst, const Idx3& ext, Datatype type, double value);
/// Reduction ops of reduce_box.
enum class RedOp : int { sum = 0, min = 1, max = 2, sumsq = 3, dot = 4 };
/// Reduces the box (with `b` for dot) into the double at `out` (device memory of the task's
/// device), in stream order.
void reduce_box(TaskContext& ctx, StridedPtr a, StridedPtr b, const Idx3& ext, Datatype type,
                RedOp op, double* out);

// ---- the array -----------------------------------------------------------------------------

/// Where a global partition lives.
struct GlobalPart {
  int rank = 0;
  int local = 0;
};

/// The halo plan's per-entry extras that the public HaloRecv/HaloSend do not show.
struct RecvExec {
  int src_local = -1;           // local_*: the source partition's local index
  // local_copy halos of one (receiver, source) pair run as one task, spawned at the first of
  // them (its `group` lists them all); the others have an empty group and are skipped.
  std::vector<int> group;
  bool grouped = false;         // a local_copy that is part of an earlier entry's group
  std::string name;             // task name
  Task last_use;                // the previous consumer of the buffer (WAR for the next write)
};
struct SendExec {
  std::string name;
  Task last_use;
};

struct DistArrayState {
  Runtime* rt = nullptr;
  Comm* comm = nullptr;
  int id = 0;
  std::string name;
  int ndim = 1;
  std::vector<std::int64_t> shape;
  Datatype dtype = Datatype::f64;
  std::size_t elem = 8;
  std::vector<int> grid;
  std::vector<int> coords;
  std::vector<std::vector<std::int64_t>> splits;
  std::vector<std::vector<std::int64_t>> bounds;  // partition grid boundaries per axis
  std::vector<int> ghosts;
  Boundary boundary = Boundary::none;
  double boundary_value = 0.0;
  Stencil stencil = Stencil::star;
  int device_axis = 0;
  int ndev = 1;
  std::array<int, k_max_dims> pgrid{1, 1, 1};  // partitions per axis (unused axes 1)

  std::vector<Partition> parts;
  std::vector<Layout> layouts;
  std::vector<Placement> placements;
  std::vector<PartTrack> tracks;

  std::unique_ptr<HaloPlan> plan;
  std::vector<RecvExec> recv_exec;
  std::vector<SendExec> send_exec;
  std::string halo_space_name;

  DistArrayState() = default;
  DistArrayState(const DistArrayState&) = delete;
  DistArrayState& operator=(const DistArrayState&) = delete;
  /// Waits for the array's tasks (their bodies point into this state).
  ~DistArrayState();

  /// Global index (row-major) of partition-grid coordinates.
  [[nodiscard]] int global_index(const std::array<int, k_max_dims>& c) const noexcept;
  [[nodiscard]] std::array<int, k_max_dims> global_coords(int g) const noexcept;
  [[nodiscard]] GlobalPart owner(const std::array<int, k_max_dims>& c) const noexcept;
  /// Owned extent (3-d, unused axes 1) of the partition at `c`.
  [[nodiscard]] Idx3 extent_of(const std::array<int, k_max_dims>& c) const noexcept;
  [[nodiscard]] Idx3 offset_of(const std::array<int, k_max_dims>& c) const noexcept;

  /// Builds the plan and its buffers (first exchange).
  void build_plan();
  TaskSpace exchange();

  /// Every task the trackers still hold (for waits).
  [[nodiscard]] std::vector<Task> pending_tasks() const;
};

/// Throws parla::Error when `a` and `b` cannot be used in one operation.
void check_conformable(const DistArrayState& a, const DistArrayState& b, const char* what);

}  // namespace parla::mpi::detail
