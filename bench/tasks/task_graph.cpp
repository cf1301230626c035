#include "task_graph.hpp"

#include <algorithm>
#include <stdexcept>

namespace parla::bench {

std::optional<Pattern> parse_pattern(std::string_view name) {
  if (name == "independent") return Pattern::independent;
  if (name == "chain") return Pattern::chain;
  if (name == "fanout") return Pattern::fanout;
  if (name == "stencil") return Pattern::stencil;
  return std::nullopt;
}

std::string_view to_string(Pattern pattern) {
  switch (pattern) {
    case Pattern::independent: return "independent";
    case Pattern::chain: return "chain";
    case Pattern::fanout: return "fanout";
    case Pattern::stencil: return "stencil";
  }
  return "?";
}

TaskGraph TaskGraph::make(Pattern pattern, std::uint32_t num_tasks, std::uint32_t width,
                          bool join) {
  if (num_tasks == 0) throw std::invalid_argument("--tasks must be at least 1");
  TaskGraph g;
  g.m_pattern = pattern;
  g.m_size = num_tasks;
  if (pattern == Pattern::stencil) {
    if (width == 0) throw std::invalid_argument("--width must be at least 1");
    g.m_width = std::min(width, num_tasks);
    g.m_size = num_tasks / g.m_width * g.m_width;
  }
  g.m_join = pattern == Pattern::fanout && join && num_tasks >= 3;

  const std::uint32_t n = g.m_size;
  g.m_offsets.reserve(std::size_t{n} + 1);
  g.m_offsets.push_back(0);
  auto add_task = [&g](std::initializer_list<std::uint32_t> preds) {
    g.m_preds.insert(g.m_preds.end(), preds);
    g.m_offsets.push_back(static_cast<std::uint32_t>(g.m_preds.size()));
  };

  switch (pattern) {
    case Pattern::independent:
      for (std::uint32_t i = 0; i < n; ++i) add_task({});
      break;
    case Pattern::chain:
      add_task({});
      for (std::uint32_t i = 1; i < n; ++i) add_task({i - 1});
      break;
    case Pattern::fanout: {
      const std::uint32_t children_end = g.m_join ? n - 1 : n;
      add_task({});
      for (std::uint32_t i = 1; i < children_end; ++i) add_task({0});
      if (g.m_join) {
        for (std::uint32_t i = 1; i < children_end; ++i) g.m_preds.push_back(i);
        g.m_offsets.push_back(static_cast<std::uint32_t>(g.m_preds.size()));
      }
      break;
    }
    case Pattern::stencil: {
      const std::uint32_t k = g.m_width;
      for (std::uint32_t x = 0; x < k; ++x) add_task({});
      for (std::uint32_t i = k; i < n; ++i) {
        const std::uint32_t x = i % k;
        const std::uint32_t above = i - k;  // same column, previous step
        if (k == 1) {
          add_task({above});
        } else if (x == 0) {
          add_task({above, above + 1});
        } else if (x == k - 1) {
          add_task({above - 1, above});
        } else {
          add_task({above - 1, above, above + 1});
        }
      }
      break;
    }
  }

  g.m_has_successors.assign(n, 0);
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto preds = g.predecessors(i);
    g.m_max_in_degree = std::max(g.m_max_in_degree, static_cast<std::uint32_t>(preds.size()));
    for (const std::uint32_t p : preds) g.m_has_successors[p] = 1;
  }
  return g;
}

ExecutionLog::ExecutionLog(const TaskGraph& graph) : m_graph(&graph), m_runs(graph.size()) {
  reset();
}

void ExecutionLog::reset() noexcept {
  for (auto& runs : m_runs) runs.store(0, std::memory_order_relaxed);
  m_order_violations.store(0, std::memory_order_relaxed);
}

ExecutionLog::Verdict ExecutionLog::verify() const noexcept {
  Verdict v;
  for (const auto& runs : m_runs) {
    const std::uint32_t r = runs.load(std::memory_order_acquire);
    if (r == 0) ++v.missing;
    if (r > 1) ++v.duplicated;
  }
  v.order_violations = m_order_violations.load(std::memory_order_acquire);
  v.ok = v.missing == 0 && v.duplicated == 0 && v.order_violations == 0;
  return v;
}

}  // namespace parla::bench
