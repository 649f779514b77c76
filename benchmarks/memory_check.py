"""The memory model against measured peaks: one line per shape, ``NAME: estimate=… measured=… ratio=…``.

``python benchmarks/memory_check.py`` trains each run once on one CPU worker (a forked child of a
fresh process that has imported specbias, :func:`specbias.cost.measure_peaks`) and prints the
estimate of :func:`specbias.cost.run_memory` next to the child's peak RSS. ``tests/test_cost.py``
holds three of these shapes to a factor 1.5; this script covers the rest (about a minute on 2
cores). Run it on a new machine or after a change to a probe's memory use.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from specbias.cost import fmt_bytes, measure_peaks, run_memory
from specbias.experiments import get_experiment
from specbias.pipeline import plan
from specbias.runs import ConfusionSpec, RandomPairSpec, RunConfig
from specbias.signals import RandomImage
from specbias.training import Schedule, TrainConfig
from tests.test_cost import MEASURED


def _first(exp: str, inputs: list[str] | None = None, **over: object) -> object:
    """The first run of an experiment's quick profile with overrides (``inputs`` narrowed)."""
    given = {**over, **({"inputs": inputs} if inputs else {})}
    return plan(get_experiment(exp), "quick", 1, given).configs[0]


def shapes() -> dict[str, object]:
    last = Schedule(last=True)
    jacobian = RunConfig(
        RandomImage(size=256),
        "raw01",
        64,
        2,
        TrainConfig(epochs=1, batch_size=4096),
        (ConfusionSpec(last, RandomPairSpec(2000), output_jacobian=True),),
    )
    real = list(dict.fromkeys(plan(get_experiment("E17"), "quick", 1, {}).configs))
    return {
        **{f"test_{k}": v for k, v in MEASURED.items()},
        "output_jacobian_256": jacobian,
        "E2_quick_pe6": _first("E2", ["pe6"], epochs=20),
        "E2_n65536": _first("E2", ["pe6"], epochs=2, n=65536),
        "E4a_rff10_64": _first("E4a", ["rff10"], epochs=2),
        "E5_pe4_128_w256": _first("E5", ["pe4"], epochs=2, size=128, width=256),
        "E4a_pe4_256_w64": _first("E4a", ["pe4"], epochs=1, size=256, width=64),
        **{f"E17_{getattr(c, 'model', '?')}": c for c in real},
    }


def main() -> int:
    runs = shapes()
    for (name, cfg), peak in zip(runs.items(), measure_peaks(list(runs.values()), timeout=1800)):
        estimate = run_memory(cfg).host
        print(
            f"{name}: estimate={fmt_bytes(estimate)} measured={fmt_bytes(peak)} ratio={estimate / peak:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
