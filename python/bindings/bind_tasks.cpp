// Task handles and task spaces. The Python package keeps its own TaskSpace (Parla's keys may
// be any hashable values); each of its elements holds a TaskHandle into a core TaskSpace,
// so dependencies on elements not spawned yet are the runtime's placeholders.
#include <pybind11/stl.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "py_runtime.hpp"

namespace parla::python {

detail::TaskRecord* TaskHandle::record_if_exists() const {
  if (task) return task.record();
  if (ref.valid() && ref.spawned()) return ref.task().record();
  return nullptr;
}

namespace {

/// Python key -> TaskKey: an int, a tuple of up to TaskKey::max_rank ints, or a string.
TaskKey to_key(py::handle key) {
  if (py::isinstance<py::str>(key)) return TaskKey(key.cast<std::string>());
  if (py::isinstance<py::int_>(key)) return TaskKey(key.cast<std::int64_t>());
  if (py::isinstance<py::tuple>(key)) {
    auto t = py::reinterpret_borrow<py::tuple>(key);
    if (t.size() >= 1 && t.size() <= TaskKey::max_rank) {
      std::int64_t v[TaskKey::max_rank] = {};
      for (std::size_t i = 0; i < t.size(); ++i) {
        if (!py::isinstance<py::int_>(t[i])) throw py::type_error("tuple task keys hold integers");
        v[i] = t[i].cast<std::int64_t>();
      }
      switch (t.size()) {
        case 1: return TaskKey{v[0]};
        case 2: return TaskKey{v[0], v[1]};
        case 3: return TaskKey{v[0], v[1], v[2]};
        default: return TaskKey{v[0], v[1], v[2], v[3]};
      }
    }
  }
  throw py::type_error("a core task key is an int, a tuple of 1 to 4 ints, or a str");
}

py::object result_of(const TaskHandle& h) {
  detail::TaskRecord* rec = h.record_if_exists();
  if (rec == nullptr) {
    throw Error("task " + h.name() + " has not been spawned; its result does not exist yet");
  }
  const TaskState s = rec->state();
  if (s == TaskState::failed || s == TaskState::cancelled) raise_failure_of(*rec);
  if (s != TaskState::completed) {
    throw Error("the result of task " + h.name() + " was read while it is " + to_string(s) +
                "; wait for it first (await it, or T.wait())");
  }
  const detail::ResultBox& box = rec->result();
  if (!box.has_value() || *box.type() != typeid(PyResult)) return py::none();
  return static_cast<const PyResult*>(box.get())->value.object();
}

}  // namespace

void bind_tasks(py::module_& m) {
  py::class_<TaskHandle>(m, "TaskHandle", "A task, or an element of a task space (spawned or not)")
      .def_property_readonly("name", &TaskHandle::name)
      .def_property_readonly(
          "state",
          [](const TaskHandle& h) -> std::string {
            detail::TaskRecord* rec = h.record_if_exists();
            return rec == nullptr ? "created" : to_string(rec->state());
          },
          "created (not spawned), pending, ready, running, completed, failed or cancelled")
      .def_property_readonly("spawned", [](const TaskHandle& h) { return h.task.valid() || h.ref.spawned(); })
      .def_property_readonly("done",
                             [](const TaskHandle& h) {
                               detail::TaskRecord* rec = h.record_if_exists();
                               return rec != nullptr && is_final(rec->state());
                             })
      .def("result", &result_of,
           "The body's return value; raises the task's error if it failed or was cancelled")
      .def(
          "exception",
          [](const TaskHandle& h) -> py::object {
            detail::TaskRecord* rec = h.record_if_exists();
            if (rec == nullptr || !rec->failure()) return py::none();
            try {
              std::rethrow_exception(rec->failure()->error);
            } catch (const PyTaskException& e) {
              return py::reinterpret_borrow<py::object>(e.exception());
            } catch (const std::exception& e) {
              return py::str(e.what());
            } catch (...) {
              return py::str("unknown error");
            }
          },
          "The exception that failed (or cancelled) the task, else None")
      .def("__repr__", [](const TaskHandle& h) { return "<TaskHandle " + h.name() + ">"; });

  py::class_<TaskSpace>(m, "TaskSpace", "A core task space (keys: int, tuple of <= 4 ints, str)")
      .def(py::init([](PyRuntime& rt, std::string name) { return TaskSpace(rt.rt(), std::move(name)); }),
           py::arg("runtime"), py::arg("name"))
      .def("handle", [](const TaskSpace& s, py::handle key) { return TaskHandle{s[to_key(key)], {}}; },
           "A handle to element `key` (does not create it)")
      .def_property_readonly("name", &TaskSpace::name)
      .def("__len__", &TaskSpace::size);
}

}  // namespace parla::python
