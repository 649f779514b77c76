"""The training loop, its checkpoint schedules and the probe protocol.

One loop trains a model on ``(x, y)`` with Adam or SGD, full batch or mini-batches, and at the
epochs of each probe's :class:`Schedule` calls the probe. Conventions (spec §1.9):

* epochs are numbered from 0; a probe with ``before_update = False`` at epoch ``e`` sees the
  weights *after* epoch ``e``'s update (so label 0 is after one epoch), one with
  ``before_update = True`` sees them at the *start* of epoch ``e`` (label 0 is the
  initialisation) -- dead units are counted that way;
* probes run under ``torch.no_grad`` on their own data and never touch the optimiser or the
  batch-order generator, so the same seed gives the same weights with and without probes;
* ``batching="reshuffle"`` (clean default) draws a new permutation every epoch, ``"fixed"``
  shuffles once and replays the same batches (the reference, bug B3).

A run whose loss becomes NaN or infinite stops and reports the epoch in ``diverged_at``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from specbias._checks import check_int, check_positive
from specbias.errors import ConfigError
from specbias.seeding import torch_generator


@dataclass(frozen=True)
class Schedule:
    """Checkpoint epochs: every ``every`` epochs, ``logspaced`` log-spaced, an explicit list,
    and/or the ``last`` epoch -- the union of whatever is set."""

    every: int | None = None
    logspaced: int | None = None
    explicit: tuple[int, ...] = ()
    last: bool = False

    def __post_init__(self) -> None:
        if self.every is not None and self.every < 1:
            raise ConfigError(f"schedule 'every' must be >= 1, got {self.every}")
        if self.logspaced is not None and self.logspaced < 1:
            raise ConfigError(f"schedule 'logspaced' must be >= 1, got {self.logspaced}")
        if any(e < 0 for e in self.explicit):
            raise ConfigError(f"schedule epochs must be >= 0, got {list(self.explicit)}")

    def epochs(self, total: int) -> list[int]:
        """The sorted checkpoint epochs within ``0..total-1``."""
        out: set[int] = {e for e in self.explicit if e < total}
        if self.every is not None:
            out.update(range(0, total, self.every))
        if self.logspaced is not None and total > 0:
            out.update(int(e) for e in np.unique(np.geomspace(1, total, self.logspaced).round()) - 1)
        if self.last and total > 0:
            out.add(total - 1)
        return sorted(out)


class Probe(Protocol):
    """A measurement taken at checkpoints. ``measure`` returns arrays of fixed shape."""

    name: str
    schedule: Schedule
    before_update: bool

    def measure(self, model: nn.Module) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and batching. ``batch_size=None`` trains full batch (one step per epoch)."""

    epochs: int = 500
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int | None = None
    batching: str = "reshuffle"
    momentum: float = 0.0

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs)
        check_positive("learning rate", self.lr)
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.batching not in ("reshuffle", "fixed"):
            raise ConfigError(f"batching must be 'reshuffle' or 'fixed', got {self.batching!r}")


@dataclass
class TrainResult:
    """Per-epoch training loss, each probe's stacked records, and whether the run diverged."""

    losses: np.ndarray
    records: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    diverged_at: int | None = None
    seconds: float = 0.0


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (β = (0.9, 0.999), ε = 1e-8, no weight decay) or SGD, as in spec §1.1.

    Adam uses PyTorch's fused kernel (one pass over all parameters, on CPU and CUDA): the same
    update rule as the per-tensor loop, deterministic, and about 15-20% faster per step for these
    small MLPs, where the optimiser is a large share of a step (``benchmarks/bench_trainer.py``).
    """
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)


def _batches(n: int, config: TrainConfig, seed: int) -> Iterable[torch.Tensor | None]:
    """Per epoch: ``None`` for full batch, else the permutation whose consecutive ``batch_size``
    slices are that epoch's batches."""
    if config.batch_size is None or config.batch_size >= n:
        while True:
            yield None
    gen = torch_generator(seed, "batches")
    fixed = torch.randperm(n, generator=gen)
    while True:
        yield fixed if config.batching == "fixed" else torch.randperm(n, generator=gen)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": nn.functional.mse_loss,
    "ce": nn.functional.cross_entropy,
}
"""Training losses by name: mean squared error on targets ``(N, C)`` (the coordinate networks), mean
cross-entropy on integer labels ``(N,)`` (the real-data classifiers of E17-E19)."""


def _checkpoints(probes: Sequence[Probe], epochs: int, before: bool) -> dict[int, list[Probe]]:
    table: dict[int, list[Probe]] = {}
    for probe in probes:
        if probe.before_update == before:
            for e in probe.schedule.epochs(epochs):
                table.setdefault(e, []).append(probe)
    return table


def _stack(records: dict[str, list[dict[str, np.ndarray]]], epochs: dict[str, list[int]]) -> dict:
    out = {}
    for name, rows in records.items():
        stacked = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]} if rows else {}
        stacked["epochs"] = np.asarray(epochs[name], dtype=np.int64)
        out[name] = stacked
    return out


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    probes: Sequence[Probe] = (),
    seed: int = 0,
    progress: bool = False,
    desc: str = "train",
    report: Callable[[int, int, float], None] | None = None,
    loss: str = "mse",
) -> TrainResult:
    """Train ``model`` on ``(x, y)`` with the ``loss`` of :data:`LOSSES` (mean over the batch),
    calling ``probes`` at their checkpoints.

    ``progress`` draws a terminal bar; ``report(epochs_done, epochs, loss)`` is called about 100
    times per run instead, for progress shown by another process (the runner's worker pool).
    """
    start = time.perf_counter()
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise ConfigError(f"probe names must be unique, got {names}")
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    loss_fn = LOSSES[loss]
    optimizer = make_optimizer(model, config)
    before, after = (_checkpoints(probes, config.epochs, b) for b in (True, False))
    records: dict[str, list] = {p.name: [] for p in probes}
    rec_epochs: dict[str, list[int]] = {p.name: [] for p in probes}
    losses = torch.full((config.epochs,), float("nan"), dtype=torch.float64)
    diverged_at = None
    n = x.shape[0]

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        value = loss_fn(model(xb), yb)
        value.backward()
        optimizer.step()
        return value.detach()

    def run_probes(todo: list[Probe], epoch: int) -> None:
        with torch.no_grad():
            for probe in todo:
                records[probe.name].append(probe.measure(model))
                rec_epochs[probe.name].append(epoch)

    bar = tqdm(total=config.epochs, desc=desc, disable=not progress, leave=False)
    report_every = max(1, config.epochs // 100)
    for epoch, perm in zip(range(config.epochs), _batches(n, config, seed)):
        if epoch in before:
            run_probes(before[epoch], epoch)
        if perm is None:
            epoch_loss = step(x, y)
        else:  # one gather per epoch, then the batches are views
            batches = zip(x[perm].split(config.batch_size), y[perm].split(config.batch_size))
            epoch_loss = sum(step(xb, yb) * len(xb) for xb, yb in batches) / n
        losses[epoch] = epoch_loss
        checkpoint = epoch in after
        if (checkpoint or epoch % 50 == 49) and not torch.isfinite(losses[: epoch + 1]).all():
            diverged_at = int(torch.nonzero(~torch.isfinite(losses[: epoch + 1]))[0, 0])
            break
        if checkpoint:
            run_probes(after[epoch], epoch)
        if report is not None and (epoch + 1) % report_every == 0:
            report(epoch + 1, config.epochs, float(epoch_loss))
        if progress:
            bar.update(1)
            if epoch % 10 == 0:
                bar.set_postfix(loss=f"{float(epoch_loss):.4g}")
    bar.close()
    if diverged_at is None and not torch.isfinite(losses).all():
        diverged_at = int(torch.nonzero(~torch.isfinite(losses))[0, 0])
    return TrainResult(
        losses=losses.numpy(),
        records=_stack(records, rec_epochs),
        diverged_at=diverged_at,
        seconds=time.perf_counter() - start,
    )
