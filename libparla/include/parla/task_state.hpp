// TaskState: the life cycle of a task (states only move forward).
#pragma once

#include <cstdint>

namespace parla {

/// placeholder: referenced by key, not spawned yet; pending: spawned, waiting for
/// predecessors; ready: mapped, waiting for resources or a worker; running: body executing
/// (or waiting for its completion token); then exactly one final state.
enum class TaskState : unsigned char { placeholder, pending, ready, running, completed, failed, cancelled };

/// "placeholder", "pending", ...
const char* to_string(TaskState s) noexcept;

/// completed, failed or cancelled.
[[nodiscard]] constexpr bool is_final(TaskState s) noexcept { return s >= TaskState::completed; }

}  // namespace parla
