"""backend: device resolution, CUDA determinism and TF32 settings, the tf32 flag in run keys.

The tests marked ``cuda`` need a GPU (``benchmarks/gpu_check.sh`` runs them); the rest check the
settings and keys on any machine.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from specbias.backend import configure_cuda, resolve_device, tf32_state
from specbias.classify import ClassifierRun, DataSpec
from specbias.cli import main
from specbias.errors import ConfigError
from specbias.runs import ConfusionSpec, HammingSpec, PairSpec, RunConfig, execute_run
from specbias.signals import RandomImage, ToneMixture
from specbias.training import Schedule, TrainConfig

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

PAIRS = PairSpec(local_windows=3, local_per_window=10, global_pairs=40)
RUN = RunConfig(
    signal=ToneMixture(n=256, freqs=(2, 5, 9)),
    input="pe4",
    width=32,
    depth=3,
    train=TrainConfig(epochs=20, lr=1e-2, batch_size=64),
    probes=(HammingSpec(Schedule(every=5), PAIRS), ConfusionSpec(Schedule(last=True), PAIRS)),
)


@pytest.fixture
def restore_backend():
    """Put the process-wide settings :func:`configure_cuda` changes back after the test."""
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.fp32_precision,
        torch.backends.cudnn.conv.fp32_precision,
        torch.backends.cudnn.rnn.fp32_precision,
    )
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
    torch.backends.cuda.matmul.fp32_precision = saved[4]
    torch.backends.cudnn.conv.fp32_precision = saved[5]
    torch.backends.cudnn.rnn.fp32_precision = saved[6]


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="allowed: cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_configure_cuda_is_deterministic_with_tf32_off_unless_asked(restore_backend, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.backends.cudnn.benchmark = True
    configure_cuda(tf32=False)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert tf32_state() == {"matmul": "ieee", "conv": "ieee"}
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    configure_cuda(tf32=True)
    assert tf32_state() == {"matmul": "tf32", "conv": "tf32"}


def test_tf32_enters_the_key_only_when_on():
    on = dataclasses.replace(RUN, tf32=True)
    assert "tf32" not in RUN.to_json() and on.to_json()["tf32"] is True
    assert on.key() != RUN.key()
    assert dataclasses.replace(on, tf32=False).key() == RUN.key()
    real = ClassifierRun(DataSpec.of(None))
    assert dataclasses.replace(real, tf32=True).key() != real.key()


@pytest.mark.parametrize("value", [1, "yes", None])
def test_tf32_must_be_a_bool(value):
    with pytest.raises(ConfigError, match="tf32 must be True or False"):
        dataclasses.replace(RUN, tf32=value)
    with pytest.raises(ConfigError, match="tf32 must be True or False"):
        ClassifierRun(DataSpec.of(None), tf32=value)


def test_tf32_flag_needs_cuda(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "E2", "--tf32", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --tf32 applies to --device cuda, not --device cpu"]
    assert not out.exists()


def test_tf32_dry_run_plans_keys_with_the_flag(tmp_path, capsys):
    argv = ["run", "E2", "--device", "cuda", "--tf32", "--dry-run", "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    assert "distinct run(s)" in capsys.readouterr().out


@cuda
def test_cuda_run_repeats_bit_for_bit(restore_backend):
    first, second = execute_run(RUN, device="cuda"), execute_run(RUN, device="cuda")
    assert set(first.arrays) == set(second.arrays)
    for name, value in first.arrays.items():
        np.testing.assert_array_equal(value, second.arrays[name], err_msg=name)


@cuda
def test_cuda_run_matches_cpu_closely(restore_backend):
    gpu, cpu = execute_run(RUN, device="cuda"), execute_run(RUN)
    np.testing.assert_allclose(gpu.arrays["train/loss"], cpu.arrays["train/loss"], rtol=1e-3, atol=1e-6)


@cuda
def test_cuda_image_run_repeats_and_tf32_is_recorded(restore_backend):
    image = dataclasses.replace(RUN, signal=RandomImage(16), input="pe3", probes=())
    a, b = execute_run(image, device="cuda"), execute_run(image, device="cuda")
    np.testing.assert_array_equal(a.arrays["train/loss"], b.arrays["train/loss"])
    fast = execute_run(dataclasses.replace(image, tf32=True), device="cuda")
    assert fast.meta["key"] != a.meta["key"]
    assert tf32_state() == {"matmul": "tf32", "conv": "tf32"}
