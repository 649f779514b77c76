"""The experiment registry: ``EXPERIMENTS[id]`` for every id in ``specbias list``."""

from __future__ import annotations

import re

from specbias.errors import ConfigError
from specbias.experiments.base import Experiment, ExperimentResult
from specbias.experiments.density import DENSITY_EXPERIMENTS
from specbias.experiments.density2d import DENSITY_2D_EXPERIMENTS
from specbias.experiments.exact import EXACT_EXPERIMENTS
from specbias.experiments.families import FAMILY_EXPERIMENTS
from specbias.experiments.kernel import KERNEL_EXPERIMENTS
from specbias.experiments.realdata import REALDATA_EXPERIMENTS
from specbias.experiments.study1d import STUDY_1D_EXPERIMENTS
from specbias.experiments.study2d import STUDY_2D_EXPERIMENTS

_ALL = (
    *STUDY_1D_EXPERIMENTS,
    *STUDY_2D_EXPERIMENTS,
    *EXACT_EXPERIMENTS,
    *REALDATA_EXPERIMENTS,
    *KERNEL_EXPERIMENTS,
    *DENSITY_EXPERIMENTS,
    *DENSITY_2D_EXPERIMENTS,
    *FAMILY_EXPERIMENTS,
)


def _paper_order(exp: Experiment) -> tuple[str, int, str]:
    """The paper's experiments E1…E20 first, then the extensions X1…X7 (``E4a`` < ``E4b`` < ``E5``)."""
    match = re.fullmatch(r"([EX])(\d+)(\w*)", exp.id)
    if match is None:
        raise ValueError(f"experiment id {exp.id!r} is not E<n>[suffix] or X<n>[suffix]")
    return match[1], int(match[2]), match[3]


EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in sorted(_ALL, key=_paper_order)}


def get_experiment(exp_id: str) -> Experiment:
    """The registered experiment ``exp_id`` (case-insensitive), or a ConfigError naming the ids."""
    for key, exp in EXPERIMENTS.items():
        if key.lower() == exp_id.lower():
            return exp
    raise ConfigError(f"unknown experiment {exp_id!r}; allowed: {', '.join(EXPERIMENTS)}")


__all__ = ["EXPERIMENTS", "Experiment", "ExperimentResult", "get_experiment"]
