// Ref<T>: an intrusive reference-counted pointer (T provides add_ref()/release()).
#pragma once

#include <utility>

namespace parla::detail {

template <class T>
class Ref {
 public:
  constexpr Ref() noexcept = default;
  /// Adopts one reference the caller already owns.
  static Ref adopt(T* p) noexcept {
    Ref r;
    r.m_ptr = p;
    return r;
  }
  /// Takes a new reference to `p`.
  static Ref share(T* p) noexcept {
    if (p != nullptr) p->add_ref();
    return adopt(p);
  }
  Ref(const Ref& o) noexcept : m_ptr(o.m_ptr) {
    if (m_ptr != nullptr) m_ptr->add_ref();
  }
  Ref(Ref&& o) noexcept : m_ptr(std::exchange(o.m_ptr, nullptr)) {}
  Ref& operator=(Ref o) noexcept {
    std::swap(m_ptr, o.m_ptr);
    return *this;
  }
  ~Ref() { reset(); }

  void reset() noexcept {
    if (T* p = std::exchange(m_ptr, nullptr)) p->release();
  }
  /// Gives up ownership of the reference without releasing it.
  [[nodiscard]] T* detach() noexcept { return std::exchange(m_ptr, nullptr); }

  [[nodiscard]] T* get() const noexcept { return m_ptr; }
  T* operator->() const noexcept { return m_ptr; }
  T& operator*() const noexcept { return *m_ptr; }
  explicit operator bool() const noexcept { return m_ptr != nullptr; }
  friend bool operator==(const Ref& a, const Ref& b) noexcept { return a.m_ptr == b.m_ptr; }

 private:
  T* m_ptr = nullptr;
};

}  // namespace parla::detail
