// parla._core.crosspy: distributed arrays (parla::mpi::DistArray) for `parla.crosspy`.
//
// The array, its halo plan and its task ordering live in C++; Python only runs the user's
// function of a `map` task. That body takes the GIL (BodyGil) just for the call, with NumPy
// views of the partition's ghosted block on its device (a memoryview for host-backed memory:
// cpu and simulated GPUs; an address for CUDA, which parla.crosspy wraps in CuPy). Every
// collective or waiting call releases the GIL: other ranks may be slower, and task bodies on
// this rank may need it.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <parla/mpi/dist_array.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "py_runtime.hpp"

namespace parla::python {

/// The parla::mpi::Comm of a parla._core.mpi.Comm (defined in bind_mpi.cpp).
parla::mpi::Comm& comm_of(py::handle comm);

namespace {

namespace pm = parla::mpi;

pm::Datatype datatype_named(const std::string& name) {
  if (name == "float64") return pm::Datatype::f64;
  if (name == "float32") return pm::Datatype::f32;
  if (name == "int64") return pm::Datatype::i64;
  if (name == "int32") return pm::Datatype::i32;
  throw py::type_error("distributed arrays hold float64, float32, int64 or int32 elements, not " + name);
}

const char* datatype_name(pm::Datatype t) {
  switch (t) {
    case pm::Datatype::f64: return "float64";
    case pm::Datatype::f32: return "float32";
    case pm::Datatype::i64: return "int64";
    case pm::Datatype::i32: return "int32";
    case pm::Datatype::u64: return "uint64";
    case pm::Datatype::byte: return "uint8";
  }
  return "uint8";
}

pm::Region region_named(const std::string& name) {
  if (name == "all") return pm::Region::all;
  if (name == "interior") return pm::Region::interior;
  if (name == "boundary") return pm::Region::boundary;
  if (name == "split") return pm::Region::split;
  throw py::value_error("region must be 'all', 'interior', 'boundary' or 'split', not '" + name + "'");
}

/// DistArrayOptions from the dict parla.crosspy builds (already validated there).
pm::DistArrayOptions options_of(const py::dict& d) {
  pm::DistArrayOptions o;
  auto get = [&](const char* key) -> py::object {
    return d.contains(key) ? py::reinterpret_borrow<py::object>(d[key]) : py::object(py::none());
  };
  if (auto v = get("shape"); !v.is_none()) o.shape = v.cast<std::vector<std::int64_t>>();
  if (auto v = get("dtype"); !v.is_none()) o.dtype = datatype_named(v.cast<std::string>());
  if (auto v = get("grid"); !v.is_none()) o.process_grid = v.cast<std::vector<int>>();
  if (auto v = get("splits"); !v.is_none()) o.splits = v.cast<std::vector<std::vector<std::int64_t>>>();
  if (auto v = get("ghosts"); !v.is_none()) o.ghosts = v.cast<std::vector<int>>();
  if (auto v = get("boundary"); !v.is_none()) {
    const auto b = v.cast<std::string>();
    o.boundary = b == "periodic" ? pm::Boundary::periodic : b == "constant" ? pm::Boundary::constant : pm::Boundary::none;
  }
  if (auto v = get("boundary_value"); !v.is_none()) o.boundary_value = v.cast<double>();
  if (auto v = get("stencil"); !v.is_none()) o.stencil = v.cast<std::string>() == "box" ? pm::Stencil::box : pm::Stencil::star;
  if (auto v = get("devices"); !v.is_none()) {
    for (py::handle dev : py::reinterpret_borrow<py::sequence>(v)) {
      auto t = py::reinterpret_borrow<py::tuple>(dev);
      o.devices.push_back(DeviceSpec{t[0].cast<int>() == 0 ? DeviceKind::cpu : DeviceKind::gpu, t[1].cast<int>()});
    }
  }
  if (auto v = get("device_axis"); !v.is_none()) o.device_axis = v.cast<int>();
  if (auto v = get("device_splits"); !v.is_none()) o.device_splits = v.cast<std::vector<std::int64_t>>();
  if (auto v = get("name"); !v.is_none()) o.name = v.cast<std::string>();
  return o;
}

/// A NumPy uint8 array that owns `bytes` (no copy).
py::array owning_array(std::vector<std::byte>&& bytes) {
  auto owned = std::make_unique<std::vector<std::byte>>(std::move(bytes));
  std::vector<std::byte>* v = owned.get();
  py::capsule owner(owned.release(), [](void* p) { delete static_cast<std::vector<std::byte>*>(p); });
  return py::array(py::dtype("uint8"), {static_cast<py::ssize_t>(v->size())}, {py::ssize_t{1}}, v->data(), owner);
}

/// [(key tuple, TaskHandle)] of a core space an array operation returned: parla.crosspy
/// wraps the space in a parla.TaskSpace and asks for its elements only when they are used.
py::list elements_of(const TaskSpace& space) {
  py::list elements;
  for (auto& [ref, task] : space.tasks()) {  // creates nothing: works after the runtime ended
    const TaskKey& key = ref.key();
    py::tuple k(key.rank());
    for (std::size_t i = 0; i < key.rank(); ++i) k[i] = py::int_(key[i]);
    elements.append(py::make_tuple(k, TaskHandle{ref, task}));
  }
  return elements;
}

/// The body of a `map` task: calls callback(partition, boxes, pointers, interior, device)
/// under the GIL, where boxes are [(lo, hi)] owned-relative and pointers [(address,
/// memoryview or None)] per access. A Python exception fails the task with that exception.
struct MapBody {
  std::shared_ptr<PyRef> callback;
  std::size_t accesses = 1;

  void operator()(pm::PartitionView& view) const {
    TaskContext& ctx = view.context();
    const Device& device = ctx.device();
    const bool cuda = std::string_view(device.backend()) == "cuda";
    // Python works on device data synchronously from this thread: on a simulated GPU, wait
    // for the input copies the runtime enqueued on the task's stream first (no GIL held).
    if (device.kind() == DeviceKind::gpu && !cuda) ctx.stream().synchronize();
    ContextScope current(&ctx);
    BodyGil gil;
    try {
      const pm::Partition& part = view.partition(0);
      py::list boxes;
      for (const pm::Box& b : view.boxes()) {
        if (b.empty()) continue;
        py::tuple lo(b.ndim);
        py::tuple hi(b.ndim);
        for (int d = 0; d < b.ndim; ++d) {
          lo[static_cast<std::size_t>(d)] = py::int_(b.lo[static_cast<std::size_t>(d)]);
          hi[static_cast<std::size_t>(d)] = py::int_(b.hi[static_cast<std::size_t>(d)]);
        }
        boxes.append(py::make_tuple(lo, hi));
      }
      py::list pointers;
      for (std::size_t i = 0; i < accesses; ++i) {
        void* p = view.data(i);
        const auto bytes = static_cast<py::ssize_t>(view.partition(i).block.size());
        py::object mem = cuda ? py::object(py::none()) : py::object(py::memoryview::from_memory(p, bytes, false));
        pointers.append(py::make_tuple(reinterpret_cast<std::uintptr_t>(p), mem));
      }
      callback->handle()(part.local_index, boxes, pointers, view.interior(), device.id());
    } catch (py::error_already_set& e) {
      throw PyTaskException(e);
    }
  }
};

/// A non-blocking reduction (a task whose result is the double).
struct PyFuture {
  pm::ReductionFuture future;

  [[nodiscard]] double get() const {
    py::gil_scoped_release release;
    return future.get();
  }
};

/// The Python handle of one DistArray.
struct PyDistArray {
  pm::DistArray a;

  [[nodiscard]] const pm::DistArray& get() const {
    if (!a) throw Error("this distributed array was closed");
    return a;
  }
  [[nodiscard]] pm::DistArray& get() {
    if (!a) throw Error("this distributed array was closed");
    return a;
  }
};

template <class Fn>
decltype(auto) released(Fn&& fn) {
  py::gil_scoped_release release;
  return fn();
}

py::dict partition_info(const pm::Partition& p) {
  py::dict d;
  d["local_index"] = p.local_index;
  d["global_index"] = p.global_index;
  d["coords"] = p.coords;
  d["device"] = py::make_tuple(p.device.kind == DeviceKind::cpu ? 0 : 1, p.device.index);
  d["offset"] = p.offset;
  d["extent"] = p.extent;
  d["ghosted_extent"] = p.ghosted_extent;
  d["ghosts"] = p.ghosts;
  d["origin"] = p.origin;
  d["nbytes"] = p.block.size();
  return d;
}

/// One partition of a DistArray, as a host buffer (buffer protocol): its ghosted block's
/// host copy, made current first (waits for the array's tasks while the runtime is open;
/// afterwards the host copy holds the final contents). parla.crosspy subclasses it.
struct PyPartition {
  std::shared_ptr<PyDistArray> array;
  int index = 0;
  py::object runtime;  // the parla._core.Runtime the array lives in
  bool writable = false;

  [[nodiscard]] const pm::Partition& part() const {
    const auto& parts = array->get().partitions();
    return parts.at(static_cast<std::size_t>(index));
  }
  /// Waits for the array's tasks and makes the host copy current (GIL held on entry).
  void sync() const {
    const PyRuntime& rt = runtime.cast<const PyRuntime&>();
    if (rt.closed()) return;
    const pm::DistArray& a = array->get();
    const DataBlock block = part().block;
    Runtime& r = rt.rt();
    py::gil_scoped_release release;
    a.wait();
    r.sync_to_host(block);
  }
};

}  // namespace

void bind_dist_array(py::module_& parent) {
  py::module_ m = parent.def_submodule("crosspy", "parla::mpi::DistArray (use parla.crosspy)");

  m.def("space_elements", &elements_of, py::arg("space"),
        "[(key, handle)] of the tasks of a core TaskSpace an array operation returned");

  py::class_<PyFuture>(m, "Future", "The result of a non-blocking reduction")
      .def_property_readonly("done", [](const PyFuture& f) { return f.future.done(); })
      .def("get", &PyFuture::get, "Wait (GIL released) and return the result")
      .def_property_readonly("task", [](const PyFuture& f) { return TaskHandle{{}, f.future.task()}; });

  py::class_<PyDistArray, std::shared_ptr<PyDistArray>>(m, "DistArray", "A distributed array (parla::mpi::DistArray)")
      .def_static(
          "create",
          [](PyRuntime& rt, py::handle comm, const py::dict& options) {
            Runtime& r = rt.rt();
            pm::Comm& c = comm_of(comm);
            pm::DistArrayOptions o = options_of(options);
            return std::make_shared<PyDistArray>(PyDistArray{released([&] { return pm::DistArray(r, c, std::move(o)); })});
          },
          py::arg("runtime"), py::arg("comm"), py::arg("options"), "A zero-filled array (collective)")
      .def_static(
          "from_global",
          [](PyRuntime& rt, py::handle comm, const py::dict& options, py::object data, int root) {
            Runtime& r = rt.rt();
            pm::Comm& c = comm_of(comm);
            pm::DistArrayOptions o = options_of(options);
            const void* ptr = nullptr;
            py::buffer_info info;
            if (!data.is_none()) {
              info = py::reinterpret_borrow<py::buffer>(data).request(false);
              ptr = info.ptr;
            }
            return std::make_shared<PyDistArray>(
                PyDistArray{released([&] { return pm::DistArray::from_global(r, c, std::move(o), ptr, root); })});
          },
          py::arg("runtime"), py::arg("comm"), py::arg("options"), py::arg("data").none(true), py::arg("root"),
          "Scatter `data` (C-contiguous, on root) into a new array (collective)")
      .def_static(
          "load",
          [](PyRuntime& rt, py::handle comm, const std::string& path, const py::dict& options) {
            Runtime& r = rt.rt();
            pm::Comm& c = comm_of(comm);
            pm::DistArrayOptions o = options_of(options);
            return std::make_shared<PyDistArray>(
                PyDistArray{released([&] { return pm::DistArray::load(r, c, path, std::move(o)); })});
          },
          py::arg("runtime"), py::arg("comm"), py::arg("path"), py::arg("options"),
          "Read a file written by save (collective, MPI-IO)")
      // ---- geometry ----
      .def_property_readonly("shape", [](const PyDistArray& s) { return s.get().shape(); })
      .def_property_readonly("dtype", [](const PyDistArray& s) { return std::string(datatype_name(s.get().dtype())); })
      .def_property_readonly("grid", [](const PyDistArray& s) { return s.get().process_grid(); })
      .def_property_readonly("coords", [](const PyDistArray& s) { return s.get().process_coords(); })
      .def_property_readonly("splits", [](const PyDistArray& s) { return s.get().splits(); })
      .def_property_readonly("partition_bounds", [](const PyDistArray& s) { return s.get().partition_bounds(); })
      .def_property_readonly("ghosts", [](const PyDistArray& s) { return s.get().ghosts(); })
      .def_property_readonly("boundary", [](const PyDistArray& s) { return std::string(pm::to_string(s.get().boundary())); })
      .def_property_readonly("boundary_value", [](const PyDistArray& s) { return s.get().boundary_value(); })
      .def_property_readonly("stencil", [](const PyDistArray& s) { return std::string(pm::to_string(s.get().stencil())); })
      .def_property_readonly("device_axis", [](const PyDistArray& s) { return s.get().device_axis(); })
      .def_property_readonly("name", [](const PyDistArray& s) { return s.get().name(); })
      .def_property_readonly("id", [](const PyDistArray& s) { return s.get().id(); })
      .def_property_readonly("num_global_partitions", [](const PyDistArray& s) { return s.get().num_global_partitions(); })
      .def_property_readonly("closed", [](const PyDistArray& s) { return !s.a; })
      .def("partitions",
           [](const PyDistArray& s) {
             py::list out;
             for (const pm::Partition& p : s.get().partitions()) out.append(partition_info(p));
             return out;
           },
           "One dict per local partition: indices, device (kind, index), offset, extent, ghosts, ...")
      .def("describe_halo_plan", [](const PyDistArray& s) { return s.get().halo_plan().describe(); })
      .def("halo_bytes",
           [](const PyDistArray& s) {
             const pm::HaloPlan& plan = s.get().halo_plan();
             return py::make_tuple(plan.bytes_sent(), plan.bytes_local());
           },
           "(bytes sent to other ranks, bytes copied within the rank) per exchange")
      // ---- tasks ----
      .def("exchange_halos",
           [](PyDistArray& s) {
             pm::DistArray& a = s.get();
             TaskSpace space = released([&] { return a.exchange_halos(); });
             return space;
           },
           "Spawn one halo exchange; the core TaskSpace of its tasks")
      .def(
          "for_each",
          [](PyDistArray& s, const std::vector<std::shared_ptr<PyDistArray>>& arrays, const std::vector<std::string>& modes,
             const std::vector<bool>& with_ghosts, const std::string& region, py::function callback, std::string name) {
            std::vector<pm::Access> accesses;
            for (std::size_t i = 0; i < arrays.size(); ++i) {
              const pm::DistArray& arr = arrays[i]->get();
              const pm::Mode mode = modes.at(i) == "read"    ? pm::Mode::read
                                    : modes.at(i) == "write" ? pm::Mode::write
                                                             : pm::Mode::readwrite;
              accesses.push_back(pm::Access{&arr, mode, static_cast<bool>(with_ghosts.at(i))});
            }
            const pm::Region r = region_named(region);
            MapBody body{std::make_shared<PyRef>(callback), accesses.size()};
            pm::DistArray& a = s.get();
            TaskSpace space = released([&] { return a.for_each(accesses, r, body, std::move(name)); });
            return space;
          },
          py::arg("arrays"), py::arg("modes"), py::arg("with_ghosts"), py::arg("region"), py::arg("callback"),
          py::arg("name") = "",
          "Spawn one task per partition (two for 'split') that calls callback(partition, boxes, "
          "pointers, interior, device) on the partition's device")
      .def("fill",
           [](PyDistArray& s, double value) {
             pm::DistArray& a = s.get();
             return released([&] { return a.fill(value); });
           })
      .def("copy_from",
           [](PyDistArray& s, const PyDistArray& other) {
             pm::DistArray& a = s.get();
             const pm::DistArray& b = other.get();
             return released([&] { return a.copy_from(b); });
           })
      .def("wait", [](const PyDistArray& s) { released([&] { s.get().wait(); }); },
           "Wait for every task of the array spawned so far")
      // ---- reductions ----
      .def("reduce_async",
           [](const PyDistArray& s, const std::string& op, const PyDistArray* other) {
             const pm::DistArray& a = s.get();
             return released([&] {
               if (op == "sum") return PyFuture{a.sum_async()};
               if (op == "min") return PyFuture{a.min_async()};
               if (op == "max") return PyFuture{a.max_async()};
               if (op == "norm2") return PyFuture{a.norm2_async()};
               if (op == "dot") return PyFuture{a.dot_async(other->get())};
               throw Error("unknown reduction '" + op + "'");
             });
           },
           py::arg("op"), py::arg("other").none(true) = nullptr)
      // ---- redistribution and I/O ----
      .def("gather",
           [](const PyDistArray& s, int root) {
             const pm::DistArray& a = s.get();
             return owning_array(released([&] { return a.gather(root); }));
           },
           py::arg("root") = 0)
      .def("gather_all",
           [](const PyDistArray& s) {
             const pm::DistArray& a = s.get();
             return owning_array(released([&] { return a.gather_all(); }));
           })
      .def("local_copy",
           [](const PyDistArray& s, int p, bool with_ghosts) {
             const pm::DistArray& a = s.get();
             return owning_array(released([&] { return a.local_copy(p, with_ghosts); }));
           },
           py::arg("partition"), py::arg("with_ghosts") = false)
      .def("save",
           [](const PyDistArray& s, const std::string& path) {
             const pm::DistArray& a = s.get();
             released([&] { a.save(path); });
           })
      .def("close",
           [](PyDistArray& s) {
             if (!s.a) return;
             pm::DistArray a = std::move(s.a);
             s.a = pm::DistArray();
             py::gil_scoped_release release;  // the destructor may wait for the array's tasks
             a = pm::DistArray();
           },
           "Drop this handle on the array (its tasks still complete)");

  py::class_<PyPartition>(m, "Partition", py::buffer_protocol(), py::dynamic_attr(),
                          "One local partition: the host copy of its ghosted block (buffer protocol)")
      .def(py::init([](std::shared_ptr<PyDistArray> array, int index, py::object runtime, bool writable) {
             return PyPartition{std::move(array), index, std::move(runtime), writable};
           }),
           py::arg("array"), py::arg("index"), py::arg("runtime"), py::arg("writable") = false)
      .def("sync", &PyPartition::sync, "Wait for the array's tasks and make the host copy current")
      .def_property_readonly("host_address",
                             [](const PyPartition& p) { return reinterpret_cast<std::uintptr_t>(p.part().block.host_data()); })
      .def_buffer([](PyPartition& p) {
        p.sync();
        const pm::DistArray& a = p.array->get();
        const pm::Partition& part = p.part();
        const auto itemsize = static_cast<py::ssize_t>(a.element_size());
        std::vector<py::ssize_t> shape(part.ghosted_extent.begin(), part.ghosted_extent.end());
        std::vector<py::ssize_t> strides;
        for (const std::int64_t s : part.strides) strides.push_back(static_cast<py::ssize_t>(s) * itemsize);
        std::string format;
        switch (a.dtype()) {
          case pm::Datatype::f64: format = py::format_descriptor<double>::format(); break;
          case pm::Datatype::f32: format = py::format_descriptor<float>::format(); break;
          case pm::Datatype::i64: format = py::format_descriptor<std::int64_t>::format(); break;
          case pm::Datatype::i32: format = py::format_descriptor<std::int32_t>::format(); break;
          default: format = py::format_descriptor<std::uint8_t>::format(); break;
        }
        return py::buffer_info(part.block.host_data(), itemsize, format, static_cast<py::ssize_t>(shape.size()), shape,
                               strides, !p.writable);
      });
}

}  // namespace parla::python
