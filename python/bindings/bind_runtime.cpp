// Bindings of parla::Runtime for the Python package: spawning Python bodies, waiting, and the
// continuations of `async def` bodies.
//
// The GIL: arguments are converted under it; Runtime::spawn, every wait and the runtime's
// destruction run with it released; a body takes it (BodyGil) only to call the Python
// runner, and drops its Python references before giving it back.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "py_runtime.hpp"

namespace parla::python {

// ---- PyRuntime ------------------------------------------------------------------------------

PyRuntime::PyRuntime(const RuntimeConfig& config, py::object runner) : m_runner(PyRef::steal(std::move(runner))) {
  {
    py::gil_scoped_release release;  // starting worker threads must not hold the GIL
    m_rt = std::make_unique<Runtime>(config);
  }
  for (const Device* d : m_rt->devices()) m_device_tuples.push_back(PyRef::steal(py::make_tuple(d->id())));
}

PyRuntime::~PyRuntime() {
  if (m_rt == nullptr) return;
  if (PyGILState_Check() != 0) {
    py::gil_scoped_release release;
    m_rt.reset();
  } else {
    m_rt.reset();
  }
}

Runtime& PyRuntime::rt() const {
  if (m_rt == nullptr) throw Error("this Parla runtime has ended (its `with Parla():` block exited)");
  return *m_rt;
}

void PyRuntime::close() { m_rt.reset(); }

py::object PyRuntime::devices_of(const std::vector<const Device*>& devices) const {
  if (devices.size() == 1) return device_tuple(devices.front()->id()).cast<py::object>();
  py::tuple t(devices.size());
  for (std::size_t i = 0; i < devices.size(); ++i) t[i] = py::int_(devices[i]->id());
  return t;
}

// ---- Completion -----------------------------------------------------------------------------

void Completion::fulfill(py::handle value) {
  if (!m_token.pending()) throw Error("task '" + m_task.name() + "' was already completed");
  // The body returned void, so nothing else writes the result box; the token's fulfilment
  // publishes it (release) to whoever observes the completed state.
  m_task.record()->cold().result.emplace<PyResult>(PyResult{PyRef(value)});
  py::gil_scoped_release release;
  m_token.fulfill();
}

void Completion::fail(py::handle exc) {
  std::exception_ptr error = std::make_exception_ptr(PyTaskException(exc));
  py::gil_scoped_release release;
  fail(std::move(error));
}

void Completion::fail(std::exception_ptr error) {
  if (m_token.pending()) m_token.fail(std::move(error));
}

namespace {

// ---- conversions (GIL held) -----------------------------------------------------------------

std::vector<Dep> to_deps(py::handle seq) {
  std::vector<Dep> deps;
  if (seq.is_none()) return deps;
  auto s = py::reinterpret_borrow<py::sequence>(seq);
  deps.reserve(s.size());
  for (py::handle h : s) deps.push_back(h.cast<const TaskHandle&>().dep());
  return deps;
}

/// A placement from the package's normalised form: a list of options, each
/// `(devices, vcus or None, memory or None)` with devices a list of `(kind, index)`
/// (kind 0 = cpu, 1 = gpu; index -1 = any device of the kind). None: the default (cpu).
Placement to_placement(py::handle p) {
  if (p.is_none()) return {};
  std::vector<PlacementOption> options;
  for (py::handle opt : py::reinterpret_borrow<py::sequence>(p)) {
    auto t = py::reinterpret_borrow<py::tuple>(opt);
    PlacementOption o;
    for (py::handle d : py::reinterpret_borrow<py::sequence>(t[0])) {
      auto dt = py::reinterpret_borrow<py::tuple>(d);
      o.devices.push_back(DeviceSpec{dt[0].cast<int>() == 0 ? DeviceKind::cpu : DeviceKind::gpu, dt[1].cast<int>()});
    }
    if (!t[1].is_none() || !t[2].is_none()) {
      o.resources = Resources{t[1].is_none() ? 0.0 : t[1].cast<double>(),
                              t[2].is_none() ? std::size_t{0} : t[2].cast<std::size_t>()};
    }
    options.push_back(std::move(o));
  }
  return Placement(std::move(options));
}

Placement placement_on(const std::vector<const Device*>& devices) {
  PlacementOption o;
  for (const Device* d : devices) o.devices.push_back(DeviceSpec{d->kind(), d->index()});
  return Placement({std::move(o)});
}

// ---- bodies ---------------------------------------------------------------------------------

/// Python bodies work on device data synchronously, from the worker thread. On a simulated
/// GPU the runtime enqueues the task's input copies on its stream, so wait for them first
/// (GIL not held). CUDA tasks instead run CuPy on the task's stream (see parla/_scope.py).
void await_inputs(TaskContext& ctx, const std::vector<const Device*>& devices) {
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (devices[i]->kind() != DeviceKind::gpu || std::string_view(devices[i]->backend()) == "cuda") continue;
    ctx.stream(i).synchronize();
  }
}

/// A plain Python body: runs runner(task, fn, devices, None) and keeps its return value.
struct PlainBody {
  PyRuntime* runtime;
  PyRef task;
  PyRef fn;

  PyResult operator()(TaskContext& ctx) {
    const std::vector<const Device*> devices = ctx.devices();
    await_inputs(ctx, devices);
    ContextScope current(&ctx);
    BodyGil gil;
    try {
      py::object r = runtime->runner()(task.handle(), fn.handle(), runtime->devices_of(devices), py::none());
      drop();
      return PyResult{PyRef::steal(std::move(r))};
    } catch (py::error_already_set& e) {
      PyTaskException error(e);
      drop();
      throw error;
    }
  }
  // Under the GIL: the references die here, not later on a thread without it.
  void drop() noexcept {
    task.reset_with_gil();
    fn.reset_with_gil();
  }
};

/// An `async def` body: defers the task's completion to a Completion, then starts the
/// coroutine through the runner (which spawns a continuation at each await).
struct AsyncBody {
  PyRuntime* runtime;
  PyRef task;
  PyRef fn;

  void operator()(TaskContext& ctx) {
    std::vector<const Device*> devices = ctx.devices();
    await_inputs(ctx, devices);
    auto completion = std::make_shared<Completion>(*runtime, ctx.defer_completion(), ctx.task(), devices);
    ContextScope current(&ctx);
    BodyGil gil;
    try {
      runtime->runner()(task.handle(), fn.handle(), runtime->devices_of(devices), py::cast(completion));
    } catch (py::error_already_set& e) {
      // The runner reports coroutine errors through the completion; this is a failure of the
      // runner itself.
      PyTaskException error(e);
      task.reset_with_gil();
      fn.reset_with_gil();
      py::gil_scoped_release release;
      completion->fail(std::make_exception_ptr(error));
      return;
    }
    task.reset_with_gil();
    fn.reset_with_gil();
  }
};

/// The rest of a coroutine after an `await`: depends on what was awaited and resumes the
/// coroutine on the task's devices. If it is cancelled (something awaited failed), it fails
/// the awaiting task with that failure instead of leaving it pending forever.
struct ContinuationState {
  std::shared_ptr<Completion> completion;
  PyRef task;
  PyRef fn;
  std::vector<Task> awaited;
  bool ran = false;

  ContinuationState() = default;
  ContinuationState(const ContinuationState&) = delete;
  ContinuationState& operator=(const ContinuationState&) = delete;
  ~ContinuationState() {
    if (ran || !completion || !completion->pending()) return;
    std::exception_ptr cause;
    for (const Task& t : awaited) {
      if (t.record() != nullptr && t.record()->failure()) {
        cause = t.record()->failure()->error;
        break;
      }
    }
    if (!cause) {
      cause = std::make_exception_ptr(Error("task '" + completion->task().name() +
                                            "' awaited a task that did not complete"));
    }
    completion->fail(cause);
  }
};

struct ContinuationBody {
  std::unique_ptr<ContinuationState> s;

  void operator()(TaskContext& ctx) {
    s->ran = true;
    PyRuntime& runtime = s->completion->runtime();
    const std::vector<const Device*> devices = ctx.devices();
    // The coroutine resumes as the task that awaited: its data accesses, not the
    // continuation's (which has none), are what `.array` reads.
    TaskContext awaiting(runtime.rt(), *s->completion->task().record(), ctx.worker(), ctx.cores());
    ContextScope current(&awaiting);
    BodyGil gil;
    try {
      runtime.runner()(s->task.handle(), s->fn.handle(), runtime.devices_of(devices), py::none());
    } catch (py::error_already_set& e) {
      PyTaskException error(e);
      s->task.reset_with_gil();
      s->fn.reset_with_gil();
      py::gil_scoped_release release;
      s->completion->fail(std::make_exception_ptr(error));
      return;
    }
    s->task.reset_with_gil();
    s->fn.reset_with_gil();
  }
};

TaskHandle spawn(PyRuntime& self, py::handle task, py::handle fn, TaskHandle* key,
                 py::handle dependencies, py::handle placement, double vcus, std::size_t memory,
                 std::string name, bool coroutine, int priority, py::handle accesses) {
  Runtime& rt = self.rt();
  SpawnOptions o;
  if (key != nullptr) o.key = key->ref;
  o.dependencies = to_deps(dependencies);
  o.placement = to_placement(placement);
  o.vcus = vcus;
  o.memory = memory;
  o.priority = priority;
  o.name = std::move(name);
  set_accesses(o, accesses);
  Task t;
  if (coroutine) {
    AsyncBody body{&self, PyRef(task), PyRef(fn)};
    py::gil_scoped_release release;
    t = rt.spawn(std::move(o), std::move(body));
  } else {
    PlainBody body{&self, PyRef(task), PyRef(fn)};
    py::gil_scoped_release release;
    t = rt.spawn(std::move(o), std::move(body));
  }
  if (key != nullptr) {
    key->task = t;
    return *key;
  }
  return TaskHandle{{}, std::move(t)};
}

void continue_after(const std::shared_ptr<Completion>& completion, py::handle awaited, py::handle task,
                    py::handle fn) {
  Runtime& rt = completion->runtime().rt();
  auto state = std::make_unique<ContinuationState>();
  state->completion = completion;
  state->task = PyRef(task);
  state->fn = PyRef(fn);
  SpawnOptions o;
  o.dependencies = to_deps(awaited);
  for (py::handle h : py::reinterpret_borrow<py::sequence>(awaited)) {
    const TaskHandle& th = h.cast<const TaskHandle&>();
    state->awaited.push_back(th.task ? th.task : th.ref.task());
  }
  o.placement = placement_on(completion->devices());
  o.name = completion->task().name() + " (continuation)";
  o.priority = 1;  // resuming started work comes before starting new work
  py::gil_scoped_release release;
  rt.spawn(std::move(o), ContinuationBody{std::move(state)});
}

void wait_for(PyRuntime& self, py::handle handles) {
  Runtime& rt = self.rt();
  std::vector<Dep> deps = to_deps(handles);
  py::gil_scoped_release release;
  for (const Dep& d : deps) rt.wait(d);
}

}  // namespace

void bind_runtime(py::module_& m) {
  py::class_<Completion, std::shared_ptr<Completion>>(m, "Completion",
                                                      "The deferred completion of an async task")
      .def("fulfill", &Completion::fulfill, py::arg("value"), "Complete the task with this result")
      .def("fail", py::overload_cast<py::handle>(&Completion::fail), py::arg("exception"),
           "Fail the task with this exception")
      .def_property_readonly("pending", &Completion::pending)
      .def("continue_after", &continue_after, py::arg("awaited"), py::arg("task"), py::arg("fn"),
           "Spawn fn (run through the runner for `task`) once every awaited handle is done");

  py::class_<PyRuntime>(m, "Runtime", "A node runtime: cpu workers and (simulated) GPUs")
      .def(py::init([](int num_workers, int sim_gpus, double deadlock_timeout, std::string trace_path,
                       py::object runner) {
             RuntimeConfig c{.num_workers = num_workers, .sim_gpus = sim_gpus};
             c.deadlock_timeout = deadlock_timeout;
             c.trace_path = std::move(trace_path);
             return std::make_unique<PyRuntime>(c, std::move(runner));
           }),
           py::kw_only(), py::arg("num_workers") = 0, py::arg("sim_gpus") = -1,
           py::arg("deadlock_timeout") = 0.0, py::arg("trace_path") = "", py::arg("runner") = py::none())
      .def_property_readonly("num_workers", [](const PyRuntime& r) { return r.rt().num_workers(); })
      .def_property_readonly("num_gpus", [](const PyRuntime& r) { return r.rt().num_gpus(); })
      .def_property_readonly(
          "devices",
          [](const PyRuntime& r) {
            std::vector<std::string> names;
            for (const Device* device : r.rt().devices()) names.push_back(device->name());
            return names;
          },
          "Device names: 'cpu' first, then 'gpu(0)', 'gpu(1)', ...")
      .def_property_readonly(
          "device_info",
          [](const PyRuntime& r) {
            py::list out;
            for (const Device* d : r.rt().devices()) {
              py::dict info;
              info["id"] = d->id();
              info["kind"] = to_string(d->kind());
              info["index"] = d->index();
              info["name"] = d->name();
              info["backend"] = d->backend();
              info["memory"] = d->memory_capacity();
              info["workers"] = d->num_workers();
              out.append(info);
            }
            return out;
          },
          "One dict per device: id, kind, index, name, backend, memory, workers")
      .def_property_readonly("closed", &PyRuntime::closed)
      .def("spawn", &spawn, py::arg("task"), py::arg("fn"), py::arg("key").none(true), py::arg("dependencies"),
           py::arg("placement"), py::arg("vcus") = 0.0, py::arg("memory") = 0, py::arg("name") = "",
           py::arg("coroutine") = false, py::arg("priority") = 0, py::arg("accesses") = py::none(),
           "Spawn a task that runs runner(task, fn, devices, completion); returns its handle")
      .def("wait", &wait_for, py::arg("handles"), "Wait for every handle; raise the first failure")
      .def(
          "wait_space",
          [](PyRuntime& self, const TaskSpace& space) {
            Runtime& rt = self.rt();
            py::gil_scoped_release release;
            rt.wait(space);
          },
          py::arg("space"), "Wait for every element of a core task space")
      .def(
          "wait_all",
          [](PyRuntime& self) {
            Runtime& rt = self.rt();
            py::gil_scoped_release release;
            rt.wait_all();
          },
          "Wait until every spawned task is done; raise the first failure")
      .def("close", &PyRuntime::close, py::call_guard<py::gil_scoped_release>(),
           "Wait for every task, then stop the workers (the runtime cannot be used afterwards)")
      .def(
          "stats", [](const PyRuntime& self) { return self.rt().stats().to_string(); },
          "The runtime's counters as text");
}

}  // namespace parla::python
