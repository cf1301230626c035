#pragma once
/// DistArray: a CrossPy-style distributed array, partitioned across ranks and, inside each
/// rank, across its devices, with ghost layers and halo exchanges that are tasks.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <parla/data_block.hpp>
#include <parla/dep.hpp>
#include <parla/placement.hpp>
#include <parla/runtime.hpp>
#include <parla/task.hpp>
#include <parla/task_context.hpp>
#include <parla/task_space.hpp>

#include "parla/mpi/box.hpp"
#include "parla/mpi/comm.hpp"
#include "parla/mpi/halo_plan.hpp"

namespace parla::mpi {

/// What the ghost cells outside the global domain hold.
enum class Boundary : unsigned char {
  none,      ///< untouched (zero unless the program writes them)
  periodic,  ///< the cells of the opposite side (wrap-around; a single partition along an
             ///< axis exchanges with itself)
  constant,  ///< `boundary_value`, written at construction and never overwritten
};
/// Which ghost cells an exchange fills.
enum class Stencil : unsigned char {
  star,  ///< faces only (2·ndim neighbours); edge and corner ghost cells are not touched
  box,   ///< faces, edges and corners (3^ndim − 1 neighbours, diagonal ones directly)
};

/// "none", "periodic", "constant" / "star", "box".
const char* to_string(Boundary b) noexcept;
const char* to_string(Stencil s) noexcept;

/// How to build a DistArray. Every rank passes the same options (except `devices` and
/// `device_splits`, which are per rank; every rank needs the same number of devices).
struct DistArrayOptions {
  /// Global shape: 1 to 3 extents, each >= 1.
  std::vector<std::int64_t> shape{};
  /// Element type: f64, f32, i64 or i32.
  Datatype dtype = Datatype::f64;
  /// Ranks per axis (product = communicator size). Empty: MPI_Dims_create chooses.
  std::vector<int> process_grid{};
  /// Per axis: empty (even split: the first shape % ranks ranks get one more) or
  /// process_grid[d] + 1 increasing points from 0 to shape[d] (rank coordinate c owns
  /// [splits[d][c], splits[d][c+1])). Missing trailing axes are even.
  std::vector<std::vector<std::int64_t>> splits{};
  /// Ghost width per axis; one value means every axis. Empty: 0.
  std::vector<int> ghosts{};
  Boundary boundary = Boundary::none;
  /// The value of `Boundary::constant`.
  double boundary_value = 0.0;
  Stencil stencil = Stencil::star;
  /// The devices of this rank its block is split over (cpu, gpu(i); real or simulated GPUs,
  /// each must exist in the runtime; a device may repeat). Empty: {cpu}.
  std::vector<DeviceSpec> devices{};
  /// The axis along which the rank's block is split over `devices`.
  int device_axis = 0;
  /// Optional: devices.size() + 1 increasing points from 0 to the rank's extent along
  /// device_axis. Empty: even. Ranks with the same process coordinate along device_axis
  /// must agree (the partitions form one global tensor-product grid).
  std::vector<std::int64_t> device_splits{};
  /// Display name (task and block names). Empty: "x<id>".
  std::string name{};
};

/// One local partition of a DistArray: a DataBlock of its ghosted extent, row-major, living
/// on `device`. Element (i0, i1, i2) in owned-relative coordinates (owned cells are
/// 0 <= i[d] < extent[d], ghost cells extend `ghosts[d]` beyond on both sides) is at
/// element offset `origin + i0*strides[0] + i1*strides[1] + i2*strides[2]` of the block.
struct Partition {
  int local_index = 0;   ///< position among this rank's partitions
  int global_index = 0;  ///< row-major position in the global partition grid
  std::vector<int> coords{};               ///< position in the global partition grid
  DeviceSpec device{};                     ///< where its data lives and its tasks run
  std::vector<std::int64_t> offset{};      ///< global index of the first owned cell
  std::vector<std::int64_t> extent{};      ///< owned cells per axis
  std::vector<std::int64_t> ghosted_extent{};  ///< extent + 2 * ghosts
  std::vector<std::int64_t> strides{};     ///< in elements, row-major over ghosted_extent
  std::vector<int> ghosts{};               ///< ghost width per axis
  std::int64_t origin = 0;                 ///< element offset of owned cell (0, 0, 0)
  DataBlock block{};                       ///< the ghosted data

  /// Element offset of owned-relative cell `i` (ghost cells have negative or >= extent
  /// components).
  [[nodiscard]] std::int64_t offset_of(std::int64_t i0, std::int64_t i1 = 0,
                                       std::int64_t i2 = 0) const noexcept {
    std::int64_t o = origin + i0 * strides[0];
    if (strides.size() > 1) o += i1 * strides[1];
    if (strides.size() > 2) o += i2 * strides[2];
    return o;
  }
  /// Owned cells as a box (owned-relative: lo = 0, hi = extent).
  [[nodiscard]] Box owned_box() const noexcept;
  /// Owned and ghost cells (lo = -ghosts, hi = extent + ghosts).
  [[nodiscard]] Box ghosted_box() const noexcept;
  /// Number of cells of the ghosted block.
  [[nodiscard]] std::int64_t ghosted_size() const noexcept;
};

/// How an operation uses one array.
enum class Mode : unsigned char { read, write, readwrite };

class DistArray;

/// One array of an operation: `{x, Mode::read, true}` reads x including its ghost cells
/// (the task then depends on the last halo exchange of x); writes touch owned cells only.
struct Access {
  const DistArray* array = nullptr;
  Mode mode = Mode::read;
  bool with_ghosts = false;
};
/// Shorthands: `parla::mpi::read(x, true)`, `write(y)`, `readwrite(z)`.
inline Access read(const DistArray& a, bool with_ghosts = false) { return {&a, Mode::read, with_ghosts}; }
inline Access write(const DistArray& a) { return {&a, Mode::write, false}; }
inline Access readwrite(const DistArray& a, bool with_ghosts = false) {
  return {&a, Mode::readwrite, with_ghosts};
}

/// Which owned cells a `for_each` task computes.
enum class Region : unsigned char {
  all,       ///< every owned cell: one task per partition
  interior,  ///< owned cells at least the ghost width away from every face: needs no halo
  boundary,  ///< the band of ghost width next to each face (owned cells minus interior)
  split,     ///< both, as two tasks per partition: the interior task does not wait for the
             ///< halo exchange, so it overlaps it; the boundary task does
};

/// What a `for_each` body sees: the partition, a pointer per access, the boxes to compute.
class PartitionView {
 public:
  PartitionView(TaskContext& ctx, const std::vector<const Partition*>& parts,
                std::vector<void*> data, std::vector<Box> boxes, bool interior_task) noexcept
      : m_ctx(&ctx), m_parts(&parts), m_data(std::move(data)), m_boxes(std::move(boxes)),
        m_interior(interior_task) {}

  /// The task's context (its device, its stream on GPUs).
  [[nodiscard]] TaskContext& context() const noexcept { return *m_ctx; }
  /// The geometry of access `i`'s partition (arrays of one operation share offset and
  /// extent; their ghost widths, hence strides and origin, may differ).
  [[nodiscard]] const Partition& partition(std::size_t i = 0) const noexcept { return *(*m_parts)[i]; }
  /// Start of access `i`'s ghosted block on the task's device.
  [[nodiscard]] void* data(std::size_t i) const noexcept { return m_data[i]; }
  template <class T>
  [[nodiscard]] T* data_as(std::size_t i) const noexcept {
    return static_cast<T*>(m_data[i]);
  }
  /// Pointer to owned-relative cell (i0, i1, i2) of access `i`.
  template <class T>
  [[nodiscard]] T* at(std::size_t i, std::int64_t i0, std::int64_t i1 = 0, std::int64_t i2 = 0) const noexcept {
    return data_as<T>(i) + partition(i).offset_of(i0, i1, i2);
  }
  /// The boxes (owned-relative) this task computes: one for all/interior, up to 2·ndim
  /// disjoint ones for boundary. Some may be empty.
  [[nodiscard]] const std::vector<Box>& boxes() const noexcept { return m_boxes; }
  /// Whether this is the interior task of a `Region::split` or `interior` operation.
  [[nodiscard]] bool interior() const noexcept { return m_interior; }
  /// Runs host code over the partition data before returning: on the cpu at once; on a
  /// simulated GPU once the task's stream has brought its inputs (it waits for the stream,
  /// so capturing locals by reference is fine). CUDA devices need a kernel on
  /// `context().stream().native_handle()`: throws parla::Error there.
  void run_host(std::function<void()> fn) const;

 private:
  TaskContext* m_ctx;
  const std::vector<const Partition*>* m_parts;
  std::vector<void*> m_data;
  std::vector<Box> m_boxes;
  bool m_interior;
};

/// A body of `for_each`: called once per task on the partition's device.
using PartitionBody = std::function<void(PartitionView&)>;

/// The result of a non-blocking reduction: a task whose result is the double.
class ReductionFuture {
 public:
  ReductionFuture() = default;
  ReductionFuture(Runtime& rt, Task task) : m_rt(&rt), m_task(std::move(task)) {}
  /// The task that yields the result (use it as a dependency).
  [[nodiscard]] const Task& task() const noexcept { return m_task; }
  /// Whether the result is there (never blocks).
  [[nodiscard]] bool done() const { return m_task.done(); }
  /// Waits (helping to run tasks) and returns the result; rethrows a failure.
  [[nodiscard]] double get() const;

 private:
  Runtime* m_rt = nullptr;
  Task m_task;
};

namespace detail {
struct DistArrayState;
}

/// A distributed array (DESIGN §4): a global shape of 1 to 3 dimensions over a Cartesian
/// process grid, each rank's block split over its devices into partitions, each partition a
/// DataBlock with ghost layers. Operations spawn tasks and return at once; the array orders
/// its own tasks (per partition: owned cells and ghost cells are tracked separately, so an
/// interior update never waits for a halo unpack), and its tasks do not add inferred
/// dependencies (SpawnOptions::infer_dependencies = false): a task of yours that touches a
/// partition's block directly must depend on the TaskSpace the operation returned.
///
/// Collective: construction, `exchange_halos`, reductions, gather/scatter, save/load must
/// be called by every rank of the communicator in the same order. Spawn an array's
/// operations from one thread at a time. A handle: copies share the array; the last copy's
/// destructor waits for the array's unfinished tasks, so drop it before its runtime is
/// destroyed (once the runtime has finished every task, dropping it later is harmless).
///
///     parla::mpi::DistArray u(rt, comm, {.shape = {n, n}, .ghosts = {1},
///                                        .boundary = parla::mpi::Boundary::periodic});
///     auto halo = u.exchange_halos();
///     v.for_each({read(u, true), write(v)}, Region::split, stencil_body, "jacobi");
class DistArray {
 public:
  DistArray() = default;
  /// A zero-filled array (ghost cells hold boundary_value for Boundary::constant). Throws
  /// parla::Error (bad options, each naming the numbers) or MpiError.
  DistArray(Runtime& rt, Comm& comm, DistArrayOptions options);

  /// Scatter: builds the array and fills it from `global` (row-major, shape × dtype) held by
  /// `root`; the pointer is ignored elsewhere. Returns once `global` may be reused; the
  /// array's own tasks order everything after it.
  [[nodiscard]] static DistArray from_global(Runtime& rt, Comm& comm, DistArrayOptions options,
                                             const void* global, int root = 0);
  /// Reads an array written by `save` (any rank count, grid and devices): shape and dtype
  /// come from the file (`options.shape`, when given, must match it). Blocking, MPI-IO;
  /// needs MPI_THREAD_MULTIPLE, and no other collective of this Comm in flight meanwhile.
  [[nodiscard]] static DistArray load(Runtime& rt, Comm& comm, const std::string& path,
                                      DistArrayOptions options = {});

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_state); }
  explicit operator bool() const noexcept { return valid(); }

  // ---- geometry -------------------------------------------------------------------------
  [[nodiscard]] int ndim() const noexcept;
  [[nodiscard]] const std::vector<std::int64_t>& shape() const noexcept;
  [[nodiscard]] std::int64_t size() const noexcept;  ///< global number of elements
  [[nodiscard]] Datatype dtype() const noexcept;
  [[nodiscard]] std::size_t element_size() const noexcept;
  [[nodiscard]] const std::vector<int>& process_grid() const noexcept;
  /// This rank's position in the process grid.
  [[nodiscard]] const std::vector<int>& process_coords() const noexcept;
  /// Per axis: process_grid[d] + 1 points (the rank ownership).
  [[nodiscard]] const std::vector<std::vector<std::int64_t>>& splits() const noexcept;
  /// Per axis: the partition boundaries of the global partition grid (device splits
  /// included along device_axis).
  [[nodiscard]] const std::vector<std::vector<std::int64_t>>& partition_bounds() const noexcept;
  [[nodiscard]] const std::vector<int>& ghosts() const noexcept;
  [[nodiscard]] Boundary boundary() const noexcept;
  [[nodiscard]] double boundary_value() const noexcept;
  [[nodiscard]] Stencil stencil() const noexcept;
  [[nodiscard]] int device_axis() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept;
  /// Collectively assigned: the same on every rank.
  [[nodiscard]] int id() const noexcept;
  /// This rank's partitions.
  [[nodiscard]] const std::vector<Partition>& partitions() const noexcept;
  /// Global number of partitions.
  [[nodiscard]] int num_global_partitions() const noexcept;
  [[nodiscard]] Runtime& runtime() const noexcept;
  [[nodiscard]] Comm& comm() const noexcept;
  /// The halo plan (built on first use; collective only in that it is deterministic).
  [[nodiscard]] const HaloPlan& halo_plan() const;

  // ---- tasks ----------------------------------------------------------------------------
  /// Spawns one halo exchange (see HaloPlan) and returns the TaskSpace of the tasks that
  /// write ghost cells, keyed {local partition, k}: what a boundary update depends on (the
  /// array's own operations already do). Boundary::none/constant ghost cells outside the
  /// domain are untouched.
  TaskSpace exchange_halos();

  /// Spawns, per local partition, a task (two for Region::split: {p, 0} interior and
  /// {p, 1} boundary) on the partition's device that runs `body`, declaring the accesses.
  /// The first access's array must be written or read; every array must be conformable with
  /// it (same shape, process grid, partition bounds and devices). Returns the tasks, keyed
  /// {local partition, 0 | 1}.
  TaskSpace for_each(const std::vector<Access>& arrays, Region region, PartitionBody body,
                     std::string name = {});

  /// Sets every owned cell to `value` (ghost cells are untouched).
  TaskSpace fill(double value);
  /// Copies `other`'s owned cells (conformable, same dtype) into this array's.
  TaskSpace copy_from(const DistArray& other);

  // ---- reductions (over owned cells, every rank gets the result) ------------------------
  ReductionFuture sum_async() const;
  ReductionFuture min_async() const;
  ReductionFuture max_async() const;
  /// Sum of squares, then sqrt.
  ReductionFuture norm2_async() const;
  ReductionFuture dot_async(const DistArray& other) const;
  [[nodiscard]] double sum() const { return sum_async().get(); }
  [[nodiscard]] double min() const { return min_async().get(); }
  [[nodiscard]] double max() const { return max_async().get(); }
  [[nodiscard]] double norm2() const { return norm2_async().get(); }
  [[nodiscard]] double dot(const DistArray& other) const { return dot_async(other).get(); }

  // ---- redistribution and I/O (blocking) ------------------------------------------------
  /// The global array, row-major (shape × element_size bytes), on `root`; empty elsewhere.
  [[nodiscard]] std::vector<std::byte> gather(int root = 0) const;
  /// The global array on every rank.
  [[nodiscard]] std::vector<std::byte> gather_all() const;
  /// Typed helpers (T must match dtype).
  template <class T>
  [[nodiscard]] std::vector<T> gather_as(int root = 0) const {
    return bytes_as<T>(gather(root));
  }
  template <class T>
  [[nodiscard]] std::vector<T> gather_all_as() const {
    return bytes_as<T>(gather_all());
  }
  /// This rank's partition `p` (owned cells, or the whole ghosted block) copied to host
  /// memory, row-major. Blocking; waits for the partition's writers.
  [[nodiscard]] std::vector<std::byte> local_copy(int p, bool with_ghosts = false) const;
  /// Writes the global array to `path` through MPI-IO (collective MPI_File_write_at_all):
  /// a 64-byte header (magic "PARLADA1", dtype, ndim, shape) then the row-major data.
  /// Needs MPI_THREAD_MULTIPLE (the progress engine runs meanwhile).
  void save(const std::string& path) const;

  /// Waits for every task of the array spawned so far.
  void wait() const;
  /// The tasks that last wrote (or read) each partition, e.g. to depend on them.
  [[nodiscard]] std::vector<Dep> pending() const;

  [[nodiscard]] const std::shared_ptr<detail::DistArrayState>& state() const noexcept { return m_state; }

 private:
  template <class T>
  static std::vector<T> bytes_as(const std::vector<std::byte>& b) {
    std::vector<T> out(b.size() / sizeof(T));
    if (!b.empty()) std::memcpy(out.data(), b.data(), out.size() * sizeof(T));
    return out;
  }
  explicit DistArray(std::shared_ptr<detail::DistArrayState> state) : m_state(std::move(state)) {}
  std::shared_ptr<detail::DistArrayState> m_state;
};

}  // namespace parla::mpi
