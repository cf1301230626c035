// TaskContext: what a running body can see of its task and runtime.
#pragma once

#include <string>
#include <vector>

#include <parla/completion_token.hpp>
#include <parla/fwd.hpp>
#include <parla/task.hpp>

namespace parla {

/// Passed to bodies of the form `R(TaskContext&)`; valid only during the body.
class TaskContext {
 public:
  TaskContext(Runtime& runtime, detail::TaskRecord& task, int worker) noexcept
      : m_runtime(&runtime), m_task(&task), m_worker(worker) {}
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
  /// Defers the task's completion until the returned token is fulfilled (from any thread).
  /// Call at most once per task.
  [[nodiscard]] CompletionToken defer_completion();

 private:
  Runtime* m_runtime;
  detail::TaskRecord* m_task;
  int m_worker;
};

}  // namespace parla
