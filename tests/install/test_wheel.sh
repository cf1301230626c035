#!/usr/bin/env bash
# Builds the wheel the way `pip install .` does (scikit-build-core, fresh build directory),
# installs it into a new virtual environment and imports it there, away from the source tree.
set -euo pipefail
src=$1
work=$2
py=${PARLA_PYTHON:-python3}
rm -rf "$work"
mkdir -p "$work"
"$py" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" \
    -C build-dir="$work/build" "$src"
wheel=$(ls "$work"/dist/parla_mpi-*.whl)
"$py" -m venv --system-site-packages "$work/venv"
# With its dependencies (numpy), as `pip install .` would: they come from the pip cache or PyPI.
"$work/venv/bin/python" -m pip install -q --force-reinstall "$wheel"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import parla, parla._core, sys
assert parla.__file__.startswith(sys.prefix), f"imported {parla.__file__}, not the installed wheel"
assert parla.__version__ == "0.1.0", parla.__version__
print("wheel ok:", parla.__file__, parla.__version__, parla.build_config)
PY
rm -rf "$work"
