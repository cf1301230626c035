// bench_data: host->device, device->host and device->device copy throughput through the
// runtime (tasks declaring data accesses, so the runtime copies on its copy streams) versus
// raw copies of the same sizes issued on a device stream, in the same run.
//
// For each size S, a batch of K blocks: the runtime figure is K*S / (time from spawning the
// K consuming tasks until all completed); the raw figure is K*S / (time of one task that
// enqueues the same K copies with Stream::copy and completes when they finish). Each figure
// is the median of R repetitions after a warm-up that allocates every instance. The last
// stdout line is the JSON object of DESIGN.md §6; metrics.ratio holds, per direction, the
// lowest runtime/raw ratio over sizes >= 1 MiB. Progress goes to stderr.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <parla/parla.hpp>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Options {
  std::vector<std::size_t> sizes{64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20};
  int reps = 9;
  std::size_t batch_bytes = 64 << 20;
  int workers = 2;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "%s%s"
               "usage: bench_data [--sizes 65536,1048576,...] [--reps R] [--batch-mib M] [--workers W]\n"
               "  devices: PARLA_SIM_GPUS=N simulates N GPUs (default 2 when no CUDA device is seen);\n"
               "  PARLA_SIM_COPY_GBPS=B gives simulated copy engines a bandwidth (default unlimited)\n",
               why.empty() ? "" : "bench_data: ", why.empty() ? "" : (why + "\n").c_str());
  std::exit(why.empty() ? 0 : 2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--sizes") {
      o.sizes.clear();
      std::string v = value();
      for (std::size_t p = 0; p < v.size();) {
        const std::size_t q = v.find(',', p);
        o.sizes.push_back(std::stoull(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else if (a == "--reps") {
      o.reps = std::max(1, std::stoi(value()));
    } else if (a == "--batch-mib") {
      o.batch_bytes = std::stoull(value()) << 20;
    } else if (a == "--workers") {
      o.workers = std::max(1, std::stoi(value()));
    } else if (a == "--help" || a == "-h") {
      usage("");
    } else {
      usage("unknown argument '" + a + "'");
    }
  }
  return o;
}

struct Result {
  double runtime_gbps = 0;
  double raw_gbps = 0;
};

/// One direction at one size. `src_dev`/`dst_dev`: -1 = cpu, else gpu(i).
Result measure(parla::Runtime& rt, std::size_t size, int count, int src_dev, int dst_dev, int reps,
               std::uint64_t& copies_seen) {
  using parla::DataBlock;
  auto place = [](int d) { return d < 0 ? parla::Placement(parla::cpu) : parla::gpu(d); };
  std::vector<DataBlock> blocks;
  std::vector<DataBlock> raw_dst;
  std::vector<std::vector<std::uint8_t>> host_dst;  // raw d2h destination
  std::vector<void*> src_ptrs(static_cast<std::size_t>(count));
  for (int k = 0; k < count; ++k) {
    blocks.emplace_back(rt, size, "B" + std::to_string(k));
    std::memset(blocks.back().host_data(), k + 1, size);
    raw_dst.emplace_back(rt, size, "R" + std::to_string(k));
    std::memset(raw_dst.back().host_data(), 0, size);
  }
  // Makes the source device hold the only valid copies (untimed), recording where they are.
  auto prepare = [&] {
    for (int k = 0; k < count; ++k) {
      DataBlock b = blocks[static_cast<std::size_t>(k)];
      void** slot = &src_ptrs[static_cast<std::size_t>(k)];
      rt.spawn({.placement = place(src_dev), .out = {b}}, [b, slot](parla::TaskContext& ctx) { *slot = ctx.data(b); });
    }
    rt.wait_all();
  };
  auto runtime_once = [&] {
    prepare();
    const auto before = rt.stats();
    const auto t0 = Clock::now();
    for (int k = 0; k < count; ++k) {
      rt.spawn({.placement = place(dst_dev), .in = {blocks[static_cast<std::size_t>(k)]}}, [] {});
    }
    rt.wait_all();
    const double s = seconds_since(t0);
    const auto after = rt.stats();
    copies_seen += (after.copies_h2d + after.copies_d2h + after.copies_d2d) -
                   (before.copies_h2d + before.copies_d2h + before.copies_d2d);
    return static_cast<double>(size) * count / s / 1e9;
  };
  if (dst_dev < 0) {
    host_dst.assign(static_cast<std::size_t>(count), std::vector<std::uint8_t>(size, 1));
  }
  // Raw: one task on the device that does the copying enqueues the same copies on its stream.
  auto raw_once = [&] {
    prepare();
    const int dev = dst_dev >= 0 ? dst_dev : src_dev;
    parla::SpawnOptions o;
    o.placement = parla::gpu(dev);
    if (dst_dev >= 0) {
      for (auto& d : raw_dst) o.inout.push_back(d);  // already on the device after warm-up
    } else {
      for (auto& b : blocks) o.in.push_back(b);  // valid there: no copy
    }
    const auto t0 = Clock::now();
    rt.spawn(std::move(o), [&](parla::TaskContext& ctx) {
      for (int k = 0; k < count; ++k) {
        const auto ks = static_cast<std::size_t>(k);
        void* dst = dst_dev >= 0 ? ctx.data(raw_dst[ks]) : host_dst[ks].data();
        const void* src = src_dev < 0 ? blocks[ks].host_data() : src_ptrs[ks];
        ctx.stream().copy(dst, src, size);
      }
    });
    rt.wait_all();
    return static_cast<double>(size) * count / seconds_since(t0) / 1e9;
  };
  (void)runtime_once();  // warm-up: allocates every instance
  (void)raw_once();
  copies_seen = 0;
  std::vector<double> rt_v;
  std::vector<double> raw_v;
  for (int r = 0; r < reps; ++r) {
    rt_v.push_back(runtime_once());
    raw_v.push_back(raw_once());
  }
  return {median(rt_v), median(raw_v)};
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  parla::RuntimeConfig cfg;
  cfg.num_workers = o.workers;
  if (std::getenv("PARLA_SIM_GPUS") == nullptr) {
    // Real GPUs when the rank sees any, else two simulated ones.
    parla::RuntimeConfig probe;
    probe.num_workers = 1;
    probe.sim_gpus = 0;
    const int cuda = parla::Runtime(probe).num_gpus();
    cfg.sim_gpus = cuda > 0 ? 0 : 2;
  }
  parla::Runtime rt(cfg);
  if (rt.num_gpus() == 0) {
    std::fprintf(stderr, "bench_data: no GPUs (set PARLA_SIM_GPUS=2)\n");
    return 2;
  }
  std::vector<std::string> devices;
  for (const auto* d : rt.devices()) devices.push_back(d->name() + ":" + d->backend());

  const auto t_start = Clock::now();
  struct Dir {
    const char* name;
    int src;
    int dst;
  };
  std::vector<Dir> dirs{{"h2d", -1, 0}, {"d2h", 0, -1}};
  if (rt.num_gpus() >= 2) dirs.push_back({"d2d", 0, 1});
  std::map<std::string, std::map<std::size_t, Result>> results;
  bool copies_ok = true;
  for (const Dir& d : dirs) {
    for (std::size_t size : o.sizes) {
      const int count = static_cast<int>(std::clamp<std::size_t>(o.batch_bytes / size, 4, 64));
      std::uint64_t copies = 0;
      const Result r = measure(rt, size, count, d.src, d.dst, o.reps, copies);
      const bool ok = copies == static_cast<std::uint64_t>(count) * static_cast<std::uint64_t>(o.reps);
      copies_ok = copies_ok && ok;
      results[d.name][size] = r;
      std::fprintf(stderr, "%s %9zu B x %2d: runtime %7.2f GB/s, raw %7.2f GB/s, ratio %.3f%s\n", d.name, size,
                   count, r.runtime_gbps, r.raw_gbps, r.runtime_gbps / r.raw_gbps, ok ? "" : " (copy count wrong)");
    }
  }
  const double seconds = seconds_since(t_start);

  std::string ratio = "{";
  std::string gbps = "{";
  bool first_dir = true;
  for (const char* name : {"h2d", "d2h", "d2d"}) {
    ratio += std::string(first_dir ? "" : ", ") + "\"" + name + "\": ";
    gbps += std::string(first_dir ? "" : ", ") + "\"" + name + "\": {";
    first_dir = false;
    auto it = results.find(name);
    if (it == results.end()) {
      ratio += "null";
      gbps += "}";
      continue;
    }
    double worst = -1;
    bool first = true;
    for (const auto& [size, r] : it->second) {
      const double q = r.runtime_gbps / r.raw_gbps;
      if (size >= (1 << 20)) worst = worst < 0 ? q : std::min(worst, q);
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s\"%zu\": {\"runtime\": %.3f, \"raw\": %.3f}", first ? "" : ", ", size,
                    r.runtime_gbps, r.raw_gbps);
      gbps += buf;
      first = false;
    }
    gbps += "}";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", worst);
    ratio += worst < 0 ? std::string("null") : std::string(buf);
  }
  ratio += "}";
  gbps += "}";
  std::string devs = "[";
  for (std::size_t i = 0; i < devices.size(); ++i) devs += (i ? ", \"" : "\"") + devices[i] + "\"";
  devs += "]";
  std::string sizes = "[";
  for (std::size_t i = 0; i < o.sizes.size(); ++i) sizes += (i ? ", " : "") + std::to_string(o.sizes[i]);
  sizes += "]";
  std::printf(
      "{\"app\": \"bench_data\", \"ranks\": 1, \"workers\": %d, \"devices\": %s, \"params\": {\"sizes\": %s, "
      "\"reps\": %d, \"batch_bytes\": %zu, \"sim_copy_gbps\": %.3f}, \"seconds\": %.3f, \"metrics\": {\"ratio\": %s, "
      "\"gbps\": %s, \"goal\": {\"ratio_min\": 0.9}}, \"check\": {\"ok\": %s, \"copies_counted\": %s}}\n",
      o.workers, devs.c_str(), sizes.c_str(), o.reps, o.batch_bytes, rt.config().sim_copy_gbps, seconds,
      ratio.c_str(), gbps.c_str(), copies_ok ? "true" : "false", copies_ok ? "true" : "false");
  return copies_ok ? 0 : 1;
}
