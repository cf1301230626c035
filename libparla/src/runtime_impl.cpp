#include "runtime_impl.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <unordered_set>

#include <parla/detail/cpu_relax.hpp>
#include <parla/error.hpp>
#include <parla/runtime.hpp>
#include <parla/task_context.hpp>

#include "block_state.hpp"
#include "cpu_device.hpp"
#include "sim/sim_gpu_device.hpp"
#if PARLA_HAVE_CUDA
#include "cuda/cuda_device.hpp"
#endif
#include "task_space_state.hpp"

namespace parla::detail {

namespace {

// "{rank}" in a trace path becomes the process's rank as the launcher set it (mpiexec, srun),
// so `PARLA_TRACE=trace.{rank}.json` gives every rank of a job its own file without this
// layer knowing MPI. Outside a launcher it is 0.
std::string expand_rank(std::string path) {
  const std::string key = "{rank}";
  std::size_t at = path.find(key);
  if (at == std::string::npos) return path;
  std::string rank = "0";
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
      rank = v;
      break;
    }
  }
  for (; at != std::string::npos; at = path.find(key, at + rank.size())) path.replace(at, key.size(), rank);
  return path;
}

/// A body running on this thread (nested bodies run inside waits form a stack).
struct ExecFrame {
  TaskRecord* task;
  ExecFrame* prev;
};

/// Which runtime (if any) the current thread works for.
struct ThreadState {
  ExecFrame* frames = nullptr;
  RuntimeImpl* runtime = nullptr;
  Worker* worker = nullptr;
  int helper_body_depth = 0;  // bodies run by this non-worker thread while it waits
  int wait_depth = 0;         // waits this thread is inside (nested through bodies it ran)
  // The wait_all()s (and shutdown waits) this thread is inside, all of one runtime.
  const RuntimeImpl* all_wait_runtime = nullptr;
  int all_waits = 0;
};
thread_local ThreadState t_thread;

// An idle worker yields this many times (about 50-150 us here) looking for work before it
// sleeps: a sleeping worker costs whoever releases the next task a wake-up system call (and
// often a preemption), which showed as 10 us gaps between simulated copies and as the
// scheduler's cost in tight task graphs (32 rounds: 0.49 us per independent task, 256: 0.27).
constexpr int k_spin_rounds = 256;

// A waiting thread that drives a WaitDriver (the MPI progress engine) spins this long after
// the last pass that moved something, then yields the core until `k_drive_yield`, then hands
// the work back to the driver's own thread and sleeps (as the engine itself polls: a message
// usually follows within microseconds, a large one is moved inside the calls).
constexpr auto k_drive_spin = std::chrono::microseconds(10);
constexpr auto k_drive_yield = std::chrono::milliseconds(20);

/// The driving of a wait on a thread that is not a worker: while a registered WaitDriver is
/// busy, the thread makes its passes instead of sleeping until another thread wakes it.
class DrivingWait {
 public:
  /// `drivers` null: this thread does not drive. `count`, when set, counts this thread while
  /// it drives (the idle workers' m_driving_workers). `defer_to`, when set: while it is
  /// above zero this thread does not drive (a non-worker leaves the polling to idle workers).
  explicit DrivingWait(std::shared_ptr<const RuntimeImpl::DriverList> drivers,
                       std::atomic<int>* count = nullptr,
                       const std::atomic<int>* defer_to = nullptr) noexcept
      : m_drivers(std::move(drivers)), m_count(count), m_defer_to(defer_to) {}
  ~DrivingWait() { stop(); }
  DrivingWait(const DrivingWait&) = delete;
  DrivingWait& operator=(const DrivingWait&) = delete;

  /// One pass over the busy drivers (or a spin or yield after quiet passes); false when none
  /// is busy or this wait has been quiet for `k_drive_yield`: the thread should sleep then.
  bool step() {
    if (!m_drivers || m_quit) return false;
    m_deferred = m_defer_to != nullptr && m_defer_to->load(std::memory_order_seq_cst) > 0;
    if (m_deferred) {
      stop();
      return false;
    }
    bool busy = false;
    bool moved = false;
    for (const auto& d : *m_drivers) {
      if (!d->busy()) continue;
      if (!m_begun) begin();
      busy = true;
      if (d->drive()) moved = true;
    }
    if (!busy) {
      m_moved = false;
      stop();
      return false;
    }
    m_moved = moved;
    const auto now = std::chrono::steady_clock::now();
    if (moved) {
      m_quiet_since = now;
      return true;
    }
    const auto quiet = now - m_quiet_since;
    if (quiet < k_drive_spin) {
      cpu_relax();
    } else if (quiet < k_drive_yield) {
      std::this_thread::yield();
    } else {
      // Quiet for long: sleep like any waiter (the drivers' threads take the work back).
      stop();
      m_quit = true;
      return false;
    }
    return true;
  }

  /// Whether the last step's pass moved something (it may have finished tasks).
  [[nodiscard]] bool moved() const noexcept { return m_moved; }
  /// Whether the last step did not drive because idle workers were driving.
  [[nodiscard]] bool deferred() const noexcept { return m_deferred; }

  /// Stops driving now (the destructor does it otherwise).
  void stop() noexcept {
    if (!m_begun) return;
    for (const auto& d : *m_drivers) d->end();
    // seq_cst: Dekker pair with a waiter that left the driving to the workers (wait_until).
    if (m_count != nullptr) m_count->fetch_sub(1, std::memory_order_seq_cst);
    m_begun = false;
  }

 private:
  void begin() noexcept {
    if (m_count != nullptr) m_count->fetch_add(1, std::memory_order_relaxed);
    for (const auto& d : *m_drivers) d->begin();
    m_begun = true;
    m_quiet_since = std::chrono::steady_clock::now();
  }

  std::shared_ptr<const RuntimeImpl::DriverList> m_drivers;
  std::atomic<int>* m_count;
  const std::atomic<int>* m_defer_to;
  bool m_begun = false;
  bool m_quit = false;
  bool m_moved = false;
  bool m_deferred = false;
  std::chrono::steady_clock::time_point m_quiet_since{};
};

// A waiting thread runs other tasks, and their bodies may wait in turn: each nesting level
// costs stack (C++ frames, and Python frames for Python bodies: the interpreter's recursion
// limit). Helping with *unrelated* tasks at every level lets the depth grow with the size of
// the graph ("leapfrogging") until the stack overflows. So past this depth a worker helps
// only with its own deque (its own subtree, LIFO: depth stays bounded by the task tree's
// depth, as for plain recursion), and a thread that is not a worker helps only in its
// outermost wait; otherwise it sleeps until what it waits for is done.
constexpr int k_max_help_depth = 8;
// Released run_inline tasks one thread runs back to back before handing the rest to workers.
constexpr int k_max_inline_run = 64;
// A waiting thread that may help only with its own subtree (see k_max_help_depth) looks this
// often for a runtime stuck behind a task that only an unrestricted helper could run.
constexpr auto k_starved = std::chrono::milliseconds(5);

}  // namespace

const std::string* current_task_label() noexcept {
  return t_thread.frames != nullptr ? &t_thread.frames->task->name() : nullptr;
}

namespace {
constexpr std::size_t k_max_report_lines = 64;

std::string env_string(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

long long env_int(const char* name, long long fallback, long long min_value) {
  const std::string v = env_string(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || x < min_value) {
    throw Error(std::string(name) + "='" + v + "' is not an integer >= " + std::to_string(min_value) +
                "; unset it or give a valid value");
  }
  return x;
}

double env_double(const char* name, double fallback) {
  const std::string v = env_string(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(x > 0)) {
    throw Error(std::string(name) + "='" + v + "' is not a positive number of seconds");
  }
  return x;
}

RuntimeConfig resolve_config(RuntimeConfig c) {
  if (c.num_workers <= 0) {
    const unsigned hw = std::thread::hardware_concurrency();
    c.num_workers = static_cast<int>(env_int("PARLA_NUM_WORKERS", hw == 0 ? 1 : hw, 1));
  }
  if (c.sim_gpus < 0) c.sim_gpus = static_cast<int>(env_int("PARLA_SIM_GPUS", 0, 0));
  if (c.sim_gpus > 63) {
    throw Error("sim_gpus=" + std::to_string(c.sim_gpus) + " is too many: at most 63 GPUs per runtime");
  }
  if (c.sim_gpu_memory == 0) {
    c.sim_gpu_memory = static_cast<std::size_t>(env_int("PARLA_SIM_GPU_MEMORY", 16LL << 30, 1));
  }
  if (c.trace_path.empty()) c.trace_path = env_string("PARLA_TRACE");
  c.trace_path = expand_rank(c.trace_path);
  if (c.deadlock_timeout <= 0) c.deadlock_timeout = env_double("PARLA_DEADLOCK_TIMEOUT", 60.0);
  if (env_string("PARLA_STATS") == "1") c.collect_stats = true;
  if (!c.infer_dependencies) {
    const std::string v = env_string("PARLA_INFER_DEPS");
    if (!v.empty() && v != "0" && v != "1") {
      throw Error("PARLA_INFER_DEPS='" + v + "' must be 0 (off) or 1 (on); unset it for the default (on)");
    }
    c.infer_dependencies = v != "0";
  }
  if (c.sim_copy_gbps < 0) {
    const std::string v = env_string("PARLA_SIM_COPY_GBPS");
    c.sim_copy_gbps = 0.0;
    if (!v.empty()) {
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(x >= 0)) {
        throw Error("PARLA_SIM_COPY_GBPS='" + v + "' is not a bandwidth in GB/s >= 0 (0 = unlimited)");
      }
      c.sim_copy_gbps = x;
    }
  }
  if (c.cuda_gpus < 0) c.cuda_gpus = static_cast<int>(env_int("PARLA_CUDA_GPUS", -1, -1));
  return c;
}

template <class F>
void for_each_bit(std::uint64_t mask, F&& f) {
  while (mask != 0) {
    const int d = __builtin_ctzll(mask);
    f(d);
    mask &= mask - 1;
  }
}

bool try_take(std::atomic<std::int64_t>& pool, std::int64_t amount) noexcept {
  if (amount == 0) return true;
  std::int64_t v = pool.load(std::memory_order_relaxed);
  do {
    if (v < amount) return false;
    // acq_rel: reservations and releases of one device form one modification order; the
    // park protocol relies on the park mutex for the rest.
  } while (!pool.compare_exchange_weak(v, v - amount, std::memory_order_acq_rel,
                                       std::memory_order_relaxed));
  return true;
}


/// Bytes the task reserved on each device of its mask (0 for almost every task).
std::size_t memory_of(const TaskRecord& t) noexcept {
  const TaskCold* c = t.cold_if_any();
  return c != nullptr ? c->memory : 0;
}

std::string format_vcus(std::int64_t units) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(units) / k_vcus_unit);
  return buf;
}

}  // namespace

void set_error(TaskRecord* t, std::exception_ptr e) {
  // acq_rel: first writer wins; the error itself is published by the finish-parties
  // decrement (acq_rel) that follows on the writing thread.
  if ((t->m_flags.fetch_or(TaskRecord::k_has_error, std::memory_order_acq_rel) &
       TaskRecord::k_has_error) == 0) {
    t->cold().error = std::move(e);
  }
}

// ---- construction ----------------------------------------------------------------------------

RuntimeImpl::RuntimeImpl(Runtime& owner, RuntimeConfig config)
    : m_owner(&owner), m_config(resolve_config(std::move(config))) {
  static std::atomic<std::uint64_t> next_id{1};
  m_id = next_id.fetch_add(1, std::memory_order_relaxed);
  m_tracing = !m_config.trace_path.empty();
  m_timed = m_tracing || m_config.collect_stats;
  m_start = std::chrono::steady_clock::now();
  m_infer = m_config.infer_dependencies.value_or(true);
  m_clock.enabled = m_tracing;
  m_clock.origin = m_start;

  auto add_slot = [&](auto dev, int first_worker) {
    auto slot = std::make_unique<DeviceSlot>();
    slot->backend = dev.get();
    slot->first_worker = first_worker;
    slot->num_workers = dev->num_workers();
    slot->memory_capacity = dev->memory_capacity();
    slot->memory_free.store(static_cast<std::int64_t>(dev->memory_capacity()), std::memory_order_relaxed);
    slot->device = std::move(dev);
    m_device_list.push_back(slot->device.get());
    m_devices.push_back(std::move(slot));
  };
  add_slot(std::make_unique<CpuDevice>(m_config.num_workers, host_memory_bytes()), 0);
  for (int g = 0; g < m_config.sim_gpus; ++g) {
    add_slot(std::make_unique<SimGpuDevice>(g, m_config.sim_gpu_memory, m_config.sim_copy_gbps, m_clock),
             m_config.num_workers + g);
  }
#if PARLA_HAVE_CUDA
  if (m_config.sim_gpus == 0 && m_config.cuda_gpus != 0) {
    // Zero visible devices (no driver, CUDA_VISIBLE_DEVICES="") is a normal configuration.
    std::string why;
    int n = cuda_device_count(&why);
    if (m_config.cuda_gpus > 0) n = std::min(n, m_config.cuda_gpus);
    if (n > 63) n = 63;
    m_cuda_note = n == 0 ? why : std::string();
    for (int g = 0; g < n; ++g) add_slot(std::make_unique<CudaDevice>(g, g), m_config.num_workers + g);
  }
#endif
  m_default_placement.options.push_back(ResolvedOption{1, 0, 0, 0});
  m_spare_core = m_devices[0]->num_workers < static_cast<int>(m_core_set.cores().size());

  for (const auto& slot : m_devices) {
    for (int i = 0; i < slot->num_workers; ++i) {
      auto w = std::make_unique<Worker>();
      w->index = static_cast<int>(m_workers.size());
      w->device = slot->device->id();
      w->rng = 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(w->index + 1);
      m_workers.push_back(std::move(w));
    }
  }
  for (auto& w : m_workers) {
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { worker_main(*wp); });
  }
}

RuntimeImpl::~RuntimeImpl() {
  shutdown();
  for (ExternalSpawns* e = m_external_spawns.load(std::memory_order_acquire); e != nullptr;) {
    delete std::exchange(e, e->next);  // NOLINT(cppcoreguidelines-owning-memory)
  }
  // Spaces that outlive the runtime must not call back into it.
  std::lock_guard<std::mutex> lock(m_space_mutex);
  for (auto& weak : m_spaces) {
    if (auto space = weak.lock()) space->detach_runtime();
  }
}

void RuntimeImpl::register_space(const std::shared_ptr<TaskSpaceState>& space) {
  std::lock_guard<std::mutex> lock(m_space_mutex);
  // Drop entries of dead spaces now and then so the list stays proportional to live ones.
  if (m_spaces.size() >= 64 && (m_spaces.size() & (m_spaces.size() - 1)) == 0) {
    std::erase_if(m_spaces, [](const auto& w) { return w.expired(); });
  }
  m_spaces.push_back(space);
}

void RuntimeImpl::on_record_created(TaskRecord& record) noexcept {
  record.m_runtime = this;
  if (m_tracing) record.cold().trace_id = m_next_trace_id.fetch_add(1, std::memory_order_relaxed);
}

// ---- spawn -----------------------------------------------------------------------------------

namespace {
thread_local std::vector<Ref<TaskRecord>> t_pred_buffer;

/// submit()'s predecessor list: this thread's buffer while one spawn uses it.
struct PredBuffer {
  std::vector<Ref<TaskRecord>> v;
  PredBuffer() noexcept : v(std::move(t_pred_buffer)) { v.clear(); }
  ~PredBuffer() { give_back(); }
  PredBuffer(const PredBuffer&) = delete;
  PredBuffer& operator=(const PredBuffer&) = delete;
  void give_back() noexcept {
    v.clear();
    if (v.capacity() != 0 && v.capacity() <= 256) t_pred_buffer = std::move(v);
    v = {};
  }
};
}  // namespace

Ref<TaskRecord> RuntimeImpl::submit(SpawnOptions&& o, TaskFunction&& body) {
  // 1. Everything that can fail is checked before anything changes.
  Ref<TaskRecord> record;
  if (o.key.valid()) {
    if (&o.key.space()->runtime_ref() != this) {
      throw Error("key " + o.key.name() + " belongs to a TaskSpace of another runtime");
    }
    record = o.key.space()->get_or_create(o.key.key());
  }
  static const std::string k_unnamed = "task";
  const std::string& display = record ? record->name() : (o.name.empty() ? k_unnamed : o.name);  // no copy
  std::unique_ptr<ResolvedPlacement> own_placement;
  const ResolvedPlacement* placement = resolve_placement(o, display, own_placement);
  std::unique_ptr<TaskData> data;
  if (!o.in.empty() || !o.out.empty() || !o.inout.empty()) {
    data = make_task_data(o, display, placement, own_placement);
  }

  // The predecessor list reuses this thread's buffer (a spawn allocates nothing for it); a
  // nested spawn (an inline task released below) finds the buffer taken and makes its own.
  PredBuffer pred_buffer;
  std::vector<Ref<TaskRecord>>& preds = pred_buffer.v;
  preds.reserve(o.dependencies.size());
  for (Dep& d : o.dependencies) collect_predecessors(d, preds);
  for (const auto& p : preds) {
    if (p.get() == record.get()) {
      throw Error("task '" + display + "' depends on itself; remove it from its dependencies");
    }
    if (p->m_runtime != this) {
      throw Error("task '" + display + "' depends on '" + p->display_name() +
                  "', which belongs to another runtime");
    }
  }

  // 2. Claim the key (or make an anonymous record).
  if (record) {
    // acq_rel: exactly one spawn wins a key.
    if ((record->m_flags.fetch_or(TaskRecord::k_spawned | TaskRecord::k_outstanding,
                                  std::memory_order_acq_rel) &
         TaskRecord::k_spawned) != 0) {
      throw Error("task " + record->name() +
                  " was spawned twice; each key of a TaskSpace can be spawned once (use a new key, "
                  "or another TaskSpace for the next iteration)");
    }
  }
  // A new anonymous record is this thread's alone until its first edge is pushed: its counts
  // are plain stores, not atomic read-modify-writes.
  const bool fresh = !record;
  if (fresh) {
    record = Ref<TaskRecord>::adopt(new TaskRecord());  // NOLINT: owned by the intrusive count
    on_record_created(*record);
    if (!o.name.empty()) record->cold().name = std::move(o.name);
    record->m_flags.store(TaskRecord::k_spawned | TaskRecord::k_outstanding, std::memory_order_relaxed);
  }
  TaskRecord* t = record.get();
  t->m_body = std::move(body);
  t->m_body_names = t->m_body.describes();
  t->m_placement = placement;
  if (own_placement) t->cold().own_placement = std::move(own_placement);
  t->m_urgent = o.priority > 0;
  t->m_run_inline = o.run_inline && o.vcus == 0.0 && o.memory == 0;
  // The execution reference, dropped by finalize(); before infer_from_accesses(), which
  // shares the record with the blocks it accesses.
  if (fresh) {
    t->m_refs.store(2, std::memory_order_relaxed);
  } else {
    t->add_ref();
  }
  if (data) {
    t->m_data = std::move(data);
    if (m_infer && o.infer_dependencies) infer_from_accesses(t, preds);
  }

  Worker* const me = this_worker();
  count_spawned(me);
  wire_and_release(t, fresh, static_cast<std::uint32_t>(preds.size()),
                   [&](std::uint32_t i) { return preds[i].get(); }, me);
  return record;
}

Ref<TaskRecord> RuntimeImpl::submit_after(std::span<const Task> after, TaskFunction&& body) {
  // The lean spawn: an anonymous cpu task with default options, ordered after `after`. No
  // options, no predecessor list: the edges point at the handles' records (the caller's
  // handles keep them alive while the edges are pushed).
  for (const Task& p : after) {
    if (!p.valid()) throw Error("spawn_after: a dependency is an empty Task handle; pass a spawned task");
    if (p.record()->m_runtime != this) {
      throw Error("spawn_after: a dependency, '" + p.record()->display_name() +
                  "', belongs to another runtime");
    }
  }
  Ref<TaskRecord> record = Ref<TaskRecord>::adopt(new TaskRecord());  // NOLINT: owned by the count
  TaskRecord* t = record.get();
  on_record_created(*t);
  t->m_flags.store(TaskRecord::k_spawned | TaskRecord::k_outstanding, std::memory_order_relaxed);
  t->m_body = std::move(body);
  t->m_body_names = t->m_body.describes();
  t->m_placement = &m_default_placement;
  t->m_refs.store(2, std::memory_order_relaxed);  // the handle and the execution reference
  Worker* const me = this_worker();
  count_spawned(me);
  wire_and_release(t, /*fresh=*/true, static_cast<std::uint32_t>(after.size()),
                   [&](std::uint32_t i) { return after[i].record(); }, me);
  return record;
}

void RuntimeImpl::count_spawned(Worker* me) noexcept {
  // relaxed: the task cannot finish (and be counted finished) before its spawn guard is
  // released, which happens after this increment in program order.
  if (me != nullptr) {
    me->spawned.store(me->spawned.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    // relaxed load+store: only this thread writes its counter.
    std::atomic<std::int64_t>& n = external_spawns().spawned;
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
}

namespace {
struct ExternalSpawnCache {
  std::uint64_t runtime_id = 0;
  void* counter = nullptr;
};
thread_local ExternalSpawnCache t_external_spawns;
}  // namespace

RuntimeImpl::ExternalSpawns& RuntimeImpl::external_spawns() {
  if (t_external_spawns.runtime_id == m_id) return *static_cast<ExternalSpawns*>(t_external_spawns.counter);
  // First spawn of this thread into this runtime (or the thread switched runtimes).
  const std::thread::id me = std::this_thread::get_id();
  ExternalSpawns* found = nullptr;
  {
    std::lock_guard<std::mutex> lock(m_external_mutex);
    for (ExternalSpawns* e = m_external_spawns.load(std::memory_order_relaxed); e != nullptr; e = e->next) {
      if (e->thread == me) {
        found = e;
        break;
      }
    }
    if (found == nullptr) {
      found = new ExternalSpawns();  // NOLINT(cppcoreguidelines-owning-memory): freed by ~RuntimeImpl
      found->thread = me;
      found->next = m_external_spawns.load(std::memory_order_relaxed);
      // release: outstanding() walks the list from an acquire load of the head.
      m_external_spawns.store(found, std::memory_order_release);
    }
  }
  t_external_spawns = {m_id, found};
  return *found;
}

template <class PredAt>
void RuntimeImpl::wire_and_release(TaskRecord* t, bool fresh, std::uint32_t n, PredAt&& pred_at,
                                   Worker* me) {
  // The spawn guard (m_pending starts at 1) keeps the task from becoming ready while edges
  // are added.
  Edge* edges = t->prepare_edges(n);
  // Every edge is counted before the first is pushed (a predecessor may finish and count down
  // as soon as its edge is in its list); those found finished are taken off with the guard.
  // relaxed: the guard keeps m_pending >= 1; the decrements are acq_rel. Only the pushes
  // below hand the count to other threads (the blocks of infer_from_accesses() share the
  // record, but only push edges onto its successor list).
  if (fresh) {
    t->m_pending.store(static_cast<std::int32_t>(1 + n), std::memory_order_relaxed);
  } else if (n != 0) {
    t->m_pending.fetch_add(static_cast<std::int32_t>(n), std::memory_order_relaxed);
  }
  std::int32_t finished_preds = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    Edge* e = &edges[i];
    e->succ = t;
    // Not a counted reference (see TaskRecord::pred_at): the caller's handles or references
    // keep the predecessor alive until the edge is pushed, and the edge until it is walked.
    TaskRecord* pred = pred_at(i);
    t->pred_at(i) = pred;
    if (!push_successor(pred, e)) {
      // The predecessor already finished (its list is closed): the edge is never walked.
      e->next.store(walked_edge(), std::memory_order_relaxed);
      ++finished_preds;
      if (pred->m_state.load(std::memory_order_acquire) != TaskState::completed) {
        Failure* expected = nullptr;
        t->m_cancel_cause.compare_exchange_strong(expected, pred->failure().get(),
                                                  std::memory_order_acq_rel,
                                                  std::memory_order_relaxed);
      }
    }
    if (m_tracing) {
      std::lock_guard<std::mutex> lock(m_trace_mutex);
      m_trace_flows.emplace_back(pred->cold().trace_id, t->cold().trace_id);
    }
  }
  t->m_num_edges = n;
  // release: publishes the edges to the deadlock report, which only reads the edges of tasks
  // it sees pending (acquire).
  t->m_state.store(TaskState::pending, std::memory_order_release);

  // Release the guard and the counts of the predecessors that had finished.
  if (t->m_pending.fetch_sub(1 + finished_preds, std::memory_order_acq_rel) == 1 + finished_preds) {
    ExecContext ex;
    ex.worker = me;
    std::vector<TaskRecord*> inline_ready;
    if (t->m_run_inline) ex.inline_ready = &inline_ready;
    on_ready(t, ex);
    drain_cancelled(ex);
    run_inline_ready(ex);
  }
}

bool RuntimeImpl::push_successor(TaskRecord* pred, Edge* edge) noexcept {
  // acquire: a closed list was closed by finalize() after publishing the final state.
  Edge* head = pred->m_successors.load(std::memory_order_acquire);
  do {
    if (head == closed_list()) return false;
    edge->next.store(head, std::memory_order_relaxed);
    // release: the edge's fields are visible to the thread that closes and walks the list.
  } while (!pred->m_successors.compare_exchange_weak(head, edge, std::memory_order_release,
                                                     std::memory_order_acquire));
  return true;
}

void RuntimeImpl::collect_predecessors(Dep& dep, std::vector<Ref<TaskRecord>>& out) const {
  auto& v = dep.value();
  if (Task* task = std::get_if<Task>(&v)) {
    if (!task->valid()) throw Error("a dependency is an empty Task handle; pass a spawned task");
    // The options are ours (spawn takes them by value): the handle's reference becomes the
    // edge's.
    out.push_back(task->take_record());
  } else if (const TaskRef* ref = std::get_if<TaskRef>(&v)) {
    if (!ref->valid()) throw Error("a dependency is an empty TaskRef; index a TaskSpace (T[i])");
    out.push_back(ref->space()->get_or_create(ref->key()));
  } else if (const TaskSlice* slice = std::get_if<TaskSlice>(&v)) {
    for (const TaskKey& k : slice->keys()) out.push_back(slice->space()->get_or_create(k));
  }
}

const ResolvedPlacement* RuntimeImpl::resolve_placement(
    const SpawnOptions& o, const std::string& name, std::unique_ptr<ResolvedPlacement>& storage) const {
  const Resources defaults{o.vcus, o.memory};
  if (!(o.vcus >= 0.0) || o.vcus > 1.0 + 1e-9) {
    throw Error("task '" + name + "' requests " + std::to_string(o.vcus) +
                " vcus; vcus is a fraction of one device, between 0 and 1");
  }
  if (o.placement.is_default() && defaults.empty()) return &m_default_placement;

  std::vector<PlacementOption> options;
  if (o.placement.is_default()) {
    options.push_back(PlacementOption{{DeviceSpec{DeviceKind::cpu, 0}}, std::nullopt});
  } else {
    options = o.placement.options();
  }
  const int gpus = num_gpus();
  auto gpu_list = [&] {
    std::string s;
    for (int g = 0; g < gpus; ++g) s += (g != 0 ? ", gpu(" : "gpu(") + std::to_string(g) + ")";
    return s;
  };
  auto candidates = [&](const DeviceSpec& spec) {
    std::vector<int> ids;
    if (spec.kind == DeviceKind::cpu) {
      if (spec.index > 0) {
        throw Error("placement cpu(" + std::to_string(spec.index) + ") for task '" + name +
                    "' requested but this runtime has one cpu device, cpu(0) (its workers are "
                    "set by PARLA_NUM_WORKERS)");
      }
      ids.push_back(0);
      return ids;
    }
    if (gpus == 0) {
      throw Error("placement " + std::string(spec.index < 0 ? "gpu" : "gpu(" + std::to_string(spec.index) + ")") +
                  " for task '" + name +
                  "' requested but this runtime has no GPUs (devices: cpu" +
                  (m_cuda_note.empty() ? std::string() : "; CUDA: " + m_cuda_note) +
                  "); set PARLA_SIM_GPUS=N or RuntimeConfig::sim_gpus to simulate N GPUs, or "
                  "CUDA_VISIBLE_DEVICES");
    }
    if (spec.index >= gpus || spec.index < -1) {
      throw Error("placement gpu(" + std::to_string(spec.index) + ") for task '" + name +
                  "' requested but this runtime has " + std::to_string(gpus) + " GPU" +
                  (gpus == 1 ? "" : "s") + ": " + gpu_list() +
                  " (set PARLA_SIM_GPUS or RuntimeConfig::sim_gpus, or CUDA_VISIBLE_DEVICES)");
    }
    if (spec.index >= 0) {
      ids.push_back(1 + spec.index);
    } else {
      for (int g = 0; g < gpus; ++g) ids.push_back(1 + g);
    }
    return ids;
  };

  auto out = std::make_unique<ResolvedPlacement>();
  std::vector<std::string> rejected;
  for (const PlacementOption& opt : options) {
    const Resources r = opt.resources.value_or(defaults);
    if (!(r.vcus >= 0.0) || r.vcus > 1.0 + 1e-9) {
      throw Error("task '" + name + "' requests " + std::to_string(r.vcus) +
                  " vcus; vcus is a fraction of one device, between 0 and 1");
    }
    std::vector<std::vector<int>> combos{{}};
    for (const DeviceSpec& spec : opt.devices) {
      const std::vector<int> ids = candidates(spec);
      std::vector<std::vector<int>> next;
      for (const auto& c : combos) {
        for (int id : ids) {
          if (std::find(c.begin(), c.end(), id) != c.end()) continue;
          auto e = c;
          e.push_back(id);
          next.push_back(std::move(e));
        }
      }
      combos = std::move(next);
    }
    if (combos.empty()) {
      rejected.push_back("a multi-device option needs " + std::to_string(opt.devices.size()) +
                         " distinct devices that this runtime does not have");
      continue;
    }
    const auto units = static_cast<std::int64_t>(std::llround(r.vcus * k_vcus_unit));
    for (const auto& c : combos) {
      if (c.empty()) continue;
      ResolvedOption ro;
      ro.primary = c.front();
      ro.vcus_units = units;
      ro.memory = r.memory;
      bool fits = true;
      for (int id : c) {
        ro.mask |= std::uint64_t{1} << id;
        const DeviceSlot& s = *m_devices[static_cast<std::size_t>(id)];
        if (r.memory > s.memory_capacity) {
          rejected.push_back("it requests " + std::to_string(r.memory) + " bytes on " +
                             s.device->name() + ", which has " + std::to_string(s.memory_capacity));
          fits = false;
        }
      }
      const bool duplicate = std::any_of(out->options.begin(), out->options.end(), [&](const auto& x) {
        return x.mask == ro.mask && x.primary == ro.primary;
      });
      if (fits && !duplicate) out->options.push_back(ro);
    }
  }
  if (out->options.empty()) {
    std::string why;
    for (const auto& r : rejected) why += (why.empty() ? "" : "; ") + r;
    throw Error("task '" + name + "' (placement " + o.placement.to_string() +
                ") can never run: " + why + ". Lower the request or choose larger devices.");
  }
  storage = std::move(out);
  return storage.get();
}

// ---- readiness, mapping, resources ---------------------------------------------------------

void RuntimeImpl::on_ready(TaskRecord* t, ExecContext& ex) {
  // acquire: a failing predecessor stored the cause before its acq_rel decrement.
  if (t->m_cancel_cause.load(std::memory_order_acquire) != nullptr) {
    ex.cancelled.push_back(t);
    return;
  }
  // relaxed: informational (reports); the queue push publishes the task.
  t->m_state.store(TaskState::ready, std::memory_order_relaxed);
  if (t->m_placement == &m_default_placement) {
    t->m_device_mask = 1;
    t->m_primary_device = 0;
    enqueue(t, ex);
    return;
  }
  const int short_device = try_map(t);
  if (short_device < 0) {
    enqueue(t, ex);
  } else {
    park(t, short_device, ex);
  }
}

int RuntimeImpl::try_map(TaskRecord* t) {
  const auto& opts = t->m_placement->options;
  // Candidates in order of load (sum over their devices), ties in placement order.
  std::size_t order_buf[8];
  std::vector<std::size_t> order_vec;
  std::size_t* order = order_buf;
  if (opts.size() > 8) {
    order_vec.resize(opts.size());
    order = order_vec.data();
  }
  std::int64_t loads_buf[8];
  std::vector<std::int64_t> loads_vec;
  std::int64_t* loads = loads_buf;
  if (opts.size() > 8) {
    loads_vec.resize(opts.size());
    loads = loads_vec.data();
  }
  for (std::size_t i = 0; i < opts.size(); ++i) {
    order[i] = i;
    loads[i] = 0;
    if (opts.size() > 1) {
      // relaxed: a heuristic; stale values only make the choice less good.
      for_each_bit(opts[i].mask, [&](int d) { loads[i] += m_devices[static_cast<std::size_t>(d)]->load.load(std::memory_order_relaxed); });
    }
  }
  if (t->m_data && opts.size() > 1) {
    // Locality first (most valid input bytes on the option's main device), then load.
    std::vector<std::size_t> local(opts.size());
    for (std::size_t i = 0; i < opts.size(); ++i) local[i] = valid_input_bytes(t, opts[i].primary);
    std::stable_sort(order, order + opts.size(), [&](std::size_t a, std::size_t b) {
      return local[a] != local[b] ? local[a] > local[b] : loads[a] < loads[b];
    });
  } else {
    std::stable_sort(order, order + opts.size(), [&](std::size_t a, std::size_t b) { return loads[a] < loads[b]; });
  }

  int first_short = -1;
  for (std::size_t k = 0; k < opts.size(); ++k) {
    const ResolvedOption& o = opts[order[k]];
    int short_device = -1;
    if (!o.accounted() || reserve(o, short_device)) {
      t->m_device_mask = o.mask;
      t->m_primary_device = o.primary;
      t->m_vcus_units = o.vcus_units;
      if (o.memory != 0) t->cold().memory = o.memory;
      for_each_bit(o.mask, [&](int d) {
        m_devices[static_cast<std::size_t>(d)]->load.fetch_add(1, std::memory_order_relaxed);
      });
      t->m_flags.fetch_or(TaskRecord::k_counted_load, std::memory_order_relaxed);
      return -1;
    }
    if (first_short < 0) first_short = short_device;
  }
  return first_short;
}

bool RuntimeImpl::reserve(const ResolvedOption& o, int& short_device) {
  std::uint64_t taken = 0;
  bool ok = true;
  for_each_bit(o.mask, [&](int d) {
    if (!ok) return;
    DeviceSlot& s = *m_devices[static_cast<std::size_t>(d)];
    if (!try_take(s.vcus_free, o.vcus_units)) {
      ok = false;
    } else if (!try_take(s.memory_free, static_cast<std::int64_t>(o.memory))) {
      s.vcus_free.fetch_add(o.vcus_units, std::memory_order_acq_rel);
      ok = false;
    }
    if (ok) {
      taken |= std::uint64_t{1} << d;
      if (o.memory != 0) note_memory_use(s);
    } else {
      short_device = d;
    }
  });
  if (!ok) {
    for_each_bit(taken, [&](int d) {
      DeviceSlot& s = *m_devices[static_cast<std::size_t>(d)];
      s.vcus_free.fetch_add(o.vcus_units, std::memory_order_acq_rel);
      s.memory_free.fetch_add(static_cast<std::int64_t>(o.memory), std::memory_order_acq_rel);
    });
  }
  return ok;
}

void RuntimeImpl::park(TaskRecord* t, int device, ExecContext& ex) {
  // Parking re-checks under the device's park mutex; a release gives resources back before
  // taking that mutex, so either the re-check sees them or the releaser sees the task.
  for (;;) {
    DeviceSlot& s = *m_devices[static_cast<std::size_t>(device)];
    std::unique_lock<std::mutex> lock(s.park_mutex);
    const int r = try_map(t);
    if (r < 0) {
      lock.unlock();
      enqueue(t, ex);
      return;
    }
    if (r == device) {
      s.parked.push_back(t);
      return;
    }
    device = r;
  }
}

void RuntimeImpl::release_resources(TaskRecord* t, ExecContext& ex) {
  const std::uint64_t mask = t->m_device_mask;
  for_each_bit(mask, [&](int d) {
    DeviceSlot& s = *m_devices[static_cast<std::size_t>(d)];
    s.vcus_free.fetch_add(t->m_vcus_units, std::memory_order_acq_rel);
    s.memory_free.fetch_add(static_cast<std::int64_t>(memory_of(*t)), std::memory_order_acq_rel);
  });
  t->m_vcus_units = 0;
  if (TaskCold* c = t->cold_if_any()) c->memory = 0;
  for_each_bit(mask, [&](int d) { retry_parked(d, ex); });
}

void RuntimeImpl::retry_parked(int device, ExecContext& ex) {
  DeviceSlot& s = *m_devices[static_cast<std::size_t>(device)];
  std::deque<TaskRecord*> waiting;
  {
    std::lock_guard<std::mutex> lock(s.park_mutex);
    waiting.swap(s.parked);
  }
  for (TaskRecord* p : waiting) {
    const int r = try_map(p);
    if (r < 0) {
      enqueue(p, ex);
    } else {
      park(p, r, ex);
    }
  }
}

void RuntimeImpl::note_memory_use(DeviceSlot& s) noexcept {
  // relaxed: a statistic; the CAS loop keeps the maximum exact.
  const auto used = static_cast<std::uint64_t>(static_cast<std::int64_t>(s.memory_capacity) -
                                               s.memory_free.load(std::memory_order_relaxed));
  std::uint64_t peak = s.memory_peak.load(std::memory_order_relaxed);
  while (used > peak && !s.memory_peak.compare_exchange_weak(peak, used, std::memory_order_relaxed)) {
  }
}

void RuntimeImpl::enqueue(TaskRecord* t, ExecContext& ex) {
  const int d = t->m_primary_device;
  if (ex.inline_ready != nullptr && t->m_run_inline && t->m_device_mask == 1) {
    ex.inline_ready->push_back(t);  // run by this thread once its current step is done
    return;
  }
  DeviceSlot& s = *m_devices[static_cast<std::size_t>(d)];
  if (t->m_urgent) {
    s.urgent.push(t);
    s.idle.notify_one();
    return;
  }
  Worker* w = ex.worker;
  const int here = w != nullptr ? w->device : ex.helper_device;
  if (here == d && ex.allow_bypass && ex.bypass == nullptr) {
    ex.bypass = t;  // run next on this thread: no queue round trip, no wake-up
    return;
  }
  if (w != nullptr && w->device == d) {
    w->deque.push(t);
    if (s.num_workers > 1) s.idle.notify_one();
    wake_helper(d);
    return;
  }
  s.inbox.push(t);
  s.idle.notify_one();
}

void RuntimeImpl::wake_helper(int device) {
  // relaxed: see m_sleeping_helpers. Helpers steal from the cpu workers' deques only.
  if (device == 0 && m_sleeping_helpers.load(std::memory_order_relaxed) > 0) m_helper_idle.notify_one();
}

// ---- execution and completion ----------------------------------------------------------------

TaskRecord* RuntimeImpl::execute(TaskRecord* t, ExecContext& ex) {
  // Plain cpu tasks (mask 1, no data) skip all of the device work: the hot path.
  const bool device_task = t->m_device_mask != 1 || t->m_data != nullptr;
  bool run_body = true;
  if (device_task) {
    try {
      if (!launch_data(t, ex)) return std::exchange(ex.bypass, nullptr);  // waits for copies
    } catch (...) {
      set_error(t, std::current_exception());
      run_body = false;
    }
  }
  Worker* w = ex.worker;
  // relaxed: informational (reports, Task::state()).
  t->m_state.store(TaskState::running, std::memory_order_relaxed);
  bool was_active = false;
  if (w != nullptr) {
    was_active = w->active.load(std::memory_order_relaxed);
    w->active.store(true, std::memory_order_relaxed);
  } else {
    ++t_thread.helper_body_depth;
    m_helpers_active.fetch_add(1, std::memory_order_relaxed);
  }
  const std::int64_t start = m_timed ? now_ns() : 0;
  ExecFrame frame{t, t_thread.frames};
  t_thread.frames = &frame;
  // A cpu task with vcus is a library context: its cores, pinned for the body (CoreSet).
  std::vector<int> cores;
  if (t->m_vcus_units > 0 && t->m_primary_device == 0 && run_body) {
    cores = m_core_set.acquire(m_core_set.count_for(t->m_vcus_units));
  }
  {
    ScopedAffinity pin(cores);
    TaskContext ctx(*m_owner, *t, w != nullptr ? w->index : -1, static_cast<int>(cores.size()));
    try {
      if (run_body) {
        if (t->m_body.returns_value()) {
          t->m_body(ctx, t->cold().result);
        } else {
          ResultBox unused;  // the body returns void: the task's box (and cold part) stay unmade
          t->m_body(ctx, unused);
        }
      }
    } catch (...) {
      set_error(t, std::current_exception());
    }
  }
  if (!cores.empty()) m_core_set.release(cores);
  t_thread.frames = frame.prev;
  // Captures die now, on the worker, not when the last handle goes; a body that names its
  // task (TaskFunction::describes) is kept until the record dies, so the name stays readable.
  if (!t->m_body_names) t->m_body.reset();
  if (device_task) after_device_body(t, ex);
  if (m_timed) {
    const std::int64_t end = now_ns();
    if (w != nullptr) {
      w->busy_ns.store(w->busy_ns.load(std::memory_order_relaxed) + (end - start), std::memory_order_relaxed);
    }
    if (m_tracing) {
      TraceEvent ev{t->cold().trace_id, t->display_name(), t->m_primary_device, start, end};
      if (w != nullptr) {
        w->trace.push_back(std::move(ev));
      } else {
        std::lock_guard<std::mutex> lock(m_trace_mutex);
        m_helper_trace.push_back(std::move(ev));
      }
    }
  }
  if (w != nullptr) {
    // relaxed load+store: only this worker writes the counter.
    w->tasks_run.store(w->tasks_run.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    w->active.store(was_active, std::memory_order_relaxed);
  } else {
    --t_thread.helper_body_depth;
    m_helpers_active.fetch_sub(1, std::memory_order_relaxed);
    m_helper_progress.fetch_add(1, std::memory_order_relaxed);
    m_helper_bodies.fetch_add(1, std::memory_order_relaxed);
  }
  if ((t->m_flags.load(std::memory_order_relaxed) & TaskRecord::k_deferred) != 0) {
    // acq_rel: whichever of body and token finishes last sees the other's writes.
    if (t->m_finish_parties.fetch_sub(1, std::memory_order_acq_rel) != 1) {
      return std::exchange(ex.bypass, nullptr);
    }
    m_deferred_outstanding.fetch_sub(1, std::memory_order_relaxed);
  }
  finish(t, ex);
  drain_cancelled(ex);
  return std::exchange(ex.bypass, nullptr);
}

void RuntimeImpl::run_chain(TaskRecord* t, Worker* w) {
  ExecContext ex;
  ex.worker = w;
  ex.helper_device = w == nullptr ? 0 : -1;
  ex.allow_bypass = true;
  // On a worker, the run_inline tasks a task releases (the send of what it computed) run
  // right after it, before the chain's next task: queued, they would wait for that task's
  // body, and a peer rank waits for the message meanwhile. (A helping thread queues them for
  // the workers, as before.)
  ex.inline_ready = w != nullptr ? &w->inline_ready : nullptr;
  while (t != nullptr) {
    t = execute(t, ex);
    if (ex.inline_ready != nullptr && !ex.inline_ready->empty()) {
      run_inline_ready(ex);
      // What they released may be this thread's next task (set only where t had none).
      if (t == nullptr) t = std::exchange(ex.bypass, nullptr);
    }
  }
}

void RuntimeImpl::finish(TaskRecord* t, ExecContext& ex) {
  if (t->m_data) finish_data(t);
  if (t->m_vcus_units != 0 || memory_of(*t) != 0) release_resources(t, ex);
  if ((t->m_flags.load(std::memory_order_relaxed) & TaskRecord::k_counted_load) != 0) {
    for_each_bit(t->m_device_mask, [&](int d) {
      m_devices[static_cast<std::size_t>(d)]->load.fetch_sub(1, std::memory_order_relaxed);
    });
  }
  if ((t->m_flags.load(std::memory_order_acquire) & TaskRecord::k_has_error) != 0) {
    TaskCold& c = t->cold();
    c.failure = record_failure(t->display_name(), c.error);
    finalize(t, TaskState::failed, ex);
  } else {
    finalize(t, TaskState::completed, ex);
  }
}

void RuntimeImpl::finalize(TaskRecord* t, TaskState state, ExecContext& ex) {
  Failure* cause = nullptr;
  if (state == TaskState::failed) {
    cause = t->failure().get();
  } else if (state == TaskState::cancelled) {
    cause = t->m_cancel_cause.load(std::memory_order_acquire);
    t->cold().failure = cause->shared_from_this();
    if (!t->m_body_names) t->m_body.reset();
  }
  // Its blocks hold references to this task (inferred dependencies): break the cycle.
  t->m_data.reset();
  // relaxed: set by the thread that ran the body, which happened-before this (the finish
  // parties' acq_rel decrement).
  const bool ran_ahead = (t->m_flags.load(std::memory_order_relaxed) & TaskRecord::k_runahead) != 0;
  // release: publishes the result and failure to whoever observes the final state (or the
  // closed list, below).
  t->m_state.store(state, std::memory_order_release);

  // seq_cst: (1) acquires the edges pushed (release) by spawners, and a later push sees
  // "closed"; (2) with the load of m_flags below, the Dekker pairs with a waiter, which sets
  // k_waited and then reads the list (TaskRecord::finished()): one of us sees the other, so
  // no wake-up is lost.
  Edge* e = t->m_successors.exchange(closed_list(), std::memory_order_seq_cst);
  while (e != nullptr) {
    // Read before the decrement: the successor may finish and die.
    Edge* next = e->next.load(std::memory_order_relaxed);
    TaskRecord* s = e->succ;
    if (cause != nullptr) {
      Failure* expected = nullptr;
      // acq_rel/relaxed: first cause wins; published to the final decrementer below.
      s->m_cancel_cause.compare_exchange_strong(expected, cause, std::memory_order_acq_rel,
                                                std::memory_order_relaxed);
    }
    std::uint8_t not_yet = 0;
    // acq_rel: an edge released early (runahead) is not released again.
    const bool release = !ran_ahead || s->released_at(s->edge_index(e)).compare_exchange_strong(
                                           not_yet, 2, std::memory_order_acq_rel, std::memory_order_relaxed);
    // This task is done with the edge: a deadlock report no longer reads this task through
    // it (the Dekker pair with begin_inspection() is this store, then the seq_cst
    // read-modify-writes below and the exec reference's release before the record can be
    // freed, then destroy()'s load of the report count).
    e->next.store(walked_edge(), std::memory_order_release);
    // seq_cst (acq_rel would do for readiness: the last predecessor to finish sees every
    // predecessor's writes): orders the store above before this task's record can be freed.
    if (release && s->m_pending.fetch_sub(1, std::memory_order_seq_cst) == 1) on_ready(s, ex);
    // A successor released early may have finished already: runahead kept it (and this edge,
    // which lives in it) alive for this walk; drop that reference now.
    if (!release) s->release();
    e = next;
  }

  const std::uint8_t flags = t->m_flags.load(std::memory_order_seq_cst);
  if ((flags & TaskRecord::k_waited) != 0) notify_waiters();
  if ((flags & TaskRecord::k_outstanding) != 0) count_finished();
  if ((flags & TaskRecord::k_outstanding) != 0) t->release();  // the execution reference
}

void RuntimeImpl::run_inline_ready(ExecContext& ex) {
  if (ex.inline_ready == nullptr) return;
  // A worklist, not recursion: an inline body that completes at once releases the next one.
  // The bound keeps a thread that is not a worker (a progress engine) from being captured by
  // a long chain; past it, the tasks go to the workers' queues.
  std::vector<TaskRecord*>& ready = *ex.inline_ready;
  int budget = k_max_inline_run;
  while (!ready.empty()) {
    TaskRecord* t = ready.back();
    ready.pop_back();
    if (budget-- <= 0) {
      ex.inline_ready = nullptr;
      enqueue(t, ex);
      ex.inline_ready = &ready;
      continue;
    }
    if (TaskRecord* next = execute(t, ex)) enqueue(next, ex);
    drain_cancelled(ex);
  }
}

void RuntimeImpl::drain_cancelled(ExecContext& ex) {
  // A worklist, not recursion: a failure can cancel a chain of a million tasks.
  while (!ex.cancelled.empty()) {
    TaskRecord* t = ex.cancelled.back();
    ex.cancelled.pop_back();
    m_helper_progress.fetch_add(1, std::memory_order_relaxed);
    finalize(t, TaskState::cancelled, ex);
  }
}

std::optional<std::string> RuntimeImpl::unreported_failure(std::chrono::milliseconds grace) const {
  // relaxed: a hint; a failure recorded concurrently is seen on the next call.
  if (m_failed.load(std::memory_order_relaxed) == 0) return std::nullopt;
  const auto cutoff = std::chrono::steady_clock::now() - grace;
  std::lock_guard<std::mutex> lock(m_failure_mutex);
  for (const auto& f : m_failures) {
    if (!f->reported.load(std::memory_order_relaxed) && f->when <= cutoff) {
      return std::string(task_error_of(*f).what());
    }
  }
  return std::nullopt;
}

std::shared_ptr<Failure> RuntimeImpl::record_failure(const std::string& name, std::exception_ptr error) {
  auto f = std::make_shared<Failure>();
  f->task_name = name;
  f->error = std::move(error);
  m_failed.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(m_failure_mutex);
  m_failures.push_back(f);
  return f;
}

void RuntimeImpl::add_wait_driver(std::shared_ptr<WaitDriver> driver) {
  if (!driver) throw Error("add_wait_driver: the driver is null");
  std::lock_guard<std::mutex> lock(m_driver_mutex);
  auto list = m_drivers ? std::make_shared<DriverList>(*m_drivers) : std::make_shared<DriverList>();
  list->push_back(std::move(driver));
  m_num_drivers.store(static_cast<int>(list->size()), std::memory_order_release);
  m_drivers = std::move(list);
  m_drivers_version.fetch_add(1, std::memory_order_release);
}

void RuntimeImpl::remove_wait_driver(const WaitDriver* driver) {
  std::lock_guard<std::mutex> lock(m_driver_mutex);
  if (!m_drivers) return;
  auto list = std::make_shared<DriverList>();
  for (const auto& d : *m_drivers) {
    if (d.get() != driver) list->push_back(d);
  }
  m_num_drivers.store(static_cast<int>(list->size()), std::memory_order_release);
  m_drivers = list->empty() ? nullptr : std::move(list);
  m_drivers_version.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const RuntimeImpl::DriverList> RuntimeImpl::wait_drivers() const {
  std::lock_guard<std::mutex> lock(m_driver_mutex);
  return m_drivers;
}

bool RuntimeImpl::on_worker_thread() const noexcept {
  return this_worker() != nullptr;
}

void RuntimeImpl::notify_waiters() {
  // Idle workers sleep on the devices' EventCounts too: waking them for a finished task that
  // only a blocked waiter cares about costs a context switch (and their spin) per wait.
  // seq_cst: Dekker pair with wait_until(), which counts itself in m_blocked_workers before it
  // rechecks what it waits for; the caller's seq_cst publication (the closed successor list,
  // a finished count, or note_idle()'s read-modify-write) precedes this.
  if (m_blocked_workers.load(std::memory_order_seq_cst) > 0) {
    for (auto& s : m_devices) s->idle.notify_all();
  }
  m_helper_idle.notify_all();
}

Worker* RuntimeImpl::this_worker() const noexcept {
  return t_thread.runtime == this ? t_thread.worker : nullptr;
}

// Outstanding tasks are counted by the threads that spawn and finish them, each worker in its
// own Worker (one writer: a plain store, no shared cache line, no atomic read-modify-write on
// the spawn and finish paths), the spawns of other threads each in its own ExternalSpawns
// (the same way) and their finishes in m_finished_elsewhere.
std::int64_t RuntimeImpl::outstanding() const noexcept {
  // Every finished count first, then every spawned count. A task's spawn happened-before its
  // finish (its count was sequenced before the task was published), and these loads acquire
  // the finishes they read: each finish read comes with its spawn, so the difference is
  // never below the true number of outstanding tasks.
  // seq_cst: Dekker pair with count_finished().
  std::int64_t finished = m_finished_elsewhere.load(std::memory_order_seq_cst);
  for (const auto& w : m_workers) finished += w->finished.load(std::memory_order_acquire);
  std::int64_t spawned = 0;
  for (const ExternalSpawns* e = m_external_spawns.load(std::memory_order_acquire); e != nullptr; e = e->next) {
    spawned += e->spawned.load(std::memory_order_acquire);
  }
  for (const auto& w : m_workers) spawned += w->spawned.load(std::memory_order_acquire);
  return spawned - finished;
}

void RuntimeImpl::count_finished() noexcept {
  if (Worker* w = this_worker()) {
    // release: outstanding() reads the spawn of every finish it reads. The waiters are woken
    // by note_idle() when this worker runs out of work, not here on every task.
    w->finished.store(w->finished.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    return;
  }
  // seq_cst: Dekker pair with a wait_all(), which counts itself in m_all_waiters and then
  // reads this count (outstanding()).
  m_finished_elsewhere.fetch_add(1, std::memory_order_seq_cst);
  // This thread's own wait_all() checks for itself after the task it ran.
  const int own = t_thread.all_wait_runtime == this ? t_thread.all_waits : 0;
  if (m_all_waiters.load(std::memory_order_seq_cst) > own && outstanding() == 0) notify_waiters();
}

void RuntimeImpl::note_idle() {
  // seq_cst read-modify-write (not a load): with AllWait's increment, one of the two comes
  // second in the order of m_all_waiters and reads the other. If it is ours, we see the waiter
  // and check for it; if it is the waiter's, it synchronizes with ours, so the waiter's
  // outstanding() sees this worker's finished count, stored before (count_finished).
  if (m_all_waiters.fetch_add(0, std::memory_order_seq_cst) > 0 && outstanding() == 0) notify_waiters();
}

RuntimeImpl::AllWait::AllWait(RuntimeImpl& rt) : m_rt(rt) {
  // seq_cst: Dekker pair with count_finished() and note_idle().
  m_rt.m_all_waiters.fetch_add(1, std::memory_order_seq_cst);
  m_prev_runtime = t_thread.all_wait_runtime;
  m_prev_waits = t_thread.all_waits;
  t_thread.all_waits = m_prev_runtime == &m_rt ? m_prev_waits + 1 : 1;
  t_thread.all_wait_runtime = &m_rt;
}

RuntimeImpl::AllWait::~AllWait() {
  t_thread.all_wait_runtime = m_prev_runtime;
  t_thread.all_waits = m_prev_waits;
  m_rt.m_all_waiters.fetch_sub(1, std::memory_order_seq_cst);
}

void RuntimeImpl::defer_completion(TaskRecord& t) {
  if ((t.m_flags.fetch_or(TaskRecord::k_token, std::memory_order_relaxed) & TaskRecord::k_token) != 0) {
    throw Error("defer_completion() called twice in task '" + t.display_name() +
                "'; a task has one completion token");
  }
  add_finish_party(t);
}

void RuntimeImpl::add_finish_party(TaskRecord& t) {
  // relaxed: read by this thread when the body returns; the token (or stream completion)
  // reaches other threads through synchronisation of its own.
  if ((t.m_flags.fetch_or(TaskRecord::k_deferred, std::memory_order_relaxed) & TaskRecord::k_deferred) == 0) {
    m_deferred_outstanding.fetch_add(1, std::memory_order_relaxed);
  }
  t.m_finish_parties.fetch_add(1, std::memory_order_relaxed);
}

void RuntimeImpl::complete_deferred(TaskRecord* t, std::exception_ptr error, bool run_inline) {
  if (error) set_error(t, std::move(error));
  if (t->m_finish_parties.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    m_deferred_outstanding.fetch_sub(1, std::memory_order_relaxed);
    ExecContext ex;
    ex.worker = this_worker();
    // A thread outside the pool (a progress engine fulfilling a token) runs the released
    // run_inline tasks itself: the next send of a chain is posted without waking a worker.
    std::vector<TaskRecord*> inline_ready;
    if (run_inline && ex.worker == nullptr) ex.inline_ready = &inline_ready;
    finish(t, ex);
    drain_cancelled(ex);
    run_inline_ready(ex);
    m_helper_progress.fetch_add(1, std::memory_order_relaxed);
  }
}

void RuntimeImpl::fail_placeholder(TaskRecord* t, const std::string& why) {
  // acq_rel: a racing spawn of the same key wins or loses as a whole.
  if ((t->m_flags.fetch_or(TaskRecord::k_spawned, std::memory_order_acq_rel) & TaskRecord::k_spawned) != 0) {
    return;
  }
  t->cold().failure = record_failure(t->display_name(), std::make_exception_ptr(Error(why)));
  ExecContext ex;
  ex.worker = this_worker();
  finalize(t, TaskState::failed, ex);
  drain_cancelled(ex);
  m_helper_progress.fetch_add(1, std::memory_order_relaxed);
}

// ---- workers ---------------------------------------------------------------------------------

void RuntimeImpl::worker_main(Worker& w) {
  t_thread.runtime = this;
  t_thread.worker = &w;
  // Keep to the rank's cores (the mask mpirun/srun set), even if the thread that built the
  // runtime was pinned more narrowly at the time.
  (void)m_core_set.confine_current_thread();
  DeviceSlot& dev = *m_devices[static_cast<std::size_t>(w.device)];
  for (;;) {
    // 1. own work, injected work, stolen work
    TaskRecord* t = find_work(w);
    // 2. drive what the WaitDrivers have in progress (poll MPI: a message this rank waits for
    // is then seen by a thread already on a core, and its successor runs here), then spin
    // briefly (yielding) before paying for a sleep and a wake-up; the first time round, this
    // worker's finished tasks may have been the last ones a wait_all() waits for
    if (t == nullptr) note_idle();
    if (t == nullptr && w.device == 0) t = drive_while_idle(w);
    for (int i = 0; t == nullptr && i < k_spin_rounds; ++i) {
      std::this_thread::yield();
      t = find_work(w);
    }
    if (t != nullptr) {
      run_chain(t, &w);
      continue;
    }
    // 3. prepare to sleep, recheck, 4. sleep
    const std::uint32_t key = dev.idle.prepare_wait();
    if (m_stop.load(std::memory_order_seq_cst)) {
      dev.idle.cancel_wait();
      break;
    }
    t = find_work(w);
    if (t != nullptr) {
      dev.idle.cancel_wait();
      run_chain(t, &w);
      continue;
    }
    dev.idle.commit_wait(key);
  }
  t_thread = ThreadState{};
}

TaskRecord* RuntimeImpl::drive_while_idle(Worker& w) {
  const std::uint64_t version = m_drivers_version.load(std::memory_order_acquire);
  if (version != w.drivers_version) {
    // Taken again after every change, so a removed driver (a closed Comm) is not kept alive.
    w.drivers = wait_drivers();
    w.drivers_version = version;
  }
  if (!w.drivers) return nullptr;
  DrivingWait driving(w.drivers, &m_driving_workers);
  TaskRecord* t = nullptr;
  while (driving.step()) {
    t = find_work(w);
    if (t != nullptr || m_stop.load(std::memory_order_relaxed)) break;
    // The pass may have finished the last tasks a wait_all() waits for (a send's completion
    // releases nothing this worker would run): check for it as when going idle.
    if (driving.moved()) note_idle();
  }
  driving.stop();
  // A waiting thread that left the driving to the idle workers sleeps meanwhile. With a core
  // of its own, wake it to drive (and help) again (seq_cst: Dekker pair with wait_until()).
  // Without one it would only take this worker's core: the engine thread takes over after
  // its nap if no worker drives again first.
  if (m_spare_core && m_deferring_waiters.load(std::memory_order_seq_cst) > 0) {
    m_helper_idle.notify_all();
  }
  return t;
}

TaskRecord* RuntimeImpl::find_work(Worker& w) {
  DeviceSlot& dev = *m_devices[static_cast<std::size_t>(w.device)];
  if (TaskRecord* t = take_inbox(w, dev.urgent)) return t;
  if (TaskRecord* t = w.deque.pop()) return t;
  if (TaskRecord* t = take_inbox(w, dev.inbox)) return t;
  return steal_from_siblings(w, w.device);
}

TaskRecord* RuntimeImpl::take_inbox(Worker& w, InjectionQueue& q) {
  TaskRecord* t = q.take_all();  // newest first
  if (t == nullptr) return nullptr;
  // Run the oldest now; push the others newest first, so that our LIFO pops continue in
  // arrival order while idle siblings steal the newest ones.
  bool pushed = false;
  for (TaskRecord* next = t->m_next.load(std::memory_order_relaxed); next != nullptr;
       next = t->m_next.load(std::memory_order_relaxed)) {
    w.deque.push(t);
    pushed = true;
    t = next;
  }
  DeviceSlot& dev = *m_devices[static_cast<std::size_t>(w.device)];
  if (pushed) {
    if (dev.num_workers > 1) dev.idle.notify_one();
    wake_helper(w.device);
  }
  return t;
}

TaskRecord* RuntimeImpl::steal_from_siblings(Worker& w, int device) {
  const DeviceSlot& dev = *m_devices[static_cast<std::size_t>(device)];
  const int n = dev.num_workers;
  if (n <= 1 && w.device == device) return nullptr;
  // xorshift64: a cheap random start so thieves do not all hit the same victim.
  w.rng ^= w.rng << 13;
  w.rng ^= w.rng >> 7;
  w.rng ^= w.rng << 17;
  const int start = static_cast<int>(w.rng % static_cast<std::uint64_t>(n));
  for (int i = 0; i < n; ++i) {
    Worker& victim = *m_workers[static_cast<std::size_t>(dev.first_worker + (start + i) % n)];
    if (&victim == &w) continue;
    for (int attempt = 0; attempt < 4 && !victim.deque.empty(); ++attempt) {
      if (TaskRecord* t = victim.deque.steal()) return t;
    }
  }
  return nullptr;
}

bool RuntimeImpl::helping_restricted(const Worker* w) noexcept {
  return w != nullptr ? t_thread.wait_depth > k_max_help_depth : t_thread.wait_depth > 1;
}

TaskRecord* RuntimeImpl::help_find(Worker* w, bool any) {
  if (w != nullptr) {
    return any || !helping_restricted(w) ? find_work(*w) : w->deque.pop();
  }
  if (!any && helping_restricted(w)) return nullptr;
  // A thread that is not a worker helps with cpu tasks by stealing from the cpu workers.
  const DeviceSlot& cpu = *m_devices[0];
  for (int i = 0; i < cpu.num_workers; ++i) {
    Worker& victim = *m_workers[static_cast<std::size_t>(cpu.first_worker + i)];
    for (int attempt = 0; attempt < 4 && !victim.deque.empty(); ++attempt) {
      if (TaskRecord* t = victim.deque.steal()) return t;
    }
  }
  return nullptr;
}

// ---- waiting ---------------------------------------------------------------------------------

std::uint64_t RuntimeImpl::progress() const noexcept {
  std::uint64_t p = m_helper_progress.load(std::memory_order_relaxed);
  for (const auto& w : m_workers) p += w->tasks_run.load(std::memory_order_relaxed);
  return p;
}

bool RuntimeImpl::anyone_active() const noexcept {
  if (m_helpers_active.load(std::memory_order_relaxed) > 0) return true;
  if (m_deferred_outstanding.load(std::memory_order_relaxed) > 0) return true;
  return std::any_of(m_workers.begin(), m_workers.end(),
                     [](const auto& w) { return w->active.load(std::memory_order_relaxed); });
}

void RuntimeImpl::wait_until(const std::function<bool()>& done,
                             const std::function<std::vector<Ref<TaskRecord>>()>& roots) {
  // Already done: none of the set-up below (counts other threads read, the clock, the
  // drivers). Not done: the protocol below counts this thread before it checks again.
  if (done()) return;
  Worker* w = this_worker();
  EventCount& ec = w != nullptr ? m_devices[static_cast<std::size_t>(w->device)]->idle : m_helper_idle;

  // While blocked here this thread's body does not count as progress-making work, and a worker
  // counts in m_blocked_workers.
  struct Inactive {
    RuntimeImpl* rt;
    Worker* w;
    bool was_active = false;
    bool helper_body = false;
    Inactive(RuntimeImpl* r, Worker* wk) : rt(r), w(wk) {
      if (w != nullptr) {
        // Counted before the first check of done(): see notify_waiters().
        rt->m_blocked_workers.fetch_add(1, std::memory_order_seq_cst);
        was_active = w->active.exchange(false, std::memory_order_relaxed);
      } else if (t_thread.helper_body_depth > 0) {
        helper_body = true;
        rt->m_helpers_active.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    ~Inactive() {
      if (w != nullptr) {
        w->active.store(was_active, std::memory_order_relaxed);
        rt->m_blocked_workers.fetch_sub(1, std::memory_order_relaxed);
      }
      if (helper_body) rt->m_helpers_active.fetch_add(1, std::memory_order_relaxed);
    }
    Inactive(const Inactive&) = delete;
    Inactive& operator=(const Inactive&) = delete;
  } inactive(this, w);
  struct Depth {
    Depth() noexcept { ++t_thread.wait_depth; }
    ~Depth() { --t_thread.wait_depth; }
    Depth(const Depth&) = delete;
    Depth& operator=(const Depth&) = delete;
  } depth;
  // Workers keep running tasks; other threads drive what the drivers have in progress.
  DrivingWait driving(w == nullptr && m_num_drivers.load(std::memory_order_acquire) > 0
                          ? wait_drivers()
                          : nullptr,
                      nullptr, &m_driving_workers);

  const auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(m_config.deadlock_timeout));
  std::uint64_t last_progress = progress();
  auto last_change = std::chrono::steady_clock::now();
  bool deferred_once = false;
  for (;;) {
    if (done()) return;
    if (TaskRecord* t = help_find(w)) {
      run_chain(t, w);
      continue;
    }
    if (driving.step()) continue;
    // A thread outside the workers that may help with anything spins (yielding) before it
    // sleeps, as an idle worker does: a task graph's next ready task is usually a
    // microsecond away, and a sleeping helper is woken for it only by a system call.
    const bool helps_any = w == nullptr && m_spare_core && !helping_restricted(w);
    if (helps_any) {
      TaskRecord* found = nullptr;
      for (int i = 1; found == nullptr && i <= k_spin_rounds; ++i) {
        std::this_thread::yield();
        // done() may read what every finishing task writes: not on every round.
        if (i % 16 == 0 && done()) return;
        found = help_find(w);
      }
      if (found != nullptr) {
        run_chain(found, w);
        continue;
      }
    }
    // Counts this thread in `count` (when set) while it sleeps below.
    struct Counted {
      std::atomic<int>* count;
      Counted(std::atomic<int>* c, std::memory_order order) : count(c) {
        if (count != nullptr) count->fetch_add(1, order);
      }
      ~Counted() {
        if (count != nullptr) count->fetch_sub(1, std::memory_order_relaxed);
      }
      Counted(const Counted&) = delete;
      Counted& operator=(const Counted&) = delete;
    };
    const Counted sleeping(helps_any ? &m_sleeping_helpers : nullptr, std::memory_order_relaxed);
    // Left the driving to idle workers: counted, so that the last of them to stop wakes us
    // (when this thread has a spare core to drive on). seq_cst: Dekker pair with
    // drive_while_idle().
    const Counted deferring(driving.deferred() ? &m_deferring_waiters : nullptr,
                            std::memory_order_seq_cst);
    const std::uint32_t key = ec.prepare_wait();
    if (done()) {
      ec.cancel_wait();
      return;
    }
    if (TaskRecord* t = help_find(w)) {
      ec.cancel_wait();
      run_chain(t, w);
      continue;
    }
    if (deferring.count != nullptr && m_spare_core &&
        m_driving_workers.load(std::memory_order_seq_cst) == 0) {
      ec.cancel_wait();  // the workers stopped driving meanwhile: drive again
      continue;
    }
    // A thread that may help only with its own subtree checks now and then whether the whole
    // runtime is stuck behind a task only it could run (every thread blocked in a wait like
    // this one): then it takes that task, deepening its stack by one level, rather than
    // leave the wait to the deadlock report.
    const bool restricted = helping_restricted(w);
    const auto deadline = restricted ? std::min(last_change + timeout,
                                                std::chrono::steady_clock::now() + k_starved)
                                     : last_change + timeout;
    if (ec.commit_wait(key, deadline)) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now < last_change + timeout) {
      // The starvation check of a restricted helper.
      if (progress() == last_progress && !anyone_active()) {
        if (TaskRecord* t = help_find(w, /*any=*/true)) {
          run_chain(t, w);
          continue;
        }
      }
      const std::uint64_t p = progress();
      if (p != last_progress) {
        last_progress = p;
        last_change = now;
        deferred_once = false;
      }
      continue;
    }
    const std::uint64_t p = progress();
    if (p != last_progress || anyone_active()) {
      last_progress = p;
      last_change = now;
      deferred_once = false;
      continue;
    }
    if (done()) return;
    bool foreign_wait = false;
    std::vector<std::string> blocked = describe_blocked(roots(), &foreign_wait);
    if (blocked.empty() || progress() != last_progress) {
      // Things moved while we looked (what we wait for just finished): not a deadlock.
      last_progress = progress();
      last_change = now;
      deferred_once = false;
      continue;
    }
    if (foreign_wait && !deferred_once) {
      // What we wait for is itself a body blocked in a wait on another thread: that inner
      // wait reports the deadlock (its failure then reaches us as progress). Give it one
      // more period; report anyway after that, so cross-waiting bodies cannot hang.
      deferred_once = true;
      last_change = now;
      continue;
    }
    std::ostringstream msg;
    msg << "deadlock: no task made progress for " << m_config.deadlock_timeout
        << " s (PARLA_DEADLOCK_TIMEOUT) and the wait can never finish; " << blocked.size()
        << " blocked task(s):";
    for (const auto& line : blocked) msg << "\n  " << line;
    msg << "\nSpawn the missing tasks, break the dependency cycle, or lower the resource requests.";
    throw DeadlockError(msg.str(), std::move(blocked));
  }
}

void RuntimeImpl::wait_records(std::vector<Ref<TaskRecord>> records) {
  for (const auto& r : records) {
    if (r->m_runtime != this) throw Error("cannot wait for '" + r->display_name() + "': it belongs to another runtime");
    // A finished task needs no wake-up (a loop that waits for what it spawned a while ago
    // mostly finds it finished): no read-modify-write of its flags.
    if (r->finished()) continue;
    // seq_cst: Dekker pair with finalize() (list exchange, then flag load).
    r->m_flags.fetch_or(TaskRecord::k_waited, std::memory_order_seq_cst);
  }
  std::size_t next = 0;
  auto done = [&] {
    while (next < records.size() && records[next]->finished()) {
      ++next;
    }
    return next == records.size();
  };
  auto roots = [&] {
    return std::vector<Ref<TaskRecord>>(records.begin() + static_cast<std::ptrdiff_t>(next), records.end());
  };
  wait_until(done, roots);
  for (const auto& r : records) {
    if (r->state() != TaskState::completed) throw_failure(*r);
  }
}

void RuntimeImpl::throw_failure(const TaskRecord& t) { throw task_error_of(t); }

void RuntimeImpl::wait_all() {
  {
    AllWait counted(*this);
    wait_until([&] { return outstanding() == 0; }, [&] { return all_unfinished_roots(); });
  }
  std::shared_ptr<Failure> first;
  {
    std::lock_guard<std::mutex> lock(m_failure_mutex);
    for (const auto& f : m_failures) {
      if (!f->reported.exchange(true, std::memory_order_relaxed)) {
        first = f;
        break;
      }
    }
  }
  if (first) {
    throw task_error_of(*first);
  }
}

std::vector<Ref<TaskRecord>> RuntimeImpl::all_unfinished_roots() {
  std::vector<Ref<TaskRecord>> roots;
  std::vector<std::shared_ptr<TaskSpaceState>> spaces;
  {
    std::lock_guard<std::mutex> lock(m_space_mutex);
    for (auto& weak : m_spaces) {
      if (auto s = weak.lock()) spaces.push_back(std::move(s));
    }
  }
  for (auto& s : spaces) {
    for (auto& [key, rec] : s->snapshot()) {
      if (!is_final(rec->m_state.load(std::memory_order_seq_cst))) roots.push_back(rec);
    }
  }
  for (auto& slot : m_devices) {
    std::lock_guard<std::mutex> lock(slot->park_mutex);
    for (TaskRecord* t : slot->parked) roots.push_back(Ref<TaskRecord>::share(t));
  }
  return roots;
}

std::vector<std::string> RuntimeImpl::describe_blocked(const std::vector<Ref<TaskRecord>>& roots,
                                                       bool* foreign_wait) {
  // The edges do not own their predecessors: while a report runs no record is freed
  // (begin_inspection()), and a predecessor is read only through an edge it had not walked
  // when the report began (then it was not freed before).
  begin_inspection();
  std::vector<std::string> lines;
  std::size_t hidden = 0;
  {
    std::vector<TaskRecord*> stack;
    std::unordered_set<TaskRecord*> seen;
    for (const auto& r : roots) {
      if (seen.insert(r.get()).second) stack.push_back(r.get());
    }
    auto state_text = [](TaskState s) {
      return s == TaskState::placeholder ? std::string("never spawned") : std::string(to_string(s));
    };
    while (!stack.empty()) {
      TaskRecord* t = stack.back();
      stack.pop_back();
      if (t->finished()) continue;
      const TaskState s = t->m_state.load(std::memory_order_acquire);
      if (is_final(s)) continue;
      std::string line = t->display_name();
      if (s == TaskState::placeholder) {
        line += ": never spawned (a dependency or a wait refers to this key, but no spawn() used it)";
      } else if (s == TaskState::pending) {
        line += " (pending): waits for ";
        bool first = true;
        Edge* edges = t->edge_array();
        for (std::uint32_t i = 0; i < t->m_num_edges; ++i) {
          // seq_cst: see begin_inspection().
          if (edges[i].next.load(std::memory_order_seq_cst) == walked_edge()) continue;
          TaskRecord* p = t->pred_at(i);
          if (p == nullptr || p->finished()) continue;
          const TaskState ps = p->m_state.load(std::memory_order_acquire);
          if (is_final(ps)) continue;
          line += (first ? "" : ", ") + p->display_name() + " (" + state_text(ps) + ")";
          first = false;
          if (seen.insert(p).second) stack.push_back(p);
        }
        if (first) line += "nothing (about to become ready)";
      } else if (s == TaskState::ready) {
        const ResolvedOption& o = t->m_placement->options.front();
        line += " (ready): waits for resources: needs " + format_vcus(o.vcus_units) + " vcus and " +
                std::to_string(o.memory) + " bytes on";
        for_each_bit(o.mask, [&](int d) {
          const DeviceSlot& slot = *m_devices[static_cast<std::size_t>(d)];
          line += " " + slot.device->name() + " (free: " +
                  format_vcus(slot.vcus_free.load(std::memory_order_relaxed)) + " vcus, " +
                  std::to_string(slot.memory_free.load(std::memory_order_relaxed)) + " bytes)";
        });
        line += "; the tasks holding them are blocked";
      } else if ((t->m_flags.load(std::memory_order_relaxed) & TaskRecord::k_token) != 0) {
        line += " (running): its completion token was never fulfilled";
      } else if ((t->m_flags.load(std::memory_order_relaxed) & TaskRecord::k_deferred) != 0) {
        line += " (running): its work on a device stream has not finished";
      } else {
        line += " (running): its body is waiting";
        bool mine = false;
        for (const ExecFrame* f = t_thread.frames; f != nullptr; f = f->prev) mine = mine || f->task == t;
        if (!mine && foreign_wait != nullptr) *foreign_wait = true;
      }
      if (lines.size() < k_max_report_lines) {
        lines.push_back(std::move(line));
      } else {
        ++hidden;
      }
    }
  }
  end_inspection();
  if (hidden != 0) lines.push_back("... and " + std::to_string(hidden) + " more");
  return lines;
}

void RuntimeImpl::shutdown() noexcept {
  try {
    try {
      AllWait counted(*this);
      wait_until([&] { return outstanding() == 0; }, [&] { return all_unfinished_roots(); });
    } catch (const std::exception& e) {
      std::cerr << "parla: the runtime is being destroyed but some tasks can never finish; "
                   "abandoning them.\n"
                << e.what() << '\n';
    }
    {
      std::lock_guard<std::mutex> lock(m_failure_mutex);
      for (const auto& f : m_failures) {
        if (!f->reported.exchange(true, std::memory_order_relaxed)) {
          std::cerr << "parla: task '" << f->task_name << "' failed and no wait reported it: "
                    << exception_text(f->error)
                    << " (call Runtime::finish() before the runtime is destroyed to get it as an "
                       "exception)\n";
        }
      }
    }
  } catch (...) {
    // Reporting must not stop the shutdown.
  }
  write_back_and_release_blocks();
  m_stop.store(true, std::memory_order_seq_cst);
  for (auto& s : m_devices) s->idle.notify_all();
  for (auto& w : m_workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  for (auto& s : m_devices) s->backend->stop();
  try {
    if (m_tracing) write_trace();
    if (m_config.collect_stats && std::getenv("PARLA_STATS") != nullptr) {
      std::cerr << stats().to_string();
    }
  } catch (const std::exception& e) {
    std::cerr << "parla: " << e.what() << '\n';
  }
}

// ---- stats and trace -------------------------------------------------------------------------

std::int64_t RuntimeImpl::now_ns() const noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - m_start)
      .count();
}

RuntimeStats RuntimeImpl::stats() const {
  RuntimeStats s;
  s.wall_seconds = static_cast<double>(now_ns()) * 1e-9;
  s.timed = m_timed;
  s.tasks_failed = m_failed.load(std::memory_order_relaxed);
  s.tasks_run = m_helper_bodies.load(std::memory_order_relaxed);
  for (const auto& w : m_workers) {
    RuntimeStats::Worker ws;
    ws.device = m_devices[static_cast<std::size_t>(w->device)]->device->name();
    ws.tasks = w->tasks_run.load(std::memory_order_relaxed);
    ws.busy_seconds = static_cast<double>(w->busy_ns.load(std::memory_order_relaxed)) * 1e-9;
    ws.busy_fraction = s.wall_seconds > 0 ? ws.busy_seconds / s.wall_seconds : 0.0;
    s.tasks_run += ws.tasks;
    s.workers.push_back(std::move(ws));
  }
  for (const auto& slot : m_devices) {
    RuntimeStats::Device d;
    d.name = slot->device->name();
    d.memory_capacity = slot->memory_capacity;
    d.memory_in_use = static_cast<std::size_t>(static_cast<std::int64_t>(slot->memory_capacity) -
                                               slot->memory_free.load(std::memory_order_relaxed));
    d.memory_peak = slot->memory_peak.load(std::memory_order_relaxed);
    d.copies_in = slot->copies_in.load(std::memory_order_relaxed);
    d.bytes_in = slot->bytes_in.load(std::memory_order_relaxed);
    d.evictions = slot->evictions.load(std::memory_order_relaxed);
    s.devices.push_back(std::move(d));
  }
  s.copies_h2d = m_copies[0].load(std::memory_order_relaxed);
  s.copies_d2h = m_copies[1].load(std::memory_order_relaxed);
  s.copies_d2d = m_copies[2].load(std::memory_order_relaxed);
  s.bytes_h2d = m_copy_bytes[0].load(std::memory_order_relaxed);
  s.bytes_d2h = m_copy_bytes[1].load(std::memory_order_relaxed);
  s.bytes_d2d = m_copy_bytes[2].load(std::memory_order_relaxed);
  return s;
}

}  // namespace parla::detail
