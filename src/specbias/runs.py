"""A run: (signal, input encoding, model, optimiser, schedule, seed) plus the probes it carries.

:class:`RunConfig` is a frozen, JSON-serialisable description; :func:`execute_run` builds the
objects it names, trains once and returns every probe's records as flat arrays. Experiments are
lists of run configs, so two experiments that need the same training share one run.

Probe specs (``HammingSpec``, ``RegionSpec``, …) say *what* to measure and *when*; each builds its
probe (:mod:`specbias.probes`) inside the run with ``spec.build(data)``, on the run's own encoded grid
(:class:`ProbeData`), so the features a probe sees are the ones the network was trained on (the
reference redraws its RFF matrix between training and evaluation, bug B8). A spec's ``REQUIRES``
says what it needs of the network -- activation patterns, or the plain ReLU MLP's weights -- and a
run whose family (:mod:`specbias.families`) lacks it is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from specbias import __version__
from specbias._checks import check_flag, check_int
from specbias.backend import resolve_device
from specbias.encodings import Encoding, NeRFPE, aliased_features, parse_input
from specbias.errors import ConfigError
from specbias.families import Family, ReLUMLP
from specbias.metrics.pairs import (
    FAITHFUL_CORNERS,
    GLOBAL_FAR_2D,
    GLOBAL_NEAR_2D,
    LOCAL_WINDOW,
    Pairs,
    global_pairs_1d,
    global_pairs_2d,
    local_pairs_1d,
    local_pairs_2d,
    random_pairs,
    window_pairs_2d_faithful,
)
from specbias.probes import (
    BandProbe,
    BoundaryProbe,
    ConfusionProbe,
    ConvergenceProbe,
    DeadUnitProbe,
    HammingProbe,
    HeldOutProbe,
    HyperplaneProbe,
    KernelProbe,
    PredictionProbe,
    RegionMapProbe,
    RegionProbe,
    SnapshotProbe,
    SpectralNormProbe,
    high_band_target,
)
from specbias.seeding import rng_for, stream_seed
from specbias.signals import (
    Burst,
    Chirp,
    NaturalImage,
    PowerLaw1D,
    RandomImage,
    Signal,
    ToneMixture,
    held_out_split,
)
from specbias.training import Probe, Schedule, TrainConfig, train

SignalSpec = ToneMixture | PowerLaw1D | Chirp | Burst | RandomImage | NaturalImage


def signal_dim(spec: SignalSpec) -> int:
    """Coordinate dimension of a signal spec: 1 for 1D targets, 2 for images."""
    return 2 if isinstance(spec, (RandomImage, NaturalImage)) else 1


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")


OMIT_IF_DEFAULT = "omit_if_default"
"""Field-metadata flag: :func:`to_jsonable` leaves the field out while it holds its default."""


def added_field(default: Any) -> Any:
    """A field added to a cached description after runs were hashed.

    While it holds ``default`` it is left out of the JSON (:func:`to_jsonable`), hence out of the
    run hash, so every cache key computed before the field existed stays valid; any other value
    is written and changes the key. ``default`` must be immutable.
    """
    return dataclasses.field(default=default, metadata={OMIT_IF_DEFAULT: True})


@dataclass(frozen=True)
class PairSpec:
    """Local windows and global pairs on a 1D grid (spec §1.7)."""

    local_windows: int = 25
    local_per_window: int = 100
    global_pairs: int = 5000
    window: float = LOCAL_WINDOW

    def __post_init__(self) -> None:
        _positive(self, "local_windows", "local_per_window", "global_pairs")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, faithful: bool) -> dict[str, Pairs]:
        n = shape[0]
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
class PatchPairSpec:
    """Local patches and opposite-corner global pairs on an image grid (spec §1.7). The patch is
    a fraction of the side (3/64 by default: the reference's 3×3 patch at 64²).

    In faithful mode ``faithful_scheme`` picks the reference's sampler: "main" (E4's 3×3 patches,
    all 36 pairs, corners ``[0,25)``/``[35,63)``), "depth_width" (E15: the same patches, corners
    ``[0,30)``/``[35,64)``) or "natural" (E5/E6's 50×50 windows at 512², ``patches`` windows of
    ``pairs_per_patch`` flat-offset pairs, and its corner blocks).
    """

    patches: int = 100
    patch: float = 3 / 64
    pairs_per_patch: int | None = None
    global_pairs: int = 10000
    near: float = GLOBAL_NEAR_2D
    far: float = GLOBAL_FAR_2D
    faithful_scheme: str = "main"

    def __post_init__(self) -> None:
        _positive(self, "patches", "pairs_per_patch", "global_pairs")
        if self.faithful_scheme not in FAITHFUL_CORNERS:
            allowed = ", ".join(FAITHFUL_CORNERS)
            raise ConfigError(f"unknown faithful pair scheme {self.faithful_scheme!r}; allowed: {allowed}")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, faithful: bool) -> dict[str, Pairs]:
        h, w = shape
        if faithful and self.faithful_scheme == "natural":
            local = window_pairs_2d_faithful(
                h, w, rng, n_windows=self.patches, pairs_per_window=self.pairs_per_patch or 500
            )
            glob = global_pairs_2d(h, w, rng, n_pairs=self.global_pairs, faithful=True, scheme="natural")
            return {"local": local, "global": glob}
        per_patch = self.pairs_per_patch
        pixels = max(2, round(self.patch * w)) ** 2
        if faithful or (per_patch is not None and per_patch >= pixels * (pixels - 1) // 2):
            per_patch = None  # every pair of the patch (the faithful sampler always takes all 36)
        local = local_pairs_2d(
            h, w, rng, n_patches=self.patches, patch=self.patch, pairs_per_patch=per_patch, faithful=faithful
        )
        glob = global_pairs_2d(
            h,
            w,
            rng,
            n_pairs=self.global_pairs,
            near=self.near,
            far=self.far,
            faithful=faithful,
            scheme=self.faithful_scheme,
        )
        return {"local": local, "global": glob}


@dataclass(frozen=True)
class RandomPairSpec:
    """Uniformly random pairs of distinct samples (E7: no local/global split)."""

    pairs: int = 50000

    def __post_init__(self) -> None:
        _positive(self, "pairs")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, faithful: bool) -> dict[str, Pairs]:
        return {"random": random_pairs(int(np.prod(shape)), rng, n_pairs=self.pairs)}


AnyPairSpec = PairSpec | PatchPairSpec | RandomPairSpec


@dataclass(frozen=True)
class ProbeData:
    """A run's data as its probes see them: encoded inputs ``x``, targets ``y``, the signal and its
    grid shape, the held-out split (X3), the run's seed (each probe's pairs come from its own stream)
    and whether the run mirrors the reference (``faithful``: its samplers and zero policy)."""

    x: torch.Tensor
    y: torch.Tensor
    signal: Signal
    shape: tuple[int, ...]
    seed: int = 0
    faithful: bool = False
    x_test: torch.Tensor | None = None
    y_test: np.ndarray | None = None

    @property
    def y_np(self) -> np.ndarray:
        """The targets as float64 NumPy, what the spectral probes compare against."""
        return self.y.detach().cpu().double().numpy()

    def pairs(self, spec: AnyPairSpec, stream: str) -> dict[str, Pairs]:
        """``spec``'s pairs on this grid, drawn from the run's ``pairs:<stream>`` stream."""
        return spec.sample(self.shape, rng_for(self.seed, f"pairs:{stream}"), self.faithful)


PATTERNS = "patterns"
"""A probe spec's requirement: activation patterns, i.e. a piecewise-linear activation."""
PLAIN_MLP = "plain MLP"
"""A probe spec's requirement: the weights of specbias's ReLU MLP itself (its layers' geometry)."""


@dataclass(frozen=True)
class HammingSpec:
    """Hamming distances of activation patterns between the sampled pairs."""

    schedule: Schedule
    pairs: AnyPairSpec = PairSpec(25, 250, 5000)
    name: str = "hamming"

    REQUIRES: ClassVar[str | None] = PATTERNS

    def build(self, d: ProbeData) -> Probe:
        return HammingProbe(d.x, d.pairs(self.pairs, self.name), self.schedule, name=self.name)


@dataclass(frozen=True)
class ConfusionSpec:
    """Loss-gradient confusion of the sampled pairs; ``output_jacobian=True`` also records the
    residual-free output-Jacobian cosine ``{kind}_jac_cos`` (see :class:`~specbias.probes.ConfusionProbe`);
    ``before_update=True`` measures at the start of each scheduled epoch (epoch 0: the initialisation)."""

    schedule: Schedule
    pairs: AnyPairSpec = PairSpec(25, 100, 5000)
    output_jacobian: bool = added_field(False)
    before_update: bool = added_field(False)

    REQUIRES: ClassVar[str | None] = None

    def build(self, d: ProbeData) -> Probe:
        return ConfusionProbe(
            d.x,
            d.y,
            d.pairs(self.pairs, "confusion"),
            self.schedule,
            zero="zero" if d.faithful else "nan",
            before_update=self.before_update,
            output_jacobian=self.output_jacobian,
        )


@dataclass(frozen=True)
class ConvergenceSpec:
    """Per-frequency convergence of a 1D target's tones."""

    schedule: Schedule

    REQUIRES: ClassVar[str | None] = None

    def build(self, d: ProbeData) -> Probe:
        return ConvergenceProbe(d.x, d.y_np, d.signal.freqs, self.schedule)


@dataclass(frozen=True)
class PredictionSpec:
    """The network's output on the grid."""

    schedule: Schedule

    REQUIRES: ClassVar[str | None] = None

    def build(self, d: ProbeData) -> Probe:
        return PredictionProbe(d.x, self.schedule)


@dataclass(frozen=True)
class RegionSpec:
    """Distinct activation patterns over the grid."""

    schedule: Schedule

    REQUIRES: ClassVar[str | None] = PATTERNS

    def build(self, d: ProbeData) -> Probe:
        return RegionProbe(d.x, self.schedule)


@dataclass(frozen=True)
class RegionMapSpec:
    """The region id of every grid point and chosen first-layer units' on/off maps."""

    schedule: Schedule
    units: tuple[int, ...] = (0, 9, 100)

    REQUIRES: ClassVar[str | None] = PATTERNS

    def build(self, d: ProbeData) -> Probe:
        return RegionMapProbe(d.x, self.schedule, self.units)


@dataclass(frozen=True)
class DeadUnitSpec:
    """Units off at every grid point, per layer."""

    schedule: Schedule

    REQUIRES: ClassVar[str | None] = PATTERNS

    def build(self, d: ProbeData) -> Probe:
        return DeadUnitProbe(d.x, self.schedule)


@dataclass(frozen=True)
class NormSpec:
    """Spectral norms of the MLP's weight matrices."""

    schedule: Schedule

    REQUIRES: ClassVar[str | None] = PLAIN_MLP

    def build(self, d: ProbeData) -> Probe:
        return SpectralNormProbe(self.schedule)


@dataclass(frozen=True)
class HyperplaneSpec:
    """Angles between the MLP's hyperplanes, per layer."""

    schedule: Schedule
    keep_matrices: bool = False
    name: str = "hyperplanes"

    REQUIRES: ClassVar[str | None] = PLAIN_MLP

    def build(self, d: ProbeData) -> Probe:
        return HyperplaneProbe(self.schedule, keep=self.keep_matrices, name=self.name)


@dataclass(frozen=True)
class BoundarySpec:
    """Distance to the nearest region boundary, in feature and input space."""

    schedule: Schedule

    REQUIRES: ClassVar[str | None] = PLAIN_MLP

    def build(self, d: ProbeData) -> Probe:
        return BoundaryProbe(d.x, self.schedule)


@dataclass(frozen=True)
class BandSpec:
    """Relative residual energy per radial band of an image target."""

    schedule: Schedule
    n_bands: int = 8

    REQUIRES: ClassVar[str | None] = None

    def build(self, d: ProbeData) -> Probe:
        return BandProbe(d.x, d.y_np, d.shape, self.schedule, self.n_bands)


@dataclass(frozen=True)
class HeldOutSpec:
    """PSNR on the training pixels and on the held-out ones (a run with ``held_out=True``)."""

    schedule: Schedule

    REQUIRES: ClassVar[str | None] = None

    def build(self, d: ProbeData) -> Probe:
        if d.x_test is None or d.y_test is None:
            raise ConfigError("the held-out probe needs a run with held_out=True")
        return HeldOutProbe(d.x, d.y_np, d.x_test, d.y_test, self.schedule)


@dataclass(frozen=True)
class SnapshotSpec:
    """Keep the parameters at the schedule's epochs (rebuild the network with :func:`model_at`).

    ``before_update=True`` (default) takes them at the start of the epoch, so epoch 0 is the
    initialisation; ``False`` takes them after the epoch's update, so the last epoch is the
    trained network. Two specs with different ``name`` can do both in one run.
    """

    schedule: Schedule
    before_update: bool = True
    name: str = "snapshot"

    REQUIRES: ClassVar[str | None] = None

    def build(self, d: ProbeData) -> Probe:
        return SnapshotProbe(self.schedule, name=self.name, before_update=self.before_update)


@dataclass(frozen=True)
class KernelSpec:
    """The empirical NTK on the grid at the start of each scheduled epoch (epoch 0: Θ₀): its top
    ``top`` eigenvalues and the target's alignment with them, for the whole (centred) target and
    for its high band (the top ``high_share`` of the tones, or of ``n_bands`` radial bands); see
    :class:`~specbias.probes.KernelProbe`."""

    schedule: Schedule
    top: int = 64
    high_share: float = 1 / 3
    n_bands: int = 8
    name: str = "ntk"

    REQUIRES: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        _positive(self, "top")
        if not 0 < self.high_share <= 1:
            raise ConfigError(f"the high band's share must be in (0, 1], got {self.high_share}")

    def build(self, d: ProbeData) -> Probe:
        high = high_band_target(d.y_np, d.shape, d.signal.freqs, self.high_share, self.n_bands)
        return KernelProbe(d.x, d.y_np, high, self.schedule, top=self.top, name=self.name)


ProbeSpec = (
    HammingSpec
    | ConfusionSpec
    | ConvergenceSpec
    | PredictionSpec
    | RegionSpec
    | RegionMapSpec
    | DeadUnitSpec
    | NormSpec
    | HyperplaneSpec
    | BoundarySpec
    | BandSpec
    | HeldOutSpec
    | SnapshotSpec
    | KernelSpec
)


def check_probes(network: Family, probes: tuple[ProbeSpec, ...]) -> None:
    """ConfigError when a probe needs what the network lacks: activation patterns (a piecewise-linear
    activation) or the plain ReLU MLP's weights."""
    for spec in probes:
        name, need = type(spec).__name__, spec.REQUIRES
        if need == PATTERNS and not network.piecewise_linear:
            raise ConfigError(f"{name} needs activation patterns: {network.title} is not piecewise linear")
        if need == PLAIN_MLP and not network.plain_mlp:
            raise ConfigError(f"{name} reads the weights of a plain ReLU MLP, not of {network.title}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results.

    ``mode="faithful"`` mirrors the reference's quirks (samplers, zero-gradient cosines of 0, PE
    on the endpoint-including 2D grid ``k/(W-1)``); ``held_out=True`` trains on the even pixels of
    an image and keeps the odd ones for the held-out probe (X3).

    ``family`` (:mod:`specbias.families`) is the network; ``None`` (the default, left out of the
    hash) is the ReLU MLP of ``width`` × ``depth``, and so is an explicit ``ReLUMLP`` of that size
    (normalised to ``None``, so both share one cache entry). A family's width and depth must be
    the config's. Probes that need activation patterns or the plain MLP's weights are refused for
    a family that has none (:func:`check_probes`).
    """

    signal: SignalSpec
    input: str
    width: int
    depth: int
    train: TrainConfig
    probes: tuple[ProbeSpec, ...]
    seed: int = 0
    mode: str = "clean"
    dtype: str = "float32"
    held_out: bool = False
    family: Family | None = added_field(None)
    tf32: bool = added_field(False)
    """Let CUDA round float32 matmul inputs to TF32 (faster, not repeatable against float32)."""

    def __post_init__(self) -> None:
        if self.mode not in ("clean", "faithful"):
            raise ConfigError(f"mode must be 'clean' or 'faithful', got {self.mode!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        for name, value in (("width", self.width), ("depth", self.depth)):
            check_int(name, value)
        if self.held_out and signal_dim(self.signal) != 2:
            raise ConfigError("held_out needs an image signal")
        self.encoding()  # validates the input label
        check_flag("tf32", self.tf32)
        if self.family is not None:
            if (self.family.width, self.family.depth) != (self.width, self.depth):
                raise ConfigError(
                    f"family {self.family.title} is {self.family.depth}×{self.family.width}, the run "
                    f"{self.depth}×{self.width}"
                )
            if self.family == ReLUMLP(width=self.width, depth=self.depth):
                object.__setattr__(self, "family", None)
        check_probes(self.network(), self.probes)

    def network(self) -> Family:
        """The family that builds the run's network (the ReLU MLP when ``family`` is None)."""
        return self.family if self.family is not None else ReLUMLP(width=self.width, depth=self.depth)

    def encoding(self) -> Encoding:
        dim = signal_dim(self.signal)
        convention = "1d" if dim == 1 else "2d"
        return parse_input(self.input, in_dim=dim, convention=convention, seed=stream_seed(self.seed, "rff"))

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)

    def key(self) -> str:
        """Cache key: a hash of the resolved config and the package version."""
        blob = json.dumps({"config": self.to_json(), "version": __version__}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _omitted(f: dataclasses.Field, value: Any) -> bool:
    return bool(f.metadata.get(OMIT_IF_DEFAULT)) and value == f.default


def to_jsonable(obj: Any) -> Any:
    """Dataclasses become ``{"type": name, field: ...}``; tuples become lists. Fields made by
    :func:`added_field` are left out while they hold their default (the run hash stays the same)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"type": type(obj).__name__}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.init and not _omitted(f, value):
                out[f.name] = to_jsonable(value)
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


def model_at(
    cfg: RunConfig, run: RunData, index: int = -1, dtype: torch.dtype = torch.float64, name: str = "snapshot"
) -> nn.Module:
    """The run's network at the ``index``-th checkpoint of the :class:`SnapshotSpec` ``name``: a
    :class:`~specbias.models.MLP` for the default family, else the family's network.

    ``dtype=torch.float64`` (default) gives the exact float32 weights in double precision, what
    the exact-geometry metrics want; ``torch.float32`` gives the trained network bit for bit.
    """
    if not run.has(name):
        raise ConfigError(f"run {cfg.key()} has no parameter snapshots {name!r}; add a SnapshotSpec")
    network = cfg.network().build(int(run.meta["in_dim"]), int(run.get("signal", "y").shape[1]), cfg.seed)
    model = network.to(dtype)  # before loading: a float64 run's weights stay exact in float64
    state = {p: torch.as_tensor(run.get(name, p)[index]) for p, _ in model.named_parameters()}
    model.load_state_dict(state)
    return model


class Runnable(Protocol):
    """Any run description the runner can cache and execute (e.g. the real-data runs of E17-E19).

    :class:`RunConfig` is the coordinate-network case; another kind of run provides the same
    surface: a stable ``key()``, a JSON ``to_json()``, ``input``/``seed`` for progress labels,
    ``execute()`` returning :class:`RunData`, and ``flops_and_steps()`` for the cost model.
    """

    input: str
    seed: int

    def key(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...

    def execute(
        self, device: str, progress: bool, report: Callable[[int, int, float], None] | None
    ) -> RunData: ...

    def flops_and_steps(self) -> tuple[float, int]: ...


def _encode(enc: Encoding, t: np.ndarray, cfg: RunConfig, side: int, dtype, dev) -> torch.Tensor:
    """Encode coordinates; faithful 2D PE uses the reference's grid ``k/(W-1)`` (bug B7)."""
    tt = torch.as_tensor(t, dtype=torch.float64)
    if cfg.mode == "faithful" and isinstance(enc, NeRFPE) and tt.shape[1] == 2:
        tt = tt * side / (side - 1)
    return enc(tt).to(dtype=dtype, device=dev)


def _prepare(cfg: RunConfig, enc: Encoding, dtype, dev) -> tuple[ProbeData, int]:
    sig = cfg.signal.build(cfg.seed)
    side = sig.shape[-1]
    run = {"signal": sig, "seed": cfg.seed, "faithful": cfg.mode == "faithful"}
    if cfg.held_out:
        split = held_out_split(sig)
        data = ProbeData(
            x=_encode(enc, split.t_train, cfg, side, dtype, dev),
            y=torch.as_tensor(split.y_train, dtype=dtype, device=dev),
            shape=split.shape,
            x_test=_encode(enc, split.t_test, cfg, side, dtype, dev),
            y_test=split.y_test,
            **run,
        )
        spacing = 2.0 / side
    else:
        data = ProbeData(
            x=_encode(enc, sig.t, cfg, side, dtype, dev),
            y=torch.as_tensor(sig.y, dtype=dtype, device=dev),
            shape=sig.shape,
            **run,
        )
        spacing = 1.0 / side
    return data, int(aliased_features(enc, spacing=spacing).size)


def execute_run(
    cfg: RunConfig | Runnable,
    device: str = "cpu",
    progress: bool = False,
    report: Callable[[int, int, float], None] | None = None,
) -> RunData:
    """Train the run once and take every probe; returns flat arrays and metadata.

    ``progress`` draws a terminal bar; ``report`` receives ``(epochs_done, epochs, loss)``.
    Another :class:`Runnable` is delegated to its own ``execute``.
    """
    if not isinstance(cfg, RunConfig):
        return cfg.execute(device, progress, report)
    dev = resolve_device(device, tf32=cfg.tf32)
    dtype = getattr(torch, cfg.dtype)
    enc = cfg.encoding()
    data, n_aliased = _prepare(cfg, enc, dtype, dev)
    network = cfg.network()
    model = network.build(enc.out_dim, data.y.shape[1], cfg.seed).to(dtype=dtype, device=dev)
    probes = [spec.build(data) for spec in cfg.probes]
    result = train(
        model,
        data.x,
        data.y,
        cfg.train,
        probes,
        seed=cfg.seed,
        progress=progress,
        desc=cfg.input,
        report=report,
    )
    sig = data.signal
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
        "family": network.NAME,
        "n_params": model.n_params(),
        "n_hidden": model.n_hidden,
        "hidden_sizes": model.hidden_sizes,
        "in_dim": enc.out_dim,
        "n_points": int(data.x.shape[0]),
        "shape": list(data.shape),
        "aliased_features": n_aliased,
        "grid_spacing": 1.0 / data.signal.shape[-1],
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "version": __version__,
    }
    return RunData(arrays, meta)
