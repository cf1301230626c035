// Built against the installed package: a chain of tasks, each adding one to its predecessor's
// result, must end at the chain's length.
#include <cstdio>
#include <parla/parla.hpp>

int main() {
  parla::Runtime rt(parla::RuntimeConfig{.num_workers = 2});
  parla::TaskSpace T(rt, "T");
  constexpr int n = 100;
  for (int i = 0; i < n; ++i) {
    if (i == 0) {
      rt.spawn({.key = T[0]}, [] { return 1; });
    } else {
      const parla::TaskRef prev = T[i - 1];
      rt.spawn({.key = T[i], .dependencies = {prev}}, [prev] { return prev.result<int>() + 1; });
    }
  }
  rt.wait(T);
  const int last = T[n - 1].result<int>();
  std::printf("chain of %d tasks -> %d\n", n, last);
  return last == n ? 0 : 1;
}
