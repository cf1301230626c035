#!/usr/bin/env bash
# Per-rank wrapper: binds this rank to its share of the node's GPUs and cores, then execs the app.
#   srun --mpi=pmix jobscripts/bind.sh python apps/heat/heat.py --n 4096
#   mpirun ... jobscripts/bind.sh build/apps/demo/parla_demo
# Run once per rank by the launcher (launch.sh does it). It reads
#   under srun:   SLURM_PROCID, SLURM_LOCALID, PARLA_LOCAL_RANKS or SLURM_NTASKS_PER_NODE
#   under mpirun: OMPI_COMM_WORLD_RANK, _LOCAL_RANK, PARLA_LOCAL_RANKS or _LOCAL_SIZE
# and sets
#   CUDA_VISIBLE_DEVICES  this rank's GPUs: the node's GPUs (CUDA_VISIBLE_DEVICES as SLURM set
#                         it, else 0..SLURM_GPUS_ON_NODE-1) split into equal contiguous shares,
#                         one per local rank. Left alone when SLURM already gave the task exactly
#                         its own GPUs (--gpus-per-task with --gpu-bind), when the node has no
#                         GPUs, or with PARLA_BIND_GPUS=0.
#   PARLA_NUM_WORKERS     worker threads: kept if set, else the rank's cores: SLURM_CPUS_PER_TASK
#                         under srun, PARLA_CPUS_PER_RANK (set by launch.sh) under mpirun.
#   PARLA_TRACE           with PARLA_TRACE_DIR set: $PARLA_TRACE_DIR/trace-rank<R>.json, one
#                         Chrome/Perfetto trace per rank (a single path would be overwritten
#                         by every rank).
# PARLA_BIND_VERBOSE=1 prints one line per rank on stderr with what it chose.
set -euo pipefail
say() { printf '[bind rank %s] %s\n' "${rank:-?}" "$*" >&2; }

if [[ -n "${OMPI_COMM_WORLD_RANK:-}" ]]; then
  # Started by mpirun inside a job: the SLURM_* task variables are the batch step's, not ours.
  rank=$OMPI_COMM_WORLD_RANK
  local_rank=${OMPI_COMM_WORLD_LOCAL_RANK:-0}
  local_ranks=${PARLA_LOCAL_RANKS:-${OMPI_COMM_WORLD_LOCAL_SIZE:-1}}
  cpus=${PARLA_CPUS_PER_RANK:-}
else
  rank=${SLURM_PROCID:-${PMIX_RANK:-0}}
  local_rank=${SLURM_LOCALID:-0}
  local_ranks=${PARLA_LOCAL_RANKS:-${SLURM_NTASKS_PER_NODE:-1}}
  cpus=${SLURM_CPUS_PER_TASK:-${PARLA_CPUS_PER_RANK:-}}
fi
# SLURM_NTASKS_PER_NODE may read like "2(x3)" on uneven layouts; keep the count.
local_ranks=${local_ranks%%(*}
[[ "$local_ranks" =~ ^[0-9]+$ && "$local_ranks" -ge 1 ]] || local_ranks=1

# ---- GPUs -------------------------------------------------------------------------------------
# The node's GPU ids as this task sees them.
gpus=()
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" && "${CUDA_VISIBLE_DEVICES}" != NoDevFiles ]]; then
  IFS=, read -r -a gpus <<< "$CUDA_VISIBLE_DEVICES"
elif [[ "${SLURM_GPUS_ON_NODE:-0}" =~ ^[0-9]+$ && "${SLURM_GPUS_ON_NODE:-0}" -gt 0 ]]; then
  for ((g = 0; g < SLURM_GPUS_ON_NODE; g++)); do gpus+=("$g"); done
fi
per_task=${SLURM_GPUS_PER_TASK:-}
per_task=${per_task##*:}   # "--gpus-per-task=a100:2" arrives as "a100:2"
if [[ "${PARLA_BIND_GPUS:-1}" != 0 && ${#gpus[@]} -gt 0 ]]; then
  if [[ -n "$per_task" && "$per_task" =~ ^[0-9]+$ && ${#gpus[@]} -le $per_task ]]; then
    mine=("${gpus[@]}")   # SLURM already bound this task to its own GPUs
  elif [[ ${#gpus[@]} -ge $local_ranks ]]; then
    share=$(( ${#gpus[@]} / local_ranks ))
    mine=("${gpus[@]:$(( local_rank * share )):$share}")
  else
    # Fewer GPUs than ranks on the node: ranks share them round-robin.
    mine=("${gpus[$(( local_rank % ${#gpus[@]} ))]}")
    if [[ $local_rank -eq 0 ]]; then
      say "warning: ${#gpus[@]} GPU(s) for $local_ranks ranks on this node: ranks share GPUs"
    fi
  fi
  CUDA_VISIBLE_DEVICES=$(IFS=,; echo "${mine[*]}")
  export CUDA_VISIBLE_DEVICES
fi

# ---- worker threads ---------------------------------------------------------------------------
if [[ -z "${PARLA_NUM_WORKERS:-}" ]]; then
  if [[ -n "$cpus" ]]; then export PARLA_NUM_WORKERS=$cpus; fi
fi

# ---- traces -----------------------------------------------------------------------------------
if [[ -n "${PARLA_TRACE_DIR:-}" ]]; then
  export PARLA_TRACE="$PARLA_TRACE_DIR/trace-rank$rank.json"
fi

if [[ "${PARLA_BIND_VERBOSE:-0}" == 1 ]]; then
  say "host $(hostname -s) local $local_rank/$local_ranks workers=${PARLA_NUM_WORKERS:-default}" \
      "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset} trace=${PARLA_TRACE:-none}"
fi
[[ $# -gt 0 ]] || { say "usage: bind.sh PROGRAM [ARGS...]"; exit 2; }
exec "$@"
