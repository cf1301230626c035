"""Function variants: the implementation that runs is the one for the task's devices."""

import pytest

from parla import Parla, TaskSpace, spawn, specialize
from parla.devices import cpu, gpu


def make_kernel(fallback=True):
    @specialize(fallback=fallback)
    def kernel():
        return "default"

    @kernel.variant(gpu)
    def kernel_gpu():
        return "gpu"

    @kernel.variant((gpu, gpu))
    def kernel_two_gpus():
        return "gpu,gpu"

    @kernel.variant((gpu(1), gpu(0)))
    def kernel_gpu1_gpu0():
        return "gpu(1),gpu(0)"

    return kernel


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        (cpu, "default"),
        (gpu(0), "gpu"),
        (gpu(1), "gpu"),
        ((gpu(0), gpu(1)), "gpu,gpu"),
        ((gpu(1), gpu(0)), "gpu(1),gpu(0)"),  # exact devices win over architectures
        ((gpu(0), cpu), "gpu"),  # no (gpu, cpu) variant: the first device decides
        ((cpu, gpu(0)), "default"),
    ],
)
def test_dispatch_follows_the_task_devices(placement, expected):
    kernel = make_kernel()
    with Parla(1, sim_gpus=2):
        t = spawn(placement=placement)(kernel)
    assert t.result == expected


def test_no_variant_and_no_fallback_names_the_device_and_the_variants():
    kernel = make_kernel(fallback=False)
    message = r"kernel has no variant for a task on cpu"
    with pytest.raises(NotImplementedError, match=message) as e, Parla(1, sim_gpus=2):
        spawn(placement=cpu)(kernel)
    assert "variants: gpu, (gpu, gpu), (gpu(1), gpu(0))" in str(e.value)
    with Parla(1, sim_gpus=2):
        t = spawn(placement=gpu(0))(kernel)
    assert t.result == "gpu"


def test_nested_calls_and_tasks_dispatch_on_their_own_devices():
    @specialize
    def inner():
        return "cpu"

    @inner.variant(gpu)
    def inner_gpu():
        return "gpu"

    @specialize
    def outer():
        @spawn(placement=gpu(0))
        def child():
            return inner()

        child.wait()
        return "cpu>" + child.result + "|" + inner()

    with Parla(2, sim_gpus=1):
        T = TaskSpace("T")
        spawn(T[0], placement=cpu)(outer)
    assert T[0].result == "cpu>gpu|cpu"


def test_bad_variant_targets_are_reported():
    kernel = make_kernel()
    with pytest.raises(TypeError, match="tuple of them"):
        kernel.variant("gpu")
    with pytest.raises(ValueError, match=r"already has a variant for \(gpu, gpu\)"):
        kernel.variant((gpu, gpu))(lambda: None)
