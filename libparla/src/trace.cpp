// Chrome-trace / Perfetto JSON output (PARLA_TRACE=path.json) and the stats summary.
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <parla/error.hpp>
#include <parla/runtime_stats.hpp>

#include "runtime_impl.hpp"

namespace parla {

std::string RuntimeStats::to_string() const {
  std::ostringstream out;
  char buf[160];
  std::snprintf(buf, sizeof buf, "parla: %" PRIu64 " tasks run, %" PRIu64 " failed, %.3f s wall\n",
                tasks_run, tasks_failed, wall_seconds);
  out << buf;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    const Worker& w = workers[i];
    if (timed) {
      std::snprintf(buf, sizeof buf, "  worker %zu (%s): %" PRIu64 " tasks, busy %.3f s (%.1f%%)\n", i,
                    w.device.c_str(), w.tasks, w.busy_seconds, 100.0 * w.busy_fraction);
    } else {
      std::snprintf(buf, sizeof buf, "  worker %zu (%s): %" PRIu64 " tasks (busy time not measured; set PARLA_STATS=1)\n", i,
                    w.device.c_str(), w.tasks);
    }
    out << buf;
  }
  return out.str();
}

namespace detail {

namespace {

std::string json_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string micros(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / 1000.0);
  return buf;
}

}  // namespace

// Called after the workers joined: their trace vectors are no longer written.
void RuntimeImpl::write_trace() const {
  std::ofstream out(m_config.trace_path);
  if (!out) {
    throw Error("cannot write the trace to '" + m_config.trace_path +
                "' (PARLA_TRACE): check that the folder exists and is writable");
  }
  struct Where {
    int tid;
    std::int64_t start;
    std::int64_t end;
  };
  std::unordered_map<std::uint64_t, Where> where;
  const int helper_tid = static_cast<int>(m_workers.size());

  out << "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
  out << R"({"ph":"M","name":"process_name","pid":1,"tid":0,"args":{"name":"parla runtime"}})";
  for (const auto& w : m_workers) {
    out << ",\n" << R"({"ph":"M","name":"thread_name","pid":1,"tid":)" << w->index
        << R"(,"args":{"name":")" << m_devices[static_cast<std::size_t>(w->device)]->device->name()
        << " worker " << w->index << "\"}}";
  }
  out << ",\n" << R"({"ph":"M","name":"thread_name","pid":1,"tid":)" << helper_tid
      << R"x(,"args":{"name":"waiting threads (helping)"}})x";
  auto emit = [&](const TraceEvent& ev, int tid) {
    where[ev.id] = Where{tid, ev.start_ns, ev.end_ns};
    out << ",\n" << R"({"ph":"X","cat":"task","name":")" << json_escape(ev.name) << R"(","pid":1,"tid":)" << tid
        << R"(,"ts":)" << micros(ev.start_ns) << R"(,"dur":)" << micros(ev.end_ns - ev.start_ns)
        << R"(,"args":{"id":)" << ev.id << R"(,"device":")"
        << m_devices[static_cast<std::size_t>(ev.device)]->device->name() << "\"}}";
  };
  for (const auto& w : m_workers) {
    for (const auto& ev : w->trace) emit(ev, w->index);
  }
  // One track per device stream (simulated GPUs; CUDA work is not timed).
  int stream_tid = helper_tid + 1;
  for (const auto& slot : m_devices) {
    for (BackendStream* st : slot->backend->streams()) {
      const int tid = stream_tid++;
      out << ",\n" << R"({"ph":"M","name":"thread_name","pid":1,"tid":)" << tid << R"(,"args":{"name":")"
          << slot->device->name() << " " << st->label() << "\"}}";
      for (const auto& ev : st->trace()) {
        out << ",\n" << R"({"ph":"X","cat":")" << ev.category << R"(","name":")" << json_escape(ev.name)
            << R"(","pid":1,"tid":)" << tid << R"(,"ts":)" << micros(ev.start_ns) << R"(,"dur":)"
            << micros(ev.end_ns - ev.start_ns) << R"(,"args":{"device":")" << slot->device->name()
            << R"(","stream":")" << st->label() << "\"}}";
      }
    }
  }
  std::lock_guard<std::mutex> lock(m_trace_mutex);
  for (const auto& ev : m_helper_trace) emit(ev, helper_tid);
  // Flow arrows: from the end of the predecessor to the start of the successor.
  std::uint64_t flow_id = 0;
  for (const auto& [pred, succ] : m_trace_flows) {
    const auto p = where.find(pred);
    const auto s = where.find(succ);
    if (p == where.end() || s == where.end()) continue;  // one of them never ran
    ++flow_id;
    out << ",\n" << R"({"ph":"s","cat":"dep","name":"dependency","id":)" << flow_id
        << R"(,"pid":1,"tid":)" << p->second.tid << R"(,"ts":)" << micros(p->second.end - 1) << "}";
    out << ",\n" << R"({"ph":"f","bp":"e","cat":"dep","name":"dependency","id":)" << flow_id
        << R"(,"pid":1,"tid":)" << s->second.tid << R"(,"ts":)" << micros(s->second.start) << "}";
  }
  out << "\n]}\n";
}

}  // namespace detail
}  // namespace parla
