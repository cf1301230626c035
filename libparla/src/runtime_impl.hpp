// RuntimeImpl: the scheduler behind parla::Runtime (see DESIGN.md §2).
//
// Hot path in one paragraph: spawn() wires one lock-free successor edge per dependency and
// releases a "spawn guard" count; the thread that brings a task's predecessor count to zero
// maps it (single-option zero-resource tasks skip mapping and resource accounting) and
// pushes it onto its own Chase-Lev deque, or onto the device's lock-free injection queue
// when it is not one of that device's workers; a worker that finishes a task runs the first
// successor it released directly (no queue round trip: chains cost one task each). Idle
// workers spin briefly, then sleep on their device's EventCount. No mutex is taken on
// spawn or completion unless a task reserves resources, fails, or is being waited for.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <parla/detail/task_record.hpp>
#include <parla/device.hpp>
#include <parla/runtime_config.hpp>
#include <parla/runtime_stats.hpp>
#include <parla/spawn_options.hpp>
#include <parla/task.hpp>
#include <parla/wait_driver.hpp>

#include "chase_lev_deque.hpp"
#include "core_set.hpp"
#include "device_backend.hpp"
#include "event_count.hpp"
#include "injection_queue.hpp"

namespace parla::detail {

/// Fixed-point vcus: 1.0 vcus = k_vcus_unit units (exact sums of small fractions).
inline constexpr std::int64_t k_vcus_unit = 1'000'000;

/// One way to run a task, resolved against this runtime's devices.
struct ResolvedOption {
  std::uint64_t mask = 0;  // bit d: device id d
  int primary = 0;         // device whose worker runs the body
  std::int64_t vcus_units = 0;
  std::size_t memory = 0;
  [[nodiscard]] bool accounted() const noexcept { return vcus_units > 0 || memory > 0; }
};

struct ResolvedPlacement {
  std::vector<ResolvedOption> options;
};

struct TraceEvent {
  std::uint64_t id;
  std::string name;
  int device;
  std::int64_t start_ns;
  std::int64_t end_ns;
};

struct Worker {
  int index = 0;
  int device = 0;
  ChaseLevDeque<TaskRecord*> deque;
  std::uint64_t rng = 0;
  // Written only by the worker (relaxed store of load + 1), read by stats and the deadlock
  // detector: atomics so the cross-thread reads are not races, without RMW cost.
  std::atomic<std::uint64_t> tasks_run{0};
  std::atomic<std::int64_t> busy_ns{0};
  /// Tasks this worker spawned and finished (the k_outstanding ones), written the same way:
  /// RuntimeImpl::outstanding() sums them with the counts of the other threads.
  std::atomic<std::int64_t> spawned{0};
  std::atomic<std::int64_t> finished{0};
  /// Inside a body and not blocked in a wait (the deadlock detector's "someone works").
  std::atomic<bool> active{false};
  std::vector<TraceEvent> trace;  // worker only; read after join
  /// run_chain()'s run_inline tasks released by the task it just ran (kept: no allocation).
  std::vector<TaskRecord*> inline_ready;
  /// The runtime's WaitDrivers as this worker last took them (idle workers drive them), and
  /// the version of the list they are.
  std::shared_ptr<const std::vector<std::shared_ptr<WaitDriver>>> drivers;
  std::uint64_t drivers_version = 0;
  std::thread thread;
};

struct DeviceSlot {
  std::unique_ptr<Device> device;
  DeviceBackend* backend = nullptr;  // the same object as `device`
  InjectionQueue inbox;
  InjectionQueue urgent;  // priority > 0
  EventCount idle;
  int first_worker = 0;
  int num_workers = 0;
  std::int64_t vcus_capacity = k_vcus_unit;
  std::size_t memory_capacity = 0;
  std::atomic<std::int64_t> vcus_free{k_vcus_unit};
  std::atomic<std::int64_t> memory_free{0};
  /// Tasks mapped here and not finished (only tasks with a non-default placement count).
  std::atomic<std::int64_t> load{0};
  std::mutex park_mutex;
  std::deque<TaskRecord*> parked;  // ready, waiting for resources

  // Data (see data_movement.cpp).
  std::mutex data_mutex;                 // guards `resident`
  std::vector<BlockState*> resident;     // blocks with an instance here
  std::condition_variable memory_cv;     // signalled (under data_mutex) when memory returns
  std::atomic<std::uint64_t> memory_peak{0};
  std::atomic<std::uint64_t> copies_in{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> evictions{0};
};

/// Where the current thread stands while it runs tasks.
struct ExecContext {
  Worker* worker = nullptr;     // null for a thread helping while it waits, or a spawner
  int helper_device = -1;       // device a non-worker helper runs tasks of (0: cpu), or -1
  bool allow_bypass = false;    // may hand back one released successor to run next
  TaskRecord* bypass = nullptr;
  std::vector<TaskRecord*> cancelled;  // released tasks to finalize as cancelled
  /// Set by threads that run released run_inline tasks themselves (run_inline_ready()):
  /// enqueue() collects such tasks here instead of queueing them.
  std::vector<TaskRecord*>* inline_ready = nullptr;
};

/// Records a task's error (the first one wins).
void set_error(TaskRecord* task, std::exception_ptr error);

class RuntimeImpl {
 public:
  RuntimeImpl(Runtime& owner, RuntimeConfig config);
  ~RuntimeImpl();
  RuntimeImpl(const RuntimeImpl&) = delete;
  RuntimeImpl& operator=(const RuntimeImpl&) = delete;

  // ---- API used by the public classes ----------------------------------------------------
  Ref<TaskRecord> submit(SpawnOptions&& options, TaskFunction&& body);
  /// Runtime::spawn_after: an anonymous cpu task with default options after `after`.
  Ref<TaskRecord> submit_after(std::span<const Task> after, TaskFunction&& body);
  void wait_records(std::vector<Ref<TaskRecord>> records);
  void wait_all();
  /// Waits for everything without throwing; reports on stderr. Used by ~Runtime.
  void shutdown() noexcept;
  /// `run_inline`: this thread may run released run_inline tasks (a token fulfilled by a
  /// program thread); false on stream callbacks, which must not issue device work.
  void complete_deferred(TaskRecord* task, std::exception_ptr error, bool run_inline = false);
  void defer_completion(TaskRecord& task);
  /// One more party (a token or the task's stream work) must finish before the task completes.
  void add_finish_party(TaskRecord& task);
  /// Fails a placeholder that will never be spawned (its TaskSpace is going away).
  void fail_placeholder(TaskRecord* task, const std::string& why);
  void register_space(const std::shared_ptr<TaskSpaceState>& space);
  /// Every record (keyed or anonymous) is introduced to its runtime here.
  void on_record_created(TaskRecord& record) noexcept;
  [[noreturn]] void throw_failure(const TaskRecord& task);

  // ---- data and streams (data_movement.cpp) ----------------------------------------------
  void register_block(const std::shared_ptr<BlockState>& block);
  void sync_to_host(const DataBlock& block);
  [[nodiscard]] bool infer_dependencies() const noexcept { return m_infer; }
  /// Pointer to `slice` on the task's `i`-th device (TaskContext::data).
  void* data_pointer(TaskRecord& task, const DataSlice& slice, std::size_t i);
  /// The task's `access`-th declared access on its first device (detail::declared_data).
  void* access_pointer(TaskRecord& task, std::size_t access);
  /// The task's stream on its `i`-th device (TaskContext::stream).
  Stream& task_stream(TaskRecord& task, std::size_t i);
  [[nodiscard]] DeviceSlot& slot(int device) const noexcept { return *m_devices[static_cast<std::size_t>(device)]; }

  [[nodiscard]] const RuntimeConfig& config() const noexcept { return m_config; }
  [[nodiscard]] const std::vector<const Device*>& devices() const noexcept { return m_device_list; }
  [[nodiscard]] int num_gpus() const noexcept { return static_cast<int>(m_devices.size()) - 1; }
  [[nodiscard]] Runtime& owner() const noexcept { return *m_owner; }
  [[nodiscard]] RuntimeStats stats() const;
  [[nodiscard]] std::optional<std::string> unreported_failure(std::chrono::milliseconds grace) const;
  void add_wait_driver(std::shared_ptr<WaitDriver> driver);
  void remove_wait_driver(const WaitDriver* driver);
  [[nodiscard]] bool on_worker_thread() const noexcept;
  /// The registered drivers (null when none).
  using DriverList = std::vector<std::shared_ptr<WaitDriver>>;
  [[nodiscard]] std::shared_ptr<const DriverList> wait_drivers() const;
  /// The process's cores and the context tasks pinned to them.
  [[nodiscard]] const CoreSet& core_set() const noexcept { return m_core_set; }

 private:
  // spawn
  const ResolvedPlacement* resolve_placement(const SpawnOptions& o, const std::string& name,
                                             std::unique_ptr<ResolvedPlacement>& storage) const;
  void collect_predecessors(Dep& dep, std::vector<Ref<TaskRecord>>& out) const;
  static bool push_successor(TaskRecord* pred, Edge* edge) noexcept;
  /// Counts a spawn in the spawning thread's outstanding-task count.
  void count_spawned(Worker* me) noexcept;
  /// Pushes the new task's `n` edges (the i-th predecessor is `pred_at(i)`, kept alive by the
  /// caller until this returns) and releases its spawn guard; a task with nothing left to
  /// wait for is made ready here.
  template <class PredAt>
  void wire_and_release(TaskRecord* t, bool fresh, std::uint32_t n, PredAt&& pred_at, Worker* me);

  // readiness, mapping, resources
  void on_ready(TaskRecord* task, ExecContext& ex);
  /// Maps and reserves; returns -1 on success, else the device whose resources are short.
  int try_map(TaskRecord* task);
  bool reserve(const ResolvedOption& opt, int& short_device);
  void park(TaskRecord* task, int device, ExecContext& ex);
  void release_resources(TaskRecord* task, ExecContext& ex);
  void enqueue(TaskRecord* task, ExecContext& ex);
  /// Wakes a thread waiting outside the workers (m_sleeping_helpers) for work just put on a
  /// cpu worker's deque.
  void wake_helper(int device);

  void retry_parked(int device, ExecContext& ex);
  void note_memory_use(DeviceSlot& s) noexcept;

  // data (data_movement.cpp)
  std::unique_ptr<TaskData> make_task_data(const SpawnOptions& o, const std::string& name,
                                           const ResolvedPlacement*& placement,
                                           std::unique_ptr<ResolvedPlacement>& storage) const;
  void infer_from_accesses(TaskRecord* task, std::vector<Ref<TaskRecord>>& preds);
  /// Locality: bytes of the task's inputs valid on `device`.
  std::size_t valid_input_bytes(TaskRecord* task, int device);
  /// Streams, instances, copies. False when a cpu task must first wait for copies (it is
  /// re-enqueued when they finish).
  bool launch_data(TaskRecord* task, ExecContext& ex);
  /// After a GPU task's body: record its completion, publish its writes, runahead.
  void after_device_body(TaskRecord* task, ExecContext& ex);
  void finish_data(TaskRecord* task);
  void* acquire_instance(BlockState& block, int device, TaskData& data, const TaskRecord& task);  // task: for its name in errors
  std::size_t evict(int device, std::size_t needed, const BlockState* keep);
  void give_memory(int device, std::size_t bytes);
  void copy_segments(const std::shared_ptr<BlockState>& b, std::size_t first, std::size_t last, int dst, TaskData& data,
                     std::vector<std::shared_ptr<Event>>& waits);
  void write_back_and_release_blocks() noexcept;

  // execution and completion
  TaskRecord* execute(TaskRecord* task, ExecContext& ex);
  TaskRecord* execute_device_task(TaskRecord* task, ExecContext& ex);
  void run_chain(TaskRecord* task, Worker* worker);
  void finish(TaskRecord* task, ExecContext& ex);
  void finalize(TaskRecord* task, TaskState state, ExecContext& ex);
  void drain_cancelled(ExecContext& ex);
  /// Runs the run_inline tasks collected in ex.inline_ready on this thread (bounded).
  void run_inline_ready(ExecContext& ex);
  std::shared_ptr<Failure> record_failure(const std::string& name, std::exception_ptr error);
  void notify_waiters();
  /// This thread's worker of this runtime, or null.
  [[nodiscard]] Worker* this_worker() const noexcept;
  /// Tasks spawned and not finished: never less than the true count, and 0 only when every
  /// task spawned before the call (and every task those spawned) has finished.
  [[nodiscard]] std::int64_t outstanding() const noexcept;
  /// Counts a finished task; off the workers, wakes wait_all() waiters when it was the last.
  void count_finished() noexcept;
  /// A worker found no work: wakes wait_all() waiters if nothing is outstanding any more.
  void note_idle();
  /// A wait for every task (wait_all, shutdown): counted in m_all_waiters and on this thread,
  /// before it reads outstanding() (see note_idle()).
  class AllWait {
   public:
    explicit AllWait(RuntimeImpl& rt);
    ~AllWait();
    AllWait(const AllWait&) = delete;
    AllWait& operator=(const AllWait&) = delete;

   private:
    RuntimeImpl& m_rt;
    const RuntimeImpl* m_prev_runtime = nullptr;
    int m_prev_waits = 0;
  };

  // workers
  void worker_main(Worker& w);
  TaskRecord* find_work(Worker& w);
  /// An idle cpu worker drives the busy WaitDrivers (polls MPI) until it finds work (returned)
  /// or they are idle or quiet for long (null).
  TaskRecord* drive_while_idle(Worker& w);
  TaskRecord* take_inbox(Worker& w, InjectionQueue& q);
  TaskRecord* steal_from_siblings(Worker& w, int device);
  /// A task for a waiting thread to run: any it may take, or (`any`) any at all.
  TaskRecord* help_find(Worker* w, bool any = false);
  /// Past its helping depth, a waiting thread helps only with its own subtree.
  static bool helping_restricted(const Worker* w) noexcept;

  // waiting
  void wait_until(const std::function<bool()>& done,
                  const std::function<std::vector<Ref<TaskRecord>>()>& roots);
  [[nodiscard]] std::uint64_t progress() const noexcept;
  [[nodiscard]] bool anyone_active() const noexcept;
  /// One line per blocked task reachable from `roots`; sets *foreign_wait when one of them
  /// is a body blocked in a wait on another thread.
  [[nodiscard]] std::vector<std::string> describe_blocked(const std::vector<Ref<TaskRecord>>& roots,
                                                          bool* foreign_wait = nullptr);
  std::vector<Ref<TaskRecord>> all_unfinished_roots();

  // tracing
  [[nodiscard]] std::int64_t now_ns() const noexcept;
  void write_trace() const;

  Runtime* m_owner;
  RuntimeConfig m_config;
  bool m_timed = false;
  bool m_tracing = false;
  std::chrono::steady_clock::time_point m_start;

  CoreSet m_core_set;  // read before any worker starts
  std::vector<std::unique_ptr<DeviceSlot>> m_devices;  // [0] = cpu, [1 + i] = gpu(i)
  std::vector<const Device*> m_device_list;
  std::vector<std::unique_ptr<Worker>> m_workers;
  ResolvedPlacement m_default_placement;

  /// Tasks spawned by one thread that is not a worker (the workers count theirs in their
  /// Worker): that thread's own counter, written like a worker's (a plain store), found
  /// through a thread-local cache keyed by m_id. A push-only list; see outstanding().
  struct ExternalSpawns {
    std::atomic<std::int64_t> spawned{0};
    std::thread::id thread;
    ExternalSpawns* next = nullptr;
  };
  /// The calling thread's counter (made on its first spawn into this runtime).
  ExternalSpawns& external_spawns();
  /// Distinguishes runtimes in the thread-local caches (an address can be reused).
  std::uint64_t m_id = 0;  // set by the constructor, then read-only
  std::atomic<ExternalSpawns*> m_external_spawns{nullptr};
  std::mutex m_external_mutex;  // serializes additions to the list
  /// Tasks finished by threads that are not workers.
  alignas(64) std::atomic<std::int64_t> m_finished_elsewhere{0};
  alignas(64) std::atomic<int> m_all_waiters{0};
  /// Workers blocked in wait_until (they sleep on their device's idle EventCount, with the
  /// idle workers): notify_waiters() wakes those EventCounts only when this is non-zero.
  std::atomic<int> m_blocked_workers{0};
  std::atomic<bool> m_stop{false};
  std::atomic<std::uint64_t> m_helper_progress{0};  // tasks finished off the workers
  std::atomic<std::uint64_t> m_helper_bodies{0};    // bodies run by helping threads
  std::atomic<int> m_helpers_active{0};
  std::atomic<std::int64_t> m_deferred_outstanding{0};
  std::atomic<std::uint64_t> m_failed{0};
  EventCount m_helper_idle;  // threads waiting outside the workers
  /// Threads outside the workers asleep in a wait that may help with any cpu task (a
  /// top-level wait): a task queued for the cpu workers wakes one of them. Read relaxed on
  /// every cpu enqueue, so it has its own line; a stale read only costs help, never a wake-up
  /// that the wait itself needs (those come from notify_waiters()).
  alignas(64) std::atomic<int> m_sleeping_helpers{0};
  /// The cpu workers are fewer than the rank's cores: a thread waiting outside them has a core
  /// to help on, so it spins before sleeping and is woken for new cpu work. (With a worker on
  /// every core it would only take a core from a worker; it sleeps at once, as before.)
  bool m_spare_core = false;
  // What waiting threads drive (WaitDriver). Copy-on-write: a wait takes the list once.
  std::atomic<int> m_num_drivers{0};
  std::atomic<std::uint64_t> m_drivers_version{0};  // bumped on every change of the list
  /// Idle workers driving right now: a waiting thread that is not a worker does not drive
  /// meanwhile (it would only take the core from them).
  std::atomic<int> m_driving_workers{0};
  /// Waiting threads asleep because idle workers were driving: woken when one stops.
  std::atomic<int> m_deferring_waiters{0};
  mutable std::mutex m_driver_mutex;
  std::shared_ptr<const DriverList> m_drivers;

  bool m_infer = true;
  std::string m_cuda_note;  // why there are no CUDA devices (empty when there are)
  TraceClock m_clock;
  std::mutex m_block_mutex;
  std::vector<std::weak_ptr<BlockState>> m_blocks;

  mutable std::mutex m_failure_mutex;
  std::vector<std::shared_ptr<Failure>> m_failures;

  std::mutex m_space_mutex;
  std::vector<std::weak_ptr<TaskSpaceState>> m_spaces;


  // Tracing (only when m_tracing).
  std::atomic<std::uint64_t> m_next_trace_id{1};
  mutable std::mutex m_trace_mutex;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> m_trace_flows;
  std::vector<TraceEvent> m_helper_trace;
  // Data copies and transfers (kind: 0 h2d, 1 d2h, 2 d2d).
  std::atomic<std::uint64_t> m_copies[3]{};
  std::atomic<std::uint64_t> m_copy_bytes[3]{};
};

}  // namespace parla::detail
