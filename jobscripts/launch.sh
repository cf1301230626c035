# shellcheck shell=bash
# Sourced by the *.sbatch scripts inside a job: sets up the site environment, the run folder and
# the rank layout, then `parla_launch PROGRAM [ARGS...]` starts the program on every rank.
#
# Knobs (environment variables, set at `sbatch` time; `sbatch` exports the caller's environment):
#   PARLA_SITE=local          jobscripts/sites/<site>.env is sourced (modules, .venv, site knobs)
#   PARLA_LAUNCHER=srun       srun (srun --mpi=pmix) | mpirun (Open MPI's mpirun inside the job)
#   PARLA_RANKS_PER=node      node: 1 rank per node | socket: 1 per socket | N: N ranks per node
#                             | tasks: as submitted (sbatch -n, --ntasks-per-node, -c)
#   PARLA_CPUS_PER_RANK       cores (= worker threads) per rank; default: --cpus-per-task when
#                             given, else the node's cores / ranks per node
#   PARLA_VARIANT=port        port (the Parla version) | baseline (mpi4py/plain MPI) | cxx
#   PARLA_TRACE=1             one Chrome/Perfetto trace per rank in the run folder
#   PARLA_REPEAT=1            run the program this many times in the job (one JSON line each)
#   PARLA_RUNS_DIR            where run folders go (default: runs/ in the job's working folder)
#   PARLA_SRUN_ARGS, PARLA_MPIRUN_ARGS   extra launcher arguments (word-split)
#   PARLA_APP_ARGS            extra program arguments (word-split), after the script's own
# A job's run folder, runs/<job name>-<job id>/ (array tasks: <name>-<array id>_<task id>), holds
# job.env (the layout), stdout.txt / stderr.txt (all ranks), results.jsonl (every JSON result
# line), result.json (the last one) and trace-rank<R>.json.
set -euo pipefail

parla_say() { printf '[parla-job] %s\n' "$*" >&2; }
parla_die() { parla_say "error: $*"; exit 2; }

# ---- where the repository is -------------------------------------------------------------------
# The repository this file is in (the job script found it: SLURM runs a spooled copy of the job
# script, so that one locates the repository through `scontrol show job`).
PARLA_ROOT=${PARLA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export PARLA_ROOT
[[ -f "$PARLA_ROOT/jobscripts/bind.sh" ]] ||
  parla_die "PARLA_ROOT=$PARLA_ROOT is not the repository (no jobscripts/bind.sh); submit with --export=ALL,PARLA_ROOT=/path/to/repo"

# ---- the site environment ------------------------------------------------------------------------
export PARLA_SITE=${PARLA_SITE:-local}
parla_site_file="$PARLA_ROOT/jobscripts/sites/$PARLA_SITE.env"
if [[ ! -f "$parla_site_file" ]]; then
  parla_sites=("$PARLA_ROOT"/jobscripts/sites/*.env)
  parla_sites=("${parla_sites[@]##*/}")
  parla_die "PARLA_SITE=$PARLA_SITE but $parla_site_file does not exist (sites: ${parla_sites[*]%.env})"
fi
# Site files are written by people and may reference unset variables.
set +u
# shellcheck source=/dev/null
source "$parla_site_file"
set -u
export PARLA_BUILD_DIR=${PARLA_BUILD_DIR:-$PARLA_ROOT/build}
PARLA_PYTHON=${PARLA_PYTHON:-$(command -v python3 || command -v python)}
export PARLA_PYTHON

# ---- the run folder ----------------------------------------------------------------------------
parla_job_name=${SLURM_JOB_NAME:-parla}
if [[ -n "${SLURM_ARRAY_JOB_ID:-}" && -n "${SLURM_ARRAY_TASK_ID:-}" ]]; then
  parla_job_id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
else
  parla_job_id=${SLURM_JOB_ID:-$(date +%Y%m%d-%H%M%S)-$$}
fi
# A study (jobscripts/study.py) gives each array task its own settings in a small env file.
if [[ -n "${PARLA_STUDY_DIR:-}" && -n "${SLURM_ARRAY_TASK_ID:-}" ]]; then
  # shellcheck source=/dev/null
  source "$PARLA_STUDY_DIR/tasks/$SLURM_ARRAY_TASK_ID.env"
fi
PARLA_RUNS_DIR=${PARLA_RUNS_DIR:-$PWD/runs}   # the job's working folder: sbatch --chdir, else where sbatch ran
PARLA_RUN_DIR="$PARLA_RUNS_DIR/$parla_job_name-$parla_job_id"
mkdir -p "$PARLA_RUN_DIR"
export PARLA_RUN_DIR

# ---- the rank layout ---------------------------------------------------------------------------
parla_sockets_per_node() {
  if [[ -n "${PARLA_SOCKETS_PER_NODE:-}" ]]; then echo "$PARLA_SOCKETS_PER_NODE"; return; fi
  local n
  n=$(lscpu -p=SOCKET 2>/dev/null | grep -v '^#' | sort -u | wc -l)
  [[ "$n" -ge 1 ]] 2>/dev/null && echo "$n" || echo 1
}
parla_nodes=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}
parla_cpus_on_node=${SLURM_CPUS_ON_NODE:-$(nproc)}
case "${PARLA_RANKS_PER:=node}" in
  node) parla_ranks_per_node=1 ;;
  socket) parla_ranks_per_node=$(parla_sockets_per_node) ;;
  tasks)
    # The layout the job was submitted with (sbatch -n / --ntasks-per-node / -c).
    parla_ranks=${SLURM_NTASKS:-$parla_nodes}
    parla_ranks_per_node=$(( (parla_ranks + parla_nodes - 1) / parla_nodes ))
    parla_cpus_per_rank=${PARLA_CPUS_PER_RANK:-${SLURM_CPUS_PER_TASK:-1}} ;;
  *)
    [[ "$PARLA_RANKS_PER" =~ ^[1-9][0-9]*$ ]] ||
      parla_die "PARLA_RANKS_PER=$PARLA_RANKS_PER: use node, socket, tasks or a number of ranks per node"
    parla_ranks_per_node=$PARLA_RANKS_PER ;;
esac
parla_cpus_per_rank=${parla_cpus_per_rank:-${PARLA_CPUS_PER_RANK:-${SLURM_CPUS_PER_TASK:-$(( parla_cpus_on_node / parla_ranks_per_node ))}}}
(( parla_cpus_per_rank >= 1 )) ||
  parla_die "$parla_ranks_per_node ranks per node but only $parla_cpus_on_node CPUs on the node: ask for more CPUs (--exclusive or -c) or fewer ranks"
(( parla_cpus_per_rank * parla_ranks_per_node <= parla_cpus_on_node )) ||
  parla_die "$parla_ranks_per_node ranks x $parla_cpus_per_rank CPUs do not fit the $parla_cpus_on_node CPUs the job has on a node"
parla_ranks=${parla_ranks:-$(( parla_nodes * parla_ranks_per_node ))}
export PARLA_LOCAL_RANKS=$parla_ranks_per_node PARLA_CPUS_PER_RANK=$parla_cpus_per_rank
if [[ "${PARLA_TRACE:-0}" != 0 && -n "${PARLA_TRACE:-}" ]]; then
  export PARLA_TRACE_DIR="$PARLA_RUN_DIR"
fi
unset PARLA_TRACE   # bind.sh sets one path per rank

# ---- the launcher --------------------------------------------------------------------------------
parla_launcher_command() {
  local -n out=$1
  case "${PARLA_LAUNCHER:=srun}" in
    srun)
      out=(srun --mpi=pmix --nodes="$parla_nodes" --ntasks="$parla_ranks"
           --cpus-per-task="$parla_cpus_per_rank" --kill-on-bad-exit=1)
      if [[ "$PARLA_RANKS_PER" != tasks ]]; then out+=(--ntasks-per-node="$parla_ranks_per_node"); fi
      if [[ "$PARLA_RANKS_PER" == socket ]]; then
        out+=(--ntasks-per-socket=1 --distribution=block:block --cpu-bind=cores)
      fi
      # GPUs: pass the job's request on to the step; bind.sh splits a node's GPUs between ranks.
      if [[ -n "${SLURM_GPUS_PER_TASK:-}" ]]; then out+=(--gpus-per-task="$SLURM_GPUS_PER_TASK"); fi
      # shellcheck disable=SC2206
      out+=(${PARLA_SRUN_ARGS:-})
      ;;
    mpirun)
      # Open MPI's mpirun reads the SLURM allocation itself. PE=N gives each rank N cores (else
      # a rank and all its worker threads are bound to one core: NOTES "Binding").
      out=(mpirun -np "$parla_ranks" --map-by "ppr:$parla_ranks_per_node:node:PE=$parla_cpus_per_rank"
           --bind-to core)
      [[ $(id -u) -ne 0 ]] || out+=(--allow-run-as-root)
      local v
      for v in PARLA_LOCAL_RANKS PARLA_CPUS_PER_RANK PARLA_NUM_WORKERS PARLA_TRACE_DIR PARLA_SIM_GPUS \
               PARLA_TRANSPORT PARLA_BIND_GPUS PARLA_BIND_VERBOSE PATH LD_LIBRARY_PATH PYTHONPATH VIRTUAL_ENV; do
        if [[ -n "${!v:-}" ]]; then out+=(-x "$v"); fi
      done
      # shellcheck disable=SC2206
      out+=(${PARLA_MPIRUN_ARGS:-})
      ;;
    *) parla_die "PARLA_LAUNCHER=$PARLA_LAUNCHER: use srun or mpirun" ;;
  esac
}

# The command of an app in the chosen variant (PARLA_VARIANT), into the array named by $1.
parla_app_command() {
  local -n cmd=$1
  local app=$2 variant=${PARLA_VARIANT:-port} py=$PARLA_PYTHON b=$PARLA_BUILD_DIR r=$PARLA_ROOT
  case "$app/$variant" in
    heat/port) cmd=("$py" "$r/apps/heat/heat.py") ;;
    heat/baseline) cmd=("$py" "$r/apps/heat/heat_mpi4py.py") ;;
    heat/cxx) cmd=("$b/apps/heat/parla_heat") ;;
    cg/port) cmd=("$py" "$r/apps/cg/cg.py") ;;
    cg/baseline) cmd=("$py" "$r/apps/cg/cg_mpi4py.py") ;;
    cholesky/port | cholesky/baseline) cmd=("$py" "$r/apps/cholesky/cholesky.py") ;;
    taskbench/port | taskbench/cxx) cmd=("$b/apps/taskbench/parla_taskbench") ;;
    taskbench/baseline) cmd=("${PARLA_TASKBENCH_BASELINE:-$b/apps/taskbench/mpi_taskbench}") ;;
    demo/*) cmd=("$b/apps/demo/parla_demo") ;;
    *) parla_die "no variant '$variant' of app '$app' (PARLA_VARIANT: port, baseline, cxx)" ;;
  esac
  local target=${cmd[-1]}
  [[ "${cmd[0]}" == "$py" ]] && target=${cmd[1]}
  [[ -e "$target" ]] ||
    parla_die "$app ($variant): $target does not exist; build it (scripts/build) or pick PARLA_VARIANT"
}

# Runs PROGRAM [ARGS...] on every rank through bind.sh, PARLA_REPEAT times, keeps the output in
# the run folder, and fails the job when the program fails or its JSON check is not ok.
parla_launch() {
  local launcher=()
  parla_launcher_command launcher
  # shellcheck disable=SC2206
  local cmd=("$PARLA_ROOT/jobscripts/bind.sh" "$@" ${PARLA_APP_ARGS:-})
  {
    echo "job=$parla_job_name-$parla_job_id nodes=$parla_nodes ranks=$parla_ranks"
    echo "ranks_per_node=$parla_ranks_per_node cpus_per_rank=$parla_cpus_per_rank cpus_on_node=$parla_cpus_on_node"
    echo "site=$PARLA_SITE launcher=$PARLA_LAUNCHER ranks_per=$PARLA_RANKS_PER variant=${PARLA_VARIANT:-port}"
    echo "nodelist=${SLURM_JOB_NODELIST:-$(hostname -s)}"
    echo "git=$(git -C "$PARLA_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "command=$(printf '%q ' "${launcher[@]}" "${cmd[@]}")"
  } > "$PARLA_RUN_DIR/job.env"
  parla_say "run folder $PARLA_RUN_DIR"
  parla_say "$parla_ranks rank(s) on $parla_nodes node(s), $parla_cpus_per_rank core(s) each: ${launcher[*]} ${cmd[*]}"
  local repeat=${PARLA_REPEAT:-1} i rc=0
  for (( i = 1; i <= repeat; i++ )); do
    (( repeat == 1 )) || parla_say "repetition $i/$repeat"
    # stdout/stderr of all ranks go to the run folder and to the job's own output files.
    # (Pipes, not process substitutions, so both copies are complete when the launcher returns.)
    set +e
    { "${launcher[@]}" "${cmd[@]}" 2>&1 1>&3 3>&- | tee -a "$PARLA_RUN_DIR/stderr.txt" >&2 3>&-; } 3>&1 |
      tee -a "$PARLA_RUN_DIR/stdout.txt"
    rc=$?
    set -e
    (( rc == 0 )) || { parla_say "the program failed with exit code $rc (see $PARLA_RUN_DIR/stderr.txt)"; return "$rc"; }
  done
  # The result lines: JSON objects with an "app" key (DESIGN §6: the last line on stdout).
  "$PARLA_PYTHON" - "$PARLA_RUN_DIR" <<'PY'
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
results = []
for line in (run / "stdout.txt").read_text(errors="replace").splitlines():
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "app" in obj:
            results.append(obj)
if not results:
    sys.exit(f"[parla-job] error: no JSON result line on stdout ({run / 'stdout.txt'})")
(run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
(run / "result.json").write_text(json.dumps(results[-1], indent=1) + "\n")
bad = [r for r in results if not r.get("check", {}).get("ok", False)]
if bad:
    sys.exit(f"[parla-job] error: check failed: {bad[-1].get('check')}")
print(f"[parla-job] {len(results)} result(s) in {run / 'results.jsonl'}, checks ok", file=sys.stderr)
PY
}

# parla_run_app APP [ARGS...]: the app in PARLA_VARIANT, launched on every rank.
parla_run_app() {
  local app=$1 prog=()
  shift
  parla_app_command prog "$app"
  parla_launch "${prog[@]}" "$@"
}
