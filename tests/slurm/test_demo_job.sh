#!/usr/bin/env bash
# Submits jobscripts/demo.sbatch to a real single-node SLURM cluster (jobscripts/local-slurm),
# waits for it, and checks the JSON result the job wrote (its .out file and its run folder). Skips (77) when not root.
set -euo pipefail
root=$1
build_dir=$2
[[ $(id -u) -eq 0 ]] || { echo "needs root to start the local cluster: skipped"; exit 77; }
work=$(mktemp -d /tmp/parla-slurm-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$root/jobscripts/local-slurm" sbatch --wait --chdir="$work" \
  --export=ALL,PARLA_ROOT="$root",PARLA_BUILD_DIR="$build_dir" \
  "$root/jobscripts/demo.sbatch" --intervals 200003 --tasks 9
out=$(ls "$work"/parla-demo-*.out)
cat "$work"/parla-demo-*.err "$out"
"${PARLA_PYTHON:-python3}" - "$out" "$work" <<'PY'
import json, pathlib, sys
last = open(sys.argv[1]).read().strip().splitlines()[-1]
result = json.loads(last)
# The same result in the job's run folder (jobscripts/launch.sh).
(run,) = pathlib.Path(sys.argv[2]).glob("runs/parla-demo-*")
assert json.loads((run / "result.json").read_text()) == result, run
assert result["app"] == "demo", result
assert result["ranks"] == 2, f"expected the job's 2 ranks, got {result['ranks']}"
assert result["check"]["ok"] is True, result["check"]
assert result["check"]["intervals_counted"] == 200003, result["check"]
print("slurm demo job ok:", result["metrics"])
PY
