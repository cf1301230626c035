// oneTBB side of bench_tasks: a flow graph of continue_nodes joined by make_edge (any
// pattern), and a task_group (independent tasks only), both inside a task_arena of W threads.
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "task_graph.hpp"
#include "task_system.hpp"
#include "timer.hpp"

namespace parla::bench {
namespace {

/// W threads for TBB. TBB counts the thread that waits as one of the arena's threads (it runs
/// tasks inside wait_for_all / wait), so an arena of W has W-1 TBB workers plus the caller;
/// global_control raises TBB's process-wide cap (nproc by default) when W exceeds the cores.
/// The finalize handle joins TBB's worker threads at the end, so they cannot linger into the
/// measurement of the next system.
class TbbSystemBase : public TaskSystem {
 public:
  explicit TbbSystemBase(unsigned workers)
      : m_handle(tbb::attach{}),
        m_parallelism(tbb::global_control::max_allowed_parallelism, workers),
        m_arena(static_cast<int>(workers)) {
    m_arena.initialize();
    if (m_arena.max_concurrency() != static_cast<int>(workers)) {
      throw std::runtime_error("tbb::task_arena gave " + std::to_string(m_arena.max_concurrency()) +
                               " threads instead of " + std::to_string(workers));
    }
  }

  ~TbbSystemBase() override {
    m_arena.terminate();
    if (!tbb::finalize(m_handle, std::nothrow)) {
      std::fprintf(stderr, "bench_tasks: warning: tbb::finalize could not join TBB's workers\n");
    }
  }

 protected:
  tbb::task_arena& arena() noexcept { return m_arena; }

 private:
  tbb::task_scheduler_handle m_handle;
  tbb::global_control m_parallelism;
  tbb::task_arena m_arena;
};

class TbbFlowGraphSystem final : public TbbSystemBase {
 public:
  using TbbSystemBase::TbbSystemBase;

  double run(const TaskGraph& graph, ExecutionLog& log) override {
    using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
    const std::uint32_t n = graph.size();
    // A flow-graph node fires once; one that fired before its out-edges exist would never
    // signal its successors. So sources that have successors are started after the whole graph
    // is built (as TBB's documentation does), while sources without successors (all tasks of
    // `independent`) are started as soon as they exist, which lets the workers run them while
    // the caller is still building.
    std::vector<std::uint32_t> deferred_sources;
    for (std::uint32_t i = 0; i < n; ++i) {
      if (graph.predecessors(i).empty() && graph.has_successors(i)) deferred_sources.push_back(i);
    }

    double seconds = 0.0;
    arena().execute([&] {
      tbb::flow::graph flow;
      std::deque<Node> nodes;  // nodes cannot move; a deque never relocates its elements
      const Timer timer;
      for (std::uint32_t i = 0; i < n; ++i) {
        Node& node = nodes.emplace_back(flow, [&log, i](const tbb::flow::continue_msg&) {
          log.execute(i);
          return tbb::flow::continue_msg{};
        });
        const auto preds = graph.predecessors(i);
        for (const std::uint32_t p : preds) tbb::flow::make_edge(nodes[p], node);
        if (preds.empty() && !graph.has_successors(i)) node.try_put(tbb::flow::continue_msg{});
      }
      for (const std::uint32_t s : deferred_sources) nodes[s].try_put(tbb::flow::continue_msg{});
      flow.wait_for_all();
      seconds = timer.seconds();
      // `nodes`, then `flow`, are destroyed here, after the measurement.
    });
    return seconds;
  }

  [[nodiscard]] std::vector<std::pair<std::string, std::string>> info() const override {
    return {{"api", "flow::graph continue_node + make_edge"}};
  }
};

class TbbTaskGroupSystem final : public TbbSystemBase {
 public:
  using TbbSystemBase::TbbSystemBase;

  double run(const TaskGraph& graph, ExecutionLog& log) override {
    if (graph.pattern() != Pattern::independent) {
      throw std::runtime_error("tbb_task_group only runs --pattern independent");
    }
    const std::uint32_t n = graph.size();
    double seconds = 0.0;
    arena().execute([&] {
      tbb::task_group group;
      const Timer timer;
      for (std::uint32_t i = 0; i < n; ++i) group.run([&log, i] { log.execute(i); });
      group.wait();
      seconds = timer.seconds();
    });
    return seconds;
  }

  [[nodiscard]] std::vector<std::pair<std::string, std::string>> info() const override {
    return {{"api", "task_group::run"}};
  }
};

}  // namespace

std::unique_ptr<TaskSystem> make_tbb_flow_graph_system(unsigned workers) {
  return std::make_unique<TbbFlowGraphSystem>(workers);
}

std::unique_ptr<TaskSystem> make_tbb_task_group_system(unsigned workers) {
  return std::make_unique<TbbTaskGroupSystem>(workers);
}

}  // namespace parla::bench
