#!/usr/bin/env python3
"""Scaling studies on SLURM: submit a series of jobs, collect their JSON results, plot them.

  # strong scaling of heat 2-D, n = 16384, on 1..16 nodes (one rank per node), then wait
  jobscripts/study.py submit --app heat --mode strong --sizes 16384 --nodes 1 2 4 8 16 --wait
  # weak scaling: 4096^2 cells per rank (global n grows as sqrt(ranks) in 2-D)
  jobscripts/study.py submit --app heat --mode weak --sizes 4096 --nodes 1 4 16 -- --iters 50
  # on one node (the local test cluster): the series is over ranks, 1 core each
  jobscripts/study.py submit --app heat --mode strong --sizes 1024 --ranks 1 2 --wait
  # later, or after --wait: one CSV and the plots
  jobscripts/study.py collect runs/study-heat-strong-20250101-120000

`submit` writes a study folder (study.json, tasks/, runs/<job>/, slurm-*.out); `collect`
(which `submit --wait` runs itself) reads every JSON result line of its runs into results.csv
and draws time.png, speedup.png, efficiency.png and scaling.png (all three) against the
number of nodes (or ranks) with the ideal line. `--dry-run` prints the sbatch commands only.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import pathlib
import re
import shlex
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
JOBSCRIPTS = ROOT / "jobscripts"

# What a study needs to know about each app: its job script, the flag its size goes to, and how
# a per-rank size grows with the rank count in a weak-scaling study ("dims": the size is cells
# per axis of a --dims-dimensional grid; "cbrt": O(n^3) work; "linear": work ∝ size).
APPS = {
    "heat": {"script": "heat.sbatch", "size_flag": "--n", "weak": "dims"},
    "cg": {"script": "cg.sbatch", "size_flag": "--n", "weak": "dims"},
    "cholesky": {"script": "cholesky.sbatch", "size_flag": "--n", "weak": "cbrt"},
    "taskbench": {"script": "taskbench.sbatch", "size_flag": "--width", "weak": "linear"},
    "demo": {"script": "demo.sbatch", "size_flag": "--intervals", "weak": "linear"},
}


def say(msg: str) -> None:
    print(f"[study] {msg}", file=sys.stderr, flush=True)


def die(msg: str, code: int = 2) -> None:
    say(f"error: {msg}")
    sys.exit(code)


# ---- submit ------------------------------------------------------------------------------------


def weak_size(size: int, ranks: int, rule: str, dims: int) -> int:
    """The global size whose work per rank equals that of `size` on one rank."""
    power = {"linear": 1.0, "sqrt": 1 / 2, "cbrt": 1 / 3, "dims": 1 / dims}[rule]
    return max(1, round(size * ranks**power))


def app_dims(app_args: list[str]) -> int:
    for i, a in enumerate(app_args):
        if a == "--dims" and i + 1 < len(app_args):
            return int(app_args[i + 1])
        if a.startswith("--dims="):
            return int(a.split("=", 1)[1])
    return 2


def cluster_cpus_per_node(partition: str | None) -> int | None:
    """CPUs per node of the partition (sinfo), or None when no cluster answers."""
    cmd = ["sinfo", "-h", "-o", "%c"] + (["-p", partition] if partition else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    counts = [int(m.group()) for m in re.finditer(r"\d+", out)]
    return min(counts) if counts else None


def plan_jobs(a: argparse.Namespace) -> list[dict]:
    """One job per (size, node or rank count)."""
    dims = app_dims(a.app_args)
    rule = a.weak_rule or APPS[a.app]["weak"]
    if a.ranks:
        # One node, the series over ranks per node, each rank with the same cores.
        cpus = a.cpus_per_rank
        if cpus is None:
            per_node = cluster_cpus_per_node(a.partition)
            if per_node is None:
                per_node = os.cpu_count() or 1
                say(f"no cluster answered sinfo; assuming {per_node} CPUs per node (this machine)")
            cpus = max(1, per_node // max(a.ranks))
        points = [
            {"nodes": 1, "ranks_per": str(r), "ranks": r, "cpus_per_rank": cpus, "x": r}
            for r in a.ranks
        ]
    else:
        rpn = {"node": 1}.get(a.ranks_per)
        if rpn is None and a.ranks_per.isdigit():
            rpn = int(a.ranks_per)
        points = [
            {
                "nodes": n,
                "ranks_per": a.ranks_per,
                "ranks": n * rpn if rpn else None,  # per socket: known inside the job
                "cpus_per_rank": a.cpus_per_rank,
                "x": n,
            }
            for n in a.nodes
        ]
    jobs = []
    for size in a.sizes:
        for p in points:
            scale = p["ranks"] if p["ranks"] is not None else p["nodes"]
            global_size = size if a.mode == "strong" else weak_size(size, scale, rule, dims)
            jobs.append(
                {
                    **p,
                    "index": len(jobs),
                    "size": size,
                    "global_size": global_size,
                    "app_args": [APPS[a.app]["size_flag"], str(global_size)],
                }
            )
    return jobs


def job_env(a: argparse.Namespace, job: dict) -> dict[str, str]:
    env = {
        "PARLA_RANKS_PER": job["ranks_per"],
        "PARLA_VARIANT": a.variant,
        "PARLA_REPEAT": str(a.repeat),
    }
    if job["cpus_per_rank"]:
        env["PARLA_CPUS_PER_RANK"] = str(job["cpus_per_rank"])
    if a.site:
        env["PARLA_SITE"] = a.site
    if a.launcher:
        env["PARLA_LAUNCHER"] = a.launcher
    return env


def cmd_submit(a: argparse.Namespace) -> int:
    if a.app not in APPS:
        die(f"unknown app '{a.app}' (apps: {', '.join(APPS)})")
    if bool(a.nodes) == bool(a.ranks):
        die("give the series as --nodes N... (one or more nodes each) or --ranks R... (one node)")
    jobs = plan_jobs(a)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    study_dir = pathlib.Path(a.dir or f"runs/study-{a.app}-{a.mode}-{stamp}").resolve()
    name = a.job_name or f"parla-{a.app}-{a.mode}"
    method = a.submit
    if method == "auto":
        method = "array" if len({j["nodes"] for j in jobs}) == 1 else "chain"
    if method == "array" and len({j["nodes"] for j in jobs}) != 1:
        die("an array job has one node count for all its tasks: use --submit chain")

    script = str(JOBSCRIPTS / APPS[a.app]["script"])
    common = ["sbatch", "--parsable", f"--job-name={name}", f"--chdir={study_dir}"]
    common += [f"--time={a.time}"] if a.time else []
    common += [f"--partition={a.partition}"] if a.partition else []
    common += [f"--account={a.account}"] if a.account else []
    common += a.sbatch_arg or []
    base_env = {"PARLA_ROOT": str(ROOT), "PARLA_RUNS_DIR": str(study_dir / "runs")}

    # Each entry: (environment additions, sbatch command, the jobs it runs).
    submissions = []
    if method == "array":
        throttle = f"%{a.max_concurrent}" if a.max_concurrent else ""
        cmd = [
            *common,
            f"--nodes={jobs[0]['nodes']}",
            f"--array=0-{len(jobs) - 1}{throttle}",
            f"--output={study_dir}/slurm-%x-%A_%a.out",
            f"--error={study_dir}/slurm-%x-%A_%a.out",
            script,
            *a.app_args,
        ]
        # The settings all tasks share travel in the environment (PARLA_SITE is read before a
        # task's own file); each task's layout and size in tasks/<index>.env.
        shared = {
            k: v
            for k, v in job_env(a, jobs[0]).items()
            if k not in ("PARLA_RANKS_PER", "PARLA_CPUS_PER_RANK")
        }
        submissions.append(({**base_env, **shared, "PARLA_STUDY_DIR": str(study_dir)}, cmd, jobs))
    else:
        for j in jobs:
            cmd = (
                common
                + [f"--nodes={j['nodes']}", f"--output={study_dir}/slurm-%x-%j.out"]
                + [f"--error={study_dir}/slurm-%x-%j.out", script]
                + j["app_args"]
                + a.app_args
            )
            submissions.append(({**base_env, **job_env(a, j)}, cmd, [j]))

    if a.dry_run:
        if method == "array":
            for j in jobs:
                env = " ".join(f"{k}={shlex.quote(v)}" for k, v in job_env(a, j).items())
                print(
                    f"# {study_dir}/tasks/{j['index']}.env: {env} "
                    f"PARLA_APP_ARGS={shlex.quote(' '.join(j['app_args']))}"
                )
        for i, (env, cmd, _) in enumerate(submissions):
            if method == "chain" and i > 0:
                cmd = [*cmd[:1], f"--dependency=afterany:<job {i - 1}>", *cmd[1:]]
            print(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join(cmd))
        return 0

    (study_dir / "tasks").mkdir(parents=True, exist_ok=True)
    (study_dir / "runs").mkdir(exist_ok=True)
    for j in jobs:
        env = {**job_env(a, j), "PARLA_APP_ARGS": " ".join(j["app_args"])}
        (study_dir / "tasks" / f"{j['index']}.env").write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        )
    prev = None
    for env, cmd, its_jobs in submissions:
        if method == "chain" and prev:
            cmd = [*cmd[:1], f"--dependency=afterany:{prev}", *cmd[1:]]
        proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
        if proc.returncode != 0:
            die(f"{shlex.join(cmd)} failed: {proc.stderr.strip()}")
        job_id = proc.stdout.strip().split(";")[0]
        prev = job_id
        for j in its_jobs:
            j["job_id"] = f"{job_id}_{j['index']}" if method == "array" else job_id
            j["run_dir"] = str(study_dir / "runs" / f"{name}-{j['job_id']}")
            j["slurm_out"] = str(study_dir / (f"slurm-{name}-{j['job_id']}.out"))
        say(f"submitted {shlex.join(cmd)} -> job {job_id}")
    study = {
        "app": a.app,
        "mode": a.mode,
        "axis": "ranks" if a.ranks else "nodes",
        "variant": a.variant,
        "sizes": a.sizes,
        "app_args": a.app_args,
        "repeat": a.repeat,
        "method": method,
        "job_name": name,
        "created": stamp,
        "base_job_ids": sorted({j["job_id"].split("_")[0] for j in jobs}),
        "jobs": jobs,
    }
    (study_dir / "study.json").write_text(json.dumps(study, indent=1) + "\n")
    say(f"study folder {study_dir}")
    if not a.wait:
        say(f"collect later with: {sys.argv[0]} collect {study_dir} [--wait]")
        return 0
    return collect(study_dir, wait=True, timeout=a.timeout, stat=a.stat)


# ---- collect -----------------------------------------------------------------------------------


def pending_jobs(base_ids: list[str]) -> list[str] | None:
    """Our jobs SLURM still knows as pending or running; None when SLURM cannot be asked."""
    try:
        proc = subprocess.run(["squeue", "-h", "-o", "%F %i %T"], capture_output=True, text=True)
    except OSError:
        return None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        say(f"squeue failed: {lines[-1] if lines else proc.returncode} (is the cluster up?)")
        return None
    ours = set(base_ids)
    return [
        f"{f[1]} {f[2]}"
        for f in (line.split() for line in proc.stdout.splitlines())
        if f and f[0] in ours
    ]


def flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif isinstance(value, list):
        out[prefix] = ";".join(str(v) for v in value)
    else:
        out[prefix] = value


def read_rows(study: dict) -> tuple[list[dict], list[str]]:
    rows, problems = [], []
    for j in study["jobs"]:
        results = pathlib.Path(j.get("run_dir", "")) / "results.jsonl"
        if not results.is_file():
            out = pathlib.Path(j.get("slurm_out", ""))
            tail = (
                out.read_text(errors="replace").strip().splitlines()[-5:] if out.is_file() else []
            )
            problems.append(
                f"job {j.get('job_id')} ({study['axis']}={j['x']}, size {j['size']}): "
                f"no results in {results.parent}"
                + ("".join(f"\n    {t}" for t in tail) if tail else "")
            )
            continue
        for rep, line in enumerate(results.read_text().splitlines()):
            result = json.loads(line)
            row = {
                "index": j["index"],
                "job_id": j["job_id"],
                "size": j["size"],
                "global_size": j["global_size"],
                "nodes": j["nodes"],
                "x": j["x"],
                "repeat": rep,
            }
            flat: dict = {}
            flatten("", result, flat)
            row.update(flat)
            if j["ranks"] is not None and result.get("ranks") != j["ranks"]:
                problems.append(
                    f"job {j['job_id']}: expected {j['ranks']} ranks, result says "
                    f"{result.get('ranks')}"
                )
            rows.append(row)
    return rows, problems


def write_csv(rows: list[dict], path: pathlib.Path) -> None:
    fixed = [
        "index",
        "job_id",
        "size",
        "global_size",
        "nodes",
        "x",
        "repeat",
        "app",
        "ranks",
        "workers",
        "devices",
        "seconds",
        "check.ok",
    ]
    extra = sorted({k for r in rows for k in r} - set(fixed))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fixed + extra)
        w.writeheader()
        w.writerows(rows)


def series(rows: list[dict], stat: str) -> dict[int, list[tuple[int, float]]]:
    """size -> [(x, seconds)] sorted by x; `stat` over repeats; failed checks left out."""
    groups: dict[tuple[int, int], list[float]] = {}
    for r in rows:
        if r.get("check.ok") is True and isinstance(r.get("seconds"), (int, float)):
            groups.setdefault((r["size"], r["x"]), []).append(float(r["seconds"]))
    pick = min if stat == "min" else statistics.median
    out: dict[int, list[tuple[int, float]]] = {}
    for (size, x), secs in sorted(groups.items()):
        out.setdefault(size, []).append((x, pick(secs)))
    return out


def plot(study: dict, data: dict, folder: pathlib.Path) -> list[pathlib.Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strong = study["mode"] == "strong"
    axis = "nodes" if study["axis"] == "nodes" else "MPI ranks (one node)"
    title = f"{study['app']} ({study['variant']}), {study['mode']} scaling"
    size_label = "n" if strong else "n per rank"

    def panels(kind: str, ax) -> None:
        xs_all: list[int] = []
        for size, pts in data.items():
            xs = [p[0] for p in pts]
            ts = [p[1] for p in pts]
            x0, t0 = xs[0], ts[0]
            xs_all += xs
            if kind == "time":
                ys = ts
            elif kind == "speedup":
                ys = [t0 / t * (1 if strong else x / x0) for x, t in zip(xs, ts)]
            else:
                ys = [t0 / t / (x / x0) if strong else t0 / t for x, t in zip(xs, ts)]
            ax.plot(xs, ys, "o-", label=f"{size_label} = {size}")
            if kind == "time":
                ideal = [t0 * x0 / x if strong else t0 for x in xs]
                ax.plot(xs, ideal, "--", color="gray", linewidth=1)
        xs_all = sorted(set(xs_all))
        if not xs_all:
            return
        x0 = xs_all[0]
        if kind == "speedup":
            ax.plot(xs_all, [x / x0 for x in xs_all], "--", color="gray", label="ideal")
            unit = study["axis"][:-1] if x0 == 1 else study["axis"]  # "1 rank", "2 ranks"
            ax.set_ylabel(f"speedup over {x0} {unit}" + ("" if strong else " (scaled)"))
        elif kind == "efficiency":
            ax.plot(xs_all, [1.0] * len(xs_all), "--", color="gray", label="ideal")
            ax.set_ylabel("parallel efficiency")
            ax.set_ylim(0, max(1.1, ax.get_ylim()[1]))
        else:
            ax.plot([], [], "--", color="gray", label="ideal")
            ax.set_ylabel("time (s)")
            if strong and len(xs_all) > 1:
                ax.set_yscale("log")
        if len(xs_all) > 1 and xs_all[-1] / xs_all[0] >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs_all)
        ax.set_xticklabels([str(x) for x in xs_all])
        ax.set_xlabel(axis)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")

    written = []
    for kind in ("time", "speedup", "efficiency"):
        fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
        panels(kind, ax)
        ax.set_title(f"{title}: {kind}")
        fig.tight_layout()
        path = folder / f"{kind}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), dpi=100)
    for kind, ax in zip(("time", "speedup", "efficiency"), axes):
        panels(kind, ax)
        ax.set_title(kind)
    fig.suptitle(title)
    fig.tight_layout()
    path = folder / "scaling.png"
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    return written


def collect(study_dir: pathlib.Path, wait: bool, timeout: float | None, stat: str) -> int:
    study_file = study_dir / "study.json"
    if not study_file.is_file():
        die(f"{study_file} not found: give the folder `study.py submit` printed")
    study = json.loads(study_file.read_text())
    start = time.monotonic()
    while True:
        pending = pending_jobs(study["base_job_ids"])
        if pending is None:
            if wait:
                die("cannot wait for the jobs without squeue", code=3)
            say("collecting what is there")
            break
        if not pending:
            break
        if not wait:
            say(
                f"{len(pending)} job(s) not finished yet: {', '.join(pending)}; "
                "collecting what is there (--wait waits for them)"
            )
            break
        if timeout is not None and time.monotonic() - start > timeout:
            die(f"still waiting after {timeout:.0f} s for: {', '.join(pending)}", code=3)
        time.sleep(2)
    rows, problems = read_rows(study)
    for p in problems:
        say(f"warning: {p}")
    if not rows:
        die("no results to collect", code=1)
    csv_path = study_dir / "results.csv"
    write_csv(rows, csv_path)
    data = series(rows, stat)
    pngs = plot(study, data, study_dir)
    say(f"{len(rows)} result row(s) -> {csv_path}")
    strong = study["mode"] == "strong"
    for size, pts in data.items():
        x0, t0 = pts[0]
        for x, t in pts:
            speedup = t0 / t if strong else t0 / t * x / x0
            print(
                f"size {size:>8} {study['axis']} {x:>4}: {t:10.4f} s  speedup {speedup:6.2f}  "
                f"efficiency {speedup / (x / x0):5.2f}"
            )
    say("plots: " + " ".join(str(p) for p in pngs))
    return 1 if problems else 0


def cmd_collect(a: argparse.Namespace) -> int:
    return collect(pathlib.Path(a.dir).resolve(), a.wait, a.timeout, a.stat)


# ---- command line ------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "submit",
        help="submit a series of jobs (a study folder)",
        description="Submit a scaling series. Arguments after -- go to the app.",
    )
    s.add_argument("--app", required=True, choices=sorted(APPS))
    s.add_argument(
        "--mode",
        choices=["strong", "weak"],
        default="strong",
        help="strong: each size is the global size; weak: the size per rank",
    )
    s.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        required=True,
        help="problem sizes (the app's size flag: heat/cg/cholesky --n, taskbench --width)",
    )
    s.add_argument("--nodes", type=int, nargs="+", help="node counts of the series")
    s.add_argument(
        "--ranks",
        type=int,
        nargs="+",
        help="rank counts on one node instead (e.g. the local test cluster: 1 2)",
    )
    s.add_argument(
        "--ranks-per",
        default="node",
        help="with --nodes: node (1 rank per node), socket, or N ranks per node",
    )
    s.add_argument(
        "--cpus-per-rank",
        type=int,
        help="cores per rank; default with --ranks: the node's cores / the most ranks; "
        "with --nodes: the node's cores / ranks per node",
    )
    s.add_argument("--variant", default="port", help="port, baseline or cxx (PARLA_VARIANT)")
    s.add_argument("--repeat", type=int, default=1, help="runs per job (the plots use --stat)")
    s.add_argument("--stat", choices=["median", "min"], default="median")
    s.add_argument(
        "--submit",
        choices=["auto", "array", "chain", "independent"],
        default="auto",
        help="array job (one node count), jobs chained with afterany dependencies, "
        "or independent jobs; auto: array when possible, else chain",
    )
    s.add_argument("--max-concurrent", type=int, help="array: at most this many tasks at once")
    s.add_argument(
        "--weak-rule",
        choices=["linear", "sqrt", "cbrt", "dims"],
        help="how a weak study's global size grows with ranks (default: per app)",
    )
    s.add_argument("--dir", help="study folder (default runs/study-<app>-<mode>-<time>)")
    s.add_argument("--job-name")
    s.add_argument("--time", help="sbatch --time per job")
    s.add_argument("--partition")
    s.add_argument("--account")
    s.add_argument("--sbatch-arg", action="append", help="one more sbatch argument (repeatable)")
    s.add_argument("--site", help="PARLA_SITE for the jobs")
    s.add_argument("--launcher", choices=["srun", "mpirun"], help="PARLA_LAUNCHER for the jobs")
    s.add_argument("--wait", action="store_true", help="wait for the jobs, then collect")
    s.add_argument("--timeout", type=float, help="--wait: give up after this many seconds")
    s.add_argument("--dry-run", action="store_true", help="print the sbatch commands only")
    s.add_argument("app_args", nargs="*", help="after --: arguments for the app")
    s.set_defaults(func=cmd_submit)
    c = sub.add_parser("collect", help="collect a study's results into results.csv and plots")
    c.add_argument("dir")
    c.add_argument("--wait", action="store_true", help="wait for unfinished jobs first")
    c.add_argument("--timeout", type=float)
    c.add_argument("--stat", choices=["median", "min"], default="median")
    c.set_defaults(func=cmd_collect)
    a = p.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
