// Tracing: PARLA_TRACE writes Chrome-trace/Perfetto JSON with tasks, tracks and flows.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <variant>

#include "test_common.hpp"

namespace {

using parla::test::RuntimeSweep;

// A small JSON reader, enough to check the trace is well-formed and read its events.
struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, std::vector<Json>, std::map<std::string, Json>> v;
  const Json& operator[](const std::string& k) const { return std::get<std::map<std::string, Json>>(v).at(k); }
  [[nodiscard]] bool has(const std::string& k) const {
    const auto* m = std::get_if<std::map<std::string, Json>>(&v);
    return m != nullptr && m->count(k) != 0;
  }
  [[nodiscard]] const std::string& str() const { return std::get<std::string>(v); }
  [[nodiscard]] double num() const { return std::get<double>(v); }
  [[nodiscard]] const std::vector<Json>& arr() const { return std::get<std::vector<Json>>(v); }
};

class JsonParser {
 public:
  explicit JsonParser(std::string text) : m_s(std::move(text)) {}
  Json parse() {
    Json j = value();
    ws();
    if (m_i != m_s.size()) throw std::runtime_error("trailing characters at " + std::to_string(m_i));
    return j;
  }

 private:
  void ws() {
    while (m_i < m_s.size() && std::isspace(static_cast<unsigned char>(m_s[m_i])) != 0) ++m_i;
  }
  char peek() {
    ws();
    if (m_i >= m_s.size()) throw std::runtime_error("unexpected end");
    return m_s[m_i];
  }
  void expect(char c) {
    if (peek() != c) throw std::runtime_error(std::string("expected ") + c + " at " + std::to_string(m_i));
    ++m_i;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (m_s.at(m_i) != '"') {
      if (m_s[m_i] == '\\') {
        ++m_i;
        const char e = m_s.at(m_i);
        if (e == 'u') {
          out += '?';
          m_i += 4;
        } else {
          out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        }
      } else {
        out += m_s[m_i];
      }
      ++m_i;
    }
    ++m_i;
    return out;
  }
  Json value() {
    const char c = peek();
    if (c == '{') {
      ++m_i;
      std::map<std::string, Json> m;
      if (peek() == '}') {
        ++m_i;
        return Json{m};
      }
      for (;;) {
        std::string k = string();
        expect(':');
        m.emplace(std::move(k), value());
        if (peek() == ',') {
          ++m_i;
          continue;
        }
        expect('}');
        return Json{m};
      }
    }
    if (c == '[') {
      ++m_i;
      std::vector<Json> a;
      if (peek() == ']') {
        ++m_i;
        return Json{a};
      }
      for (;;) {
        a.push_back(value());
        if (peek() == ',') {
          ++m_i;
          continue;
        }
        expect(']');
        return Json{a};
      }
    }
    if (c == '"') return Json{string()};
    if (m_s.compare(m_i, 4, "true") == 0) {
      m_i += 4;
      return Json{true};
    }
    if (m_s.compare(m_i, 5, "false") == 0) {
      m_i += 5;
      return Json{false};
    }
    if (m_s.compare(m_i, 4, "null") == 0) {
      m_i += 4;
      return Json{nullptr};
    }
    std::size_t used = 0;
    const double d = std::stod(m_s.substr(m_i, 40), &used);
    m_i += used;
    return Json{d};
  }
  std::string m_s;
  std::size_t m_i = 0;
};

class TraceTest : public RuntimeSweep {};

TEST_P(TraceTest, TraceJsonHasTracksTasksAndDependencyFlows) {
  const std::string path = testing::TempDir() + "parla_trace_" + std::to_string(::getpid()) + "_" +
                           parla::test::sweep_name({GetParam(), 0}) + ".json";
  {
    parla::RuntimeConfig c = config();
    c.trace_path = path;
    parla::Runtime rt(c);
    parla::TaskSpace T(rt, "T");
    const auto devices = all_devices();
    for (int i = 0; i < 5; ++i) {
      rt.spawn({.key = T[i],
                .dependencies = {i ? parla::Dep(T[i - 1]) : parla::Dep{}},
                .placement = devices[static_cast<std::size_t>(i) % devices.size()]},
               [] {});
    }
    for (int i = 0; i < 3; ++i) rt.spawn({.name = "free \"" + std::to_string(i) + "\""}, [] {});
    rt.wait_all();
    EXPECT_GT(rt.stats().workers.size(), 0U);
  }  // the trace is written when the runtime ends
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  Json root = JsonParser(text.str()).parse();
  std::map<std::string, const Json*> tasks;
  int threads = 0;
  std::vector<const Json*> starts;
  std::vector<const Json*> finishes;
  for (const Json& ev : root["traceEvents"].arr()) {
    const std::string& ph = ev["ph"].str();
    if (ph == "X") {
      tasks[ev["name"].str()] = &ev;
      EXPECT_TRUE(ev["args"].has("device"));
      EXPECT_GE(ev["dur"].num(), 0.0);
    } else if (ph == "M" && ev["name"].str() == "thread_name") {
      ++threads;
    } else if (ph == "s") {
      starts.push_back(&ev);
    } else if (ph == "f") {
      finishes.push_back(&ev);
    }
  }
  // One track per worker, one for helping threads, one per stream of each simulated GPU
  // (4 compute streams, copy in, copy out).
  EXPECT_EQ(threads, workers() + gpus() + 1 + 6 * gpus());
  ASSERT_EQ(tasks.size(), 8U);
  for (int i = 0; i < 5; ++i) {
    const std::string name = "T[" + std::to_string(i) + "]";
    ASSERT_TRUE(tasks.count(name)) << name;
    const std::string expect_dev = all_devices()[static_cast<std::size_t>(i) % all_devices().size()].to_string();
    EXPECT_EQ((*tasks[name])["args"]["device"].str(), expect_dev == "gpu" ? "gpu(0)" : expect_dev);
  }
  EXPECT_TRUE(tasks.count("free \"0\""));
  ASSERT_EQ(starts.size(), 4U);  // the chain's four edges
  ASSERT_EQ(finishes.size(), 4U);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ((*starts[k])["id"].num(), (*finishes[k])["id"].num());
    EXPECT_LE((*starts[k])["ts"].num(), (*finishes[k])["ts"].num());
  }
  // T[i] starts after T[i-1] ends.
  for (int i = 1; i < 5; ++i) {
    const Json& prev = *tasks["T[" + std::to_string(i - 1) + "]"];
    const Json& cur = *tasks["T[" + std::to_string(i) + "]"];
    EXPECT_LE(prev["ts"].num() + prev["dur"].num(), cur["ts"].num() + 1e-3);
  }
  std::remove(path.c_str());
}

PARLA_INSTANTIATE_SWEEP(TraceTest);

}  // namespace
