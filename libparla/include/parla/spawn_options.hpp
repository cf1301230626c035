// SpawnOptions: everything about a task except its body.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <parla/data_block.hpp>
#include <parla/dep.hpp>
#include <parla/placement.hpp>
#include <parla/task_space.hpp>

namespace parla {

/// Options of `Runtime::spawn`, meant for designated initialisers:
/// `rt.spawn({.key = T[i], .dependencies = {T[i - 1]}, .placement = parla::gpu, .in = {a},
/// .out = {b.slice(0, n)}, .vcus = 0.5}, body)`. Data accesses also order tasks: a reader
/// after a writer of overlapping bytes depends on it, a writer after readers depends on them
/// (in spawn order; off with RuntimeConfig::infer_dependencies = false).
struct SpawnOptions {
  /// The task's element in a TaskSpace (empty: an anonymous task).
  TaskRef key{};
  /// Tasks, elements (spawned or not yet) and slices that must complete first.
  std::vector<Dep> dependencies{};
  /// Where it may run (default: cpu).
  Placement placement{};
  /// Data the task reads: brought to its device before it runs.
  std::vector<DataSlice> in{};
  /// Data the task overwrites entirely: other copies are invalidated, nothing is copied in.
  std::vector<DataSlice> out{};
  /// Data the task reads and writes.
  std::vector<DataSlice> inout{};
  /// Fraction of each device it holds while running (1.0 = the whole device).
  double vcus = 0.0;
  /// Bytes of each device's memory it holds while running.
  std::size_t memory = 0;
  /// Ready tasks with priority > 0 are taken before ordinary ready tasks of their device.
  int priority = 0;
  /// Display name for anonymous tasks (keyed tasks are named after their key).
  std::string name{};
  /// The body only hands work off and returns at once (it posts a message, or enqueues work
  /// and defers its completion): the thread that makes the task ready — a progress thread
  /// fulfilling a completion token, the spawner, or a worker finishing its last predecessor
  /// (then right after that task, before the worker's next one) — runs it right there instead
  /// of queueing it, saving a thread hand-off per message. Honoured for cpu tasks without
  /// vcus or memory; never use it for a body that computes or blocks.
  bool run_inline = false;
  /// False: the task's accesses still move data and keep the copies coherent, but add no
  /// inferred dependencies and are not recorded for later tasks — the caller orders it with
  /// explicit `dependencies` (distributed arrays do, to keep interior updates independent of
  /// ghost-cell writes inside the same block).
  bool infer_dependencies = true;
};

}  // namespace parla
