#include "core_set.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "runtime_impl.hpp"

namespace parla::detail {

namespace {

#if defined(__linux__)
bool set_thread_cores(const std::vector<int>& cores) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores) {
    if (c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &set);
  }
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}
#endif

}  // namespace

std::vector<int> current_thread_cores() {
  std::vector<int> out;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) out.push_back(c);
    }
  }
#endif
  return out;
}

CoreSet::CoreSet() : m_cores(current_thread_cores()) {
  if (m_cores.empty()) {
    // No affinity support: pretend to have the hardware threads, and never pin.
    const unsigned hw = std::thread::hardware_concurrency();
    for (unsigned c = 0; c < (hw == 0 ? 1U : hw); ++c) m_cores.push_back(static_cast<int>(c));
  }
  m_users.assign(m_cores.size(), 0);
}

int CoreSet::count_for(std::int64_t vcus_units) const noexcept {
  const auto n = static_cast<double>(m_cores.size());
  const auto want = std::llround(static_cast<double>(vcus_units) / static_cast<double>(k_vcus_unit) * n);
  return static_cast<int>(std::clamp<long long>(want, 1, static_cast<long long>(m_cores.size())));
}

std::vector<int> CoreSet::acquire(int n) {
  std::vector<int> out;
  out.reserve(static_cast<std::size_t>(n));
  std::lock_guard<std::mutex> lock(m_mutex);
  // Rounding can hand out more cores than vcus accounting implies (three tasks of 0.4 on two
  // cores get one each): then the least used cores are shared rather than failing.
  std::vector<char> taken(m_cores.size(), 0);
  for (int k = 0; k < n && k < static_cast<int>(m_cores.size()); ++k) {
    std::size_t best = m_cores.size();
    for (std::size_t i = 0; i < m_users.size(); ++i) {
      if (taken[i] == 0 && (best == m_cores.size() || m_users[i] < m_users[best])) best = i;
    }
    taken[best] = 1;
    ++m_users[best];
    out.push_back(m_cores[best]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void CoreSet::release(const std::vector<int>& cores) {
  std::lock_guard<std::mutex> lock(m_mutex);
  for (int c : cores) {
    const auto it = std::lower_bound(m_cores.begin(), m_cores.end(), c);
    if (it != m_cores.end() && *it == c) --m_users[static_cast<std::size_t>(it - m_cores.begin())];
  }
}

bool CoreSet::confine_current_thread() const noexcept {
#if defined(__linux__)
  return set_thread_cores(m_cores);
#else
  return false;
#endif
}

ScopedAffinity::ScopedAffinity(const std::vector<int>& cores) noexcept {
#if defined(__linux__)
  if (cores.empty()) return;
  try {
    m_previous = current_thread_cores();
  } catch (...) {
    return;
  }
  m_pinned = !m_previous.empty() && set_thread_cores(cores);
#else
  (void)cores;
#endif
}

ScopedAffinity::~ScopedAffinity() {
#if defined(__linux__)
  if (m_pinned) (void)set_thread_cores(m_previous);
#endif
}

}  // namespace parla::detail
