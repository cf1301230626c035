"""The compiled runtime starts from Python with the devices it was asked for."""

import pytest

from parla import _core


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("gpus", [0, 1, 3])
def test_devices_are_the_cpu_then_each_simulated_gpu(workers, gpus):
    rt = _core.Runtime(num_workers=workers, sim_gpus=gpus)
    assert rt.num_workers == workers
    assert rt.num_gpus == gpus
    assert rt.devices == ["cpu"] + [f"gpu({i})" for i in range(gpus)]
    rt.wait_all()


def test_environment_sets_the_defaults(monkeypatch):
    monkeypatch.setenv("PARLA_NUM_WORKERS", "3")
    monkeypatch.setenv("PARLA_SIM_GPUS", "2")
    rt = _core.Runtime()
    assert (rt.num_workers, rt.num_gpus) == (3, 2)
