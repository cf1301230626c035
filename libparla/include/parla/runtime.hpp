// Runtime: the node scheduler (workers, devices, spawning, waiting).
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <parla/data_block.hpp>
#include <parla/dep.hpp>
#include <parla/detail/task_function.hpp>
#include <parla/device.hpp>
#include <parla/runtime_config.hpp>
#include <parla/runtime_stats.hpp>
#include <parla/spawn_options.hpp>
#include <parla/task.hpp>
#include <parla/task_context.hpp>
#include <parla/task_space.hpp>
#include <parla/wait_driver.hpp>

namespace parla {

namespace detail {

/// Adapts a user body (`R()` or `R(TaskContext&)`) to the runtime's calling convention and
/// stores its return value.
template <class Fn>
struct BodyAdapter {
  using Result = typename std::conditional_t<std::is_invocable_v<Fn&, TaskContext&>,
                                             std::invoke_result<Fn&, TaskContext&>,
                                             std::invoke_result<Fn&>>::type;
  /// Read by TaskFunction: a body returning void never touches the task's result box.
  static constexpr bool returns_value = !std::is_void_v<Result>;
  Fn fn;
  /// Passed through for a body that names its task lazily (see TaskFunction::describes).
  void describe(std::string& out) const
    requires requires(const Fn& f, std::string& s) { f.describe(s); }
  {
    fn.describe(out);
  }
  void operator()(TaskContext& ctx, ResultBox& out) {
    if constexpr (std::is_invocable_v<Fn&, TaskContext&>) {
      using R = std::invoke_result_t<Fn&, TaskContext&>;
      if constexpr (std::is_void_v<R>) {
        fn(ctx);
      } else {
        out.emplace<std::decay_t<R>>(fn(ctx));
      }
    } else {
      using R = std::invoke_result_t<Fn&>;
      if constexpr (std::is_void_v<R>) {
        fn();
      } else {
        out.emplace<std::decay_t<R>>(fn());
      }
    }
  }
};

}  // namespace detail

/// The node runtime: a cpu device with N workers and optional simulated GPUs, each with one
/// worker. Spawn from any thread (including task bodies); wait from any thread (a waiting
/// thread helps run tasks, so a wait inside a body does not deadlock the pool).
///
/// The destructor waits for every task; failures nobody waited for are printed on stderr
/// there (destructors cannot throw) — call `finish()` first to get them as exceptions.
class Runtime {
 public:
  explicit Runtime(RuntimeConfig config = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Spawns a task running `body` (a move-only callable `R()` or `R(TaskContext&)`; its
  /// return value is the task's result). Throws parla::Error when the options are invalid
  /// (a key spawned twice, a device that does not exist, a reservation larger than any
  /// candidate device); nothing is spawned then.
  template <class F>
  Task spawn(SpawnOptions options, F&& body) {
    return submit(std::move(options), make_body(std::forward<F>(body)));
  }

  /// The lean spawn: an anonymous cpu task with default options that runs after every task
  /// in `after` — what `spawn({.dependencies = {a, b}}, body)` does, without building the
  /// options or a dependency list (no allocation for either). For hot loops that spawn many
  /// small tasks from C++ and hold Task handles. Throws parla::Error for an empty handle or
  /// one of another runtime; nothing is spawned then.
  template <class F>
  Task spawn_after(std::span<const Task> after, F&& body) {
    return submit_after(after, make_body(std::forward<F>(body)));
  }
  /// `rt.spawn_after({a, b}, body)`.
  template <class F>
  Task spawn_after(std::initializer_list<Task> after, F&& body) {
    return spawn_after(std::span<const Task>(after.begin(), after.size()), std::forward<F>(body));
  }

  /// Waits for a task, an element, or every element of a slice; rethrows the first failure
  /// among them as parla::TaskError, or throws parla::DeadlockError when nothing can make
  /// progress for the deadlock timeout.
  void wait(const Dep& what);
  /// Waits for every element of the space (spawned or referenced).
  void wait(const TaskSpace& space);
  /// Waits until every spawned task is done; rethrows the first failure no wait has
  /// reported yet.
  void wait_all();
  /// Same as wait_all(); the explicit end of a runtime scope.
  void finish() { wait_all(); }

  /// Waits for every task that accesses `block` (as inferred dependencies order them),
  /// then makes its host copy valid, so `block.host_data()` holds the current contents.
  void sync_to_host(const DataBlock& block);
  /// Whether data accesses add dependencies (RuntimeConfig::infer_dependencies resolved).
  [[nodiscard]] bool infers_dependencies() const noexcept;

  /// Every device: the cpu first (id 0), then gpu(0), gpu(1), ...
  [[nodiscard]] const std::vector<const Device*>& devices() const noexcept;
  /// Number of GPUs (simulated or real).
  [[nodiscard]] int num_gpus() const noexcept;
  /// Number of cpu workers.
  [[nodiscard]] int num_workers() const noexcept;
  /// The settings in effect (environment resolved).
  [[nodiscard]] const RuntimeConfig& config() const noexcept;
  /// Counters and busy fractions (see RuntimeStats).
  [[nodiscard]] RuntimeStats stats() const;
  /// The first task failure that no wait has reported (rethrown) yet and that happened at
  /// least `grace` ago, as its TaskError message ("task 'T[3]' failed: ..."); empty when
  /// there is none. The MPI layer's watchdog uses it to end a job whose failure nobody will
  /// pick up (the other ranks would wait for this one forever).
  [[nodiscard]] std::optional<std::string> unreported_failure(std::chrono::milliseconds grace) const;

  /// Registers `driver`: from now on, threads other than workers that block in a wait of this
  /// runtime drive it while it is busy (see WaitDriver). The MPI layer registers its progress
  /// engine. The runtime keeps a reference until `remove_wait_driver`.
  void add_wait_driver(std::shared_ptr<WaitDriver> driver);
  /// Unregisters it; a wait already inside one of its calls may still finish that call.
  void remove_wait_driver(const WaitDriver* driver);
  /// Whether the calling thread is one of this runtime's workers.
  [[nodiscard]] bool on_worker_thread() const noexcept;

  [[nodiscard]] detail::RuntimeImpl& impl() const noexcept { return *m_impl; }

 private:
  /// A spawn's body in the runtime's calling convention (checked: callable, movable).
  template <class F>
  static detail::TaskFunction make_body(F&& body) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&, TaskContext&> || std::is_invocable_v<Fn&>,
                  "a task body must be callable as body() or body(parla::TaskContext&)");
    static_assert(std::is_move_constructible_v<Fn>, "a task body must be movable");
    return detail::TaskFunction(detail::BodyAdapter<Fn>{std::forward<F>(body)});
  }
  Task submit(SpawnOptions&& options, detail::TaskFunction&& body);
  Task submit_after(std::span<const Task> after, detail::TaskFunction&& body);
  std::unique_ptr<detail::RuntimeImpl> m_impl;
};

}  // namespace parla
