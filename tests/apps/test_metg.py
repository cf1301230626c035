"""apps/taskbench/metg.py, the METG driver: its rounds interleave the configurations, and the
ratio to MPI it reports is the median of the ratios measured in the same round.

PARLA_TASKBENCH_BUILD is the build folder holding apps/taskbench (CMake sets it)."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METG = ROOT / "apps" / "taskbench" / "metg.py"
BUILD = os.environ.get("PARLA_TASKBENCH_BUILD")

pytestmark = pytest.mark.skipif(BUILD is None, reason="PARLA_TASKBENCH_BUILD is not set")


def metg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(METG), "--build", str(BUILD), "--cores", "2", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_rounds_interleave_and_the_ratio_is_paired_per_round():
    proc = metg(
        "--sweeps",
        "3",
        "--configs",
        "mpi,parla-1xN",
        "--max-iterations",
        "16",
        "--target-seconds",
        "0.002",
        "--repeats",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["check"]["ok"]
    # Round 1 runs mpi then parla, round 2 the other way round, round 3 as round 1.
    order = re.findall(r"round (\d)/3, (\S+):", proc.stderr)
    assert order == [
        ("1", "mpi"),
        ("1", "parla-1xN"),
        ("2", "parla-1xN"),
        ("2", "mpi"),
        ("3", "mpi"),
        ("3", "parla-1xN"),
    ]
    configs = result["metrics"]["configs"]
    mpi, parla = configs["mpi"]["metg_us_runs"], configs["parla-1xN"]["metg_us_runs"]
    assert len(mpi) == len(parla) == 3
    assert all(m > 0 for m in mpi + parla)
    paired = [p / m for p, m in zip(parla, mpi)]
    assert configs["parla-1xN"]["ratio_to_mpi_runs"] == pytest.approx(paired)
    assert configs["parla-1xN"]["ratio_to_mpi"] == pytest.approx(statistics.median(paired))
    assert configs["parla-1xN"]["rounds_within_2x_mpi"] == sum(1 for x in paired if x <= 2.0)
    assert configs["mpi"]["metg_us"] == pytest.approx(statistics.median(mpi))
    assert result["metrics"]["best_ratio_to_mpi"] == pytest.approx(statistics.median(paired))
    assert result["metrics"]["goal_within_2x_mpi"] == (statistics.median(paired) <= 2.0)
    # A cross-core probe before every round; the quiet ratio pairs only the quiet rounds.
    # Two sweeps per round: a probe before each and one after the round.
    probes = result["metrics"]["core_latency_ns_probes"]
    assert [len(p) for p in probes] == [3, 3, 3] and all(x > 0 for p in probes for x in p)
    latencies = result["metrics"]["core_latency_ns_runs"]
    assert latencies == [max(p) for p in probes]
    lowest = min(min(p) for p in probes)
    quiet = result["metrics"]["quiet_rounds"]
    assert quiet == [i + 1 for i, x in enumerate(latencies) if x <= 2 * lowest]
    if quiet:  # a noisy machine may have none (each round has a probe above 2 x the lowest)
        assert configs["parla-1xN"]["ratio_to_mpi_quiet"] == pytest.approx(
            statistics.median(paired[i - 1] for i in quiet)
        )
    else:
        assert "ratio_to_mpi_quiet" not in configs["parla-1xN"]
    assert re.search(r"round 1/3: cross-core round trip \d+ ns", proc.stderr)
    # Parla's sweep points say how long spawning the graph took; MPI spawns nothing.
    parla_points = configs["parla-1xN"]["sweep"]
    assert parla_points and all(0 < p["spawn_seconds"] <= p["seconds"] for p in parla_points)
    assert all(p["spawn_seconds"] == 0 for p in configs["mpi"]["sweep"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sweeps", "0"), "--sweeps must be at least 1"),
        (("--repeats", "0"), "--repeats must be at least 1"),
        (("--target-seconds", "0"), "--target-seconds must be > 0"),
        (("--configs", "mpi,parla-1xN-2"), "unknown configuration 'parla-1xN-2'"),
    ],
)
def test_bad_arguments_say_what_is_wrong(args, message):
    proc = metg(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


def test_core_latency_probe_reports_a_round_trip_and_rejects_bad_input():
    probe = Path(BUILD) / "apps" / "taskbench" / "core_latency"
    proc = subprocess.run(
        [str(probe), "--round-trips", "2000", "--trials", "3"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    runs = result["metrics"]["round_trip_ns_runs"]
    assert len(runs) == 3 and all(x > 0 for x in runs)
    assert result["metrics"]["round_trip_ns"] == pytest.approx(statistics.median(runs), rel=1e-3)
    bad = subprocess.run([str(probe), "--trials", "0"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "--trials expects an integer >= 1, got '0'" in bad.stderr
    assert bad.stdout == ""


def test_a_sweep_repeats_each_point_once_per_pass_and_keeps_the_fastest():
    # The runs of one point are spread over the sweep (one per pass over all the points), so
    # that one slow spell of a shared machine does not catch every run of a point.
    program = Path(BUILD) / "apps" / "taskbench" / "mpi_taskbench"
    proc = subprocess.run(
        [
            str(program),
            "--metg",
            "--max-iterations",
            "4",
            "--repeats",
            "3",
            "--cores",
            "1",
            "--target-seconds",
            "0.002",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"),
    )
    assert proc.returncode == 0, proc.stderr
    passes = re.findall(r"pass (\d)/3 over 3 points", proc.stderr)
    assert passes == ["1", "2", "3"]
    # Every point is reported once, after the passes, with the iterations halving to 1.
    reported = re.findall(r"iterations +(\d+) +steps", proc.stderr)
    assert reported == ["4", "2", "1"]
    assert proc.stderr.index("pass 3/3") < proc.stderr.index("iterations       4")
    sweep = json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]["sweep"]
    assert [p["iterations"] for p in sweep] == [4, 2, 1]
    assert all(p["seconds"] > 0 and p["tasks"] > 0 for p in sweep)
    assert max(p["efficiency"] for p in sweep) == pytest.approx(1.0)
