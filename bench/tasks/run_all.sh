#!/usr/bin/env bash
# Runs bench_tasks on every pattern with the sizes docs/performance.md reports, and collects
# the JSON lines (one per pattern) in $OUT (default bench_tasks.jsonl), the progress lines and
# tables in the matching .log, and how busy other processes kept the machine in the .noise
# file (bench/tasks/summarize.py reads it).
#
#   bench/tasks/run_all.sh [build-dir] [workers] [repeat]
#
# Each pattern first waits (up to 10 minutes) until the machine is quiet: less than
# $MAX_BUSY percent (default 10) of all CPU time used over 3 s, so that a concurrent compile
# does not pollute the figures. The load average and any other busy process seen before and
# after each pattern are printed (docs/performance.md reports them).
set -euo pipefail

build=${1:-build}
workers=${2:-2}
repeat=${3:-5}
out=${OUT:-bench_tasks.jsonl}
max_busy=${MAX_BUSY:-10}
bench="$build/bench/bench_tasks"
[[ -x $bench ]] || { echo "run_all.sh: $bench not found; build the bench_tasks target first" >&2; exit 2; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
# Percentage of CPU time (all cores) not idle over the next 3 seconds.
busy_percent() {
  local a b
  a=($(head -n 1 /proc/stat)); sleep 3; b=($(head -n 1 /proc/stat))
  local total=0 idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  for i in $(seq 1 8); do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}
others() { ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 && $2 != "bench_tasks" { printf "%s(%s%%) ", $2, $1 }'; }
wait_quiet() {
  local busy
  for _ in $(seq 150); do
    busy=$(busy_percent)
    (( busy < max_busy )) && return 0
    echo "   waiting: CPU ${busy}% busy; $(others)" >&2
  done
  echo "run_all.sh: still ${busy}% busy after 10 minutes; measuring anyway" >&2
}

: > "$out"
log=${out%.jsonl}.log
noise=${out%.jsonl}.noise  # per JSON line: % of the machine other processes used meanwhile
: > "$log"
: > "$noise"
# Non-idle CPU jiffies of the whole machine so far.
busy_jiffies() { awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
timef=$(mktemp)
trap 'rm -f "$timef"' EXIT
run() {
  wait_quiet
  echo "== $* (load before: $(load))" | tee -a "$log" >&2
  local before after
  before=$(busy_jiffies)
  /usr/bin/time -f "%e %U %S" -o "$timef" \
    "$bench" --workers "$workers" --repeat "$repeat" "$@" 2>>"$log" | tail -n 1 >> "$out" ||
    echo "   bench_tasks failed (exit $?); its JSON line says why" >&2
  after=$(busy_jiffies)
  awk '/^system/ { table = "" } { table = table $0 "\n" } END { printf "%s", table }' "$log" >&2
  # What other processes took while bench_tasks ran: the machine's busy CPU time minus
  # bench_tasks' own user+system time, as a share of all cores over the run.
  read -r wall user sys < "$timef"
  local other pct
  read -r other pct < <(awk -v b="$before" -v a="$after" -v w="$wall" -v u="$user" -v s="$sys" \
      -v c="$(nproc)" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        other = (a - b) / hz - u - s; if (other < 0) other = 0
        printf "%.1f %.0f\n", other, 100 * other / (w * c) }')
  echo "   ${wall} s; other processes used ${other} CPU-s = ${pct}% of the machine" \
       "(load after: $(load))" | tee -a "$log" >&2
  echo "$pct" >> "$noise"
}

# Sizes: 1M tasks where StarPU's run stays under ~10 s (it needs ~2-5 us/task here); the chain
# has 100k tasks (Taskflow's and TBB's usual chain size).
run --pattern independent --tasks 1000000
run --pattern chain --tasks 100000
run --pattern fanout --tasks 1000000
run --pattern fanout --tasks 1000000 --join
run --pattern stencil --tasks 1000000
echo "run_all.sh: results in $out" >&2
