#!/usr/bin/env bash
# A small strong-scaling study of heat end to end on the single-node SLURM cluster: study.py
# submits 1 and 2 ranks (an array job), waits, collects, collects again after the cluster is
# gone (resuming later); then checks the CSV rows and the PNGs.
# Runs the Parla port of heat when present and importable, else the baseline, and says which.
# PARLA_STUDY_PLOT_TO=FILE copies the combined plot there (docs/img/ is refreshed this way).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh" "$@"
need_root
"$py" -c "import matplotlib" 2>/dev/null ||
  { echo "matplotlib missing in $py: run scripts/build (it installs it)"; exit 1; }
variant=$(heat_variant)
echo "heat variant under test: $variant"
work=$(mktemp -d /tmp/parla-slurm-study.XXXXXX)
trap 'rm -rf "$work"' EXIT
size=${PARLA_STUDY_SIZE:-384}
PARLA_BUILD_DIR="$build_dir" "$root/jobscripts/local-slurm" \
  "$py" "$root/jobscripts/study.py" submit --app heat --mode strong --sizes "$size" --ranks 1 2 \
  --variant "$variant" --repeat 2 --time 00:03:00 --dir "$work/study" --wait --timeout 240 \
  -- --iters 30
# Resuming later: collect again with the cluster gone (squeue cannot answer; the results stay).
rm "$work/study/results.csv" "$work/study/scaling.png"
"$py" "$root/jobscripts/study.py" collect "$work/study"
"$py" - "$work/study" "$size" "$variant" <<'PY'
import csv, json, pathlib, struct, sys
study, size, variant = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rows = list(csv.DictReader((study / "results.csv").open()))
# 2 rank counts x 2 repetitions, each from its own job's run folder.
assert len(rows) == 4, f"expected 4 rows, got {len(rows)}: {rows}"
assert sorted((r["x"], r["ranks"]) for r in rows) == [("1", "1")] * 2 + [("2", "2")] * 2, rows
for r in rows:
    assert r["check.ok"] == "True", r
    assert int(r["size"]) == size and int(r["params.n"]) == size, r
    assert float(r["seconds"]) > 0, r
    assert r["app"].startswith("heat"), r
    assert r["workers"] == "1", f"each rank gets one of the 2 cores: {r}"
assert len({r["job_id"] for r in rows}) == 2, rows
meta = json.loads((study / "study.json").read_text())
assert meta["method"] == "array" and meta["axis"] == "ranks", meta
for name in ("time", "speedup", "efficiency", "scaling"):
    png = (study / f"{name}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", f"{name}.png is not a PNG"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert 400 <= width <= 4000 and 300 <= height <= 3000, (name, width, height)
    assert len(png) > 10_000, f"{name}.png is only {len(png)} bytes"
    print(f"{name}.png: {width}x{height}, {len(png)} bytes")
print(f"slurm study ok ({variant}): {len(rows)} rows in results.csv")
PY
if [[ -n "${PARLA_STUDY_PLOT_TO:-}" ]]; then
  cp "$work/study/scaling.png" "$PARLA_STUDY_PLOT_TO"
  cp "$work/study/results.csv" "${PARLA_STUDY_PLOT_TO%.png}.csv"
fi
