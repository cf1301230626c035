// Data blocks (the core of PArray): creation, host contents, coherence queries, and the
// pointer of a block on the running task's device.
#include <pybind11/stl.h>

#include <cstring>
#include <string>

#include "bindings.hpp"
#include "py_runtime.hpp"

namespace parla::python {

namespace {

thread_local TaskContext* t_context = nullptr;

DataSlice slice_of(py::handle t) {
  auto tup = py::reinterpret_borrow<py::tuple>(t);
  const auto& block = tup[0].cast<const DataBlock&>();
  return block.slice(tup[1].cast<std::size_t>(), tup[2].cast<std::size_t>());
}

void append_slices(std::vector<DataSlice>& out, py::handle list) {
  for (py::handle t : py::reinterpret_borrow<py::sequence>(list)) out.push_back(slice_of(t));
}

/// A writable memoryview of `bytes` at `p`. It does not own the memory: the package only
/// hands it out for the duration of a task body (device copies) or keeps the block alive
/// next to it (host copies).
py::memoryview memory_at(void* p, std::size_t bytes) {
  return py::memoryview::from_memory(p, static_cast<py::ssize_t>(bytes), false);
}

}  // namespace

TaskContext* current_context() noexcept { return t_context; }

ContextScope::ContextScope(TaskContext* ctx) noexcept : m_prev(t_context) { t_context = ctx; }

ContextScope::~ContextScope() { t_context = m_prev; }

void set_accesses(SpawnOptions& o, py::handle accesses) {
  if (accesses.is_none()) return;
  auto t = py::reinterpret_borrow<py::tuple>(accesses);
  append_slices(o.in, t[0]);
  append_slices(o.out, t[1]);
  append_slices(o.inout, t[2]);
}

void bind_data(py::module_& m) {
  py::class_<DataBlock>(m, "DataBlock", "One logical buffer with an instance per device (PArray's storage)")
      .def(py::init([](PyRuntime& rt, std::size_t bytes, std::string name) {
             return DataBlock(rt.rt(), bytes, std::move(name));
           }),
           py::arg("runtime"), py::arg("bytes"), py::arg("name") = "")
      .def_property_readonly("size", &DataBlock::size)
      .def_property_readonly("name", &DataBlock::name)
      .def(
          "host_memory",
          [](const DataBlock& b) {
            // The caller keeps `b` alive as long as the view (see parla/_parray.py).
            return memory_at(b.host_data(), b.size());
          },
          "The host instance as a writable memoryview (current once no task uses the block)")
      .def(
          "sync_to_host",
          [](const DataBlock& b, PyRuntime& rt) {
            Runtime& r = rt.rt();
            py::gil_scoped_release release;
            r.sync_to_host(b);
          },
          py::arg("runtime"), "Wait for the tasks that access the block, then make the host copy current")
      .def(
          "coherence",
          [](const DataBlock& b, PyRuntime& rt, int device, std::size_t offset) {
            return std::string(to_string(b.state(*rt.rt().devices().at(static_cast<std::size_t>(device)), offset)));
          },
          py::arg("runtime"), py::arg("device"), py::arg("offset") = 0,
          "invalid, shared or modified: the state of a device's copy of the byte at `offset`")
      .def(
          "allocated_on",
          [](const DataBlock& b, PyRuntime& rt, int device) {
            return b.allocated_on(*rt.rt().devices().at(static_cast<std::size_t>(device)));
          },
          py::arg("runtime"), py::arg("device"))
      .def("version", &DataBlock::version, py::arg("offset") = 0,
           "Number of tasks that wrote the byte at `offset`");

  m.def(
      "task_data",
      [](const DataBlock& b, std::size_t offset, std::size_t bytes, std::size_t device) -> py::tuple {
        TaskContext* ctx = current_context();
        if (ctx == nullptr) throw Error("task_data() is for task bodies; no task runs on this thread");
        void* p = ctx->data(b.slice(offset, bytes), device);
        const Device& where = *ctx->devices().at(device);
        const bool host_backed = std::string(where.backend()) != "cuda";
        return py::make_tuple(reinterpret_cast<std::uintptr_t>(p),
                              host_backed ? py::object(memory_at(p, bytes)) : py::object(py::none()));
      },
      py::arg("block"), py::arg("offset"), py::arg("bytes"), py::arg("device") = 0,
      "(address, memoryview or None) of bytes [offset, offset + bytes) of a declared block on the "
      "running task's device (a memoryview for host-backed memory: cpu and simulated GPUs)");
  m.def(
      "task_stream_handle",
      []() -> std::uintptr_t {
        TaskContext* ctx = current_context();
        if (ctx == nullptr) return 0;
        try {
          return reinterpret_cast<std::uintptr_t>(ctx->stream().native_handle());
        } catch (const Error&) {
          return 0;  // a cpu task: no stream
        }
      },
      "The running task's CUDA stream (cudaStream_t as an int), 0 off CUDA");
  m.def(
      "task_cores",
      []() -> int {
        const TaskContext* ctx = current_context();
        return ctx == nullptr ? 0 : ctx->cores();
      },
      "Cores reserved for the running task (a cpu task with vcus), 0 when it reserves none");
}

}  // namespace parla::python
