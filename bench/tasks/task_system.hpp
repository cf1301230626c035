// One tasking system under test: Parla, StarPU, or oneTBB. Each lives in its own .cpp file,
// compiled only when the system was found at configure time.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "task_graph.hpp"

namespace parla::bench {

/// A tasking system, started with its worker threads by the factory and stopped by the
/// destructor, so that start-up and shutdown never fall inside a measurement.
class TaskSystem {
 public:
  TaskSystem() = default;
  TaskSystem(const TaskSystem&) = delete;
  TaskSystem& operator=(const TaskSystem&) = delete;
  virtual ~TaskSystem() = default;

  /// Spawns every task of `graph` in index order with its dependencies, each task calling
  /// `log.execute(i)`, and waits until all have completed. Returns the seconds from just
  /// before the first spawn until the wait returned. Freeing the graph's bookkeeping after the
  /// wait is not timed (for any system).
  virtual double run(const TaskGraph& graph, ExecutionLog& log) = 0;

  /// Settings that explain a figure (scheduler, dependency mechanism), as key/value strings.
  [[nodiscard]] virtual std::vector<std::pair<std::string, std::string>> info() const {
    return {};
  }
};

/// Options that only StarPU understands.
struct StarpuOptions {
  std::string sched;          ///< policy name; empty: STARPU_SCHED or StarPU's default
  bool tag_deps = false;      ///< tags (starpu_tag_declare_deps) instead of task dependencies
};

// Factories. Each throws std::runtime_error with the reason when the system cannot start.
std::unique_ptr<TaskSystem> make_parla_system(unsigned workers);
std::unique_ptr<TaskSystem> make_starpu_system(unsigned workers, const StarpuOptions& options);
std::unique_ptr<TaskSystem> make_tbb_flow_graph_system(unsigned workers);
std::unique_ptr<TaskSystem> make_tbb_task_group_system(unsigned workers);

}  // namespace parla::bench
