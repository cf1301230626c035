#include <parla/error.hpp>
#include <parla/task_key.hpp>

#include <algorithm>
#include <charconv>
#include <functional>

namespace parla {

TaskKey::TaskKey(std::initializer_list<std::int64_t> ints) : m_rank(ints.size()) {
  if (ints.size() == 0 || ints.size() > max_rank) {
    throw Error("a TaskKey has 1 to " + std::to_string(max_rank) + " integers, got " +
                std::to_string(ints.size()));
  }
  std::copy(ints.begin(), ints.end(), m_ints.begin());
}

void TaskKey::append_to(std::string& out) const {
  if (m_is_string) {
    out += m_string;
    return;
  }
  char num[24];
  for (std::size_t d = 0; d < m_rank; ++d) {
    if (d != 0) out.push_back(',');
    out.append(num, std::to_chars(num, num + sizeof num, m_ints[d]).ptr);
  }
}

std::string TaskKey::to_string() const {
  if (m_is_string) return m_string;
  std::string s;
  append_to(s);
  return s;
}

std::size_t TaskKey::hash() const noexcept {
  if (m_is_string) return std::hash<std::string>{}(m_string);
  std::size_t h = m_rank;
  for (std::size_t d = 0; d < m_rank; ++d) {
    h ^= std::hash<std::int64_t>{}(m_ints[d]) + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  }
  return h;
}

bool operator==(const TaskKey& a, const TaskKey& b) noexcept {
  if (a.m_is_string != b.m_is_string) return false;
  if (a.m_is_string) return a.m_string == b.m_string;
  return a.m_rank == b.m_rank && std::equal(a.m_ints.begin(), a.m_ints.begin() + static_cast<std::ptrdiff_t>(a.m_rank), b.m_ints.begin());
}

bool operator<(const TaskKey& a, const TaskKey& b) noexcept {
  if (a.m_is_string != b.m_is_string) return !a.m_is_string;
  if (a.m_is_string) return a.m_string < b.m_string;
  if (a.m_rank != b.m_rank) return a.m_rank < b.m_rank;
  return std::lexicographical_compare(a.m_ints.begin(), a.m_ints.begin() + static_cast<std::ptrdiff_t>(a.m_rank),
                                      b.m_ints.begin(), b.m_ints.begin() + static_cast<std::ptrdiff_t>(b.m_rank));
}

}  // namespace parla
