// PyRuntime (a parla::Runtime driven from Python) and Completion (the deferred completion of
// an `async def` task).
#pragma once

#include <memory>
#include <vector>

#include "bindings.hpp"

namespace parla::python {

class PyRuntime {
 public:
  PyRuntime(const RuntimeConfig& config, py::object runner);
  /// Joins the workers (with the GIL released) if close() was not called.
  ~PyRuntime();
  PyRuntime(const PyRuntime&) = delete;
  PyRuntime& operator=(const PyRuntime&) = delete;

  /// The runtime; raises if closed.
  [[nodiscard]] Runtime& rt() const;
  [[nodiscard]] bool closed() const noexcept { return m_rt == nullptr; }
  /// Waits for every task and destroys the runtime (GIL released by the caller).
  void close();

  /// Called by a body, under the GIL, to run Python code: runner(task, fn, devices, completion).
  [[nodiscard]] py::handle runner() const noexcept { return m_runner.handle(); }
  /// `(id,)` for each device id, made once (GIL held to use).
  [[nodiscard]] py::handle device_tuple(int id) const noexcept { return m_device_tuples[static_cast<std::size_t>(id)].handle(); }
  /// The device ids a running task holds, as a Python tuple (GIL held).
  [[nodiscard]] py::object devices_of(const std::vector<const Device*>& devices) const;

 private:
  std::unique_ptr<Runtime> m_rt;
  PyRef m_runner;
  std::vector<PyRef> m_device_tuples;
};

/// The completion of an `async def` task: fulfilled with the coroutine's return value when it
/// finishes, or failed with its exception. Continuations (one per `await`) share it.
class Completion {
 public:
  Completion(PyRuntime& runtime, CompletionToken token, Task task, std::vector<const Device*> devices)
      : m_runtime(&runtime), m_token(std::move(token)), m_task(std::move(task)), m_devices(std::move(devices)) {}

  /// Stores `value` as the task's result and completes it (GIL held on entry).
  void fulfill(py::handle value);
  /// Fails the task with the Python exception `exc` (GIL held on entry).
  void fail(py::handle exc);
  /// Fails the task with a C++ error (no GIL needed).
  void fail(std::exception_ptr error);
  [[nodiscard]] bool pending() const noexcept { return m_token.pending(); }
  [[nodiscard]] PyRuntime& runtime() const noexcept { return *m_runtime; }
  [[nodiscard]] const Task& task() const noexcept { return m_task; }
  [[nodiscard]] const std::vector<const Device*>& devices() const noexcept { return m_devices; }

 private:
  PyRuntime* m_runtime;
  CompletionToken m_token;
  Task m_task;
  std::vector<const Device*> m_devices;
};

}  // namespace parla::python
