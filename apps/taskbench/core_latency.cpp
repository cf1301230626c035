// core_latency: how long a cache line takes to go from one core to another and back, right
// now. Two threads, on two different cores of the process's set, take turns storing into one
// atomic (each waits for the other's value, then stores the next); the result is the median
// over trials of the time per round trip.
//
// A runtime's task crosses cores several times in its life (its record, its predecessors'
// counts), plain MPI's point data once per message, so Task Bench's METG ratios depend on this
// number. On a shared virtual machine it changes from minute to minute (0.1-0.8 us per round
// trip measured here), which is why metg.py runs it before every round.
//
//   build/apps/taskbench/core_latency [--round-trips N] [--trials T]
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../shared/parse_int.hpp"

namespace {

struct Options {
  long round_trips = 20000;
  int trials = 5;
};

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--round-trips N] [--trials T]\n"
      "Measures the round trip of one cache line between two cores of this process's set.\n"
      "  --round-trips N  round trips per trial (default 20000)\n"
      "  --trials T       trials; the median counts (default 5)\n"
      "The last line on stdout is a JSON object; progress goes to stderr.\n",
      argv0);
}

/// The first two cores of the process's affinity set (fewer when it has fewer).
std::vector<int> two_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return cores;
  for (int c = 0; c < CPU_SETSIZE && cores.size() < 2; ++c) {
    if (CPU_ISSET(c, &set))
      cores.push_back(c);
  }
  return cores;
}

void pin(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  (void)sched_setaffinity(0, sizeof(set), &set);  // best effort: a probe, not a contract
}

/// One trial: nanoseconds per round trip.
double trial(long round_trips, const std::vector<int>& cores) {
  alignas(64) std::atomic<long> turn{-1};
  const long last = 2 * round_trips;
  std::thread other([&] {
    if (cores.size() == 2)
      pin(cores[1]);
    turn.store(0, std::memory_order_release);  // running, on its core
    for (long v = 1; v < last; v += 2) {
      while (turn.load(std::memory_order_acquire) != v) {
      }
      turn.store(v + 1, std::memory_order_release);
    }
  });
  if (cores.size() == 2)
    pin(cores[0]);
  // Wait until the other thread runs before timing (its start-up is not a round trip).
  while (turn.load(std::memory_order_acquire) != 0) {
  }
  const auto start = std::chrono::steady_clock::now();
  for (long v = 0; v < last; v += 2) {
    while (turn.load(std::memory_order_acquire) != v) {
    }
    turn.store(v + 1, std::memory_order_release);
  }
  while (turn.load(std::memory_order_acquire) != last) {
  }
  const auto end = std::chrono::steady_clock::now();
  other.join();
  return std::chrono::duration<double, std::nano>(end - start).count() /
         static_cast<double>(round_trips);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        usage(argv[0]);
        return 0;
      }
      if ((a == "--round-trips" || a == "--trials") && i + 1 < argc) {
        const std::int64_t v = parla_apps::parse_int(a, argv[++i], 1);
        if (a == "--round-trips") {
          o.round_trips = static_cast<long>(v);
        } else {
          o.trials = static_cast<int>(std::min<std::int64_t>(v, 1000));
        }
        continue;
      }
      std::fprintf(stderr, "core_latency: unknown or incomplete option '%s' (see --help)\n",
                   a.c_str());
      return 2;
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "core_latency: %s\n", e.what());
    return 2;
  }
  const std::vector<int> cores = two_cores();
  std::vector<double> ns;
  for (int t = 0; t < o.trials; ++t)
    ns.push_back(trial(o.round_trips, cores));
  std::vector<double> sorted = ns;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t mid = sorted.size() / 2;
  const double median = sorted.size() % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  std::fprintf(
      stderr, "core_latency: cores %s, %.0f ns per round trip (median of %d trials of %ld)\n",
      cores.size() == 2 ? (std::to_string(cores[0]) + " and " + std::to_string(cores[1])).c_str()
                        : "unpinned (fewer than 2 in the set)",
      median, o.trials, o.round_trips);
  std::string runs;
  for (double x : ns)
    runs += (runs.empty() ? "" : ", ") + std::to_string(x);
  std::printf(
      "{\"app\": \"core_latency\", \"params\": {\"round_trips\": %ld, \"trials\": %d, \"cores\": "
      "%d}, "
      "\"metrics\": {\"round_trip_ns\": %.1f, \"round_trip_ns_runs\": [%s]}, \"check\": {\"ok\": "
      "%s}}\n",
      o.round_trips, o.trials, static_cast<int>(cores.size()), median, runs.c_str(),
      median > 0 ? "true" : "false");
  return 0;
}
