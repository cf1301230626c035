// Types shared by the bind_<area>.cpp files of parla._core.
#pragma once

#include <pybind11/pybind11.h>

#include <parla/parla.hpp>

#include <memory>
#include <string>

#include "py_ref.hpp"

namespace parla::python {

namespace py = pybind11;

/// A Python-visible handle to one task: an element of a task space (`ref`, possibly not
/// spawned yet) and/or the spawned task itself (`task`). Used as a dependency and to wait.
struct TaskHandle {
  TaskRef ref;
  Task task;

  /// The dependency this handle stands for (the task once spawned: no key lookup).
  [[nodiscard]] Dep dep() const { return task ? Dep(task) : Dep(ref); }
  /// The record if the element exists (never creates a placeholder).
  [[nodiscard]] detail::TaskRecord* record_if_exists() const;
  [[nodiscard]] std::string name() const { return task ? task.name() : ref.name(); }
};

/// The Python runtime object: a parla::Runtime plus what Python bodies need.
class PyRuntime;

/// The context of the task body running on this thread (innermost when a waiting body runs
/// another one), or null: lets Python code inside a body reach `ctx.data(...)`.
[[nodiscard]] TaskContext* current_context() noexcept;

/// Makes `ctx` the current context for its lifetime.
class ContextScope {
 public:
  explicit ContextScope(TaskContext* ctx) noexcept;
  ~ContextScope();
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  TaskContext* m_prev;
};

/// The data accesses of a spawn from the package's form: `(in, out, inout)`, each a list of
/// `(DataBlock, offset, bytes)`. None: no accesses.
void set_accesses(SpawnOptions& o, py::handle accesses);

/// Raises the Python form of a task failure (the original Python exception object, with a
/// note naming the task, when the body raised one). GIL held.
[[noreturn]] void raise_task_error(const TaskError& e);
/// Raises the failure recorded in a failed or cancelled task, without its runtime (which may
/// be gone). GIL held.
[[noreturn]] void raise_failure_of(const detail::TaskRecord& record);

void init_interpreter_state();
void bind_errors(py::module_& m);
void bind_tasks(py::module_& m);
void bind_runtime(py::module_& m);
void bind_utils(py::module_& m);
void bind_data(py::module_& m);

}  // namespace parla::python
