"""Add an experiment: a parameter dataclass that lists its runs, and analysis parts.

An experiment is a configuration of shared parts: it lists ``RunConfig``s (the runner trains or
loads them from the cache) and names the analysis parts that turn them into rows, figures,
a summary and computed findings. This one asks whether a wider raw-coordinate network shares
fewer activation patterns between neighbours. Run: ``python examples/custom_experiment.py``.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from specbias.experiments import EXPERIMENTS, Experiment
from specbias.experiments.analysis import hamming_part, make_analysis
from specbias.pipeline import execute, plan
from specbias.runs import HammingSpec, PairSpec, RunConfig
from specbias.signals import ToneMixture
from specbias.training import Schedule, TrainConfig


@dataclass(frozen=True)
class WidthSweep:
    widths: tuple[int, ...] = (16, 64)
    epochs: int = 60
    seeds: int = 2

    def runs(self, seeds: int) -> list[RunConfig]:
        probe = HammingSpec(Schedule(every=20, last=True), PairSpec(10, 50, 500))
        return [
            RunConfig(ToneMixture(n=512), "raw01", width, 3, TrainConfig(epochs=self.epochs), (probe,), seed)
            for width in self.widths
            for seed in range(seeds)
        ]


experiment = Experiment(
    id="W1",
    title="Raw-coordinate Hamming against width",
    claim="Wider raw-coordinate nets still share patterns between neighbours.",
    profiles={"quick": WidthSweep(), "paper": WidthSweep(epochs=500, seeds=5)},
    runs=lambda params, seeds: params.runs(seeds),
    analyse=make_analysis("W1", ("hamming",), {"hamming": hamming_part}, key=lambda cfg: f"w{cfg.width}"),
)
# To make `specbias run W1` know it, add it to EXPERIMENTS in src/specbias/experiments/__init__.py.
assert experiment.id not in EXPERIMENTS

with tempfile.TemporaryDirectory() as out:
    (planned,) = [plan(experiment, "quick", None, {})]
    for _, result, path in execute([planned], Path(out), workers=1, progress=False):
        for label, block in result.summary["inputs"].items():
            print(f"{label}: local Hamming {block['hamming_local']:.2f} of {block['n_params']} params")
        print("wrote", sorted(p.name for p in path.iterdir()))
