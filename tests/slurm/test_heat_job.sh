#!/usr/bin/env bash
# Submits jobscripts/heat.sbatch with 2 ranks to a real single-node SLURM cluster
# (jobscripts/local-slurm), once with each launcher (srun --mpi=pmix, then mpirun), waits, and
# checks the JSON result and the run folder each job wrote. Runs the Parla port of heat when it
# is present and importable, else the mpi4py baseline, and says which. Skips (77) when not root.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh" "$@"
need_root
variant=$(heat_variant)
echo "heat variant under test: $variant ($([[ $variant == port ]] && echo apps/heat/heat.py || echo apps/heat/heat_mpi4py.py))"
work=$(mktemp -d /tmp/parla-slurm-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Both jobs in one cluster session (starting it takes a few seconds).
export PARLA_ROOT=$root PARLA_BUILD_DIR=$build_dir PARLA_VARIANT=$variant PARLA_RANKS_PER=2 PARLA_TRACE=1
export TEST_WORK=$work
# shellcheck disable=SC2016 # (expanded by the inner shell)
"$root/jobscripts/local-slurm" bash -c '
  set -euo pipefail
  for launcher in srun mpirun; do
    PARLA_LAUNCHER=$launcher sbatch --wait --chdir="$TEST_WORK" --job-name="heat-$launcher" \
      --time=00:03:00 "$PARLA_ROOT/jobscripts/heat.sbatch" --n 192 --iters 20
  done'
for launcher in srun mpirun; do
  echo "---- $launcher: $(ls "$work"/heat-$launcher-*.{err,out})"
  cat "$work"/heat-$launcher-*.err "$work"/heat-$launcher-*.out
done
"$py" - "$work" "$variant" <<'PY'
import json, pathlib, sys
work, variant = pathlib.Path(sys.argv[1]), sys.argv[2]
for launcher in ("srun", "mpirun"):
    runs = sorted((work / "runs").glob(f"heat-{launcher}-*"))
    assert len(runs) == 1, f"expected one run folder runs/heat-{launcher}-<jobid>, got {runs}"
    run = runs[0]
    result = json.loads((run / "result.json").read_text())
    lines = (run / "results.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == result, lines
    # The job's own output ends with the same JSON line (DESIGN §6).
    out = next(work.glob(f"heat-{launcher}-*.out")).read_text().strip().splitlines()
    assert json.loads(out[-1]) == result, out[-1]
    assert result["app"].startswith("heat"), result["app"]
    if variant == "baseline":
        assert result["app"] == "heat_mpi4py", result["app"]
    assert result["ranks"] == 2, f"{launcher}: expected the job's 2 ranks, got {result['ranks']}"
    assert result["workers"] >= 1, result
    assert result["check"]["ok"] is True, result["check"]
    assert result["params"]["n"] == 192 and result["params"]["iters"] == 20, result["params"]
    env = (run / "job.env").read_text()
    assert f"launcher={launcher}" in env and "ranks=2" in env, env
    if variant == "port":
        traces = sorted(p.name for p in run.glob("trace-rank*.json"))
        assert traces == ["trace-rank0.json", "trace-rank1.json"], traces
        json.loads((run / "trace-rank0.json").read_text())
    print(f"slurm heat job ok ({variant}, {launcher}): {result['seconds']:.4f} s, "
          f"checksum {result['check'].get('checksum')}, folder {run.name}")
PY
