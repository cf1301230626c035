// StarPU 1.3 side of bench_tasks, written the way StarPU's own overhead microbenchmarks
// (tests/microbenchs/tasks_overhead.c) do it: a codelet with an empty CPU function and no data
// buffers, task structures preallocated in an array and set up with starpu_task_init (no
// starpu_task_create malloc per task), dependencies declared between tasks (or tags), and
// the task structures cleaned after the measurement.
#include <starpu.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "task_graph.hpp"
#include "task_system.hpp"
#include "timer.hpp"

namespace parla::bench {
namespace {

/// What the codelet needs to know about its task; one per task, filled before timing (the
/// equivalent of the closure every other system stores with the task).
struct StarpuTaskArg {
  ExecutionLog* log;
  std::uint32_t index;
};

void run_task_cpu(void** /*buffers*/, void* cl_arg) {
  const auto* arg = static_cast<const StarpuTaskArg*>(cl_arg);
  arg->log->execute(arg->index);
}

void set_default_env(const char* name, const char* value) {
  // overwrite = 0: a value the user exported wins, so every setting here can be changed
  // without recompiling.
  setenv(name, value, 0);
}

class StarpuSystem final : public TaskSystem {
 public:
  StarpuSystem(unsigned workers, const StarpuOptions& options) : m_options(options) {
    if (workers > STARPU_MAXCPUS) {
      throw std::runtime_error("this StarPU was built with STARPU_MAXCPUS=" +
                               std::to_string(STARPU_MAXCPUS) + ", fewer than --workers " +
                               std::to_string(workers));
    }
    // W CPU workers and nothing else: no CUDA/OpenCL/MIC/MPI workers (an OpenCL CPU device
    // such as pocl would otherwise add a worker), no profiling, no statistics, no banner.
    // FxT tracing is not compiled into Debian's StarPU (STARPU_USE_FXT is undefined).
    const std::string ncpu = std::to_string(workers);
    setenv("STARPU_NCPU", ncpu.c_str(), 1);
    set_default_env("STARPU_NCUDA", "0");
    set_default_env("STARPU_NOPENCL", "0");
    set_default_env("STARPU_NMIC", "0");
    set_default_env("STARPU_NMPI_MS", "0");
    set_default_env("STARPU_PROFILING", "0");
    set_default_env("STARPU_WORKER_STATS", "0");
    set_default_env("STARPU_BUS_STATS", "0");
    set_default_env("STARPU_MEMORY_STATS", "0");
    set_default_env("STARPU_SILENT", "1");

    starpu_conf conf;
    starpu_conf_init(&conf);
    conf.ncpus = static_cast<int>(workers);
    conf.ncuda = 0;
    conf.nopencl = 0;
    conf.nmic = 0;
    conf.nmpi_ms = 0;
    // Scheduler: StarPU's default (lws, locality work stealing, in 1.3) unless --starpu-sched
    // or STARPU_SCHED says otherwise. lws is what a StarPU user gets without tuning; on these
    // graphs `eager` (one central queue), `ws` and `prio` were within the run-to-run noise of
    // it (docs/performance.md). The policy actually used is reported in the JSON line.
    if (!m_options.sched.empty()) conf.sched_policy_name = m_options.sched.c_str();

    const int ret = starpu_init(&conf);
    if (ret != 0) {
      throw std::runtime_error("starpu_init failed (" + std::to_string(ret) + ")");
    }
    starpu_profiling_status_set(STARPU_PROFILING_DISABLE);

    starpu_codelet_init(&m_codelet);
    m_codelet.where = STARPU_CPU;
    m_codelet.cpu_funcs[0] = &run_task_cpu;
    m_codelet.nbuffers = 0;
    m_codelet.model = nullptr;
    m_codelet.name = "bench_tasks_empty";

    const starpu_sched_policy* policy = starpu_sched_ctx_get_sched_policy(0);
    m_policy_name = policy != nullptr && policy->policy_name != nullptr ? policy->policy_name
                                                                         : "unknown";
    m_ncpus = starpu_cpu_worker_get_count();
    if (m_ncpus != workers) {
      starpu_shutdown();
      throw std::runtime_error("StarPU started " + std::to_string(m_ncpus) +
                               " CPU workers instead of " + std::to_string(workers));
    }
  }

  ~StarpuSystem() override { starpu_shutdown(); }

  double run(const TaskGraph& graph, ExecutionLog& log) override {
    const std::uint32_t n = graph.size();
    // Allocated and zeroed before timing, like tasks_overhead.c's calloc.
    std::vector<starpu_task> tasks(n);
    std::vector<StarpuTaskArg> args(n);
    for (std::uint32_t i = 0; i < n; ++i) args[i] = {&log, i};
    std::vector<starpu_task*> dep_tasks(graph.max_in_degree());
    std::vector<starpu_tag_t> dep_tags(graph.max_in_degree());

    const Timer timer;
    for (std::uint32_t i = 0; i < n; ++i) {
      starpu_task* task = &tasks[i];
      starpu_task_init(task);  // destroy = 0: the array owns the structures
      task->cl = &m_codelet;
      task->cl_arg = &args[i];
      task->detach = 1;
      const auto preds = graph.predecessors(i);
      const auto ndeps = static_cast<unsigned>(preds.size());
      if (m_options.tag_deps) {
        task->use_tag = 1;
        task->tag_id = static_cast<starpu_tag_t>(i);
        if (ndeps != 0) {
          for (unsigned d = 0; d < ndeps; ++d) dep_tags[d] = static_cast<starpu_tag_t>(preds[d]);
          starpu_tag_declare_deps_array(task->tag_id, ndeps, dep_tags.data());
        }
      } else if (ndeps != 0) {
        // A predecessor that already terminated is fine: its structure is still alive (not
        // destroyed, so StarPU accepts it) and StarPU counts the dependency as satisfied.
        for (unsigned d = 0; d < ndeps; ++d) dep_tasks[d] = &tasks[preds[d]];
        starpu_task_declare_deps_array(task, ndeps, dep_tasks.data());
      }
      const int ret = starpu_task_submit(task);
      if (ret != 0) {
        starpu_task_wait_for_all();
        throw std::runtime_error("starpu_task_submit failed (" + std::to_string(ret) +
                                 ") for task " + std::to_string(i));
      }
    }
    const int ret = starpu_task_wait_for_all();
    const double seconds = timer.seconds();
    if (ret != 0) throw std::runtime_error("starpu_task_wait_for_all failed");

    for (auto& task : tasks) starpu_task_clean(&task);
    if (m_options.tag_deps) {
      for (std::uint32_t i = 0; i < n; ++i) starpu_tag_remove(static_cast<starpu_tag_t>(i));
    }
    return seconds;
  }

  [[nodiscard]] std::vector<std::pair<std::string, std::string>> info() const override {
    return {{"sched", m_policy_name},
            {"deps", m_options.tag_deps ? "tag" : "task"},
            {"ncpus", std::to_string(m_ncpus)}};
  }

 private:
  StarpuOptions m_options;
  starpu_codelet m_codelet{};
  std::string m_policy_name;
  unsigned m_ncpus = 0;
};

}  // namespace

std::unique_ptr<TaskSystem> make_starpu_system(unsigned workers, const StarpuOptions& options) {
  return std::make_unique<StarpuSystem>(workers, options);
}

}  // namespace parla::bench
