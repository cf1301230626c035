// Error types thrown by parla::core.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace parla {

/// Base of every error parla::core throws (bad placement, double spawn, bad key, ...).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A task body threw. Rethrown where the program waits: on the failed task, on any task it
/// cancelled (its transitive dependents), and at `wait_all()`/`finish()`.
class TaskError : public Error {
 public:
  TaskError(std::string message, std::string task_name, std::exception_ptr original)
      : Error(std::move(message)), m_task_name(std::move(task_name)),
        m_original(std::move(original)) {}

  /// Name of the task whose body threw (not of a dependent that was cancelled because of it).
  [[nodiscard]] const std::string& task_name() const noexcept { return m_task_name; }
  /// The exception the body threw, untouched (so bindings can re-raise the original object).
  [[nodiscard]] const std::exception_ptr& original() const noexcept { return m_original; }
  /// Throws the original exception.
  [[noreturn]] void rethrow_original() const { std::rethrow_exception(m_original); }

 private:
  std::string m_task_name;
  std::exception_ptr m_original;
};

/// Nothing can make progress: the tasks being waited for depend on keys never spawned, on a
/// cycle, or on reservations that can never fit. Thrown by a wait after
/// PARLA_DEADLOCK_TIMEOUT seconds without progress; `blocked()` lists each blocked task and
/// what it waits for.
class DeadlockError : public Error {
 public:
  DeadlockError(std::string message, std::vector<std::string> blocked)
      : Error(std::move(message)), m_blocked(std::move(blocked)) {}

  /// One line per blocked task: "T[2] (pending): waits for T[1] (never spawned)".
  [[nodiscard]] const std::vector<std::string>& blocked() const noexcept { return m_blocked; }

 private:
  std::vector<std::string> m_blocked;
};

}  // namespace parla
