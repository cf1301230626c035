# shellcheck shell=bash
# Shared by the slurm tests: argument handling, the root check, and which heat program runs.
#   source common.sh ROOT BUILD_DIR
set -euo pipefail
root=$1
# shellcheck disable=SC2034 # (used by the tests that source this file)
build_dir=$2
py=${PARLA_PYTHON:-$root/.venv/bin/python}
[[ -x "$py" ]] || py=$(command -v python3)
need_root() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root to start the local cluster (jobscripts/local-slurm): skipped"; exit 77; }
}
# The Parla port of heat when it is present and runs (a tiny 1-rank problem, outside SLURM),
# else the mpi4py baseline; says why on stderr.
heat_variant() {
  local port=$root/apps/heat/heat.py err
  if [[ ! -f "$port" ]]; then
    echo "apps/heat/heat.py not present: testing with the baseline heat_mpi4py.py" >&2
    echo baseline
  elif err=$(PARLA_NUM_WORKERS=1 timeout 120 "$py" "$port" --n 32 --iters 2 2>&1 >/dev/null); then
    echo port
  else
    echo "apps/heat/heat.py does not run here (${err##*$'\n'}): testing with the baseline" >&2
    echo baseline
  fi
}
