#!/usr/bin/env bash
# The job-script pieces that need no cluster: bind.sh's GPU/worker/trace choices for given
# SLURM/Open MPI variables, and study.py --dry-run's sbatch commands.
# shellcheck disable=SC2016 # (check's conditions are single-quoted on purpose)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh" "$@"
bind=$root/jobscripts/bind.sh
fails=0
# expect "DESCRIPTION" "VAR=value wanted (VAR= for unset)" ENV... : runs bind.sh with ENV only.
expect() {
  local what=$1 want=$2 var=${2%%=*}
  shift 2
  local got
  got=$(env -i PATH="$PATH" "$@" "$bind" bash -c "echo $var=\${$var:-}")
  if [[ "$got" == "$want" ]]; then echo "ok   $what: $got"; else echo "FAIL $what: got $got, want $want"; fails=$((fails + 1)); fi
}
expect "4 GPUs, 2 ranks per node, rank 1" CUDA_VISIBLE_DEVICES=2,3 \
  SLURM_GPUS_ON_NODE=4 SLURM_LOCALID=1 SLURM_PROCID=1 PARLA_LOCAL_RANKS=2
expect "4 GPUs from CUDA_VISIBLE_DEVICES, 4 ranks, rank 3" CUDA_VISIBLE_DEVICES=7 \
  CUDA_VISIBLE_DEVICES=4,5,6,7 SLURM_LOCALID=3 SLURM_NTASKS_PER_NODE=4
expect "uneven SLURM_NTASKS_PER_NODE" CUDA_VISIBLE_DEVICES=1 \
  SLURM_GPUS_ON_NODE=2 SLURM_LOCALID=1 "SLURM_NTASKS_PER_NODE=2(x3)"
expect "--gpus-per-task already bound by SLURM" CUDA_VISIBLE_DEVICES=0,1 \
  CUDA_VISIBLE_DEVICES=0,1 SLURM_GPUS_PER_TASK=2 SLURM_LOCALID=1 PARLA_LOCAL_RANKS=2
expect "1 GPU shared by 3 ranks" CUDA_VISIBLE_DEVICES=0 \
  SLURM_GPUS_ON_NODE=1 SLURM_LOCALID=2 PARLA_LOCAL_RANKS=3
expect "no GPUs: left unset" CUDA_VISIBLE_DEVICES= SLURM_LOCALID=1 PARLA_LOCAL_RANKS=2
expect "PARLA_BIND_GPUS=0" CUDA_VISIBLE_DEVICES=0,1,2,3 \
  CUDA_VISIBLE_DEVICES=0,1,2,3 SLURM_LOCALID=1 PARLA_LOCAL_RANKS=2 PARLA_BIND_GPUS=0
expect "workers from --cpus-per-task" PARLA_NUM_WORKERS=16 SLURM_CPUS_PER_TASK=16
expect "explicit PARLA_NUM_WORKERS wins" PARLA_NUM_WORKERS=3 SLURM_CPUS_PER_TASK=16 PARLA_NUM_WORKERS=3
expect "mpirun: ignores the batch step's SLURM task variables" PARLA_NUM_WORKERS=4 \
  SLURM_CPUS_PER_TASK=8 PARLA_CPUS_PER_RANK=4 OMPI_COMM_WORLD_RANK=1
expect "mpirun: local rank from Open MPI" CUDA_VISIBLE_DEVICES=1 \
  SLURM_GPUS_ON_NODE=2 SLURM_LOCALID=0 OMPI_COMM_WORLD_RANK=3 OMPI_COMM_WORLD_LOCAL_RANK=1 \
  OMPI_COMM_WORLD_LOCAL_SIZE=2
expect "one trace per rank" PARLA_TRACE=/runs/x/trace-rank5.json \
  PARLA_TRACE_DIR=/runs/x SLURM_PROCID=5

# study.py --dry-run: strong over nodes (chained jobs), weak sizes growing as sqrt(ranks) in 2-D.
out=$("$py" "$root/jobscripts/study.py" submit --app heat --mode weak --sizes 1000 --nodes 1 4 16 \
  --dry-run --dir /tmp/parla-dry --partition gpu -- --iters 5)
echo "$out"
n_sbatch=$(grep -c ' sbatch ' <<< "$out")
# check 'CONDITION' DESCRIPTION: CONDITION is evaluated here (hence single quotes).
check() { if eval "$1"; then echo "ok   $2"; else echo "FAIL $2"; fails=$((fails + 1)); fi; }
check '[[ $n_sbatch -eq 3 ]]' "dry run prints 3 sbatch commands ($n_sbatch)"
check 'grep -q -- "--nodes=16 .*heat.sbatch --n 4000 --iters 5" <<< "$out"' "weak: 16 nodes get n=4000"
check 'grep -q -- "--dependency=afterany" <<< "$out"' "node series are chained"
check 'grep -q -- "--partition=gpu" <<< "$out"' "--partition passed on"
check '[[ ! -e /tmp/parla-dry ]]' "dry run writes nothing"
out=$("$py" "$root/jobscripts/study.py" submit --app heat --sizes 64 --ranks 1 2 --cpus-per-rank 1 --dry-run)
check 'grep -q -- "--array=0-1" <<< "$out"' "rank series on one node: one array job"
(( fails == 0 )) || { echo "$fails check(s) failed"; exit 1; }
echo "jobscripts ok"
