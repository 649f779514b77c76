"""Real-data classifier runs (E17-E19): one training per (model, dataset, seed) carrying every probe.

Lazzari & Liu (2023, spec §6) contrast coordinate networks with classifiers of real images: an
MLP on flattened pixels and a small CNN (:class:`~specbias.models.CNN`), trained with
cross-entropy and Adam (lr 1e-3, batch 512, reshuffled every epoch from the stream
``(seed, "batches")``). :class:`ClassifierRun` is the frozen run description; it satisfies the
:class:`~specbias.runs.Runnable` protocol, so the runner, the run cache, the cost model and the
pipeline treat it like a coordinate :class:`~specbias.runs.RunConfig`.

Probes, all after the epoch's update (spec §1.9):

* ``hamming`` -- activation-pattern Hamming distance ``H = Σ_u s_u(x) ⊕ s_u(x')`` over every hidden
  unit (MLP: all hidden layers; CNN: every conv feature-map unit and the FC layer), mean and std
  over the pairs, per layer (:class:`~specbias.probes.HammingProbe`, E18);
* ``confusion`` -- the cosine of per-example cross-entropy gradients over all parameters,
  ``cos(∇_θ ℓ_i, ∇_θ ℓ_j)`` (Sankararaman et al. 2020; spec §1.6): by the Gram identity with the
  output cotangent ``softmax − onehot`` for the MLP, by ``torch.func`` for the CNN (E17); with
  ``output_jacobian=True`` also ``{kind}_jac_cos``, the cosine of the two images' output Jacobians
  over all logits, ``tr(J_i J_jᵀ)/(‖J_i‖_F ‖J_j‖_F)`` (the residual-free part; unit cotangents ``e_c``
  in place of ``softmax − onehot``);
* ``curves`` -- training and test cross-entropy (means over examples, not the reference's sums of
  batch means, bug B22) and accuracy, every epoch (E19).

Pairs (:func:`~specbias.metrics.pairs.knn_pairs`, stream ``(seed, "pairs:knn")``): anchors from the
training set, each with its ``k`` nearest training points of another class (local) and its ``k``
farthest (global), in normalised pixel space -- the same pairs for the MLP and the CNN of a seed.
``mode="faithful"`` mirrors the two reference quirks that change values: the MLP script ignores
the class-restriction flag (bug B9; neighbours are always of another class) and an exactly-zero
gradient gives a cosine of 0 instead of NaN (B6). B13 (the CNN's distant pairs were never
computed) and B14 (too few different-class points in the neighbour pool) are fixed in both modes.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from specbias import __version__
from specbias._checks import check_flag, check_int
from specbias.backend import resolve_device
from specbias.datasets import DataSpec
from specbias.errors import ConfigError
from specbias.metrics.pairs import knn_pairs
from specbias.models import CNN, MLP
from specbias.probes import ConfusionProbe, HammingProbe
from specbias.runs import RunData, added_field, to_jsonable
from specbias.seeding import rng_for, stream_seed
from specbias.training import Schedule, TrainConfig, train

MODELS = ("mlp", "cnn")
EVAL_CHUNK = 4096
"""Examples per forward pass when evaluating losses (bounds the CNN's activation memory)."""


@dataclass(frozen=True)
class KnnSpec:
    """The real-data pair sampler (spec §1.7): ``anchors`` anchors (at most the training set),
    each with ``k`` nearest neighbours (of another class when ``different_class``) and ``k``
    farthest points."""

    anchors: int = 2500
    k: int = 25
    different_class: bool = True


def evaluate(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, labels)``, in chunks."""
    loss, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, x.shape[0], EVAL_CHUNK):
            logits, y = model(x[s : s + EVAL_CHUNK]), labels[s : s + EVAL_CHUNK]
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    return loss / x.shape[0], correct / x.shape[0]


@dataclass
class CurvesProbe:
    """Training and test cross-entropy (means over examples) and accuracy."""

    x: torch.Tensor
    labels: torch.Tensor
    x_test: torch.Tensor
    labels_test: torch.Tensor
    schedule: Schedule
    name: str = "curves"
    before_update: bool = False

    def measure(self, model: nn.Module) -> dict[str, np.ndarray]:
        out = {}
        for split, (x, y) in (("train", (self.x, self.labels)), ("test", (self.x_test, self.labels_test))):
            loss, acc = evaluate(model, x, y)
            out[f"{split}_loss"], out[f"{split}_acc"] = np.asarray(loss), np.asarray(acc)
        return out


@dataclass(frozen=True)
class ClassifierRun:
    """One real-data training run: dataset, model (``"mlp"`` ``depth × width`` on flattened
    pixels, or ``"cnn"``), optimiser, pair sampler, probe schedules, seed and mode;
    ``output_jacobian`` adds the output-Jacobian cosine to the confusion probe."""

    data: DataSpec
    model: str = "mlp"
    width: int = 512
    depth: int = 4
    train: TrainConfig = TrainConfig(epochs=100, batch_size=512)
    pairs: KnnSpec = KnnSpec()
    hamming: Schedule = Schedule(every=5)
    confusion: Schedule = Schedule(explicit=(24,))
    seed: int = 0
    mode: str = "clean"
    output_jacobian: bool = added_field(False)
    tf32: bool = added_field(False)
    """Let CUDA round float32 matmul and convolution inputs to TF32 (see :mod:`specbias.backend`)."""

    def __post_init__(self) -> None:
        check_flag("tf32", self.tf32)
        if self.model not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.mode not in ("clean", "faithful"):
            raise ConfigError(f"mode must be 'clean' or 'faithful', got {self.mode!r}")
        for name, value in (("width", self.width), ("depth", self.depth)):
            check_int(name, value)
        if self.train.batching != "reshuffle":
            raise ConfigError("real-data runs reshuffle their batches every epoch (batching='reshuffle')")
        anchors, k = self.pairs.anchors, self.pairs.k
        integers = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (anchors, k))
        if not integers or anchors < 1 or not 1 <= k < self.data.n_train:
            raise ConfigError(
                f"kNN pairs need integer anchors >= 1 and 1 <= k < {self.data.n_train} training examples, "
                f"got anchors={anchors!r}, k={k!r}"
            )

    @property
    def input(self) -> str:
        """Progress and grouping label, e.g. ``"mlp digits"``."""
        return f"{self.model} {self.data.name}"

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)

    def key(self) -> str:
        """Cache key: a hash of the description (with the data file's digest) and the version."""
        blob = json.dumps({"config": self.to_json(), "version": __version__}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def build_model(self) -> MLP | CNN:
        """The untrained network (PyTorch's default initialisation from the global torch RNG)."""
        c, h, w = self.data.image_shape
        if self.model == "mlp":
            return MLP(c * h * w, self.width, self.depth, self.data.n_classes)
        return CNN(self.data.image_shape, self.data.n_classes)

    def different_class(self) -> bool:
        """Whether neighbours must be of another class; faithful MLP runs always restrict (B9)."""
        return self.pairs.different_class or (self.mode == "faithful" and self.model == "mlp")

    def flops_and_steps(self) -> tuple[float, int]:
        """Training ``6·MACs·N·epochs`` plus the per-epoch evaluation ``2·MACs·(N + N_test)``."""
        macs = self.build_model().macs()
        epochs, n = self.train.epochs, self.data.n_train
        flops = (6.0 * n + 2.0 * (n + self.data.n_test)) * macs * epochs
        steps = epochs * math.ceil(n / min(self.train.batch_size or n, n))
        return flops, steps

    def execute(
        self,
        device: str = "cpu",
        progress: bool = False,
        report: Callable[[int, int, float], None] | None = None,
    ) -> RunData:
        """Load and split the data, draw the pairs, train once with every probe; flat arrays + meta."""
        dev = resolve_device(device, tf32=self.tf32)
        data = self.data.load(self.seed)
        images = torch.as_tensor(data.x_train, device=dev)
        labels = torch.as_tensor(data.y_train, device=dev)
        labels_test = torch.as_tensor(data.y_test, device=dev)
        x, x_test = images, torch.as_tensor(data.x_test, device=dev)
        if self.model == "mlp":
            x, x_test = x.flatten(1), x_test.flatten(1)
        pairs = knn_pairs(
            images,
            labels,
            rng_for(self.seed, "pairs:knn"),
            n_anchors=self.pairs.anchors,
            k=self.pairs.k,
            different_class=self.different_class(),
        )
        torch.manual_seed(stream_seed(self.seed, "init"))
        model = self.build_model().to(dev)
        probes = [
            HammingProbe(x, pairs, self.hamming),
            ConfusionProbe(
                x,
                labels,
                pairs,
                self.confusion,
                zero="zero" if self.mode == "faithful" else "nan",
                loss="ce",
                output_jacobian=self.output_jacobian,
            ),
            CurvesProbe(x, labels, x_test, labels_test, Schedule(every=1)),
        ]
        result = train(
            model,
            x,
            labels,
            self.train,
            probes,
            self.seed,
            progress=progress,
            desc=self.input,
            report=report,
            loss="ce",
        )
        arrays = {f"{p}/{k}": v for p, rec in result.records.items() for k, v in rec.items()}
        arrays["train/loss"] = result.losses
        flat = data.x_train.reshape(data.x_train.shape[0], -1)
        for kind, p in pairs.items():
            arrays[f"pairs/{kind}_i"], arrays[f"pairs/{kind}_j"] = p.i, p.j
            arrays[f"pairs/{kind}_dist"] = np.linalg.norm(flat[p.i] - flat[p.j], axis=1)
        c, h, w = data.image_shape
        meta = {
            "key": self.key(),
            "input": self.input,
            "seed": self.seed,
            "seconds": result.seconds,
            "diverged_at": result.diverged_at,
            "model": self.model,
            "dataset": data.name,
            "n_params": model.n_params(),
            "n_hidden": model.n_hidden,
            "hidden_sizes": model.hidden_sizes,
            "in_dim": c * h * w,
            "aliased_features": 0,
            "image_shape": [c, h, w],
            "cnn_stride": model.stride if isinstance(model, CNN) else None,
            "n_classes": data.n_classes,
            "n_points": int(x.shape[0]),
            "n_test": int(x_test.shape[0]),
            "n_anchors": int(np.unique(pairs["local"].i).size),
            "different_class": self.different_class(),
            "device": str(dev),
            "torch_threads": torch.get_num_threads(),
            "version": __version__,
        }
        return RunData(arrays, meta)
