// Errors of the runtime as Python exceptions. A task failure whose cause is a Python
// exception is re-raised as that very exception object (with the body's traceback and a
// note naming the task); other failures become parla._core.TaskError.
#include <pybind11/stl.h>

#include <string>

#include "bindings.hpp"

namespace parla::python {

namespace {

PyObject* g_parla_error = nullptr;
PyObject* g_task_error = nullptr;
PyObject* g_deadlock_error = nullptr;

void annotate(py::handle exc, const std::string& task_name) {
  const std::string note = "raised in Parla task '" + task_name + "'";
  try {
    py::object notes = py::getattr(exc, "__notes__", py::none());
    if (!notes.is_none()) {
      for (py::handle n : notes) {
        if (py::isinstance<py::str>(n) && n.cast<std::string>() == note) return;
      }
    }
    if (py::hasattr(exc, "add_note")) {
      exc.attr("add_note")(note);  // Python >= 3.11
    } else {
      if (notes.is_none()) {
        notes = py::list();
        exc.attr("__notes__") = notes;
      }
      notes.attr("append")(note);
    }
    if (!py::hasattr(exc, "parla_task")) exc.attr("parla_task") = task_name;
  } catch (py::error_already_set&) {
    // An exception type that refuses attributes: raise it unannotated.
  }
}

}  // namespace

void raise_task_error(const TaskError& e) {
  try {
    std::rethrow_exception(e.original());
  } catch (const PyTaskException& original) {
    py::handle exc = original.exception();
    annotate(exc, e.task_name());
    py::object type = py::reinterpret_borrow<py::object>(py::type::handle_of(exc));
    py::object value = py::reinterpret_borrow<py::object>(exc);
    py::object tb = py::getattr(exc, "__traceback__", py::none());
    // PyErr_Restore steals the three references; the traceback keeps the body's frames.
    PyErr_Restore(type.release().ptr(), value.release().ptr(), tb.is_none() ? nullptr : tb.release().ptr());
    throw py::error_already_set();
  } catch (...) {
  }
  py::object err = py::reinterpret_borrow<py::object>(g_task_error)(e.what());
  err.attr("task_name") = e.task_name();
  PyErr_SetObject(g_task_error, err.ptr());
  throw py::error_already_set();
}

void raise_failure_of(const detail::TaskRecord& record) {
  raise_task_error(detail::task_error_of(record));
}

void bind_errors(py::module_& m) {
  // Raw pointers, deliberately never released: the module attributes own the classes, and a
  // static py::object would be released after the interpreter is gone.
  auto make = [&](const char* name, PyObject* base) {
    const std::string qualified = std::string("parla._core.") + name;
    PyObject* cls = PyErr_NewException(qualified.c_str(), base, nullptr);
    if (cls == nullptr) throw py::error_already_set();
    m.attr(name) = py::reinterpret_borrow<py::object>(cls);
    return cls;
  };
  g_parla_error = make("ParlaError", PyExc_RuntimeError);
  g_task_error = make("TaskError", g_parla_error);
  g_deadlock_error = make("DeadlockError", g_parla_error);
  m.attr("ParlaError").attr("__doc__") = "An error of the Parla runtime (bad placement, duplicate task id, ...)";
  m.attr("TaskError").attr("__doc__") =
      "A task failed with an error that is not a Python exception; task_name names it";
  m.attr("DeadlockError").attr("__doc__") =
      "Nothing can make progress; blocked lists each blocked task and what it waits for";

  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const TaskError& e) {
      try {
        raise_task_error(e);
      } catch (py::error_already_set& set) {
        set.restore();
      }
    } catch (const DeadlockError& e) {
      py::object err = py::reinterpret_borrow<py::object>(g_deadlock_error)(e.what());
      err.attr("blocked") = py::cast(e.blocked());
      PyErr_SetObject(g_deadlock_error, err.ptr());
    } catch (const Error& e) {
      PyErr_SetString(g_parla_error, e.what());
    }
  });
}

}  // namespace parla::python
