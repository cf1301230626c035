// The halo plan of a DistArray (built once: neighbours, regions, buffers, tags) and its
// execution (pack → device-to-device copy or send/receive → unpack, as tasks).
#include <parla/error.hpp>
#include <parla/mpi/halo_plan.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <tuple>

#include "dist_array_state.hpp"

namespace parla::mpi {

const char* to_string(HaloRoute route) noexcept {
  switch (route) {
    case HaloRoute::local_copy: return "local_copy";
    case HaloRoute::local_transfer: return "local_transfer";
    case HaloRoute::remote: return "remote";
  }
  return "?";
}

namespace {

std::string dir_text(const std::array<int, k_max_dims>& d, int ndim) {
  std::string s = "(";
  for (int i = 0; i < ndim; ++i) s += (i != 0 ? "," : "") + std::to_string(d[static_cast<std::size_t>(i)]);
  return s + ")";
}

int dir_index(const std::array<int, k_max_dims>& d) { return (d[0] + 1) * 9 + (d[1] + 1) * 3 + (d[2] + 1); }

}  // namespace

std::string HaloPlan::describe() const {
  std::ostringstream os;
  for (const HaloRecv& r : m_recvs) {
    os << "recv p" << r.partition << " side " << dir_text(r.direction, r.recv_box.ndim) << " " << r.recv_box.to_string()
       << " <- rank " << r.peer_rank << " p" << r.peer_local << " " << r.send_box.to_string() << " ["
       << to_string(r.route) << (r.direct ? ", direct" : "") << ", tag " << r.tag << "]\n";
  }
  for (const HaloSend& s : m_sends) {
    os << "send p" << s.partition << " toward " << dir_text(s.direction, s.send_box.ndim) << " " << s.send_box.to_string()
       << " -> rank " << s.peer_rank << " global p" << s.peer_global << " [" << (s.direct ? "direct, " : "") << "tag "
       << s.tag << "]\n";
  }
  return os.str();
}

namespace detail {

namespace {

/// Every direction of the stencil, in direction-index order.
std::vector<std::array<int, k_max_dims>> directions(int ndim, Stencil stencil) {
  std::vector<std::array<int, k_max_dims>> out;
  for (int a = -1; a <= 1; ++a) {
    for (int b = -1; b <= 1; ++b) {
      for (int c = -1; c <= 1; ++c) {
        const std::array<int, k_max_dims> d{a, b, c};
        int nonzero = 0;
        bool ok = true;
        for (int i = 0; i < k_max_dims; ++i) {
          if (d[static_cast<std::size_t>(i)] != 0) {
            ++nonzero;
            if (i >= ndim) ok = false;
          }
        }
        if (!ok || nonzero == 0) continue;
        if (stencil == Stencil::star && nonzero != 1) continue;
        out.push_back(d);
      }
    }
  }
  return out;
}

/// The ghost cells on side `dir` of a partition of extent `ext` (owned-relative).
Box recv_box(int ndim, const Idx3& ext, const std::vector<int>& ghosts, const std::array<int, k_max_dims>& dir) {
  Box b;
  b.ndim = ndim;
  for (std::size_t d = 0; d < static_cast<std::size_t>(ndim); ++d) {
    const std::int64_t g = ghosts[d];
    switch (dir[d]) {
      case -1: b.lo[d] = -g; b.hi[d] = 0; break;
      case 1: b.lo[d] = ext[d]; b.hi[d] = ext[d] + g; break;
      default: b.lo[d] = 0; b.hi[d] = ext[d]; break;
    }
  }
  return b;
}

/// The owned cells of the neighbour (extent `ext`) on side `dir` of the receiver that fill
/// the receiver's ghost cells there.
Box send_box(int ndim, const Idx3& ext, const std::vector<int>& ghosts, const std::array<int, k_max_dims>& dir) {
  Box b;
  b.ndim = ndim;
  for (std::size_t d = 0; d < static_cast<std::size_t>(ndim); ++d) {
    const std::int64_t g = ghosts[d];
    switch (dir[d]) {
      case -1: b.lo[d] = ext[d] - g; b.hi[d] = ext[d]; break;  // the neighbour is below
      case 1: b.lo[d] = 0; b.hi[d] = g; break;
      default: b.lo[d] = 0; b.hi[d] = ext[d]; break;
    }
  }
  return b;
}

// Halo tasks are on every step's critical path (boundary updates wait for them): taken
// before ordinary ready tasks of their device, like the communication tasks.
constexpr int k_halo_priority = 1;
// Pack, unpack and local copies of at most this many bytes are spawned run_inline: the
// thread that releases one (the spawner when nothing is pending, a progress engine when its
// receive completes) copies it at once instead of waking a worker — a few microseconds of
// copying against a thread hand-off. Larger faces go to the owning device's workers.
constexpr std::size_t k_inline_copy_bytes = std::size_t{64} << 10;

StridedPtr at(std::byte* base, const Layout& lay, const Box& b) {
  return StridedPtr{base + lay.offset(b) * static_cast<std::int64_t>(lay.elem), lay.strides};
}

}  // namespace

void DistArrayState::build_plan() {
  auto built = std::make_unique<HaloPlan>();
  const int me = comm->rank();
  const auto dirs = directions(ndim, stencil);
  const int nglobal = pgrid[0] * pgrid[1] * pgrid[2];
  const long long tag_space = static_cast<long long>(comm->max_tag()) + 1;
  auto tag_of = [&](int recv_global, const std::array<int, k_max_dims>& side) {
    const long long t = (static_cast<long long>(id) * 27 + dir_index(side)) * nglobal + recv_global;
    return static_cast<int>(t % tag_space);
  };
  // The neighbour of partition-grid coordinates `c` on side `dir`, or false (boundary).
  auto neighbour = [&](const std::array<int, k_max_dims>& c, const std::array<int, k_max_dims>& dir,
                       std::array<int, k_max_dims>& out) {
    for (std::size_t d = 0; d < k_max_dims; ++d) {
      if (dir[d] != 0 && ghosts[d] == 0) return false;  // no ghost layer on that axis
      int x = c[d] + dir[d];
      if (x < 0 || x >= pgrid[d]) {
        if (boundary != Boundary::periodic) return false;
        x = (x + pgrid[d]) % pgrid[d];
      }
      out[d] = x;
    }
    return true;
  };
  auto coords_of = [](const Partition& p) {
    std::array<int, k_max_dims> c{0, 0, 0};
    for (std::size_t d = 0; d < p.coords.size(); ++d) c[d] = p.coords[d];
    return c;
  };
  recv_exec.clear();
  send_exec.clear();
  // Incoming halos, canonical order: local partition, then direction index.
  for (std::size_t l = 0; l < parts.size(); ++l) {
    const Partition& p = parts[l];
    const auto c = coords_of(p);
    const Idx3 ext = extent_of(c);
    for (const auto& dir : dirs) {
      std::array<int, k_max_dims> nc{};
      if (!neighbour(c, dir, nc)) continue;
      const GlobalPart q = owner(nc);
      HaloRecv r;
      r.partition = static_cast<int>(l);
      r.direction = dir;
      r.peer_rank = q.rank;
      r.peer_global = global_index(nc);
      r.peer_local = q.local;
      r.recv_box = recv_box(ndim, ext, ghosts, dir);
      r.send_box = send_box(ndim, extent_of(nc), ghosts, dir);
      RecvExec x;
      const std::size_t bytes = static_cast<std::size_t>(r.recv_box.size()) * elem;
      const std::string where = name + ".p" + std::to_string(l) + dir_text(dir, ndim);
      if (q.rank == me) {
        x.src_local = q.local;
        if (parts[static_cast<std::size_t>(q.local)].device == p.device) {
          r.route = HaloRoute::local_copy;
          x.name = where + ".copy";
        } else {
          r.route = HaloRoute::local_transfer;
          r.buffer = DataBlock(*rt, bytes, where + ".pack");
          x.name = where + ".unpack";
        }
        built->m_bytes_local += bytes;
      } else {
        r.route = HaloRoute::remote;
        r.tag = tag_of(p.global_index, dir);
        // Host partitions receive contiguous ghost regions in place. Device partitions never
        // do: a concurrent task there reading the block could copy half-received bytes.
        r.direct = p.device.kind == DeviceKind::cpu && layouts[l].contiguous(r.recv_box);
        if (!r.direct) r.buffer = DataBlock(*rt, bytes, where + ".recv");
        x.name = where + ".unpack";
      }
      built->m_recvs.push_back(std::move(r));
      recv_exec.push_back(std::move(x));
    }
  }
  // One task per (receiver, source) pair of local copies: periodic self-exchanges and
  // same-device neighbours copy all their faces (and edges, corners) at once.
  for (std::size_t i = 0; i < built->m_recvs.size(); ++i) {
    const HaloRecv& r = built->m_recvs[i];
    if (r.route != HaloRoute::local_copy || recv_exec[i].grouped) continue;
    recv_exec[i].group.push_back(static_cast<int>(i));
    for (std::size_t j = i + 1; j < built->m_recvs.size(); ++j) {
      const HaloRecv& o = built->m_recvs[j];
      if (o.route == HaloRoute::local_copy && o.partition == r.partition && o.peer_local == r.peer_local) {
        recv_exec[i].group.push_back(static_cast<int>(j));
        recv_exec[j].grouped = true;
      }
    }
    // Boxes of one extent next to each other: the task copies each such run in one pass.
    std::ranges::stable_sort(recv_exec[i].group, [&](int a, int b) {
      return extents(built->m_recvs[static_cast<std::size_t>(a)].recv_box) <
             extents(built->m_recvs[static_cast<std::size_t>(b)].recv_box);
    });
  }
  // Outgoing messages to other ranks, in the receivers' canonical order: receiving partition
  // (global index, monotone in its local index), then its side.
  struct Out {
    HaloSend s;
    int side_index;
  };
  std::vector<Out> outs;
  for (std::size_t l = 0; l < parts.size(); ++l) {
    const Partition& p = parts[l];
    const auto c = coords_of(p);
    const Idx3 ext = extent_of(c);
    for (const auto& dir : dirs) {
      std::array<int, k_max_dims> nc{};
      if (!neighbour(c, dir, nc)) continue;
      const GlobalPart q = owner(nc);
      if (q.rank == me) continue;
      std::array<int, k_max_dims> side{};
      for (std::size_t d = 0; d < k_max_dims; ++d) side[d] = -dir[d];
      HaloSend s;
      s.partition = static_cast<int>(l);
      s.direction = dir;
      s.peer_rank = q.rank;
      s.peer_global = global_index(nc);
      s.send_box = send_box(ndim, ext, ghosts, side);
      s.tag = tag_of(s.peer_global, side);
      s.direct = layouts[l].contiguous(s.send_box);
      if (!s.direct) {
        s.buffer = DataBlock(*rt, static_cast<std::size_t>(s.send_box.size()) * elem,
                             name + ".p" + std::to_string(l) + dir_text(dir, ndim) + ".send");
      }
      built->m_bytes_sent += static_cast<std::size_t>(s.send_box.size()) * elem;
      outs.push_back({std::move(s), dir_index(side)});
    }
  }
  std::stable_sort(outs.begin(), outs.end(), [](const Out& a, const Out& b) {
    return std::tie(a.s.peer_rank, a.s.peer_global, a.side_index) < std::tie(b.s.peer_rank, b.s.peer_global, b.side_index);
  });
  for (Out& o : outs) {
    SendExec x;
    x.name = name + ".p" + std::to_string(o.s.partition) + dir_text(o.s.direction, ndim) + ".pack";
    built->m_sends.push_back(std::move(o.s));
    send_exec.push_back(std::move(x));
  }
  plan = std::move(built);
}

TaskSpace DistArrayState::exchange() {
  if (!plan) build_plan();
  TaskSpace ts(*rt, halo_space_name);
  Uses uses;
  std::vector<Dep> deps;
  const std::size_t esz = elem;
  // A pack task: owned cells of local partition `q` (box `b`) into `buffer`, on q's device.
  auto spawn_pack = [&](std::size_t q, const Box& b, const DataBlock& buffer, const Task& last_use,
                        const std::string& task_name) {
    deps.clear();
    Uses::deps(tracks[q].owned, false, deps);
    if (last_use.valid() && !last_use.done()) deps.emplace_back(last_use);
    const Layout lay = layouts[q];
    const DataBlock block = parts[q].block;
    Task t = rt->spawn({.dependencies = deps, .placement = placements[q], .in = {block}, .out = {buffer},
                        .priority = k_halo_priority, .name = task_name,
                        .run_inline = static_cast<std::size_t>(b.size()) * esz <= k_inline_copy_bytes,
                        .infer_dependencies = false},
                       [lay, block, buffer, b, esz](TaskContext& ctx) {
                         copy_box(ctx, StridedPtr{static_cast<std::byte*>(ctx.data(buffer)), dense_strides(b)},
                                  at(static_cast<std::byte*>(ctx.data(block)), lay, b), extents(b), esz);
                       });
    uses.add(tracks[q].owned, false, t);
    return t;
  };
  // An unpack task: `buffer` into the ghost cells `b` of local partition `p`, on p's device.
  auto spawn_unpack = [&](std::size_t p, const Box& b, const DataBlock& buffer, const Task& producer,
                          const TaskRef& key) {
    deps.clear();
    Uses::deps(tracks[p].ghost, true, deps);
    deps.emplace_back(producer);
    const Layout lay = layouts[p];
    const DataBlock block = parts[p].block;
    Task t = rt->spawn({.key = key, .dependencies = deps, .placement = placements[p], .in = {buffer},
                        .inout = {block}, .priority = k_halo_priority,
                        .run_inline = static_cast<std::size_t>(b.size()) * esz <= k_inline_copy_bytes,
                        .infer_dependencies = false},
                       [lay, block, buffer, b, esz](TaskContext& ctx) {
                         copy_box(ctx, at(static_cast<std::byte*>(ctx.data(block)), lay, b),
                                  StridedPtr{static_cast<std::byte*>(ctx.data(buffer)), dense_strides(b)}, extents(b), esz);
                       });
    uses.add(tracks[p].ghost, true, t);
    return t;
  };

  // The receives of one kind (remote, or within the rank).
  auto spawn_recvs = [&](bool remote) {
  for (std::size_t i = 0; i < plan->m_recvs.size(); ++i) {
    const HaloRecv& r = plan->m_recvs[i];
    if ((r.route == HaloRoute::remote) != remote) continue;
    RecvExec& x = recv_exec[i];
    const auto p = static_cast<std::size_t>(r.partition);
    const TaskRef key = ts[{static_cast<std::int64_t>(p), static_cast<std::int64_t>(dir_index(r.direction))}];
    switch (r.route) {
      case HaloRoute::local_copy: {
        if (x.grouped) break;  // copied by its group's task
        const auto q = static_cast<std::size_t>(x.src_local);
        deps.clear();
        Uses::deps(tracks[p].ghost, true, deps);
        Uses::deps(tracks[q].owned, false, deps);
        const Layout dl = layouts[p];
        const Layout sl = layouts[q];
        const DataBlock db = parts[p].block;
        const DataBlock sb = parts[q].block;
        SpawnOptions so;
        so.key = key;
        so.dependencies = deps;
        so.placement = placements[p];
        if (p != q) so.in.push_back(sb);
        so.inout.push_back(db);
        so.priority = k_halo_priority;
        so.infer_dependencies = false;
        std::size_t group_bytes = 0;
        for (int g : x.group) group_bytes += static_cast<std::size_t>(plan->m_recvs[static_cast<std::size_t>(g)].recv_box.size()) * esz;
        so.run_inline = group_bytes <= k_inline_copy_bytes;
        Task t = rt->spawn(std::move(so), [dl, sl, db, sb, esz, group = &x.group, recvs = &plan->m_recvs](TaskContext& ctx) {
          // The plan outlives its tasks (the array's state waits for them).
          auto* d = static_cast<std::byte*>(ctx.data(db));
          auto* s = static_cast<std::byte*>(ctx.data(sb));
          // Each run of boxes of one extent in one pass (the group is sorted by extent).
          std::array<CopyPair, 26> pairs;  // a box stencil in 3-D has 26 sides
          std::size_t count = 0;
          Idx3 ext{};
          for (std::size_t k = 0; k <= group->size(); ++k) {
            const HaloRecv* h = k < group->size() ? &(*recvs)[static_cast<std::size_t>((*group)[k])] : nullptr;
            if (count > 0 && (h == nullptr || extents(h->recv_box) != ext || count == pairs.size())) {
              copy_boxes(ctx, std::span<const CopyPair>(pairs.data(), count), ext, esz);
              count = 0;
            }
            if (h == nullptr) break;
            ext = extents(h->recv_box);
            pairs[count++] = CopyPair{at(d, dl, h->recv_box), at(s, sl, h->send_box)};
          }
        });
        uses.add(tracks[p].ghost, true, t);
        uses.add(tracks[q].owned, false, t);
        break;
      }
      case HaloRoute::local_transfer: {
        const auto q = static_cast<std::size_t>(x.src_local);
        Task pack = spawn_pack(q, r.send_box, r.buffer, x.last_use, x.name);
        x.last_use = spawn_unpack(p, r.recv_box, r.buffer, pack, key);
        break;
      }
      case HaloRoute::remote: {
        if (r.direct) {
          deps.clear();
          Uses::deps(tracks[p].ghost, true, deps);
          const Layout& lay = layouts[p];
          Task t = comm->recv(
              parts[p].block.slice(lay.byte_offset(r.recv_box), static_cast<std::size_t>(r.recv_box.size()) * esz),
              r.peer_rank, r.tag, {.key = key, .dependencies = deps});
          uses.add(tracks[p].ghost, true, t);
          x.last_use = t;
        } else {
          CommOptions co;
          if (x.last_use.valid() && !x.last_use.done()) co.dependencies.emplace_back(x.last_use);
          Task rcv = comm->recv(r.buffer, r.peer_rank, r.tag, std::move(co));
          x.last_use = spawn_unpack(p, r.recv_box, r.buffer, rcv, key);
        }
        break;
      }
    }
  }
  };
  // Sends to other ranks.
  auto spawn_sends = [&] {
  for (std::size_t i = 0; i < plan->m_sends.size(); ++i) {
    const HaloSend& s = plan->m_sends[i];
    SendExec& x = send_exec[i];
    const auto q = static_cast<std::size_t>(s.partition);
    if (s.direct) {
      deps.clear();
      Uses::deps(tracks[q].owned, false, deps);
      const Layout& lay = layouts[q];
      Task t = comm->send(parts[q].block.slice(lay.byte_offset(s.send_box), static_cast<std::size_t>(s.send_box.size()) * esz),
                          s.peer_rank, s.tag, {.dependencies = deps});
      uses.add(tracks[q].owned, false, t);
      x.last_use = t;
    } else {
      Task pack = spawn_pack(q, s.send_box, s.buffer, x.last_use, x.name);
      x.last_use = comm->send(s.buffer, s.peer_rank, s.tag, {.dependencies = {pack}});
    }
  }
  };
  // Messages first: the receives (posted before the peers' data arrives), then the sends, so
  // the peers' exchanges can proceed; the copies within the rank last (small ones run inline
  // on this thread, and must not delay the messages).
  spawn_recvs(true);
  spawn_sends();
  // The messages released on this thread are only queued for the engine (this thread usually
  // waits next and posts them then): post them now, so the peers can pull them while this
  // thread copies the faces within the rank.
  if (!plan->m_sends.empty()) comm->progress();  // does nothing on a worker thread
  spawn_recvs(false);
  uses.commit();
  ++plan->m_executions;
  return ts;
}

}  // namespace detail
}  // namespace parla::mpi
