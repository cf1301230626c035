// TaskKey: the key of a task in a TaskSpace (integers, a tuple of integers, or a string).
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace parla {

/// A key in a TaskSpace: up to `max_rank` integers (`T[3]`, `T[{i, j}]`) or a string
/// (`T["setup"]`). Printable: "3", "1,2", "setup" (the TaskSpace adds "T[...]").
class TaskKey {
 public:
  static constexpr std::size_t max_rank = 4;

  TaskKey() = default;
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  TaskKey(I i) : m_rank(1) {  // NOLINT: implicit by design (T[i])
    m_ints[0] = static_cast<std::int64_t>(i);
  }
  TaskKey(std::initializer_list<std::int64_t> ints);
  TaskKey(std::string_view s) : m_rank(0), m_is_string(true), m_string(s) {}  // NOLINT
  TaskKey(const char* s) : TaskKey(std::string_view(s)) {}                    // NOLINT

  [[nodiscard]] bool is_string() const noexcept { return m_is_string; }
  /// Number of integers (0 for string keys).
  [[nodiscard]] std::size_t rank() const noexcept { return m_rank; }
  [[nodiscard]] std::int64_t operator[](std::size_t d) const noexcept { return m_ints[d]; }
  [[nodiscard]] const std::string& string() const noexcept { return m_string; }
  [[nodiscard]] std::string to_string() const;
  /// Appends to_string() to `out` (no temporary string).
  void append_to(std::string& out) const;
  [[nodiscard]] std::size_t hash() const noexcept;

  friend bool operator==(const TaskKey& a, const TaskKey& b) noexcept;
  /// Total order: integer keys (lexicographic) before string keys.
  friend bool operator<(const TaskKey& a, const TaskKey& b) noexcept;

 private:
  std::array<std::int64_t, max_rank> m_ints{};
  std::size_t m_rank = 0;
  bool m_is_string = false;
  std::string m_string;
};

}  // namespace parla

template <>
struct std::hash<parla::TaskKey> {
  std::size_t operator()(const parla::TaskKey& k) const noexcept { return k.hash(); }
};
