"""Shared fixtures: each test states its devices explicitly, whatever the environment."""

import pytest


@pytest.fixture(autouse=True)
def _clean_parla_environment(monkeypatch):
    for name in (
        "PARLA_NUM_WORKERS",
        "PARLA_NUM_THREADS",
        "PARLA_SIM_GPUS",
        "PARLA_TRACE",
        "PARLA_STATS",
    ):
        monkeypatch.delenv(name, raising=False)
