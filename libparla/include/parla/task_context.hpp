// TaskContext: what a running body can see of its task and runtime.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <parla/completion_token.hpp>
#include <parla/data_block.hpp>
#include <parla/fwd.hpp>
#include <parla/task.hpp>

namespace parla {

class TaskContext;
namespace detail {
/// Pointer to the task's `access`-th declared data access (in the order of SpawnOptions'
/// .in, .out, .inout) on its first device: for bodies that hold no DataSlice (the
/// communication layer's lean send and receive bodies). Throws parla::Error when the task
/// declared fewer accesses.
[[nodiscard]] void* declared_data(const TaskContext& ctx, std::size_t access);
}  // namespace detail

/// Passed to bodies of the form `R(TaskContext&)`; valid only during the body.
class TaskContext {
 public:
  TaskContext(Runtime& runtime, detail::TaskRecord& task, int worker, int cores = 0) noexcept
      : m_runtime(&runtime), m_task(&task), m_worker(worker), m_cores(cores) {}
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  /// The runtime, e.g. to spawn nested tasks: `ctx.runtime().spawn(...)`.
  [[nodiscard]] Runtime& runtime() const noexcept { return *m_runtime; }
  /// The task's name.
  [[nodiscard]] std::string name() const;
  /// A handle to the running task.
  [[nodiscard]] Task task() const;
  /// The devices the task holds (one, or several for an all_of placement).
  [[nodiscard]] std::vector<const Device*> devices() const;
  /// The first (or only) device the task holds.
  [[nodiscard]] const Device& device() const;
  /// Index of the worker running the body (see RuntimeStats::workers), -1 for a thread
  /// that helps while waiting.
  [[nodiscard]] int worker() const noexcept { return m_worker; }
  /// Cores reserved for this body (a cpu task with vcus v on a process of N cores gets
  /// max(1, round(v * N)) of them, its thread pinned there while it runs); 0 when the task
  /// reserves no vcus and shares the workers' cores. Size library thread pools (OpenMP,
  /// BLAS) to this so concurrent tasks never oversubscribe the node.
  [[nodiscard]] int cores() const noexcept { return m_cores; }
  /// Defers the task's completion until the returned token is fulfilled (from any thread).
  /// Call at most once per task.
  [[nodiscard]] CompletionToken defer_completion();

  /// The stream of the task on its first device (GPU tasks). The body enqueues its work
  /// there and returns; the task completes when that work has finished. Throws
  /// parla::Error for a task on the cpu (it has no stream).
  [[nodiscard]] Stream& stream() const;
  /// The stream of the task on its `i`-th device (order of `devices()`).
  [[nodiscard]] Stream& stream(std::size_t i) const;
  /// Pointer to `slice` (or a whole block) on the task's first device, or on its `i`-th
  /// device for multi-device tasks. The task must have declared an access covering it.
  [[nodiscard]] void* data(const DataSlice& slice, std::size_t i = 0) const;
  template <class T>
  [[nodiscard]] T* data_as(const DataSlice& slice, std::size_t i = 0) const {
    return static_cast<T*>(data(slice, i));
  }

 private:
  friend void* detail::declared_data(const TaskContext& ctx, std::size_t access);
  Runtime* m_runtime;
  detail::TaskRecord* m_task;
  int m_worker;
  int m_cores;
};

}  // namespace parla
