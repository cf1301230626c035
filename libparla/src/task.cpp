#include <parla/completion_token.hpp>
#include <parla/error.hpp>
#include <parla/runtime.hpp>
#include <parla/task.hpp>
#include <parla/task_context.hpp>

#include "runtime_impl.hpp"

namespace parla {

std::string Task::name() const {
  if (!m_record) return "<empty task handle>";
  return m_record->display_name();
}

TaskState Task::state() const {
  if (!m_record) throw Error("state() of an empty Task handle");
  return m_record->state();
}

void Task::rethrow_if_failed() const {
  if (!m_record) throw Error("rethrow_if_failed() of an empty Task handle");
  const TaskState s = m_record->state();
  if (s == TaskState::failed || s == TaskState::cancelled) m_record->m_runtime->throw_failure(*m_record);
}

const void* Task::result_ptr(const std::type_info& type) const {
  if (!m_record) throw Error("get() of an empty Task handle");
  const TaskState s = m_record->state();
  if (s == TaskState::failed || s == TaskState::cancelled) m_record->m_runtime->throw_failure(*m_record);
  if (s != TaskState::completed) {
    throw Error("the result of task '" + m_record->display_name() + "' was read while it is " +
                to_string(s) + "; wait for it first (rt.wait(task))");
  }
  const detail::ResultBox& r = m_record->result();
  if (!r.has_value()) {
    throw Error("task '" + m_record->display_name() + "' returned no value (its body returns void)");
  }
  if (*r.type() != type) {
    throw Error("the result of task '" + m_record->display_name() + "' has type " + r.type()->name() +
                ", not the requested " + type.name());
  }
  return r.get();
}

// ---- TaskContext -----------------------------------------------------------------------------

std::string TaskContext::name() const { return m_task->display_name(); }

Task TaskContext::task() const { return Task(detail::Ref<detail::TaskRecord>::share(m_task)); }

std::vector<const Device*> TaskContext::devices() const {
  std::vector<const Device*> out;
  const auto& all = m_runtime->devices();
  out.push_back(all[static_cast<std::size_t>(m_task->m_primary_device)]);
  for (std::size_t d = 0; d < all.size(); ++d) {
    if (static_cast<int>(d) != m_task->m_primary_device && ((m_task->m_device_mask >> d) & 1U) != 0) {
      out.push_back(all[d]);
    }
  }
  return out;
}

const Device& TaskContext::device() const {
  return *m_runtime->devices()[static_cast<std::size_t>(m_task->m_primary_device)];
}

CompletionToken TaskContext::defer_completion() {
  m_task->m_runtime->defer_completion(*m_task);
  return CompletionToken(detail::Ref<detail::TaskRecord>::share(m_task));
}

// ---- CompletionToken -------------------------------------------------------------------------

CompletionToken& CompletionToken::operator=(CompletionToken&& o) noexcept {
  if (this != &o) {
    CompletionToken previous(std::move(*this));  // an unfulfilled one fails its task here
    m_task = std::move(o.m_task);
  }
  return *this;
}

CompletionToken::~CompletionToken() {
  if (m_task) {
    const std::string name = m_task->display_name();
    try {
      fail(std::make_exception_ptr(Error("the completion token of task '" + name +
                                         "' was destroyed without being fulfilled")));
    } catch (...) {
      // Destructors must not throw; failing the task is the report.
    }
  }
}

void CompletionToken::fulfill() {
  if (!m_task) throw Error("CompletionToken::fulfill() on a token that is empty or already fulfilled");
  detail::Ref<detail::TaskRecord> task = std::move(m_task);
  task->m_runtime->complete_deferred(task.get(), nullptr, /*run_inline=*/true);
}

void CompletionToken::fail(std::exception_ptr error) {
  if (!m_task) throw Error("CompletionToken::fail() on a token that is empty or already fulfilled");
  if (!error) error = std::make_exception_ptr(Error("completion token failed without an exception"));
  detail::Ref<detail::TaskRecord> task = std::move(m_task);
  task->m_runtime->complete_deferred(task.get(), std::move(error), /*run_inline=*/true);
}

}  // namespace parla
