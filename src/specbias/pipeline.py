"""From experiment ids to finished run directories: resolve, train (or load), analyse, write."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specbias import __version__, figures
from specbias._checks import check_int
from specbias.errors import ConfigError
from specbias.experiments import Experiment, ExperimentResult
from specbias.results import (
    RunStore,
    atomic_write_json,
    csv_bytes,
    npz_bytes,
    remove_stale_staging,
    replace_dir,
    staging_dir,
)
from specbias.runner import run_all
from specbias.runs import RunConfig, to_jsonable
from specbias.signals import SKIMAGE_IMAGES, NaturalImage


@dataclass(frozen=True)
class Planned:
    """An experiment with its resolved parameters, seed count and run configs."""

    experiment: Experiment
    profile: str
    params: Any
    seeds: int
    configs: list[RunConfig]


LIMITS: dict[str, int] = {
    "seeds": 1000,
    "epochs": 10**6,
    "width": 2**16,
    "depth": 1000,
    "n": 2**24,
    "size": 2**14,
    "workers": 256,
}
"""The largest value planning accepts for each integer option. Beyond these no run could train
(a 2^16-wide layer alone holds 4.3e9 weights; 2^14² pixels are 2.7e8 grid points), and listing
the runs could itself take minutes, so they are refused before any run is listed; the memory and
time estimates judge everything below."""


def check_count(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is an integer from 1 to ``LIMITS[name]`` (``--name`` in the
    message): the one check every count option gets before any run is listed."""
    check_int(f"--{name}", value)
    limit = LIMITS.get(name)
    if limit is not None and value > limit:
        raise ConfigError(f"--{name} {value} is more than planning accepts (at most {limit:,})")


def plan(
    exp: Experiment, profile: str, seeds: int | None, overrides: dict[str, Any], tf32: bool = False
) -> Planned:
    """Resolve parameters (profile + overrides) and the runs; raises ConfigError on bad values.
    ``tf32`` marks every run as allowed TF32 on CUDA (it enters each run's key).

    Counts (``--seeds``, ``--epochs``, sizes) are bounded by :data:`LIMITS` before any run is
    listed, and natural images are checked against their size before anything trains."""
    params = exp.params(profile)
    given = {k: v for k, v in overrides.items() if v is not None}
    allowed = getattr(params, "OVERRIDES", ())
    for key in given:
        if key not in allowed:
            names = ", ".join(f"--{a}" for a in allowed) or "none"
            raise ConfigError(f"--{key} does not apply to {exp.id}; allowed overrides: {names}")
    for key, value in given.items():
        if key in LIMITS:
            check_count(key, value)
    seeds = getattr(params, "seeds", exp.default_seeds) if seeds is None else seeds
    check_count("seeds", seeds)
    if given:
        params = params.override(**given)
    configs = exp.runs(params, seeds)
    if tf32:
        configs = [dataclasses.replace(c, tf32=True) for c in configs]
    check_images(configs)
    return Planned(exp, profile, params, seeds, configs)


@functools.lru_cache(maxsize=64)
def _image_side(name: str) -> int:
    """The side of the centre crop of a natural image (the smaller of its height and width)."""
    if name in SKIMAGE_IMAGES:
        import skimage.data

        return int(min(np.shape(getattr(skimage.data, name)())[:2]))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(name) as im:  # reads the header only
            return int(min(im.size))
    except (OSError, UnidentifiedImageError) as exc:
        raise ConfigError(f"image file {name!r} is not an image Pillow can read ({exc})") from None


def check_images(configs: Sequence[Any]) -> None:
    """ConfigError when a run asks for a natural image larger than its centre crop (area averaging
    only downsamples): checked while planning, not in a worker after the estimate is printed."""
    images = {c.signal for c in configs if isinstance(getattr(c, "signal", None), NaturalImage)}
    for image in sorted(images, key=lambda im: (im.name, im.size)):
        side = _image_side(image.name)
        if image.size > side:
            raise ConfigError(
                f"image size {image.size} exceeds the {side}-pixel centre crop of {image.name!r}; "
                f"area averaging only downsamples (use --size {side} or less)"
            )


def _points(cfg: Any) -> str | None:
    """The sampling of a run's input: ``64²`` for an image grid (``256² → 128²`` when it trains on
    every other pixel), ``N=2048`` for a 1D signal."""
    signal = getattr(cfg, "signal", None)
    if hasattr(signal, "size"):
        return (
            f"{signal.size}² → {signal.size // 2}²" if getattr(cfg, "held_out", False) else f"{signal.size}²"
        )
    if hasattr(signal, "n"):
        return f"N={signal.n}"
    return None


def describe_scale(planned: Planned) -> dict[str, Any]:
    """The scale the claims were judged at: profile, seeds, and the distinct grids or N, networks
    and epoch budgets of the planned runs (read from the runs, so overrides show)."""
    configs = planned.configs

    def distinct(values: Sequence[Any]) -> list[Any]:
        return [v for v in dict.fromkeys(values) if v is not None]

    return {
        "profile": planned.profile,
        "seeds": planned.seeds,
        "points": distinct([_points(c) for c in configs]),
        "network": distinct([f"{c.depth}×{c.width}" for c in configs if hasattr(c, "depth")]),
        "epochs": distinct([c.train.epochs for c in configs if hasattr(c, "train")]),
    }


def result_dir(out: Path, profile: str) -> Path:
    """Where a profile's result set lives: ``out/<profile>`` (one experiment directory each)."""
    return Path(out) / profile


def write_experiment(out: Path, planned: Planned, result: ExperimentResult, seconds: float) -> Path:
    """Write the experiment directory atomically (staged, then renamed into place)."""
    exp = planned.experiment
    final = Path(out) / exp.id
    tmp = staging_dir(final)
    try:
        atomic_write_json(
            tmp / "config.json",
            {
                "experiment": exp.id,
                "profile": planned.profile,
                "seeds": planned.seeds,
                "params": to_jsonable(planned.params),
                "runs": [c.key() for c in planned.configs],
                "version": __version__,
            },
        )
        (tmp / "metrics.csv").write_bytes(csv_bytes(result.rows))
        (tmp / "arrays.npz").write_bytes(npz_bytes(result.arrays))
        (tmp / "figures").mkdir()
        for name, fig in result.figures.items():
            fig.savefig(tmp / "figures" / f"{name}.png", dpi=110)
            figures.close(fig)
        summary = {
            "experiment": exp.id,
            "title": exp.title,
            "claim": exp.claim,
            "profile": planned.profile,
            "seeds": planned.seeds,
            "scale": describe_scale(planned),
            "findings": [f.as_dict() for f in result.findings],
            "compute_seconds": round(seconds, 2),
            "torch": torch.__version__,
            **result.summary,
        }
        atomic_write_json(tmp / "summary.json", summary)
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def execute(
    plans: Sequence[Planned],
    out: Path,
    device: str = "cpu",
    workers: int | None = None,
    force: bool = False,
    progress: bool | None = None,
    executor: str = "local",
    scheduler: str | None = None,
) -> list[tuple[Planned, ExperimentResult, Path]]:
    """Train every run the plans need (shared runs once), then analyse each and write it under
    ``out/<profile>/<experiment>``; the run cache ``out/runs`` is shared by every profile."""
    store = RunStore(out)
    for p in plans:
        if result_dir(out, p.profile).is_dir():
            remove_stale_staging(result_dir(out, p.profile))
    all_configs = [c for p in plans for c in p.configs]
    run_all(
        all_configs,
        store,
        device=device,
        workers=workers,
        force=force,
        progress=progress,
        executor=executor,
        scheduler=scheduler,
    )
    done = []
    for p in plans:
        t0 = time.perf_counter()
        runs = [store.load(c) for c in p.configs]
        result = p.experiment.analyse(p.params, list(zip(p.configs, runs)))
        seconds = sum(r.meta["seconds"] for r in runs) + time.perf_counter() - t0
        done.append((p, result, write_experiment(result_dir(out, p.profile), p, result, seconds)))
    return done
