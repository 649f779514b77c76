"""The device a run trains on, set up so that its numbers repeat.

On CPU a run is repeatable bit for bit with one torch thread. On CUDA, PyTorch picks among kernels
whose floating-point reduction order can vary between calls, and by default lets convolutions (and,
if asked, matmuls) round their float32 inputs to TF32's 10-bit mantissa. :func:`resolve_device`
therefore switches CUDA to deterministic algorithms where PyTorch offers them (a warning, not an
error, where an op has none) and keeps TF32 off unless the run asks for it; a run that does records
``tf32`` in its config and cache key.
"""

from __future__ import annotations

import os

import torch

from specbias.errors import ConfigError

DEVICES = ("cpu", "cuda")

_CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS needs a fixed workspace for deterministic results (CUDA ≥ 10.2); read when cuBLAS starts."""


def resolve_device(device: str, tf32: bool = False) -> torch.device:
    """``cpu`` or ``cuda``, ready for a run; CUDA on a machine without it is a :class:`ConfigError`.

    For CUDA this also calls :func:`configure_cuda` with ``tf32``."""
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but CUDA is not available; use --device cpu")
        configure_cuda(tf32)
        return torch.device("cuda")
    raise ConfigError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")


def configure_cuda(tf32: bool) -> None:
    """Deterministic CUDA kernels where PyTorch has them, cuDNN autotuning off, and TF32 for
    matmuls and convolutions on only when ``tf32`` is true (process-wide settings)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if not hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch < 2.9
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        return
    precision = "tf32" if tf32 else "ieee"
    torch.backends.cuda.matmul.fp32_precision = precision
    torch.backends.cudnn.conv.fp32_precision = precision
    torch.backends.cudnn.rnn.fp32_precision = precision


def tf32_state() -> dict[str, str]:
    """The float32 precision CUDA matmuls and convolutions currently use (``ieee`` or ``tf32``)."""
    if not hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch < 2.9
        name = {True: "tf32", False: "ieee"}
        return {
            "matmul": name[torch.backends.cuda.matmul.allow_tf32],
            "conv": name[torch.backends.cudnn.allow_tf32],
        }
    return {
        "matmul": str(torch.backends.cuda.matmul.fp32_precision),
        "conv": str(torch.backends.cudnn.conv.fp32_precision),
    }
