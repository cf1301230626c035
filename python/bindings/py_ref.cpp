#include "py_ref.hpp"

namespace parla::python {

namespace {

PyInterpreterState* g_interpreter = nullptr;

bool finalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

/// The Python thread state of a runtime thread, made on first use and deleted when the
/// thread ends (workers end when their runtime is destroyed, which the binding does with the
/// GIL released, so the deletion can take it).
struct ThreadState {
  PyThreadState* state = nullptr;
  bool owned = false;

  PyThreadState* get() {
    if (state == nullptr) {
      state = PyGILState_GetThisThreadState();
      if (state == nullptr) {
        // Binds itself as this thread's GIL-state thread state, so PyGILState_Check() and
        // pybind11's gil_scoped_acquire find it.
        state = PyThreadState_New(g_interpreter);
        owned = true;
      }
    }
    return state;
  }

  ThreadState() = default;
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;
  ~ThreadState() {
    if (!owned || state == nullptr || !interpreter_alive()) return;
    PyEval_RestoreThread(state);
    PyThreadState_Clear(state);
    PyThreadState_DeleteCurrent();
  }
};

thread_local ThreadState t_state;

}  // namespace

void init_interpreter_state() { g_interpreter = PyInterpreterState_Get(); }

bool interpreter_alive() noexcept { return Py_IsInitialized() != 0 && !finalizing(); }

BodyGil::BodyGil() {
  if (PyGILState_Check() != 0) return;
  PyEval_RestoreThread(t_state.get());
  m_acquired = true;
}

BodyGil::~BodyGil() {
  if (m_acquired) PyEval_SaveThread();
}

void PyRef::reset() noexcept {
  if (m_ptr == nullptr) return;
  if (!interpreter_alive()) {
    m_ptr = nullptr;  // leaked on purpose: Python is shutting down
    return;
  }
  BodyGil gil;
  reset_with_gil();
}

PyTaskException::PyTaskException(py::error_already_set& e)
    : m_exception(std::make_shared<PyRef>(e.value())) {
  describe();
}

PyTaskException::PyTaskException(py::handle exc) : m_exception(std::make_shared<PyRef>(exc)) {
  describe();
}

void PyTaskException::describe() {
  py::handle exc = m_exception->handle();
  try {
    const std::string type = py::str(py::type::handle_of(exc).attr("__name__"));
    const std::string text = py::str(exc);
    m_message = text.empty() ? type : type + ": " + text;
  } catch (py::error_already_set&) {
    m_message = "<Python exception that cannot be printed>";
  }
}

}  // namespace parla::python
