// The data side of the runtime: accesses, inferred dependencies, the coherence protocol run
// when a task is launched (instances, copies on copy streams, invalidation), eviction,
// locality, and the asynchronous completion of GPU tasks (events, runahead).
//
// The protocol runs on the *launch* timeline: tasks that conflict are ordered by
// dependencies (inferred or explicit), so their launches happen in program order; each
// (segment, device) copy carries the event after which its bytes are there ("ready"), and
// whoever uses it makes its stream wait for that event. No thread waits for a device,
// except a cpu task that reads bytes another task is still copying to the host.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <parla/error.hpp>
#include <parla/runtime.hpp>

#include "block_state.hpp"
#include "runtime_impl.hpp"

namespace parla::detail {

namespace {

std::string bytes_text(std::size_t n) {
  char buf[48];
  if (n >= (std::size_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(n) / (1 << 30));
  } else if (n >= (std::size_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(n) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%zu B", n);
  }
  return buf;
}

bool take_bytes(std::atomic<std::int64_t>& pool, std::size_t bytes) noexcept {
  const auto amount = static_cast<std::int64_t>(bytes);
  std::int64_t v = pool.load(std::memory_order_relaxed);
  do {
    if (v < amount) return false;
    // acq_rel: same modification order as the task reservations of the device.
  } while (!pool.compare_exchange_weak(v, v - amount, std::memory_order_acq_rel, std::memory_order_relaxed));
  return true;
}

template <class F>
void for_each_device(std::uint64_t mask, F&& f) {
  while (mask != 0) {
    f(__builtin_ctzll(mask));
    mask &= mask - 1;
  }
}

std::string slice_name(const BlockState& b, std::size_t begin, std::size_t end) {
  if (begin == 0 && end == b.bytes) return b.name;
  return b.name + "[" + std::to_string(begin) + ":" + std::to_string(end) + "]";
}

}  // namespace

// ---- BlockState ------------------------------------------------------------------------------

BlockState::BlockState(RuntimeImpl* rt, std::string block_name, std::size_t size, void* host_ptr, bool own)
    : runtime(rt), name(std::move(block_name)), bytes(size), host(host_ptr), owned(own), host_pin_tried(!own) {
  const std::size_t ndev = std::max<std::size_t>(1, rt->devices().size());
  Segment s;
  s.begin = 0;
  s.end = bytes;
  s.dev_version.assign(ndev, k_no_version);
  s.dev_version.front() = 0;  // the host copy is the initial contents
  s.ready.resize(ndev);
  segments.push_back(std::move(s));
  instances.resize(ndev);
  instances.front().ptr = host;
}

BlockState::~BlockState() {
  if (runtime != nullptr) {
    for (std::size_t d = 1; d < instances.size(); ++d) {
      if (instances[d].ptr == nullptr) continue;
      DeviceSlot& s = runtime->slot(static_cast<int>(d));
      {
        std::lock_guard<std::mutex> lock(s.data_mutex);
        std::erase(s.resident, this);
      }
      // Every task that used the instance has finished (it held this block), so its stream
      // work is done and the memory can go now.
      s.backend->deallocate(instances[d].ptr, bytes);
      s.memory_free.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_acq_rel);
      s.memory_cv.notify_all();
    }
  }
  if (host_pinned_by != nullptr) {
    host_pinned_by->unpin_host(host, owned);  // frees it too when owned
  } else if (owned) {
    std::free(host);
  }
}

std::size_t BlockState::find(std::size_t pos) const {
  auto it = std::upper_bound(segments.begin(), segments.end(), pos,
                             [](std::size_t p, const Segment& s) { return p < s.begin; });
  return static_cast<std::size_t>(it - segments.begin()) - 1;
}

std::size_t BlockState::split(std::size_t pos) {
  if (pos >= bytes) return segments.size();
  const std::size_t i = find(pos);
  if (segments[i].begin == pos) return i;
  Segment tail = segments[i];
  tail.begin = pos;
  segments[i].end = pos;
  segments.insert(segments.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::move(tail));
  return i + 1;
}

std::pair<std::size_t, std::size_t> BlockState::range(std::size_t offset, std::size_t n) {
  const std::size_t first = split(offset);
  const std::size_t last = split(offset + n);
  return {first, last};
}

// ---- spawn: accesses and inferred dependencies -----------------------------------------------

void RuntimeImpl::register_block(const std::shared_ptr<BlockState>& block) {
  std::lock_guard<std::mutex> lock(m_block_mutex);
  if (m_blocks.size() >= 64 && (m_blocks.size() & (m_blocks.size() - 1)) == 0) {
    std::erase_if(m_blocks, [](const auto& w) { return w.expired(); });
  }
  m_blocks.push_back(block);
}

std::unique_ptr<TaskData> RuntimeImpl::make_task_data(const SpawnOptions& o, const std::string& name,
                                                      const ResolvedPlacement*& placement,
                                                      std::unique_ptr<ResolvedPlacement>& storage) const {
  auto data = std::make_unique<TaskData>();
  auto add = [&](const std::vector<DataSlice>& list, bool read, bool write, const char* field) {
    for (const DataSlice& s : list) {
      if (!s.state()) {
        throw Error("task '" + name + "': ." + field + " holds an empty DataBlock handle; create it with DataBlock(runtime, bytes)");
      }
      if (s.state()->runtime != this) {
        throw Error("task '" + name + "': data block '" + s.state()->name +
                    "' belongs to another runtime (or its runtime has ended); create blocks with the runtime that spawns the task");
      }
      auto same = std::find_if(data->accesses.begin(), data->accesses.end(), [&](const TaskAccess& a) {
        return a.block == s.state() && a.offset == s.offset() && a.bytes == s.bytes();
      });
      if (same != data->accesses.end()) {
        same->read = same->read || read;
        same->write = same->write || write;
      } else {
        data->accesses.push_back(TaskAccess{s.state(), s.offset(), s.bytes(), read, write});
      }
    }
  };
  add(o.in, true, false, "in");
  add(o.out, false, true, "out");
  add(o.inout, true, true, "inout");

  // Every device of an option holds a whole-block instance of each block it touches. This
  // runs for every task with data: no allocation unless some option cannot take the blocks.
  auto first_of_block = [&](std::size_t i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (data->accesses[j].block == data->accesses[i].block) return false;
    }
    return true;
  };
  std::size_t need = 0;
  for (std::size_t i = 0; i < data->accesses.size(); ++i) {
    if (first_of_block(i)) need += data->accesses[i].block->bytes;
  }
  auto fits = [&](const ResolvedOption& opt, std::string* rejected) {
    bool ok = true;
    for_each_device(opt.mask, [&](int d) {
      if (d == 0) return;  // host memory is not accounted per block
      const DeviceSlot& s = slot(d);
      if (need + opt.memory > s.memory_capacity) {
        ok = false;
        if (rejected != nullptr) *rejected += (rejected->empty() ? "" : "; ") + s.device->name() + " has " + bytes_text(s.memory_capacity);
      }
    });
    return ok;
  };
  if (std::all_of(placement->options.begin(), placement->options.end(), [&](const ResolvedOption& opt) { return fits(opt, nullptr); })) {
    return data;
  }
  auto out = std::make_unique<ResolvedPlacement>();
  std::string rejected;
  for (const ResolvedOption& opt : placement->options) {
    if (fits(opt, &rejected)) out->options.push_back(opt);
  }
  if (out->options.empty()) {
    std::string what;
    for (std::size_t i = 0; i < data->accesses.size(); ++i) {
      if (!first_of_block(i)) continue;
      const BlockState& b = *data->accesses[i].block;
      what += (what.empty() ? "" : ", ") + ("'" + b.name + "' (" + bytes_text(b.bytes) + ")");
    }
    throw Error("task '" + name + "' (placement " + o.placement.to_string() + ") can never run: its data " + what +
                " needs " + bytes_text(need) + " on one device, but " + rejected +
                ". A block must fit on the device that uses it: split it into slices of separate blocks, "
                "use fewer blocks per task, or choose larger devices (PARLA_SIM_GPU_MEMORY for simulated GPUs)");
  }
  storage = std::move(out);
  placement = storage.get();
  return data;
}

void RuntimeImpl::infer_from_accesses(TaskRecord* t, std::vector<Ref<TaskRecord>>& preds) {
  const std::size_t explicit_count = preds.size();
  for (const TaskAccess& a : t->m_data->accesses) {
    BlockState& b = *a.block;
    std::lock_guard<std::mutex> lock(b.mutex);
    const auto [first, last] = b.range(a.offset, a.bytes);
    for (std::size_t i = first; i < last; ++i) {
      BlockState::Segment& s = b.segments[i];
      auto depend = [&](const Ref<TaskRecord>& p) {
        if (p && p.get() != t && !is_final(p->m_state.load(std::memory_order_acquire))) preds.push_back(p);
      };
      depend(s.last_writer);  // read after write, write after write
      if (a.write) {
        for (const auto& r : s.readers) depend(r);  // write after read
        s.last_writer = Ref<TaskRecord>::share(t);
        s.readers.clear();
      } else {
        if (s.readers.size() >= 32) {
          std::erase_if(s.readers, [](const Ref<TaskRecord>& r) { return is_final(r->m_state.load(std::memory_order_acquire)); });
        }
        if (s.readers.empty() || s.readers.back().get() != t) s.readers.push_back(Ref<TaskRecord>::share(t));
      }
    }
  }
  if (preds.size() > explicit_count + 1 || (explicit_count != 0 && preds.size() > explicit_count)) {
    std::sort(preds.begin(), preds.end(), [](const auto& x, const auto& y) { return x.get() < y.get(); });
    preds.erase(std::unique(preds.begin(), preds.end()), preds.end());
  }
}

std::size_t RuntimeImpl::valid_input_bytes(TaskRecord* t, int device) {
  std::size_t total = 0;
  for (const TaskAccess& a : t->m_data->accesses) {
    if (!a.read) continue;
    BlockState& b = *a.block;
    std::lock_guard<std::mutex> lock(b.mutex);
    const std::size_t end = a.offset + a.bytes;
    for (std::size_t i = b.find(a.offset); i < b.segments.size() && b.segments[i].begin < end; ++i) {
      const BlockState::Segment& s = b.segments[i];
      if (s.dev_version[static_cast<std::size_t>(device)] == s.version) {
        total += std::min(s.end, end) - std::max(s.begin, a.offset);
      }
    }
  }
  return total;
}

// ---- launch: instances, copies, invalidation -------------------------------------------------

void* RuntimeImpl::acquire_instance(BlockState& b, int dev, TaskData& d, const TaskRecord& task) {
  const auto di = static_cast<std::size_t>(dev);
  auto pin = [&](const std::shared_ptr<BlockState>& self) {
    ++b.instances[di].pins;
    d.pins.emplace_back(self, dev);
  };
  std::shared_ptr<BlockState> self;
  for (const TaskAccess& a : d.accesses) {
    if (a.block.get() == &b) self = a.block;
  }
  {
    std::lock_guard<std::mutex> lock(b.mutex);
    if (b.instances[di].ptr != nullptr) {
      pin(self);
      return b.instances[di].ptr;
    }
  }
  DeviceSlot& s = slot(dev);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(m_config.deadlock_timeout));
  while (!take_bytes(s.memory_free, b.bytes)) {
    if (evict(dev, b.bytes, &b) > 0) continue;
    std::unique_lock<std::mutex> lock(s.data_mutex);
    // Memory comes back when a task using data here finishes (unpin) or a block dies.
    s.memory_cv.wait_for(lock, std::chrono::milliseconds(5));
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error(s.device->name() + " is full: task '" + task.display_name() + "' needs " + bytes_text(b.bytes) +
                  " for data block '" + b.name + "' but only " +
                  bytes_text(static_cast<std::size_t>(std::max<std::int64_t>(0, s.memory_free.load(std::memory_order_relaxed)))) +
                  " of " + bytes_text(s.memory_capacity) +
                  " are free, and everything else there is in use by running tasks or is the only valid copy "
                  "of its data. Use less data per task, add dependencies so fewer tasks hold data at once, or "
                  "choose larger devices");
    }
  }
  note_memory_use(s);
  void* p = nullptr;
  try {
    p = s.backend->allocate(b.bytes);
  } catch (...) {
    give_memory(dev, b.bytes);
    throw;
  }
  std::lock_guard<std::mutex> lock(b.mutex);
  if (b.instances[di].ptr != nullptr) {  // another task of this device allocated it meanwhile
    s.backend->deallocate(p, b.bytes);
    give_memory(dev, b.bytes);
  } else {
    b.instances[di].ptr = p;
    std::lock_guard<std::mutex> dl(s.data_mutex);
    s.resident.push_back(&b);
  }
  pin(self);
  return b.instances[di].ptr;
}

std::size_t RuntimeImpl::evict(int dev, std::size_t needed, const BlockState* keep) {
  DeviceSlot& s = slot(dev);
  const auto di = static_cast<std::size_t>(dev);
  std::vector<std::pair<void*, std::size_t>> to_free;
  std::size_t freed = 0;
  {
    std::lock_guard<std::mutex> lock(s.data_mutex);
    for (auto it = s.resident.begin(); it != s.resident.end() && freed < needed;) {
      BlockState* v = *it;
      // try_lock: the allocating thread may hold a block mutex and wait for data_mutex.
      std::unique_lock<std::mutex> vl(v->mutex, std::try_to_lock);
      if (v == keep || !vl.owns_lock() || v->instances[di].pins > 0 || v->instances[di].ptr == nullptr) {
        ++it;
        continue;
      }
      // Clean: every byte is either stale here or valid somewhere else too.
      const bool clean = std::all_of(v->segments.begin(), v->segments.end(), [&](const BlockState::Segment& g) {
        if (g.dev_version[di] != g.version) return true;
        for (std::size_t e = 0; e < g.dev_version.size(); ++e) {
          if (e != di && g.dev_version[e] == g.version) return true;
        }
        return false;
      });
      if (!clean) {
        ++it;
        continue;
      }
      for (auto& g : v->segments) {
        g.dev_version[di] = k_no_version;
        g.ready[di].reset();
      }
      to_free.emplace_back(v->instances[di].ptr, v->bytes);
      v->instances[di].ptr = nullptr;
      freed += v->bytes;
      it = s.resident.erase(it);
      s.evictions.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Unpinned: every task that used these instances has finished, so has its stream work.
  for (const auto& [p, n] : to_free) {
    s.backend->deallocate(p, n);
    s.memory_free.fetch_add(static_cast<std::int64_t>(n), std::memory_order_acq_rel);
  }
  return freed;
}

void RuntimeImpl::give_memory(int dev, std::size_t bytes) {
  DeviceSlot& s = slot(dev);
  s.memory_free.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_acq_rel);
  std::lock_guard<std::mutex> lock(s.data_mutex);
  s.memory_cv.notify_all();
}

void RuntimeImpl::copy_segments(const std::shared_ptr<BlockState>& bp, std::size_t first, std::size_t last,
                                int dst, TaskData& d, std::vector<std::shared_ptr<Event>>& waits) {
  BlockState& b = *bp;
  const auto dd = static_cast<std::size_t>(dst);
  std::size_t i = first;
  int prev_src = -1;
  while (i < last) {
    // The best valid copy: the previous run's source (longer copies), else another GPU
    // (device-to-device links), else the host.
    const BlockState::Segment& g = b.segments[i];
    auto valid_on = [&](std::size_t gi, int e) {
      return e >= 0 && b.segments[gi].dev_version[static_cast<std::size_t>(e)] == b.segments[gi].version;
    };
    int src = valid_on(i, prev_src) ? prev_src : -1;
    for (std::size_t e = 1; src < 0 && e < g.dev_version.size(); ++e) {
      if (e != dd && valid_on(i, static_cast<int>(e))) src = static_cast<int>(e);
    }
    if (src < 0 && dst != 0 && valid_on(i, 0)) src = 0;
    if (src < 0) {
      throw Error("internal error: no valid copy of data block '" + b.name + "' bytes [" + std::to_string(g.begin) +
                  ", " + std::to_string(g.end) + ") exists; please report this");
    }
    std::size_t j = i + 1;
    while (j < last && valid_on(j, src)) ++j;
    const std::size_t begin = b.segments[i].begin;
    const std::size_t end = b.segments[j - 1].end;
    const auto sd = static_cast<std::size_t>(src);
    BackendStream& stream = dst != 0 ? slot(dst).backend->copy_in_stream() : slot(src).backend->copy_out_stream();
    const Event* last_wait = nullptr;
    for (std::size_t k = i; k < j; ++k) {
      const auto& ready = b.segments[k].ready[sd];
      if (ready && ready.get() != last_wait && !ready->query()) {
        stream.wait(ready);
        last_wait = ready.get();
      }
    }
    const int kind = src == 0 ? 0 : (dst == 0 ? 1 : 2);
    // Copies between the host and a device that page-locks host memory (CUDA) go through
    // pinned memory: truly asynchronous DMA, ordered by the stream's events like any copy.
    if (!b.host_pin_tried && kind != 2) {
      b.host_pin_tried = true;
      DeviceBackend& be = *slot(src == 0 ? dst : src).backend;
      if (be.pin_host(b.host, b.bytes)) b.host_pinned_by = &be;
    }
    // The consumer pins the source until it finishes, so it cannot be evicted mid-copy.
    ++b.instances[sd].pins;
    d.pins.emplace_back(bp, src);
    std::string label;
    if (m_tracing) {
      static constexpr const char* kinds[] = {"h2d", "d2h", "d2d"};
      label = std::string("copy ") + kinds[kind] + " " + slice_name(b, begin, end) + " " +
              slot(src).device->name() + "->" + slot(dst).device->name();
    }
    stream.copy_labeled(static_cast<std::byte*>(b.instances[dd].ptr) + begin,
                        static_cast<const std::byte*>(b.instances[sd].ptr) + begin, end - begin, std::move(label));
    std::shared_ptr<Event> done = stream.record();
    for (std::size_t k = i; k < j; ++k) {
      b.segments[k].dev_version[dd] = b.segments[k].version;
      b.segments[k].ready[dd] = done;
    }
    waits.push_back(std::move(done));
    if (dst == 0) d.host_copy_streams.push_back(&stream);
    DeviceSlot& ds = slot(dst);
    ds.copies_in.fetch_add(1, std::memory_order_relaxed);
    ds.bytes_in.fetch_add(end - begin, std::memory_order_relaxed);
    m_copies[kind].fetch_add(1, std::memory_order_relaxed);
    m_copy_bytes[kind].fetch_add(end - begin, std::memory_order_relaxed);
    prev_src = src;
    i = j;
  }
}

bool RuntimeImpl::launch_data(TaskRecord* t, ExecContext& /*ex*/) {
  if (!t->m_data) t->m_data = std::make_unique<TaskData>();
  TaskData& d = *t->m_data;
  if (d.prepared) return true;  // a cpu task back from waiting for its copies
  d.prepared = true;
  d.devices.clear();
  d.devices.push_back(t->m_primary_device);
  for_each_device(t->m_device_mask, [&](int dev) {
    if (dev != t->m_primary_device) d.devices.push_back(dev);
  });
  const std::size_t n = d.devices.size();
  d.streams.assign(n, nullptr);
  d.waits.assign(n, {});
  for (std::size_t i = 0; i < n; ++i) {
    DeviceBackend& be = *slot(d.devices[i]).backend;
    if (be.has_streams()) d.streams[i] = &be.compute_stream();
  }
  // Runahead: predecessors on this device released us once their work was enqueued.
  for (std::uint32_t i = 0; i < t->m_num_edges; ++i) {
    // A 1 was stored after the event (acq_rel), and the event's slot made the cold part.
    if (t->released_at(i).load(std::memory_order_acquire) == 1) {
      if (const std::shared_ptr<Event>& ev = t->event_at(i)) d.waits[0].push_back(ev);
    }
  }
  // Copies into a streamless device (the host) this task issued: it waits for them without
  // holding a thread (their streams re-enqueue it).
  std::vector<std::shared_ptr<Event>> own_copies;
  // 1. Instances (reads: on every device of the task; writes: on its first device).
  for (const TaskAccess& a : d.accesses) {
    for (std::size_t i = 0; i < n; ++i) {
      if (a.read || i == 0) acquire_instance(*a.block, d.devices[i], d, *t);
    }
  }
  // 2. Bring inputs: copy what is stale, wait for what is still arriving.
  for (const TaskAccess& a : d.accesses) {
    if (!a.read) continue;
    BlockState& b = *a.block;
    std::lock_guard<std::mutex> lock(b.mutex);
    const auto [first, last] = b.range(a.offset, a.bytes);
    for (std::size_t i = 0; i < n; ++i) {
      const int dev = d.devices[i];
      const auto di = static_cast<std::size_t>(dev);
      std::size_t k = first;
      while (k < last) {
        if (b.segments[k].dev_version[di] == b.segments[k].version) {
          const auto& ready = b.segments[k].ready[di];
          if (ready && !ready->query()) d.waits[i].push_back(ready);
          ++k;
          continue;
        }
        std::size_t j = k + 1;
        while (j < last && b.segments[j].dev_version[di] != b.segments[j].version) ++j;
        copy_segments(a.block, k, j, dev, d, d.streams[i] != nullptr ? d.waits[i] : own_copies);
        k = j;
      }
    }
  }
  // 3. Writes: a new version, held by the first device only (other copies become stale).
  for (const TaskAccess& a : d.accesses) {
    if (!a.write) continue;
    BlockState& b = *a.block;
    std::lock_guard<std::mutex> lock(b.mutex);
    const auto [first, last] = b.range(a.offset, a.bytes);
    const auto di = static_cast<std::size_t>(d.devices[0]);
    for (std::size_t k = first; k < last; ++k) {
      BlockState::Segment& g = b.segments[k];
      ++g.version;
      g.dev_version[di] = g.version;
      g.ready[di].reset();  // set to the task's completion event after its body
    }
  }
  // 4. Order the task after its inputs.
  if (d.streams[0] == nullptr) {
    // A cpu task: its own copies to the host re-enqueue it when they finish; bytes another
    // task is still copying here are waited for (rare, short).
    // Bytes another task is still copying to the host: wait (no lock held).
    for (const auto& e : d.waits[0]) e->synchronize();
    std::sort(d.host_copy_streams.begin(), d.host_copy_streams.end());
    d.host_copy_streams.erase(std::unique(d.host_copy_streams.begin(), d.host_copy_streams.end()),
                              d.host_copy_streams.end());
    if (!d.host_copy_streams.empty()) {
      d.copies_pending.store(static_cast<int>(d.host_copy_streams.size()) + 1, std::memory_order_relaxed);
      m_deferred_outstanding.fetch_add(1, std::memory_order_relaxed);
      for (BackendStream* s : d.host_copy_streams) {
        s->enqueue_completion([this, t](std::exception_ptr /*error*/) {
          // acq_rel: the last of the copies to finish re-enqueues the task.
          if (t->m_data->copies_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            m_deferred_outstanding.fetch_sub(1, std::memory_order_relaxed);
            ExecContext ex;
            enqueue(t, ex);
          }
        });
      }
      if (d.copies_pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return false;
      m_deferred_outstanding.fetch_sub(1, std::memory_order_relaxed);
    }
    for (std::size_t i = 1; i < n; ++i) {
      if (d.streams[i] != nullptr) {
        for (const auto& e : d.waits[i]) d.streams[i]->wait(e);
      }
    }
    return true;
  }
  for (const auto& e : own_copies) e->synchronize();  // host part of a multi-device task (rare)
  for (std::size_t i = 0; i < n; ++i) {
    if (d.streams[i] == nullptr) {
      for (const auto& e : d.waits[i]) e->synchronize();
      continue;
    }
    for (const auto& e : d.waits[i]) d.streams[i]->wait(e);
  }
  return true;
}

void RuntimeImpl::after_device_body(TaskRecord* t, ExecContext& ex) {
  TaskData* d = t->m_data.get();
  if (d == nullptr) return;
  std::size_t main_i = d->streams.size();
  for (std::size_t i = 0; i < d->streams.size(); ++i) {
    if (d->streams[i] != nullptr) {
      main_i = i;
      break;
    }
  }
  if (main_i == d->streams.size()) return;  // a cpu task: complete when the body returns
  BackendStream& main = *d->streams[main_i];
  try {
    if (auto err = slot(d->devices[main_i]).backend->take_launch_error()) set_error(t, err);
    for (std::size_t i = main_i + 1; i < d->streams.size(); ++i) {
      if (d->streams[i] != nullptr) main.wait(d->streams[i]->record());
    }
    d->done = main.record();
  } catch (...) {
    set_error(t, std::current_exception());
    return;  // no event: complete now (the work enqueued so far may still run)
  }
  if (main_i == 0) {
    for (const TaskAccess& a : d->accesses) {
      if (!a.write) continue;
      BlockState& b = *a.block;
      std::lock_guard<std::mutex> lock(b.mutex);
      const auto [first, last] = b.range(a.offset, a.bytes);
      const auto di = static_cast<std::size_t>(d->devices[0]);
      for (std::size_t k = first; k < last; ++k) {
        if (b.segments[k].dev_version[di] == b.segments[k].version) b.segments[k].ready[di] = d->done;
      }
    }
  }
  add_finish_party(*t);
  const std::uint8_t flags = t->m_flags.load(std::memory_order_relaxed);
  if (main_i == 0 && d->devices.size() == 1 && (flags & (TaskRecord::k_has_error | TaskRecord::k_token)) == 0) {
    // Runahead: successors placed on this same device may launch now; their streams wait
    // for our event. Successors elsewhere still wait for our completion.
    const std::uint64_t here = std::uint64_t{1} << d->devices[0];
    t->m_flags.fetch_or(TaskRecord::k_runahead, std::memory_order_relaxed);
    // acquire: edges pushed (release) by spawners are complete.
    for (Edge* e = t->m_successors.load(std::memory_order_acquire); e != nullptr && e != closed_list();
         e = e->next.load(std::memory_order_relaxed)) {
      TaskRecord* s = e->succ;
      const ResolvedPlacement* p = s->m_placement;
      if (p == nullptr || p->options.size() != 1 || p->options.front().mask != here) continue;
      const std::uint32_t i = s->edge_index(e);
      s->event_at(i) = d->done;
      // The edge lives inside the successor, which may now finish before we do; our
      // finalize() still walks it, so it keeps the successor alive until then.
      s->add_ref();
      std::uint8_t not_yet = 0;
      // acq_rel: publishes e->event to the successor's launch.
      if (s->released_at(i).compare_exchange_strong(not_yet, 1, std::memory_order_acq_rel,
                                                    std::memory_order_relaxed)) {
        if (s->m_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) on_ready(s, ex);
      } else {
        s->release();
      }
    }
  }
  try {
    main.enqueue_completion([this, t](std::exception_ptr error) { complete_deferred(t, std::move(error)); });
  } catch (...) {
    complete_deferred(t, std::current_exception());
  }
}

void RuntimeImpl::finish_data(TaskRecord* t) {
  TaskData& d = *t->m_data;
  for (auto& [b, dev] : d.pins) {
    std::lock_guard<std::mutex> lock(b->mutex);
    if (--b->instances[static_cast<std::size_t>(dev)].pins == 0 && dev != 0) {
      DeviceSlot& s = slot(dev);
      std::lock_guard<std::mutex> dl(s.data_mutex);
      s.memory_cv.notify_all();
    }
  }
  d.pins.clear();
}

// ---- TaskContext support ---------------------------------------------------------------------

void* RuntimeImpl::data_pointer(TaskRecord& t, const DataSlice& slice, std::size_t i) {
  TaskData* d = t.m_data.get();
  const bool declared =
      d != nullptr && std::any_of(d->accesses.begin(), d->accesses.end(), [&](const TaskAccess& a) {
        return a.block == slice.state() && a.offset <= slice.offset() &&
               slice.offset() + slice.bytes() <= a.offset + a.bytes;
      });
  if (!declared) {
    throw Error("task '" + t.display_name() + "' did not declare an access to " + slice.name() +
                "; add it to .in, .out or .inout of its SpawnOptions");
  }
  if (i >= d->devices.size()) {
    throw Error("task '" + t.display_name() + "' has " + std::to_string(d->devices.size()) +
                " device(s); ctx.data(..., " + std::to_string(i) + ") is out of range");
  }
  BlockState& b = *slice.state();
  std::lock_guard<std::mutex> lock(b.mutex);
  void* p = b.instances[static_cast<std::size_t>(d->devices[i])].ptr;
  if (p == nullptr) {
    throw Error("data block '" + b.name + "' is not on " + slot(d->devices[i]).device->name() + " for task '" +
                t.display_name() + "': a multi-device task writes its outputs on its first device only");
  }
  return static_cast<std::byte*>(p) + slice.offset();
}

void* RuntimeImpl::access_pointer(TaskRecord& t, std::size_t access) {
  TaskData* d = t.m_data.get();
  const std::size_t declared = d != nullptr ? d->accesses.size() : 0;
  if (access >= declared || d->devices.empty()) {
    throw Error("task '" + t.display_name() + "' declared " + std::to_string(declared) +
                " data access(es); access " + std::to_string(access) + " is out of range");
  }
  const TaskAccess& a = d->accesses[access];
  BlockState& b = *a.block;
  std::lock_guard<std::mutex> lock(b.mutex);
  void* p = b.instances[static_cast<std::size_t>(d->devices[0])].ptr;
  if (p == nullptr) {
    throw Error("data block '" + b.name + "' is not on " + slot(d->devices[0]).device->name() +
                " for task '" + t.display_name() + "'");
  }
  return static_cast<std::byte*>(p) + a.offset;
}

Stream& RuntimeImpl::task_stream(TaskRecord& t, std::size_t i) {
  TaskData* d = t.m_data.get();
  if (d == nullptr || i >= d->streams.size() || d->streams[i] == nullptr) {
    const std::string where = d != nullptr && i < d->devices.size() ? slot(d->devices[i]).device->name() : "cpu";
    throw Error("task '" + t.display_name() + "' runs on " + where +
                ", which has no streams; ctx.stream() is for tasks placed on a GPU");
  }
  return *d->streams[i];
}

// ---- the end of the runtime ------------------------------------------------------------------

void RuntimeImpl::write_back_and_release_blocks() noexcept {
  std::vector<std::shared_ptr<BlockState>> blocks;
  {
    std::lock_guard<std::mutex> lock(m_block_mutex);
    for (auto& w : m_blocks) {
      if (auto b = w.lock()) blocks.push_back(std::move(b));
    }
    m_blocks.clear();
  }
  for (auto& bp : blocks) {
    BlockState& b = *bp;
    std::lock_guard<std::mutex> lock(b.mutex);
    try {
      // The final contents go to the host copy, so host_data() is current afterwards.
      for (auto& g : b.segments) {
        if (g.dev_version[0] == g.version) continue;
        for (std::size_t e = 1; e < g.dev_version.size(); ++e) {
          if (g.dev_version[e] != g.version || b.instances[e].ptr == nullptr) continue;
          BackendStream& s = slot(static_cast<int>(e)).backend->copy_out_stream();
          if (g.ready[e]) s.wait(g.ready[e]);
          s.copy(static_cast<std::byte*>(b.host) + g.begin, static_cast<const std::byte*>(b.instances[e].ptr) + g.begin,
                 g.end - g.begin);
          s.synchronize();
          g.dev_version[0] = g.version;
          break;
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "parla: could not copy data block '%s' back to the host: %s\n", b.name.c_str(), e.what());
    }
    for (std::size_t d = 1; d < b.instances.size(); ++d) {
      if (b.instances[d].ptr == nullptr) continue;
      DeviceSlot& s = slot(static_cast<int>(d));
      {
        std::lock_guard<std::mutex> dl(s.data_mutex);
        std::erase(s.resident, &b);
      }
      s.backend->deallocate(b.instances[d].ptr, b.bytes);
      s.memory_free.fetch_add(static_cast<std::int64_t>(b.bytes), std::memory_order_acq_rel);
      b.instances[d].ptr = nullptr;
    }
    // The block may outlive the runtime (host_data() stays readable): its host memory goes
    // back to pageable now, while the backend that pinned it still exists.
    if (b.host_pinned_by != nullptr) {
      b.host_pinned_by->unpin_host(b.host, false);
      b.host_pinned_by = nullptr;
    }
    for (auto& g : b.segments) {
      g.last_writer.reset();
      g.readers.clear();
      for (std::size_t d = 1; d < g.dev_version.size(); ++d) {
        g.dev_version[d] = k_no_version;
        g.ready[d].reset();
      }
      g.ready[0].reset();
    }
    b.runtime = nullptr;
  }
}

}  // namespace parla::detail
