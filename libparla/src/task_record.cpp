#include <parla/detail/task_record.hpp>

#include <cstdio>

#include "block_state.hpp"
#include "record_pool.hpp"
#include "runtime_impl.hpp"

namespace parla::detail {

namespace {
constinit Edge k_closed_sentinel{};
}  // namespace

Edge* closed_list() noexcept { return &k_closed_sentinel; }

std::string exception_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

TaskError task_error_of(const TaskRecord& t) {
  const std::shared_ptr<Failure>& f = t.failure();
  if (!f) {
    throw Error("task '" + t.display_name() + "' has no recorded failure");
  }
  f->reported.store(true, std::memory_order_relaxed);
  if (t.state() == TaskState::failed) {
    return task_error_of(*f);
  }
  return TaskError("task '" + t.display_name() + "' was cancelled because task '" +
                       f->task_name + "' failed: " + exception_text(f->error),
                   f->task_name, f->error);
}

TaskError task_error_of(const Failure& f) {
  return TaskError("task '" + f.task_name + "' failed: " + exception_text(f.error), f.task_name,
                   f.error);
}

void* TaskRecord::operator new(std::size_t bytes) { return pool_allocate_record(bytes); }
void TaskRecord::operator delete(void* p) noexcept { pool_free_record(p); }

TaskRecord::TaskRecord() = default;
TaskRecord::~TaskRecord() = default;

void TaskRecord::destroy() noexcept {
  delete this;  // NOLINT(cppcoreguidelines-owning-memory): the intrusive count owns records
}

std::span<EdgeInfo> TaskRecord::edge_info() noexcept {
  EdgeInfo* first = m_heap_edge_info ? m_heap_edge_info.get() : m_inline_edge_info;
  return {first, m_num_edges};
}

std::string TaskRecord::display_name() const {
  if (!m_name.empty()) return m_name;
  char buf[40];
  std::snprintf(buf, sizeof buf, "task@%p", static_cast<const void*>(this));
  return buf;
}

}  // namespace parla::detail
