#include <parla/detail/task_record.hpp>

#include <cstdio>

#include "block_state.hpp"
#include "runtime_impl.hpp"

namespace parla::detail {

namespace {
constinit Edge k_closed_sentinel{};
}  // namespace

Edge* closed_list() noexcept { return &k_closed_sentinel; }

TaskRecord::TaskRecord() = default;
TaskRecord::~TaskRecord() = default;

void TaskRecord::destroy() noexcept {
  delete this;  // NOLINT(cppcoreguidelines-owning-memory): the intrusive count owns records
}

std::span<Edge> TaskRecord::edges() noexcept {
  Edge* first = m_heap_edges ? m_heap_edges.get() : m_inline_edges;
  return {first, m_num_edges};
}

std::string TaskRecord::display_name() const {
  if (!m_name.empty()) return m_name;
  char buf[40];
  std::snprintf(buf, sizeof buf, "task@%p", static_cast<const void*>(this));
  return buf;
}

}  // namespace parla::detail
