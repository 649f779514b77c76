"""A run: (signal, input encoding, model, optimiser, schedule, seed) plus the probes it carries.

:class:`RunConfig` is a frozen, JSON-serialisable description; :func:`execute_run` builds the
objects it names, trains once and returns every probe's records as flat arrays. Experiments are
lists of run configs, so two experiments that need the same training share one run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from specbias import __version__
from specbias.encodings import Encoding, parse_input, warn_if_aliased
from specbias.errors import ConfigError
from specbias.metrics.pairs import LOCAL_WINDOW, Pairs, global_pairs_1d, local_pairs_1d
from specbias.models import MLP
from specbias.probes import (
    ConfusionProbe,
    ConvergenceProbe,
    DeadUnitProbe,
    HammingProbe,
    PredictionProbe,
    RegionProbe,
)
from specbias.seeding import rng_for, stream_seed
from specbias.signals import PowerLaw1D, Signal, ToneMixture
from specbias.training import Probe, Schedule, TrainConfig, train


@dataclass(frozen=True)
class PairSpec:
    """How many local and global pairs to draw (1D samplers of spec §1.7)."""

    local_windows: int = 25
    local_per_window: int = 100
    global_pairs: int = 5000
    window: float = LOCAL_WINDOW

    def __post_init__(self) -> None:
        for name in ("local_windows", "local_per_window", "global_pairs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    def sample(self, n: int, rng: np.random.Generator, faithful: bool) -> dict[str, Pairs]:
        local = local_pairs_1d(
            n,
            rng,
            n_windows=self.local_windows,
            pairs_per_window=self.local_per_window,
            window=self.window,
            faithful=faithful,
        )
        return {
            "local": local,
            "global": global_pairs_1d(n, rng, n_pairs=self.global_pairs, faithful=faithful),
        }


@dataclass(frozen=True)
class HammingSpec:
    schedule: Schedule
    pairs: PairSpec = PairSpec(25, 250, 5000)


@dataclass(frozen=True)
class ConfusionSpec:
    schedule: Schedule
    pairs: PairSpec = PairSpec(25, 100, 5000)


@dataclass(frozen=True)
class ConvergenceSpec:
    schedule: Schedule


@dataclass(frozen=True)
class PredictionSpec:
    schedule: Schedule


@dataclass(frozen=True)
class RegionSpec:
    schedule: Schedule


@dataclass(frozen=True)
class DeadUnitSpec:
    schedule: Schedule


ProbeSpec = HammingSpec | ConfusionSpec | ConvergenceSpec | PredictionSpec | RegionSpec | DeadUnitSpec


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results. ``mode="faithful"`` mirrors reference quirks."""

    signal: ToneMixture | PowerLaw1D
    input: str
    width: int
    depth: int
    train: TrainConfig
    probes: tuple[ProbeSpec, ...]
    seed: int = 0
    mode: str = "clean"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.mode not in ("clean", "faithful"):
            raise ConfigError(f"mode must be 'clean' or 'faithful', got {self.mode!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        for name, value in (("width", self.width), ("depth", self.depth)):
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value}")
        self.encoding()  # validates the input label

    def encoding(self) -> Encoding:
        return parse_input(self.input, in_dim=1, convention="1d", seed=stream_seed(self.seed, "rff"))

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)

    def key(self) -> str:
        """Cache key: a hash of the resolved config and the package version."""
        blob = json.dumps({"config": self.to_json(), "version": __version__}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def to_jsonable(obj: Any) -> Any:
    """Dataclasses become ``{"type": name, field: ...}``; tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"type": type(obj).__name__}
        for f in dataclasses.fields(obj):
            if f.init:
                out[f.name] = to_jsonable(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


@dataclass
class RunData:
    """A finished run: flat arrays ``"probe/key"`` and metadata (seconds, divergence, sizes)."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def get(self, probe: str, key: str) -> np.ndarray:
        return self.arrays[f"{probe}/{key}"]

    def has(self, probe: str) -> bool:
        return f"{probe}/epochs" in self.arrays


def _build_probe(spec: ProbeSpec, cfg: RunConfig, x: torch.Tensor, y: torch.Tensor, sig: Signal) -> Probe:
    faithful = cfg.mode == "faithful"
    if isinstance(spec, HammingSpec):
        pairs = spec.pairs.sample(sig.n, rng_for(cfg.seed, "pairs:hamming"), faithful)
        return HammingProbe(x, pairs, spec.schedule)
    if isinstance(spec, ConfusionSpec):
        pairs = spec.pairs.sample(sig.n, rng_for(cfg.seed, "pairs:confusion"), faithful)
        return ConfusionProbe(x, y, pairs, spec.schedule, zero="zero" if faithful else "nan")
    if isinstance(spec, ConvergenceSpec):
        return ConvergenceProbe(x, sig.y, sig.freqs, spec.schedule)
    if isinstance(spec, PredictionSpec):
        return PredictionProbe(x, spec.schedule)
    if isinstance(spec, RegionSpec):
        return RegionProbe(x, spec.schedule)
    return DeadUnitProbe(x, spec.schedule)


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda``; asking for CUDA on a machine without it is a :class:`ConfigError`."""
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but CUDA is not available; use --device cpu")
        return torch.device("cuda")
    raise ConfigError(f"unknown device {device!r}; allowed: cpu, cuda")


def execute_run(cfg: RunConfig, device: str = "cpu", progress: bool = False) -> RunData:
    """Train the run once and take every probe; returns flat arrays and metadata."""
    dev = resolve_device(device)
    dtype = getattr(torch, cfg.dtype)
    sig = cfg.signal.build(cfg.seed)
    enc = cfg.encoding()
    n_aliased = warn_if_aliased(enc, spacing=1.0 / sig.n)
    t = torch.as_tensor(sig.t, dtype=torch.float64)
    x = enc(t).to(dtype=dtype, device=dev)
    y = torch.as_tensor(sig.y, dtype=dtype, device=dev)
    torch.manual_seed(stream_seed(cfg.seed, "init"))
    model = MLP(enc.out_dim, cfg.width, cfg.depth, y.shape[1]).to(dtype=dtype, device=dev)
    probes = [_build_probe(s, cfg, x, y, sig) for s in cfg.probes]
    result = train(model, x, y, cfg.train, probes, seed=cfg.seed, progress=progress, desc=cfg.input)
    arrays = {f"{p}/{k}": v for p, rec in result.records.items() for k, v in rec.items()}
    arrays["train/loss"] = result.losses
    arrays["signal/y"] = sig.y
    arrays["signal/t"] = sig.t
    arrays["signal/freqs"] = np.asarray(sig.freqs, dtype=np.int64)
    arrays.update({f"signal/{k}": v for k, v in sig.arrays.items()})
    arrays.update({f"encoding/{k}": v for k, v in enc.arrays().items()})
    meta = {
        "key": cfg.key(),
        "input": cfg.input,
        "seed": cfg.seed,
        "seconds": result.seconds,
        "diverged_at": result.diverged_at,
        "n_params": model.n_params(),
        "n_hidden": model.n_hidden,
        "in_dim": enc.out_dim,
        "aliased_features": n_aliased,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "version": __version__,
    }
    return RunData(arrays, meta)
