// DistArray redistribution and I/O: scatter from a root, gather to a root or to every rank,
// a partition's contents on the host, and save/load through MPI-IO (a small header, then the
// global array row-major, so a file written at one rank count reads back at another).
#include <parla/error.hpp>
#include <parla/mpi/dist_array.hpp>
#include <parla/mpi/environment.hpp>
#include <parla/mpi/mpi_error.hpp>

#include <algorithm>
#include <climits>
#include <cstring>
#include <numeric>
#include <string>

#include "dist_array_state.hpp"

namespace parla::mpi {

using detail::DistArrayState;
using detail::Idx3;
using detail::Layout;
using detail::StridedPtr;

namespace detail {
namespace {

using Coords = std::array<int, k_max_dims>;

/// The partition-grid coordinates of rank r's partitions, in local order.
std::vector<Coords> partitions_of_rank(const DistArrayState& s, int r) {
  std::vector<int> rc(static_cast<std::size_t>(s.ndim), 0);
  for (std::size_t d = static_cast<std::size_t>(s.ndim); d-- > 0;) {
    rc[d] = r % s.grid[d];
    r /= s.grid[d];
  }
  std::vector<Coords> out;
  const auto a = static_cast<std::size_t>(s.device_axis);
  for (int l = 0; l < s.ndev; ++l) {
    Coords c{0, 0, 0};
    for (std::size_t d = 0; d < static_cast<std::size_t>(s.ndim); ++d) {
      c[d] = d == a ? rc[d] * s.ndev + l : rc[d];
    }
    out.push_back(c);
  }
  return out;
}

std::int64_t cells(const Idx3& e) { return e[0] * e[1] * e[2]; }

/// Element strides of the global array (row-major; unused axes extent 1).
Idx3 global_strides(const DistArrayState& s) {
  Idx3 sh{1, 1, 1};
  for (std::size_t d = 0; d < static_cast<std::size_t>(s.ndim); ++d) sh[d] = s.shape[d];
  return Idx3{sh[1] * sh[2], sh[2], 1};
}

std::int64_t dot(const Idx3& a, const Idx3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

/// Plain host copy of a strided box (for buffers the program owns, outside tasks).
void host_copy(std::byte* dst, const Idx3& ds, const std::byte* src, const Idx3& ss, const Idx3& ext, std::size_t elem) {
  copy_host(StridedPtr{dst, ds}, StridedPtr{const_cast<std::byte*>(src), ss}, ext, elem);  // NOLINT: read only
}

/// Owned cells of rank r's partitions, dense and concatenated in local order.
std::size_t rank_bytes(const DistArrayState& s, int r) {
  std::size_t n = 0;
  for (const Coords& c : partitions_of_rank(s, r)) n += static_cast<std::size_t>(cells(s.extent_of(c))) * s.elem;
  return n;
}

/// Copies rank r's owned cells between the global array and its dense rank buffer.
void global_and_rank(const DistArrayState& s, int r, std::byte* global, std::byte* rank_buf, bool to_global) {
  const Idx3 gs = global_strides(s);
  std::size_t pos = 0;
  for (const Coords& c : partitions_of_rank(s, r)) {
    const Idx3 ext = s.extent_of(c);
    const Idx3 off = s.offset_of(c);
    const Idx3 ds{ext[1] * ext[2], ext[2], 1};
    std::byte* g = global + dot(off, gs) * static_cast<std::int64_t>(s.elem);
    if (to_global) {
      host_copy(g, gs, rank_buf + pos, ds, ext, s.elem);
    } else {
      host_copy(rank_buf + pos, ds, g, gs, ext, s.elem);
    }
    pos += static_cast<std::size_t>(cells(ext)) * s.elem;
  }
}

/// Copies this rank's owned cells into `out` (dense, local order), blocking. A partition on
/// another device than the host is copied here whole, so the copy waits for its ghost
/// writers too (a half-written ghost region must never become the host's valid copy).
void local_owned_to_host(DistArrayState& s, std::byte* out) {
  Uses uses;
  std::vector<Task> tasks;
  std::vector<Dep> deps;
  std::size_t pos = 0;
  for (std::size_t l = 0; l < s.parts.size(); ++l) {
    const Partition& p = s.parts[l];
    const bool host = p.device.kind == DeviceKind::cpu;
    deps.clear();
    Uses::deps(s.tracks[l].owned, false, deps);
    if (!host) Uses::deps(s.tracks[l].ghost, false, deps);
    const Layout lay = s.layouts[l];
    const DataBlock block = p.block;
    const Box owned = p.owned_box();
    std::byte* dst = out + pos;
    Task t = s.rt->spawn({.dependencies = deps, .in = {block}, .name = s.name + ".to_host", .infer_dependencies = false},
                         [=](TaskContext& ctx) {
                           const auto* base = static_cast<const std::byte*>(ctx.data(block));
                           host_copy(dst, dense_strides(owned), base + lay.offset(owned) * static_cast<std::int64_t>(lay.elem),
                                     lay.strides, extents(owned), lay.elem);
                         });
    uses.add(s.tracks[l].owned, false, t);
    if (!host) uses.add(s.tracks[l].ghost, false, t);
    tasks.push_back(t);
    pos += static_cast<std::size_t>(owned.size()) * s.elem;
  }
  uses.commit();
  for (const Task& t : tasks) s.rt->wait(t);
}

/// Fills the owned cells of every local partition from `buffer` (dense, local order; its
/// writer `producer` may still run), as tasks on the partitions' devices.
void rank_buffer_to_partitions(DistArrayState& s, const DataBlock& buffer, const Task& producer) {
  Uses uses;
  std::vector<Dep> deps;
  std::size_t pos = 0;
  for (std::size_t l = 0; l < s.parts.size(); ++l) {
    const Partition& p = s.parts[l];
    const Box owned = p.owned_box();
    const std::size_t bytes = static_cast<std::size_t>(owned.size()) * s.elem;
    deps.clear();
    Uses::deps(s.tracks[l].owned, true, deps);
    if (producer.valid()) deps.emplace_back(producer);
    const Layout lay = s.layouts[l];
    const DataBlock block = p.block;
    const DataSlice piece = buffer.slice(pos, bytes);
    Task t = s.rt->spawn({.dependencies = deps, .placement = s.placements[l], .in = {piece}, .inout = {block},
                          .name = s.name + ".scatter", .infer_dependencies = false},
                         [=](TaskContext& ctx) {
                           auto* base = static_cast<std::byte*>(ctx.data(block));
                           copy_box(ctx, {base + lay.offset(owned) * static_cast<std::int64_t>(lay.elem), lay.strides},
                                    {static_cast<std::byte*>(ctx.data(piece)), dense_strides(owned)}, extents(owned), lay.elem);
                         });
    uses.add(s.tracks[l].owned, true, t);
    pos += bytes;
  }
  uses.commit();
}

// ---- MPI-IO --------------------------------------------------------------------------------

constexpr char k_magic[8] = {'P', 'A', 'R', 'L', 'A', 'D', 'A', '1'};
constexpr std::size_t k_header = 64;

struct Header {
  char magic[8];
  std::uint32_t dtype;
  std::uint32_t ndim;
  std::int64_t shape[3];
  char pad[k_header - 40];
};
static_assert(sizeof(Header) == k_header);

void require_multiple(const char* what) {
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_MULTIPLE) {
    throw Error(std::string("DistArray::") + what + " calls MPI-IO while the progress engine runs, which needs "
                "MPI_THREAD_MULTIPLE, but MPI was initialised with " + thread_level_name(level) +
                "; initialise MPI with MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...) (parla::mpi::Environment "
                "and mpi4py do)");
  }
}

/// One contiguous run of the file: (byte offset in the file, byte offset in the rank buffer,
/// bytes), sorted by file offset.
struct Run {
  std::int64_t file;
  std::int64_t mem;
  int bytes;
};

std::vector<Run> file_runs(const DistArrayState& s) {
  const Idx3 gs = global_strides(s);
  const auto e = static_cast<std::int64_t>(s.elem);
  std::vector<Run> runs;
  std::int64_t pos = 0;
  for (const Coords& c : partitions_of_rank(s, s.comm->rank())) {
    const Idx3 ext = s.extent_of(c);
    const Idx3 off = s.offset_of(c);
    // Rows along the last axis of the array; the axes before it are looped over.
    const auto last = static_cast<std::size_t>(s.ndim - 1);
    const std::int64_t row = ext[last] * e;
    if (row > INT_MAX) throw Error("DistArray: a row of " + std::to_string(row) + " bytes is too long for MPI-IO here");
    const std::int64_t n0 = last > 0 ? ext[0] : 1;
    const std::int64_t n1 = last > 1 ? ext[1] : 1;
    for (std::int64_t i0 = 0; i0 < n0; ++i0) {
      for (std::int64_t i1 = 0; i1 < n1; ++i1) {
        Idx3 g = off;
        if (last > 0) g[0] += i0;
        if (last > 1) g[1] += i1;
        runs.push_back({static_cast<std::int64_t>(k_header) + dot(g, gs) * e, pos, static_cast<int>(row)});
        pos += row;
      }
    }
  }
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.file < b.file; });
  // Merge runs adjacent in both the file and the buffer (whole rows of 1-d/2-d partitions).
  std::vector<Run> merged;
  for (const Run& r : runs) {
    if (!merged.empty() && merged.back().file + merged.back().bytes == r.file &&
        merged.back().mem + merged.back().bytes == r.mem && static_cast<std::int64_t>(merged.back().bytes) + r.bytes <= INT_MAX) {
      merged.back().bytes += r.bytes;
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

/// A file view over `runs` and a staging buffer in file order; `io` reads or writes it.
template <class Io>
void with_view(MPI_File fh, const std::vector<Run>& runs, std::vector<std::byte>& staged, Io&& io) {
  std::vector<int> lens;
  std::vector<MPI_Aint> disps;
  for (const Run& r : runs) {
    lens.push_back(r.bytes);
    disps.push_back(static_cast<MPI_Aint>(r.file));
  }
  MPI_Datatype ftype = MPI_DATATYPE_NULL;
  check_mpi(MPI_Type_create_hindexed(static_cast<int>(lens.size()), lens.data(), disps.data(), MPI_BYTE, &ftype),
            "MPI_Type_create_hindexed");
  check_mpi(MPI_Type_commit(&ftype), "MPI_Type_commit");
  const int rc = MPI_File_set_view(fh, 0, MPI_BYTE, ftype, "native", MPI_INFO_NULL);
  MPI_Type_free(&ftype);
  check_mpi(rc, "MPI_File_set_view");
  if (staged.size() > static_cast<std::size_t>(INT_MAX)) {
    throw Error("DistArray: " + std::to_string(staged.size()) + " bytes on one rank are too many for one MPI-IO call here");
  }
  io(static_cast<int>(staged.size()));
}

}  // namespace
}  // namespace detail

// ---- scatter / gather ----------------------------------------------------------------------

DistArray DistArray::from_global(Runtime& rt, Comm& comm, DistArrayOptions options, const void* global, int root) {
  if (root < 0 || root >= comm.size()) {
    throw Error("DistArray::from_global: root " + std::to_string(root) + " is not a rank of the " +
                std::to_string(comm.size()) + "-rank communicator");
  }
  DistArray a(rt, comm, std::move(options));
  DistArrayState& s = *a.m_state;
  const int me = comm.rank();
  const std::size_t mine = detail::rank_bytes(s, me);
  DataBlock buffer(rt, std::max<std::size_t>(mine, 1), s.name + ".scatter");
  Task producer;
  std::vector<Task> sends;
  if (me == root) {
    if (global == nullptr) throw Error("DistArray::from_global: the root's global array pointer is null");
    auto* g = static_cast<std::byte*>(const_cast<void*>(global));  // NOLINT: only read
    for (int r = 0; r < comm.size(); ++r) {
      if (r == me) {
        detail::global_and_rank(s, r, g, static_cast<std::byte*>(buffer.host_data()), false);
        continue;
      }
      auto piece = std::make_shared<std::vector<std::byte>>(detail::rank_bytes(s, r));
      detail::global_and_rank(s, r, g, piece->data(), false);
      sends.push_back(comm.send(piece->data(), piece->size(), r, 0, {.name = s.name + ".scatter", .keepalive = piece}));
    }
  } else {
    producer = comm.recv(buffer.slice(0, std::max<std::size_t>(mine, 1)), root, 0, {.name = s.name + ".scatter"});
  }
  detail::rank_buffer_to_partitions(s, buffer, producer);
  for (const Task& t : sends) rt.wait(t);
  return a;
}

std::vector<std::byte> DistArray::gather(int root) const {
  DistArrayState& s = *m_state;
  Comm& comm = *s.comm;
  if (root < 0 || root >= comm.size()) {
    throw Error("DistArray::gather: root " + std::to_string(root) + " is not a rank of the " +
                std::to_string(comm.size()) + "-rank communicator");
  }
  const int me = comm.rank();
  std::vector<std::byte> local(detail::rank_bytes(s, me));
  detail::local_owned_to_host(s, local.data());
  if (me != root) {
    Task t = comm.send(local.data(), local.size(), root, 1, {.name = s.name + ".gather"});
    s.rt->wait(t);
    return {};
  }
  std::vector<std::byte> global(static_cast<std::size_t>(size()) * s.elem);
  std::vector<std::vector<std::byte>> pieces(static_cast<std::size_t>(comm.size()));
  std::vector<Task> recvs;
  for (int r = 0; r < comm.size(); ++r) {
    if (r == me) continue;
    auto& piece = pieces[static_cast<std::size_t>(r)];
    piece.resize(detail::rank_bytes(s, r));
    recvs.push_back(comm.recv(piece.data(), piece.size(), r, 1, {.name = s.name + ".gather"}));
  }
  detail::global_and_rank(s, me, global.data(), local.data(), true);
  for (const Task& t : recvs) s.rt->wait(t);
  for (int r = 0; r < comm.size(); ++r) {
    if (r != me) detail::global_and_rank(s, r, global.data(), pieces[static_cast<std::size_t>(r)].data(), true);
  }
  return global;
}

std::vector<std::byte> DistArray::gather_all() const {
  DistArrayState& s = *m_state;
  std::vector<std::byte> global = gather(0);
  global.resize(static_cast<std::size_t>(size()) * s.elem);
  Task t = s.comm->bcast(global.data(), global.size(), 0, {.name = s.name + ".gather_all"});
  s.rt->wait(t);
  return global;
}

std::vector<std::byte> DistArray::local_copy(int p, bool with_ghosts) const {
  DistArrayState& s = *m_state;
  if (p < 0 || static_cast<std::size_t>(p) >= s.parts.size()) {
    throw Error("DistArray::local_copy: partition " + std::to_string(p) + " does not exist; this rank has " +
                std::to_string(s.parts.size()));
  }
  const auto l = static_cast<std::size_t>(p);
  const Partition& part = s.parts[l];
  const Box box = with_ghosts ? part.ghosted_box() : part.owned_box();
  std::vector<std::byte> out(static_cast<std::size_t>(box.size()) * s.elem);
  std::vector<Dep> deps;
  detail::Uses::deps(s.tracks[l].owned, false, deps);
  const bool host = part.device.kind == DeviceKind::cpu;
  if (with_ghosts || !host) detail::Uses::deps(s.tracks[l].ghost, false, deps);
  const Layout lay = s.layouts[l];
  const DataBlock block = part.block;
  std::byte* dst = out.data();
  Task t = s.rt->spawn({.dependencies = deps, .in = {block}, .name = s.name + ".local_copy", .infer_dependencies = false},
                       [=](TaskContext& ctx) {
                         const auto* base = static_cast<const std::byte*>(ctx.data(block));
                         detail::host_copy(dst, detail::dense_strides(box),
                                           base + lay.offset(box) * static_cast<std::int64_t>(lay.elem), lay.strides,
                                           detail::extents(box), lay.elem);
                       });
  detail::Uses uses;
  uses.add(s.tracks[l].owned, false, t);
  if (with_ghosts || !host) uses.add(s.tracks[l].ghost, false, t);
  uses.commit();
  s.rt->wait(t);
  return out;
}

// ---- save / load ---------------------------------------------------------------------------

void DistArray::save(const std::string& path) const {
  DistArrayState& s = *m_state;
  detail::require_multiple("save");
  const int me = s.comm->rank();
  std::vector<std::byte> local(detail::rank_bytes(s, me));
  detail::local_owned_to_host(s, local.data());
  const std::vector<detail::Run> runs = detail::file_runs(s);
  std::vector<std::byte> staged(local.size());
  std::size_t pos = 0;
  for (const detail::Run& r : runs) {
    std::memcpy(staged.data() + pos, local.data() + r.mem, static_cast<std::size_t>(r.bytes));
    pos += static_cast<std::size_t>(r.bytes);
  }
  MPI_Comm c = s.comm->communicator().native();
  MPI_File fh = MPI_FILE_NULL;
  check_mpi(MPI_File_open(c, path.c_str(), MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh), "MPI_File_open",
            path);
  try {
    const auto total = static_cast<MPI_Offset>(detail::k_header + static_cast<std::size_t>(size()) * s.elem);
    check_mpi(MPI_File_set_size(fh, total), "MPI_File_set_size", path);
    if (me == 0) {
      detail::Header h{};
      std::memcpy(h.magic, detail::k_magic, sizeof h.magic);
      h.dtype = static_cast<std::uint32_t>(s.dtype);
      h.ndim = static_cast<std::uint32_t>(s.ndim);
      for (std::size_t d = 0; d < 3; ++d) h.shape[d] = d < s.shape.size() ? s.shape[d] : 1;
      check_mpi(MPI_File_write_at(fh, 0, &h, sizeof h, MPI_BYTE, MPI_STATUS_IGNORE), "MPI_File_write_at", path);
    }
    detail::with_view(fh, runs, staged, [&](int n) {
      check_mpi(MPI_File_write_at_all(fh, 0, staged.data(), n, MPI_BYTE, MPI_STATUS_IGNORE), "MPI_File_write_at_all",
                path);
    });
  } catch (...) {
    MPI_File_close(&fh);
    throw;
  }
  check_mpi(MPI_File_close(&fh), "MPI_File_close", path);
}

DistArray DistArray::load(Runtime& rt, Comm& comm, const std::string& path, DistArrayOptions options) {
  detail::require_multiple("load");
  MPI_Comm c = comm.communicator().native();
  MPI_File fh = MPI_FILE_NULL;
  check_mpi(MPI_File_open(c, path.c_str(), MPI_MODE_RDONLY, MPI_INFO_NULL, &fh), "MPI_File_open", path);
  try {
    detail::Header h{};
    check_mpi(MPI_File_read_at_all(fh, 0, &h, sizeof h, MPI_BYTE, MPI_STATUS_IGNORE), "MPI_File_read_at_all", path);
    if (std::memcmp(h.magic, detail::k_magic, sizeof h.magic) != 0 || h.ndim < 1 || h.ndim > 3) {
      throw Error("DistArray::load: '" + path + "' is not a file written by DistArray::save (bad header)");
    }
    std::vector<std::int64_t> shape(h.shape, h.shape + h.ndim);
    const auto dtype = static_cast<Datatype>(h.dtype);
    if (!options.shape.empty() && options.shape != shape) {
      throw Error("DistArray::load: '" + path + "' holds shape " + detail::join(shape) + " but the options ask for " +
                  detail::join(options.shape));
    }
    options.shape = shape;
    options.dtype = dtype;
    DistArray a(rt, comm, std::move(options));
    DistArrayState& s = *a.m_state;
    const std::vector<detail::Run> runs = detail::file_runs(s);
    const std::size_t mine = detail::rank_bytes(s, comm.rank());
    std::vector<std::byte> staged(mine);
    detail::with_view(fh, runs, staged, [&](int n) {
      check_mpi(MPI_File_read_at_all(fh, 0, staged.data(), n, MPI_BYTE, MPI_STATUS_IGNORE), "MPI_File_read_at_all",
                path);
    });
    DataBlock buffer(rt, std::max<std::size_t>(mine, 1), s.name + ".load");
    auto* b = static_cast<std::byte*>(buffer.host_data());
    std::size_t pos = 0;
    for (const detail::Run& r : runs) {
      std::memcpy(b + r.mem, staged.data() + pos, static_cast<std::size_t>(r.bytes));
      pos += static_cast<std::size_t>(r.bytes);
    }
    check_mpi(MPI_File_close(&fh), "MPI_File_close", path);
    detail::rank_buffer_to_partitions(s, buffer, Task{});
    return a;
  } catch (...) {
    if (fh != MPI_FILE_NULL) MPI_File_close(&fh);
    throw;
  }
}

}  // namespace parla::mpi
