// The task graphs bench_tasks runs, and the log that proves every system ran them.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace parla::bench {

/// The shapes of graph bench_tasks measures (Task Bench names where one exists).
enum class Pattern {
  independent,  ///< N tasks, no dependencies ("trivial" in Task Bench)
  chain,        ///< task i depends on task i-1
  fanout,       ///< one root, every other task depends on it (optionally a join at the end)
  stencil,      ///< width K x N/K steps; (t, x) depends on (t-1, x-1..x+1) ("stencil_1d")
};

std::optional<Pattern> parse_pattern(std::string_view name);
std::string_view to_string(Pattern pattern);

/// A task graph in spawn order. Every predecessor of task i has an index below i, so spawning
/// 0, 1, ..., N-1 in order is a valid topological order in every system measured.
class TaskGraph {
 public:
  /// Builds the graph. `num_tasks` is rounded down to a multiple of `width` for `stencil`
  /// (size() tells the real count); `join` only affects `fanout`.
  static TaskGraph make(Pattern pattern, std::uint32_t num_tasks, std::uint32_t width, bool join);

  [[nodiscard]] Pattern pattern() const noexcept { return m_pattern; }
  [[nodiscard]] std::uint32_t size() const noexcept { return m_size; }
  /// Stencil columns (0 for the other patterns).
  [[nodiscard]] std::uint32_t width() const noexcept { return m_width; }
  [[nodiscard]] bool join() const noexcept { return m_join; }
  [[nodiscard]] std::uint64_t num_edges() const noexcept { return m_preds.size(); }
  [[nodiscard]] std::uint32_t max_in_degree() const noexcept { return m_max_in_degree; }

  [[nodiscard]] std::span<const std::uint32_t> predecessors(std::uint32_t task) const noexcept {
    return {m_preds.data() + m_offsets[task], m_offsets[task + 1] - m_offsets[task]};
  }
  [[nodiscard]] bool has_successors(std::uint32_t task) const noexcept {
    return m_has_successors[task] != 0;
  }

 private:
  Pattern m_pattern = Pattern::independent;
  std::uint32_t m_size = 0;
  std::uint32_t m_width = 0;
  bool m_join = false;
  std::uint32_t m_max_in_degree = 0;
  std::vector<std::uint32_t> m_offsets;  // CSR: predecessors of i are m_preds[m_offsets[i]..[i+1])
  std::vector<std::uint32_t> m_preds;
  std::vector<std::uint8_t> m_has_successors;
};

/// Counts the executions of every task and checks, as each task starts, that all its
/// predecessors have already run. A system that loses, repeats or reorders a task is reported
/// as failed instead of being timed as if it had done the work.
///
/// The cost inside a task body is one relaxed fetch_add on the task's own counter plus one
/// relaxed load per predecessor; it is the same for every system measured.
class ExecutionLog {
 public:
  explicit ExecutionLog(const TaskGraph& graph);

  /// Forgets the previous run. Not thread-safe: call between runs only.
  void reset() noexcept;

  /// The body of every benchmark task.
  void execute(std::uint32_t task) noexcept {
    // Relaxed is enough: each runtime already orders a task after its predecessors (that is
    // what is being checked), and a runtime that does not is caught by the counter being 0.
    for (const std::uint32_t pred : m_graph->predecessors(task)) {
      if (m_runs[pred].load(std::memory_order_relaxed) == 0) {
        m_order_violations.fetch_add(1, std::memory_order_relaxed);
      }
    }
    m_runs[task].fetch_add(1, std::memory_order_relaxed);
  }

  struct Verdict {
    bool ok = false;
    std::uint64_t missing = 0;           ///< tasks that never ran
    std::uint64_t duplicated = 0;        ///< tasks that ran more than once
    std::uint64_t order_violations = 0;  ///< a task started before one of its predecessors
  };
  /// Call after the system reported that every task completed.
  [[nodiscard]] Verdict verify() const noexcept;

 private:
  const TaskGraph* m_graph;
  std::vector<std::atomic<std::uint32_t>> m_runs;
  alignas(64) std::atomic<std::uint64_t> m_order_violations{0};
};

}  // namespace parla::bench
