// Task: a handle to one spawned task (cheap to copy; keeps the task's record alive).
#pragma once

#include <string>
#include <typeinfo>

#include <parla/detail/ref.hpp>
#include <parla/detail/task_record.hpp>
#include <parla/task_state.hpp>

namespace parla {

/// A handle to a task. Returned by `Runtime::spawn`, obtained from a TaskSpace element with
/// `TaskRef::task()`, usable as a dependency and as something to wait for.
class Task {
 public:
  Task() = default;
  explicit Task(detail::Ref<detail::TaskRecord> record) noexcept : m_record(std::move(record)) {}

  /// False for a default-constructed handle.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_record); }
  explicit operator bool() const noexcept { return valid(); }
  /// The task's name: "T[3]" for keyed tasks, the `name` option, or "task@<address>".
  [[nodiscard]] std::string name() const;
  [[nodiscard]] TaskState state() const;
  /// Completed, failed or cancelled.
  [[nodiscard]] bool done() const { return is_final(state()); }

  /// The value the body returned. Throws parla::TaskError if the task failed or was
  /// cancelled, parla::Error if it has not completed yet (wait for it first) or if `R` is
  /// not the type the body returned.
  template <class R>
  [[nodiscard]] const R& get() const {
    return *static_cast<const R*>(result_ptr(typeid(R)));
  }

  /// Throws the task's TaskError if it failed or was cancelled; otherwise does nothing.
  void rethrow_if_failed() const;

  [[nodiscard]] detail::TaskRecord* record() const noexcept { return m_record.get(); }
  /// Hands this handle's reference over (the runtime takes it from a dependency it was given
  /// by value, saving a count up and down); the handle is empty afterwards.
  [[nodiscard]] detail::Ref<detail::TaskRecord> take_record() noexcept { return std::move(m_record); }
  friend bool operator==(const Task& a, const Task& b) noexcept { return a.m_record == b.m_record; }

 private:
  [[nodiscard]] const void* result_ptr(const std::type_info& type) const;
  detail::Ref<detail::TaskRecord> m_record;
};

}  // namespace parla
