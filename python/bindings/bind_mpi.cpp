// parla._core.mpi: the communication layer (parla::mpi::Comm) for `from parla import mpi`.
//
// Communicators come from mpi4py through its C API (PyMPIComm_Get), so the runtime works on
// a duplicate of exactly the communicator the program passes (COMM_WORLD, a split, ...).
// Buffers: a data block range (a PArray) declares its access like any task; a plain Python
// buffer (NumPy array, bytearray) is kept alive by the operation until its request completes.
#include <pybind11/stl.h>

#include <parla/mpi/mpi.hpp>

#if PARLA_HAVE_MPI4PY
#include <mpi4py/mpi4py.h>
#endif

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "py_runtime.hpp"

namespace parla::python {

namespace {

namespace pm = parla::mpi;

MPI_Comm comm_from_python(py::handle obj) {
  if (obj.is_none()) return MPI_COMM_WORLD;
#if PARLA_HAVE_MPI4PY
  // Imported on first use: importing mpi4py.MPI initialises MPI, which `import parla` must
  // not do by itself.
  static bool imported = false;
  if (!imported) {
    if (import_mpi4py() < 0) throw py::error_already_set();
    imported = true;
  }
  if (PyObject_TypeCheck(obj.ptr(), &PyMPIComm_Type) != 0) {
    MPI_Comm* comm = PyMPIComm_Get(obj.ptr());
    if (comm == nullptr) throw py::error_already_set();
    return *comm;
  }
#endif
  if (py::hasattr(obj, "py2f")) {
    // Any object with mpi4py's Fortran-handle protocol (and the path when mpi4py's header
    // was not found at build time).
    return MPI_Comm_f2c(obj.attr("py2f")().cast<MPI_Fint>());
  }
  throw py::type_error("parla.mpi.Comm takes an mpi4py communicator (e.g. MPI.COMM_WORLD), not " +
                       std::string(py::str(py::type::of(obj).attr("__name__"))));
}

pm::Datatype datatype_of(const std::string& name) {
  if (name == "i32") return pm::Datatype::i32;
  if (name == "i64") return pm::Datatype::i64;
  if (name == "u64") return pm::Datatype::u64;
  if (name == "f32") return pm::Datatype::f32;
  if (name == "f64") return pm::Datatype::f64;
  if (name == "u8") return pm::Datatype::byte;
  throw py::value_error("allreduce supports int32, int64, uint64, uint8, float32 and float64 data, not " + name);
}

pm::ReduceOp op_of(const std::string& name) {
  if (name == "sum") return pm::ReduceOp::sum;
  if (name == "prod") return pm::ReduceOp::prod;
  if (name == "min") return pm::ReduceOp::min;
  if (name == "max") return pm::ReduceOp::max;
  throw py::value_error("allreduce op must be 'sum', 'prod', 'min' or 'max', not '" + name + "'");
}

pm::CommOptions options_of(TaskHandle* key, py::handle dependencies, std::string name) {
  pm::CommOptions o;
  if (key != nullptr) o.key = key->ref;
  if (!dependencies.is_none()) {
    for (py::handle h : py::reinterpret_borrow<py::sequence>(dependencies)) {
      o.dependencies.push_back(h.cast<const TaskHandle&>().dep());
    }
  }
  o.name = std::move(name);
  return o;
}

TaskHandle handle_of(TaskHandle* key, Task t) {
  if (key != nullptr) {
    key->task = std::move(t);
    return *key;
  }
  return TaskHandle{{}, std::move(t)};
}

/// A contiguous Python buffer's address and size, and a reference that keeps it alive until
/// the operation completes (released with the GIL, on whichever thread that is).
struct PyBufferRef {
  void* ptr = nullptr;
  std::size_t bytes = 0;
  std::shared_ptr<void> owner;
};

PyBufferRef buffer_of(py::handle obj, bool writable) {
  py::buffer buffer = py::reinterpret_borrow<py::buffer>(obj);
  py::buffer_info info = buffer.request(writable);
  // request() without strides asks for a C-contiguous buffer: a strided view is refused by
  // the exporter with a BufferError naming it.
  PyBufferRef r;
  r.ptr = info.ptr;
  r.bytes = static_cast<std::size_t>(info.size) * static_cast<std::size_t>(info.itemsize);
  r.owner = std::make_shared<PyRef>(obj);
  return r;
}

/// The Python-facing communicator: a parla::mpi::Comm on a PyRuntime.
class PyComm {
 public:
  PyComm(PyRuntime& rt, py::handle comm, int abort_on_failure) {
    MPI_Comm c = comm_from_python(comm);
    Runtime& r = rt.rt();
    py::gil_scoped_release release;  // MPI_Comm_dup is collective: other ranks may be slower
    m_comm = std::make_unique<pm::Comm>(r, c, pm::CommConfig{.abort_on_failure = abort_on_failure});
  }

  pm::Comm& comm() const {
    if (!m_comm) throw Error("this parla.mpi.Comm was closed");
    return *m_comm;
  }

  void close(bool runtime_alive) {
    if (!m_comm) return;
    if (!runtime_alive) m_comm->detach_runtime();
    std::unique_ptr<pm::Comm> c = std::move(m_comm);
    py::gil_scoped_release release;  // waits for its tasks, joins the progress thread
    c.reset();
  }

 private:
  std::unique_ptr<pm::Comm> m_comm;
};

template <class Fn>
TaskHandle spawn_comm(TaskHandle* key, Fn&& fn) {
  Task t;
  {
    py::gil_scoped_release release;
    t = fn();
  }
  return handle_of(key, std::move(t));
}

}  // namespace

/// The parla::mpi::Comm behind a parla._core.mpi.Comm (used by bind_dist_array.cpp).
pm::Comm& comm_of(py::handle comm) { return comm.cast<const PyComm&>().comm(); }

void bind_mpi(py::module_& parent) {
  py::module_ m = parent.def_submodule("mpi", "parla::mpi: communication tasks (use parla.mpi)");
  m.def("cuda_aware", &pm::cuda_aware_mpi,
        "Whether MPI can send CUDA device memory directly (PARLA_CUDA_AWARE_MPI overrides)");
  m.def("thread_level_ok", [](bool concurrent) {
    pm::require_thread_level(concurrent ? pm::ThreadUse::concurrent : pm::ThreadUse::between_phases);
  }, py::arg("concurrent"), "Raise RuntimeError explaining what to change if MPI's thread level is too low");

  py::class_<PyComm>(m, "Comm", "The runtime's communicator: a duplicate plus a progress thread")
      .def(py::init<PyRuntime&, py::handle, int>(), py::arg("runtime"), py::arg("comm").none(true),
           py::arg("abort_on_failure") = -1)
      .def_property_readonly("rank", [](const PyComm& c) { return c.comm().rank(); })
      .def_property_readonly("size", [](const PyComm& c) { return c.comm().size(); })
      .def_property_readonly("max_tag", [](const PyComm& c) { return c.comm().max_tag(); })
      .def_property_readonly("transport", [](const PyComm& c) { return std::string(c.comm().transport_name()); })
      .def_property_readonly("cuda_aware", [](const PyComm& c) { return c.comm().cuda_aware(); },
                             "Whether device buffers go to MPI directly (see docs/mpi.md, \"Device buffers\")")
      .def_property_readonly("cuda_aware_reason",
                             [](const PyComm& c) { return c.comm().cuda_aware_reason(); })
      .def(
          "send",
          [](PyComm& self, const DataBlock& block, std::size_t offset, std::size_t bytes, int dest, int tag,
             TaskHandle* key, py::handle deps, std::string name) {
            pm::CommOptions o = options_of(key, deps, std::move(name));
            DataSlice s = block.slice(offset, bytes);
            return spawn_comm(key, [&] { return self.comm().send(s, dest, tag, std::move(o)); });
          },
          py::arg("block"), py::arg("offset"), py::arg("bytes"), py::arg("dest"), py::arg("tag"),
          py::arg("key").none(true), py::arg("dependencies"), py::arg("name") = "")
      .def(
          "recv",
          [](PyComm& self, const DataBlock& block, std::size_t offset, std::size_t bytes, int source, int tag,
             TaskHandle* key, py::handle deps, std::string name) {
            pm::CommOptions o = options_of(key, deps, std::move(name));
            DataSlice s = block.slice(offset, bytes);
            return spawn_comm(key, [&] { return self.comm().recv(s, source, tag, std::move(o)); });
          },
          py::arg("block"), py::arg("offset"), py::arg("bytes"), py::arg("source"), py::arg("tag"),
          py::arg("key").none(true), py::arg("dependencies"), py::arg("name") = "")
      .def(
          "send_buffer",
          [](PyComm& self, py::handle obj, int dest, int tag, TaskHandle* key, py::handle deps, std::string name) {
            PyBufferRef b = buffer_of(obj, false);
            pm::CommOptions o = options_of(key, deps, std::move(name));
            o.keepalive = std::move(b.owner);
            return spawn_comm(key, [&] { return self.comm().send(b.ptr, b.bytes, dest, tag, std::move(o)); });
          },
          py::arg("buffer"), py::arg("dest"), py::arg("tag"), py::arg("key").none(true),
          py::arg("dependencies"), py::arg("name") = "")
      .def(
          "recv_buffer",
          [](PyComm& self, py::handle obj, int source, int tag, TaskHandle* key, py::handle deps, std::string name) {
            PyBufferRef b = buffer_of(obj, true);
            pm::CommOptions o = options_of(key, deps, std::move(name));
            o.keepalive = std::move(b.owner);
            return spawn_comm(key, [&] { return self.comm().recv(b.ptr, b.bytes, source, tag, std::move(o)); });
          },
          py::arg("buffer"), py::arg("source"), py::arg("tag"), py::arg("key").none(true),
          py::arg("dependencies"), py::arg("name") = "")
      .def(
          "allreduce",
          [](PyComm& self, const DataBlock& block, std::size_t offset, std::size_t bytes, const std::string& dtype,
             const std::string& op, TaskHandle* key, py::handle deps, std::string name) {
            pm::CommOptions o = options_of(key, deps, std::move(name));
            DataSlice s = block.slice(offset, bytes);
            const pm::Datatype t = datatype_of(dtype);
            const pm::ReduceOp r = op_of(op);
            return spawn_comm(key, [&] { return self.comm().allreduce(s, t, r, std::move(o)); });
          },
          py::arg("block"), py::arg("offset"), py::arg("bytes"), py::arg("dtype"), py::arg("op"),
          py::arg("key").none(true), py::arg("dependencies"), py::arg("name") = "")
      .def(
          "allreduce_buffer",
          [](PyComm& self, py::handle obj, const std::string& dtype, const std::string& op, TaskHandle* key,
             py::handle deps, std::string name) {
            PyBufferRef b = buffer_of(obj, true);
            const pm::Datatype t = datatype_of(dtype);
            const pm::ReduceOp r = op_of(op);
            pm::CommOptions o = options_of(key, deps, std::move(name));
            o.keepalive = std::move(b.owner);
            const std::size_t count = b.bytes / pm::size_of(t);
            return spawn_comm(key, [&] { return self.comm().allreduce(b.ptr, count, t, r, std::move(o)); });
          },
          py::arg("buffer"), py::arg("dtype"), py::arg("op"), py::arg("key").none(true),
          py::arg("dependencies"), py::arg("name") = "")
      .def(
          "bcast",
          [](PyComm& self, const DataBlock& block, std::size_t offset, std::size_t bytes, int root,
             TaskHandle* key, py::handle deps, std::string name) {
            pm::CommOptions o = options_of(key, deps, std::move(name));
            DataSlice s = block.slice(offset, bytes);
            return spawn_comm(key, [&] { return self.comm().bcast(s, root, std::move(o)); });
          },
          py::arg("block"), py::arg("offset"), py::arg("bytes"), py::arg("root"),
          py::arg("key").none(true), py::arg("dependencies"), py::arg("name") = "")
      .def(
          "bcast_buffer",
          [](PyComm& self, py::handle obj, int root, TaskHandle* key, py::handle deps, std::string name) {
            PyBufferRef b = buffer_of(obj, true);
            pm::CommOptions o = options_of(key, deps, std::move(name));
            o.keepalive = std::move(b.owner);
            return spawn_comm(key, [&] { return self.comm().bcast(b.ptr, b.bytes, root, std::move(o)); });
          },
          py::arg("buffer"), py::arg("root"), py::arg("key").none(true), py::arg("dependencies"),
          py::arg("name") = "")
      .def(
          "barrier",
          [](PyComm& self, TaskHandle* key, py::handle deps, std::string name) {
            pm::CommOptions o = options_of(key, deps, std::move(name));
            return spawn_comm(key, [&] { return self.comm().barrier(std::move(o)); });
          },
          py::arg("key").none(true), py::arg("dependencies"), py::arg("name") = "")
      .def(
          "abort",
          [](PyComm& self, const std::string& message, int code) { self.comm().abort(message, code); },
          py::arg("message"), py::arg("code") = 1, "Print '[rank r] message' and MPI_Abort the job")
      .def(
          "progress_stats",
          [](const PyComm& self) {
            const pm::ProgressStats s = self.comm().progress_stats();
            py::dict d;
            d["posted"] = s.posted;
            d["completed"] = s.completed;
            d["failed"] = s.failed;
            d["polls"] = s.polls;
            d["sleeps"] = s.sleeps;
            d["wakeups"] = s.wakeups;
            d["driven"] = s.driven;
            return d;
          })
      .def(
          "progress", [](PyComm& self) { return self.comm().progress(); },
          py::call_guard<py::gil_scoped_release>(),
          "One pass of the progress engine on this thread (posts what it released); true if anything moved")
      .def("close", &PyComm::close, py::arg("runtime_alive") = true,
           "Wait for this communicator's tasks (if the runtime is alive) and stop its progress thread");
}

}  // namespace parla::python
