"""The parla package installs, imports, and describes the build it came from."""

import importlib.metadata
import subprocess
import sys

import parla
import parla._core


def test_version_matches_the_distribution_metadata():
    assert parla.__version__ == importlib.metadata.version("parla-mpi")


def test_build_config_reports_the_optional_layers():
    config = parla.build_config
    assert set(config) == {"mpi", "cuda", "ucx"}
    assert all(isinstance(value, bool) for value in config.values())


def test_import_prints_nothing():
    out = subprocess.run(
        [sys.executable, "-c", "import parla"], capture_output=True, text=True, check=True
    )
    assert out.stdout == ""
