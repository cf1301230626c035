// CompletionToken: completes a task on an external event instead of when its body returns.
#pragma once

#include <exception>

#include <parla/detail/ref.hpp>
#include <parla/detail/task_record.hpp>

namespace parla {

/// Obtained inside a body with `ctx.defer_completion()`. The task then completes when both
/// its body has returned and the token is fulfilled, from any thread (for example when an
/// MPI request completes). Move-only. Destroying an unfulfilled token fails the task (a
/// lost token must not hang the program). Fulfilling twice is an error.
class CompletionToken {
 public:
  CompletionToken() = default;
  explicit CompletionToken(detail::Ref<detail::TaskRecord> task) noexcept : m_task(std::move(task)) {}
  CompletionToken(CompletionToken&&) noexcept = default;
  CompletionToken& operator=(CompletionToken&& o) noexcept;
  CompletionToken(const CompletionToken&) = delete;
  CompletionToken& operator=(const CompletionToken&) = delete;
  ~CompletionToken();

  /// Whether the token still has to be fulfilled.
  [[nodiscard]] bool pending() const noexcept { return static_cast<bool>(m_task); }
  /// The external event happened: the task completes (successfully, unless its body threw).
  /// The calling thread may run successors spawned with SpawnOptions::run_inline (short
  /// hand-off bodies) before it returns; do not call it from a CUDA host callback.
  void fulfill();
  /// The external event failed: the task fails with `error` (its dependents are cancelled).
  void fail(std::exception_ptr error);

 private:
  detail::Ref<detail::TaskRecord> m_task;
};

}  // namespace parla
