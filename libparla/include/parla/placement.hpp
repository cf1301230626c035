// Placement: where a task may run.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <parla/device.hpp>
#include <parla/resources.hpp>

namespace parla {

/// One device, or any device of a kind (index -1).
struct DeviceSpec {
  DeviceKind kind = DeviceKind::cpu;
  int index = -1;
  friend bool operator==(const DeviceSpec&, const DeviceSpec&) = default;
};

/// One way to run a task: a set of devices held together (one for ordinary tasks, several
/// for multi-device tasks) and, optionally, resources that override the task's defaults on
/// each of those devices.
struct PlacementOption {
  std::vector<DeviceSpec> devices;
  std::optional<Resources> resources;
};

/// Where a task may run: a list of options of which the mapper picks one (by load). The
/// default-constructed placement means `cpu`.
///
///     parla::cpu                                   the cpu device
///     parla::gpu                                   any GPU
///     parla::gpu(1)                                GPU 1
///     parla::any_of({parla::gpu(0), parla::cpu})   one of these
///     parla::all_of({parla::gpu(0), parla::gpu(1)})  both at once (multi-device task)
///     parla::gpu.with({.vcus = 0.5})               per-option resource hint
class Placement {
 public:
  Placement() = default;
  explicit Placement(std::vector<PlacementOption> options) : m_options(std::move(options)) {}

  /// This placement with `resources` requested on each device of each of its options.
  [[nodiscard]] Placement with(Resources resources) const;

  [[nodiscard]] const std::vector<PlacementOption>& options() const noexcept { return m_options; }
  /// True for the default placement (cpu).
  [[nodiscard]] bool is_default() const noexcept { return m_options.empty(); }
  /// "cpu", "gpu", "gpu(1)", "any_of(gpu(0), cpu)", "all_of(gpu(0), gpu(1))".
  [[nodiscard]] std::string to_string() const;

 private:
  std::vector<PlacementOption> m_options;
};

namespace detail {

struct CpuTag {
  operator Placement() const;  // NOLINT(google-explicit-constructor): `placement = parla::cpu`
  [[nodiscard]] Placement operator()(int index = 0) const;
  [[nodiscard]] Placement with(Resources resources) const;
};

struct GpuTag {
  operator Placement() const;  // NOLINT(google-explicit-constructor): `placement = parla::gpu`
  [[nodiscard]] Placement operator()(int index) const;
  [[nodiscard]] Placement with(Resources resources) const;
};

}  // namespace detail

/// The cpu device (`parla::cpu`, or `parla::cpu(0)`).
inline constexpr detail::CpuTag cpu{};
/// Any GPU (`parla::gpu`) or one GPU (`parla::gpu(i)`).
inline constexpr detail::GpuTag gpu{};

/// A list placement: the task runs on one of these.
[[nodiscard]] Placement any_of(std::initializer_list<Placement> choices);
/// A tuple placement: the task runs on all of these at once (each must name one device set).
[[nodiscard]] Placement all_of(std::initializer_list<Placement> parts);

}  // namespace parla
