// Dep: one dependency (a task, a TaskSpace element, or a TaskSpace slice).
#pragma once

#include <variant>

#include <parla/task.hpp>
#include <parla/task_space.hpp>

namespace parla {

/// Something a task can depend on, or a wait can wait for. A default-constructed Dep is
/// empty and ignored (handy for `{i ? T[i - 1] : parla::Dep{}}`).
class Dep {
 public:
  Dep() = default;
  Dep(Task task) : m_value(std::move(task)) {}          // NOLINT: implicit by design
  Dep(TaskRef element) : m_value(std::move(element)) {}  // NOLINT
  Dep(TaskSlice slice) : m_value(std::move(slice)) {}    // NOLINT

  [[nodiscard]] bool empty() const noexcept { return std::holds_alternative<std::monostate>(m_value); }
  [[nodiscard]] const std::variant<std::monostate, Task, TaskRef, TaskSlice>& value() const noexcept {
    return m_value;
  }
  /// Mutable: a spawn takes the handle's reference out of its own copy of the options.
  [[nodiscard]] std::variant<std::monostate, Task, TaskRef, TaskSlice>& value() noexcept { return m_value; }

 private:
  std::variant<std::monostate, Task, TaskRef, TaskSlice> m_value;
};

}  // namespace parla
