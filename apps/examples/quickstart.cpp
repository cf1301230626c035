// quickstart: the example of docs/cpp-api.md, as a complete program.
//
//   build/apps/examples/parla_example_quickstart         (2 workers, 2 simulated GPUs)
//   PARLA_TRACE=trace.json build/apps/examples/parla_example_quickstart   (open in Perfetto)
#include <parla/parla.hpp>

#include <cstdio>
#include <stdexcept>

int main() {
  parla::Runtime rt({.num_workers = 2, .sim_gpus = 2});
  parla::TaskSpace T(rt, "T");

  // A chain of four steps alternating between the two GPUs, each holding half a GPU.
  for (int i = 0; i < 4; ++i) {
    rt.spawn({.key = T[i],
              .dependencies = {i ? parla::Dep(T[i - 1]) : parla::Dep{}},
              .placement = parla::gpu(i % 2),
              .vcus = 0.5},
             [i](parla::TaskContext& ctx) {
               std::fprintf(stderr, "%s runs on %s\n", ctx.name().c_str(), ctx.device().name().c_str());
               return i * i;
             });
  }
  rt.wait(T[3]);
  std::printf("T[3] = %d\n", T[3].result<int>());

  // Nested tasks: a body spawns and waits for children (the wait runs tasks, never blocks
  // the pool).
  parla::Task parent = rt.spawn({.name = "parent"}, [](parla::TaskContext& ctx) {
    parla::Task a = ctx.runtime().spawn({}, [] { return 20; });
    parla::Task b = ctx.runtime().spawn({}, [] { return 22; });
    ctx.runtime().wait(a);
    ctx.runtime().wait(b);
    return a.get<int>() + b.get<int>();
  });
  rt.wait(parent);
  std::printf("parent = %d\n", parent.get<int>());

  // Failures: rethrown at the wait with the task's name; dependents are cancelled.
  parla::Task bad = rt.spawn({.name = "bad"}, []() -> int { throw std::runtime_error("boom"); });
  parla::Task after = rt.spawn({.dependencies = {bad}, .name = "after"}, [] { return 1; });
  try {
    rt.wait(after);
  } catch (const parla::TaskError& e) {
    std::printf("caught: %s\n", e.what());
  }

  rt.finish();  // waits for everything; throws the first failure nobody has seen yet
  std::printf("%s", rt.stats().to_string().c_str());
  return 0;
}
