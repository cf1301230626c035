// Variants: one implementation of a function per device kind, chosen where the task runs.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <parla/device.hpp>
#include <parla/error.hpp>
#include <parla/task_context.hpp>

namespace parla {

template <class Signature>
class Variants;

/// A function with one implementation per device kind (Parla's `@specialize`):
///
///     parla::Variants<void(double*, int)> scale("scale", scale_any);  // fallback (optional)
///     scale.add(parla::DeviceKind::gpu, scale_gpu)
///          .add({parla::DeviceKind::gpu, parla::DeviceKind::gpu}, scale_two_gpus);
///     ... inside a body: scale(ctx, x, n);
///
/// A call runs the variant whose kinds match the task's devices (in `ctx.devices()` order),
/// then for a multi-device task the variant of its first device's kind, then the fallback;
/// with none of these it throws parla::Error naming the devices and the variants there are.
template <class R, class... Args>
class Variants<R(Args...)> {
 public:
  using Function = std::function<R(Args...)>;

  explicit Variants(std::string name, Function fallback = {})
      : m_name(std::move(name)), m_fallback(std::move(fallback)) {}

  /// Adds the variant for tasks on one device of `kind`.
  Variants& add(DeviceKind kind, Function fn) { return add(std::vector<DeviceKind>{kind}, std::move(fn)); }
  /// Adds the variant for multi-device tasks on devices of these kinds, in this order.
  Variants& add(std::vector<DeviceKind> kinds, Function fn) {
    for (auto& [k, f] : m_variants) {
      if (k == kinds) throw Error("'" + m_name + "' already has a variant for " + describe(kinds));
    }
    m_variants.emplace_back(std::move(kinds), std::move(fn));
    return *this;
  }

  /// The variant for these devices (nullptr when there is none and no fallback).
  [[nodiscard]] const Function* find(const std::vector<const Device*>& devices) const noexcept {
    std::vector<DeviceKind> kinds;
    kinds.reserve(devices.size());
    for (const Device* d : devices) kinds.push_back(d->kind());
    for (const auto& [k, f] : m_variants) {
      if (k == kinds) return &f;
    }
    if (kinds.size() > 1) {
      for (const auto& [k, f] : m_variants) {
        if (k.size() == 1 && k[0] == kinds[0]) return &f;
      }
    }
    return m_fallback ? &m_fallback : nullptr;
  }

  /// Runs the variant for the task's devices.
  R operator()(const TaskContext& ctx, Args... args) const {
    const std::vector<const Device*> devices = ctx.devices();
    const Function* fn = find(devices);
    if (fn == nullptr) {
      std::string on;
      for (const Device* d : devices) on += (on.empty() ? "" : ", ") + d->name();
      std::string have;
      for (const auto& [k, f] : m_variants) have += (have.empty() ? "" : ", ") + describe(k);
      throw Error("'" + m_name + "' has no variant for a task on " + on + " and no fallback (variants: " +
                  (have.empty() ? std::string("none") : have) + "); add one with .add(kind, fn)");
    }
    return (*fn)(std::forward<Args>(args)...);
  }

 private:
  static std::string describe(const std::vector<DeviceKind>& kinds) {
    if (kinds.size() == 1) return to_string(kinds[0]);
    std::string s = "(";
    for (std::size_t i = 0; i < kinds.size(); ++i) s += (i != 0 ? ", " : "") + std::string(to_string(kinds[i]));
    return s + ")";
  }

  std::string m_name;
  Function m_fallback;
  std::vector<std::pair<std::vector<DeviceKind>, Function>> m_variants;
};

}  // namespace parla
