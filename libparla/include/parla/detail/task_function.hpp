// TaskFunction (a move-only callable with a small buffer) and ResultBox (a task's result).
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <parla/fwd.hpp>

namespace parla::detail {

/// The type-erased value a task body returned. Small trivially-relocatable results live
/// inline; others on the heap. Written once by the worker before the task's completion is
/// published (release), read only after it is observed (acquire).
class ResultBox {
 public:
  ResultBox() = default;
  ResultBox(const ResultBox&) = delete;
  ResultBox& operator=(const ResultBox&) = delete;
  ~ResultBox() { reset(); }

  template <class R, class... Args>
  void emplace(Args&&... args) {
    reset();
    if constexpr (fits_inline<R>) {
      ::new (static_cast<void*>(m_inline)) R(std::forward<Args>(args)...);
      m_ptr = std::launder(reinterpret_cast<R*>(m_inline));
      m_destroy = [](void* p) noexcept { static_cast<R*>(p)->~R(); };
    } else {
      m_ptr = new R(std::forward<Args>(args)...);  // owned; freed by m_destroy
      m_destroy = [](void* p) noexcept { delete static_cast<R*>(p); };
    }
    m_type = &typeid(R);
  }

  [[nodiscard]] bool has_value() const noexcept { return m_ptr != nullptr; }
  [[nodiscard]] const std::type_info* type() const noexcept { return m_type; }
  [[nodiscard]] void* get() const noexcept { return m_ptr; }

  void reset() noexcept {
    if (m_ptr != nullptr) m_destroy(m_ptr);
    m_ptr = nullptr;
    m_type = nullptr;
  }

 private:
  static constexpr std::size_t inline_size = 16;
  template <class R>
  static constexpr bool fits_inline = sizeof(R) <= inline_size &&
                                      alignof(R) <= alignof(std::max_align_t);

  alignas(std::max_align_t) std::byte m_inline[inline_size];
  void* m_ptr = nullptr;
  void (*m_destroy)(void*) noexcept = nullptr;
  const std::type_info* m_type = nullptr;
};

/// A move-only `void(TaskContext&, ResultBox&)` with a small buffer, so that a task and its
/// body are one allocation for bodies whose captures fit in `inline_size` bytes.
class TaskFunction {
 public:
  static constexpr std::size_t inline_size = 56;

  TaskFunction() = default;
  TaskFunction(const TaskFunction&) = delete;
  TaskFunction& operator=(const TaskFunction&) = delete;
  TaskFunction(TaskFunction&& o) noexcept { move_from(o); }
  TaskFunction& operator=(TaskFunction&& o) noexcept {
    if (this != &o) {
      reset();
      move_from(o);
    }
    return *this;
  }
  ~TaskFunction() { reset(); }

  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskFunction>>>
  explicit TaskFunction(F&& f) {
    using Fn = std::decay_t<F>;
    if constexpr (sizeof(Fn) <= inline_size && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      ::new (static_cast<void*>(m_storage)) Fn(std::forward<F>(f));
      m_ops = &inline_ops<Fn>;
    } else {
      auto* heap = new Fn(std::forward<F>(f));  // owned by m_storage; freed by heap_ops.destroy
      ::new (static_cast<void*>(m_storage)) Fn*(heap);
      m_ops = &heap_ops<Fn>;
    }
  }

  explicit operator bool() const noexcept { return m_ops != nullptr; }
  /// Whether the callable stores a result (false for a body returning void: the runtime then
  /// gives it a scratch box instead of the task's).
  [[nodiscard]] bool returns_value() const noexcept { return m_ops != nullptr && m_ops->returns_value; }
  /// Whether the callable names its task on request (see `describe`).
  [[nodiscard]] bool describes() const noexcept {
    return m_ops != nullptr && m_ops->describe != nullptr;
  }
  /// Appends the task's name as the callable gives it; only when describes(). The runtime
  /// keeps such a callable until the record dies (it is never reset), and the callable's
  /// describe() reads only what its call does not change: naming is safe from any thread.
  void describe(std::string& out) const { m_ops->describe(m_storage, out); }
  void operator()(TaskContext& ctx, ResultBox& out) { m_ops->invoke(m_storage, ctx, out); }
  void reset() noexcept {
    if (m_ops != nullptr) m_ops->destroy(m_storage);
    m_ops = nullptr;
  }

 private:
  struct Ops {
    void (*invoke)(void*, TaskContext&, ResultBox&);
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst, destroys src
    void (*destroy)(void*) noexcept;
    void (*describe)(const void*, std::string&);  // null unless the callable names its task
    bool returns_value;
  };
  /// A callable says it never stores a result with `static constexpr bool returns_value =
  /// false` (BodyAdapter does for bodies returning void); any other may.
  template <class Fn>
  static constexpr bool k_returns_value = [] {
    if constexpr (requires { Fn::returns_value; }) {
      return static_cast<bool>(Fn::returns_value);
    } else {
      return true;
    }
  }();
  /// A callable that names its task lazily has `void describe(std::string&) const` (a
  /// communication task: "mpi.send(to 1, tag 7)", formatted only for a report or an error).
  template <class Fn>
  static constexpr bool k_describes = requires(const Fn& f, std::string& s) { f.describe(s); };
  template <class Fn, bool Heap>
  static constexpr auto describe_op() -> void (*)(const void*, std::string&) {
    if constexpr (k_describes<Fn>) {
      return [](const void* p, std::string& out) {
        if constexpr (Heap) {
          (*static_cast<Fn* const*>(p))->describe(out);
        } else {
          std::launder(static_cast<const Fn*>(p))->describe(out);
        }
      };
    } else {
      return nullptr;
    }
  }
  template <class Fn>
  static constexpr Ops inline_ops{
      [](void* p, TaskContext& c, ResultBox& r) { (*std::launder(static_cast<Fn*>(p)))(c, r); },
      [](void* d, void* s) noexcept {
        Fn* src = std::launder(static_cast<Fn*>(s));
        ::new (d) Fn(std::move(*src));
        src->~Fn();
      },
      [](void* p) noexcept { std::launder(static_cast<Fn*>(p))->~Fn(); },
      describe_op<Fn, false>(), k_returns_value<Fn>};
  template <class Fn>
  static constexpr Ops heap_ops{
      [](void* p, TaskContext& c, ResultBox& r) { (**static_cast<Fn**>(p))(c, r); },
      [](void* d, void* s) noexcept { ::new (d) Fn*(*static_cast<Fn**>(s)); },
      [](void* p) noexcept { delete *static_cast<Fn**>(p); }, describe_op<Fn, true>(),
      k_returns_value<Fn>};

  void move_from(TaskFunction& o) noexcept {
    if (o.m_ops != nullptr) {
      o.m_ops->move(m_storage, o.m_storage);
      m_ops = std::exchange(o.m_ops, nullptr);
    }
  }

  alignas(std::max_align_t) std::byte m_storage[inline_size];
  const Ops* m_ops = nullptr;
};

}  // namespace parla::detail
