// Parla side of bench_tasks: the code a user writes, `rt.spawn({.dependencies = {...}}, body)`
// then `rt.wait_all()`, on a Runtime with W cpu workers and no GPUs.
#include <parla/parla.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "task_graph.hpp"
#include "task_system.hpp"
#include "timer.hpp"

namespace parla::bench {
namespace {

class ParlaSystem final : public TaskSystem {
 public:
  explicit ParlaSystem(unsigned workers)
      : m_runtime({.num_workers = static_cast<int>(workers), .sim_gpus = 0}) {}

  double run(const TaskGraph& graph, ExecutionLog& log) override {
    const std::uint32_t n = graph.size();
    // A handle is kept only when a later task depends on it, as user code would; those are
    // released after the measurement (like StarPU's task array and TBB's nodes). Tasks nobody
    // depends on (all of `independent`) drop their handle at once, so the runtime frees them
    // as they complete, inside the measurement.
    std::vector<Task> handles(n);

    const Timer timer;
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto preds = graph.predecessors(i);
      std::vector<Dep> deps;
      deps.reserve(preds.size());
      for (const std::uint32_t p : preds) deps.emplace_back(handles[p]);
      Task task = m_runtime.spawn({.dependencies = std::move(deps)}, [&log, i] { log.execute(i); });
      if (graph.has_successors(i)) handles[i] = std::move(task);
    }
    m_runtime.wait_all();
    const double seconds = timer.seconds();
    return seconds;  // `handles` is destroyed here, after the measurement
  }

  [[nodiscard]] std::vector<std::pair<std::string, std::string>> info() const override {
    const RuntimeStats stats = m_runtime.stats();
    std::uint64_t by_workers = 0;
    for (const auto& w : stats.workers) by_workers += w.tasks;
    return {{"num_workers", std::to_string(m_runtime.num_workers())},
            {"bodies_run", std::to_string(stats.tasks_run)},
            // A thread blocked in wait_all() helps run tasks (Runtime's contract), so Parla
            // has W workers plus the waiting main thread, like TBB's arena has W-1 workers
            // plus the waiting thread.
            {"bodies_run_by_waiting_thread", std::to_string(stats.tasks_run - by_workers)}};
  }

 private:
  Runtime m_runtime;
};

}  // namespace

std::unique_ptr<TaskSystem> make_parla_system(unsigned workers) {
  return std::make_unique<ParlaSystem>(workers);
}

}  // namespace parla::bench
