// bench_tasks: per-task overhead of empty tasks in Parla and, in the same process and run,
// StarPU and oneTBB, on the same graph (independent, chain, fanout, stencil_1d).
//
// Each system starts its W worker threads, runs the graph once to warm up, then R times; the
// figure is the median over the R runs of (seconds from the first spawn until every task has
// completed) / tasks. Every run is checked: each task ran exactly once and after all its
// predecessors. The last line on stdout is the JSON object of DESIGN.md §6; everything else
// goes to stderr. docs/performance.md has the results and the commands.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "task_graph.hpp"
#include "task_system.hpp"
#include "timer.hpp"

#ifndef PARLA_BENCH_HAVE_STARPU
#define PARLA_BENCH_HAVE_STARPU 0
#endif
#ifndef PARLA_BENCH_HAVE_TBB
#define PARLA_BENCH_HAVE_TBB 0
#endif

namespace parla::bench {
namespace {

constexpr std::string_view k_usage =
    "usage: bench_tasks --pattern {independent,chain,fanout,stencil} [--tasks N] [--workers W]\n"
    "                   [--repeat R] [--width K] [--join] [--systems parla,starpu,tbb]\n"
    "                   [--starpu-sched NAME] [--starpu-deps {task,tag}]\n"
    "\n"
    "  --tasks N        tasks in the graph (default 100000; stencil rounds down to a multiple of K)\n"
    "  --workers W      worker threads given to every system (default: hardware threads)\n"
    "  --repeat R       measured runs per system after one warm-up run (default 5)\n"
    "  --width K        stencil columns (default 4*W: enough parallel slack for W workers,\n"
    "                   narrow enough that every step depends on the previous one)\n"
    "  --join           fanout: the last task depends on every child\n"
    "  --systems LIST   comma-separated subset of parla,starpu,tbb,tbb_task_group (default: all\n"
    "                   built; tbb_task_group is added for --pattern independent when tbb is)\n"
    "  --starpu-sched   StarPU scheduling policy (default: STARPU_SCHED, else StarPU's default)\n"
    "  --starpu-deps    StarPU dependencies between tasks (default) or between tags\n";

struct Options {
  Pattern pattern = Pattern::independent;
  std::uint32_t tasks = 100000;
  unsigned workers = 0;
  unsigned repeat = 5;
  std::uint32_t width = 0;
  bool join = false;
  std::vector<std::string> systems;
  StarpuOptions starpu;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "bench_tasks: %s\n\n%.*s", message.c_str(), static_cast<int>(k_usage.size()),
               k_usage.data());
  std::exit(2);
}

template <typename T>
T parse_number(std::string_view flag, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0) {
    usage_error(std::string(flag) + " expects a positive integer, got '" + std::string(text) + "'");
  }
  return value;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto part = text.substr(0, comma);
    if (!part.empty()) parts.emplace_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

struct Availability {
  bool built;
  const char* why_not;
};

Availability availability(std::string_view system) {
  if (system == "parla") return {true, ""};
  if (system == "starpu") {
    return {PARLA_BENCH_HAVE_STARPU != 0,
            "StarPU was not found at configure time (pkg-config starpu-1.3; Debian: "
            "apt install libstarpu-dev)"};
  }
  if (system == "tbb" || system == "tbb_task_group") {
    return {PARLA_BENCH_HAVE_TBB != 0,
            "oneTBB was not found at configure time (find_package(TBB); Debian: apt install "
            "libtbb-dev)"};
  }
  return {false, "unknown system"};
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool have_pattern = false;
  bool have_systems = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fprintf(stderr, "%.*s", static_cast<int>(k_usage.size()), k_usage.data());
      std::exit(0);
    } else if (arg == "--pattern") {
      const auto name = value();
      const auto pattern = parse_pattern(name);
      if (!pattern) usage_error("unknown pattern '" + std::string(name) + "'");
      o.pattern = *pattern;
      have_pattern = true;
    } else if (arg == "--tasks") {
      o.tasks = parse_number<std::uint32_t>(arg, value());
    } else if (arg == "--workers") {
      o.workers = parse_number<unsigned>(arg, value());
    } else if (arg == "--repeat") {
      o.repeat = parse_number<unsigned>(arg, value());
    } else if (arg == "--width") {
      o.width = parse_number<std::uint32_t>(arg, value());
    } else if (arg == "--join") {
      o.join = true;
    } else if (arg == "--systems") {
      o.systems = split_commas(value());
      have_systems = true;
    } else if (arg == "--starpu-sched") {
      o.starpu.sched = std::string(value());
    } else if (arg == "--starpu-deps") {
      const auto deps = value();
      if (deps != "task" && deps != "tag") usage_error("--starpu-deps is 'task' or 'tag'");
      o.starpu.tag_deps = deps == "tag";
    } else {
      usage_error("unknown argument '" + std::string(arg) + "'");
    }
  }
  if (!have_pattern) usage_error("--pattern is required");
  if (o.workers == 0) o.workers = std::max(1U, std::thread::hardware_concurrency());
  if (o.width == 0) o.width = 4 * o.workers;

  if (!have_systems) {
    for (const char* name : {"parla", "starpu", "tbb"}) {
      const auto avail = availability(name);
      if (avail.built) {
        o.systems.emplace_back(name);
      } else {
        std::fprintf(stderr, "bench_tasks: skipping %s: %s\n", name, avail.why_not);
      }
    }
  }
  // task_group is TBB's tool for independent tasks; report it next to the flow graph.
  const bool has_tbb = std::find(o.systems.begin(), o.systems.end(), "tbb") != o.systems.end();
  const bool has_group =
      std::find(o.systems.begin(), o.systems.end(), "tbb_task_group") != o.systems.end();
  if (o.pattern == Pattern::independent && has_tbb && !has_group) {
    o.systems.emplace_back("tbb_task_group");
  }
  for (const auto& name : o.systems) {
    const auto avail = availability(name);
    if (!avail.built) usage_error("cannot run '" + name + "': " + avail.why_not);
    if (name == "tbb_task_group" && o.pattern != Pattern::independent) {
      usage_error("tbb_task_group only runs --pattern independent");
    }
  }
  if (o.systems.empty()) usage_error("no system to run");
  return o;
}

std::unique_ptr<TaskSystem> make_system(std::string_view name, const Options& o) {
  if (name == "parla") return make_parla_system(o.workers);
#if PARLA_BENCH_HAVE_STARPU
  if (name == "starpu") return make_starpu_system(o.workers, o.starpu);
#endif
#if PARLA_BENCH_HAVE_TBB
  if (name == "tbb") return make_tbb_flow_graph_system(o.workers);
  if (name == "tbb_task_group") return make_tbb_task_group_system(o.workers);
#endif
  throw std::logic_error("system '" + std::string(name) + "' is not built");
}

struct SystemResult {
  std::string name;
  std::vector<double> seconds;  // measured runs only
  std::vector<std::pair<std::string, std::string>> info;
  std::string error;            // non-empty: the system failed to start or to run
  unsigned runs_checked = 0;    // warm-up included
  ExecutionLog::Verdict worst;  // summed over all runs
  [[nodiscard]] bool ok() const {
    return error.empty() && worst.missing == 0 && worst.duplicated == 0 &&
           worst.order_violations == 0 && !seconds.empty();
  }
};

double median(std::vector<double> values) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

SystemResult run_system(const std::string& name, const Options& o, const TaskGraph& graph,
                        ExecutionLog& log) {
  SystemResult result;
  result.name = name;
  const double tasks = graph.size();
  auto checked_run = [&](TaskSystem& system) {
    log.reset();
    const double seconds = system.run(graph, log);
    const auto v = log.verify();
    ++result.runs_checked;
    result.worst.missing += v.missing;
    result.worst.duplicated += v.duplicated;
    result.worst.order_violations += v.order_violations;
    if (!v.ok) {
      std::fprintf(stderr,
                   "[%s] CHECK FAILED: %llu tasks never ran, %llu ran more than once, %llu "
                   "started before a predecessor\n",
                   name.c_str(), static_cast<unsigned long long>(v.missing),
                   static_cast<unsigned long long>(v.duplicated),
                   static_cast<unsigned long long>(v.order_violations));
    }
    return seconds;
  };
  try {
    const Timer start;
    auto system = make_system(name, o);
    std::fprintf(stderr, "[%s] started %u workers in %.3f s\n", name.c_str(), o.workers,
                 start.seconds());
    const double warm = checked_run(*system);
    std::fprintf(stderr, "[%s] warm-up  %8.3f s  %8.3f us/task\n", name.c_str(), warm,
                 warm / tasks * 1e6);
    for (unsigned r = 0; r < o.repeat; ++r) {
      const double s = checked_run(*system);
      result.seconds.push_back(s);
      std::fprintf(stderr, "[%s] run %-4u %8.3f s  %8.3f us/task\n", name.c_str(), r + 1, s,
                   s / tasks * 1e6);
    }
    result.info = system->info();
  } catch (const std::exception& e) {
    result.error = e.what();
    std::fprintf(stderr, "[%s] FAILED: %s\n", name.c_str(), e.what());
  }
  return result;
}

// ---- the JSON line ----------------------------------------------------------------------------

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

std::string json_bool(bool b) { return b ? "true" : "false"; }

/// {"name": value, ...} over the results that have a value.
template <typename F>
std::string json_per_system(const std::vector<SystemResult>& results, F value) {
  std::string out = "{";
  for (const auto& r : results) {
    if (out.size() > 1) out += ", ";
    out += json_string(r.name) + ": " + value(r);
  }
  return out + "}";
}

const SystemResult* find(const std::vector<SystemResult>& results, std::string_view name) {
  for (const auto& r : results) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

double us_per_task(const SystemResult& r, std::uint32_t tasks) {
  return r.ok() ? median(r.seconds) / tasks * 1e6 : std::nan("");
}

}  // namespace

int bench_tasks_main(int argc, char** argv) {
  const Timer wall;
  const Options o = parse_options(argc, argv);
  const TaskGraph graph = TaskGraph::make(o.pattern, o.tasks, o.width, o.join);
  const std::uint32_t n = graph.size();
  ExecutionLog log(graph);
  std::fprintf(stderr,
               "bench_tasks: pattern=%.*s tasks=%u edges=%llu workers=%u repeat=%u%s (hardware "
               "threads: %u)\n",
               static_cast<int>(to_string(o.pattern).size()), to_string(o.pattern).data(), n,
               static_cast<unsigned long long>(graph.num_edges()), o.workers, o.repeat,
               o.pattern == Pattern::stencil ? (" width=" + std::to_string(graph.width())).c_str()
               : graph.join()                ? " join"
                                             : "",
               std::thread::hardware_concurrency());

  std::vector<SystemResult> results;
  for (const auto& name : o.systems) results.push_back(run_system(name, o, graph, log));

  // ---- human table (stderr) ----
  std::fprintf(stderr, "\n%-16s %12s %10s %10s %8s  %s\n", "system", "median us/t", "min us/t",
               "max us/t", "check", "settings");
  for (const auto& r : results) {
    std::string settings;
    for (const auto& [k, v] : r.info) settings += k + "=" + v + " ";
    if (!r.error.empty()) settings = "error: " + r.error;
    const double lo = r.seconds.empty() ? std::nan("")
                                        : *std::min_element(r.seconds.begin(), r.seconds.end());
    const double hi = r.seconds.empty() ? std::nan("")
                                        : *std::max_element(r.seconds.begin(), r.seconds.end());
    std::fprintf(stderr, "%-16s %12.3f %10.3f %10.3f %8s  %s\n", r.name.c_str(),
                 median(r.seconds) / n * 1e6, lo / n * 1e6, hi / n * 1e6,
                 r.ok() ? "ok" : "FAILED", settings.c_str());
  }

  // ---- metrics ----
  const SystemResult* parla = find(results, "parla");
  const SystemResult* starpu = find(results, "starpu");
  const SystemResult* tbb = find(results, "tbb");
  auto ratio = [n](const SystemResult* a, const SystemResult* b) {
    return a != nullptr && b != nullptr ? us_per_task(*a, n) / us_per_task(*b, n) : std::nan("");
  };
  const double parla_over_starpu = ratio(parla, starpu);
  const double parla_over_tbb = ratio(parla, tbb);

  std::string metrics = "{";
  metrics += "\"us_per_task\": " +
             json_per_system(results, [n](const SystemResult& r) {
               return json_number(us_per_task(r, n));
             });
  metrics += ", \"us_per_task_min\": " + json_per_system(results, [n](const SystemResult& r) {
               return r.ok() ? json_number(*std::min_element(r.seconds.begin(), r.seconds.end()) /
                                           n * 1e6)
                             : "null";
             });
  metrics += ", \"us_per_task_max\": " + json_per_system(results, [n](const SystemResult& r) {
               return r.ok() ? json_number(*std::max_element(r.seconds.begin(), r.seconds.end()) /
                                           n * 1e6)
                             : "null";
             });
  metrics += ", \"seconds_per_run\": " + json_per_system(results, [](const SystemResult& r) {
               std::string s = "[";
               for (const double x : r.seconds) s += (s.size() > 1 ? ", " : "") + json_number(x);
               return s + "]";
             });
  metrics += ", \"ratio_parla_over_starpu\": " + json_number(parla_over_starpu);
  metrics += ", \"ratio_parla_over_tbb\": " + json_number(parla_over_tbb);
  // The goals docs/performance.md reports against.
  if (parla != nullptr && parla->ok()) {
    const double target = o.pattern == Pattern::independent ? 1.0
                          : o.pattern == Pattern::chain     ? 2.0
                                                            : std::nan("");
    std::string goals = "{";
    if (std::isfinite(target)) {
      goals += "\"parla_us_per_task_target\": " + json_number(target) +
               ", \"parla_us_per_task_met\": " + json_bool(us_per_task(*parla, n) <= target);
    }
    if (std::isfinite(parla_over_starpu)) {
      goals += std::string(goals.size() > 1 ? ", " : "") +
               "\"parla_over_starpu_target\": 0.5, \"parla_over_starpu_met\": " +
               json_bool(parla_over_starpu <= 0.5);
    }
    metrics += ", \"goals\": " + goals + "}";
  }
  metrics += ", \"settings\": " + json_per_system(results, [](const SystemResult& r) {
               std::string s = "{";
               for (const auto& [k, v] : r.info) {
                 s += (s.size() > 1 ? ", " : "") + json_string(k) + ": " + json_string(v);
               }
               return s + "}";
             });
  metrics += "}";

  // ---- check ----
  bool all_ok = !results.empty();
  for (const auto& r : results) all_ok = all_ok && r.ok();
  std::string check = "{\"ok\": " + json_bool(all_ok) + ", \"tasks\": " + std::to_string(n);
  for (const auto& r : results) {
    check += ", " + json_string(r.name) + ": {\"ok\": " + json_bool(r.ok()) +
             ", \"runs_checked\": " + std::to_string(r.runs_checked) +
             ", \"missing\": " + std::to_string(r.worst.missing) +
             ", \"duplicated\": " + std::to_string(r.worst.duplicated) +
             ", \"order_violations\": " + std::to_string(r.worst.order_violations);
    if (!r.error.empty()) check += ", \"error\": " + json_string(r.error);
    check += "}";
  }
  for (const char* name : {"parla", "starpu", "tbb"}) {
    const auto avail = availability(name);
    if (!avail.built) check += ", \"skipped_" + std::string(name) + "\": " + json_string(avail.why_not);
  }
  check += "}";

  std::string systems = "[";
  for (const auto& s : o.systems) systems += (systems.size() > 1 ? ", " : "") + json_string(s);
  systems += "]";
  std::string params = "{\"pattern\": " + json_string(to_string(o.pattern)) +
                       ", \"tasks\": " + std::to_string(n) +
                       ", \"repeat\": " + std::to_string(o.repeat) + ", \"width\": " +
                       (o.pattern == Pattern::stencil ? std::to_string(graph.width()) : "null") +
                       ", \"join\": " + json_bool(graph.join()) +
                       ", \"edges\": " + std::to_string(graph.num_edges()) +
                       ", \"systems\": " + systems + "}";

  std::printf(
      "{\"app\": \"bench_tasks\", \"ranks\": 1, \"workers\": %u, \"devices\": [\"cpu\"], "
      "\"params\": %s, \"seconds\": %s, \"metrics\": %s, \"check\": %s}\n",
      o.workers, params.c_str(), json_number(wall.seconds()).c_str(), metrics.c_str(),
      check.c_str());
  std::fflush(stdout);
  return all_ok ? 0 : 1;
}

}  // namespace parla::bench

int main(int argc, char** argv) {
  try {
    return parla::bench::bench_tasks_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tasks: error: %s\n", e.what());
    return 2;
  }
}
