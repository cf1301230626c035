// GIL discipline shared by the binding files: a GIL-safe owner of a Python object (PyRef),
// the GIL for task bodies on runtime threads (BodyGil), a task's Python result (PyResult)
// and a Python exception carried through the C++ runtime (PyTaskException).
//
// The rule they enforce: Python reference counts change only while the GIL is held. A task
// record, its body and its result live in C++ and may die on any thread (a worker, a thread
// cancelling a chain, the thread joining the workers), so every Python reference the runtime
// holds is a PyRef, whose destructor takes the GIL when it is not already held.
#pragma once

#include <pybind11/pybind11.h>

#include <exception>
#include <string>
#include <utility>

namespace parla::python {

namespace py = pybind11;

/// Whether the interpreter can still run Python code on this thread (false once it is
/// finalizing: then references are leaked instead of released).
bool interpreter_alive() noexcept;

/// Holds the GIL for its lifetime unless this thread holds it already. Runtime threads get
/// one persistent Python thread state each (made on first use, freed when the thread ends),
/// so threading.local data survive from one task to the next and taking the GIL costs one
/// PyEval_RestoreThread, not a thread-state allocation per task.
class BodyGil {
 public:
  BodyGil();
  ~BodyGil();
  BodyGil(const BodyGil&) = delete;
  BodyGil& operator=(const BodyGil&) = delete;

 private:
  bool m_acquired = false;
};

/// An owned reference to a Python object that may be destroyed on any thread.
class PyRef {
 public:
  PyRef() = default;
  /// New reference to `h` (GIL held).
  explicit PyRef(py::handle h) : m_ptr(h.inc_ref().ptr()) {}
  /// Takes over `o`'s reference (GIL held).
  static PyRef steal(py::object&& o) {
    PyRef r;
    r.m_ptr = o.release().ptr();
    return r;
  }
  PyRef(PyRef&& o) noexcept : m_ptr(std::exchange(o.m_ptr, nullptr)) {}
  PyRef& operator=(PyRef&& o) noexcept {
    if (this != &o) {
      reset();
      m_ptr = std::exchange(o.m_ptr, nullptr);
    }
    return *this;
  }
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() { reset(); }

  /// Drops the reference, taking the GIL if this thread does not hold it.
  void reset() noexcept;
  /// Drops the reference; the caller holds the GIL.
  void reset_with_gil() noexcept {
    PyObject* p = std::exchange(m_ptr, nullptr);
    Py_XDECREF(p);
  }
  [[nodiscard]] explicit operator bool() const noexcept { return m_ptr != nullptr; }
  [[nodiscard]] py::handle handle() const noexcept { return m_ptr; }
  /// A new reference (GIL held).
  [[nodiscard]] py::object object() const { return py::reinterpret_borrow<py::object>(m_ptr); }

 private:
  PyObject* m_ptr = nullptr;
};

/// What a Python task body returned, stored in the task's C++ result box.
struct PyResult {
  PyRef value;
};

/// A Python exception raised by a task body, carried through the runtime as the task's
/// failure. Keeps the exception object (with its __traceback__) so the wait that reports it
/// re-raises the original object; what() is computed once, under the GIL, because the
/// runtime formats failures on threads that do not hold it.
class PyTaskException : public std::exception {
 public:
  /// Takes the error currently set (GIL held).
  explicit PyTaskException(py::error_already_set& e);
  /// Wraps an exception object (GIL held).
  explicit PyTaskException(py::handle exc);
  [[nodiscard]] const char* what() const noexcept override { return m_message.c_str(); }
  [[nodiscard]] py::handle exception() const noexcept { return m_exception->handle(); }

 private:
  void describe();
  // shared: exception_ptr copies the exception object; the Python reference stays single.
  std::shared_ptr<PyRef> m_exception;
  std::string m_message;
};

}  // namespace parla::python
