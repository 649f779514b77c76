"""specbias: see spectral bias in coordinate-based MLPs through their training dynamics.

The public API, by stage of the data flow
``signal → encoding → MLP → train (probes at checkpoints) → metrics → results``:
"""

__version__ = "0.1.0"

from specbias.encodings import (
    Encoding,
    GaussianRFF,
    NeRFPE,
    Raw,
    aliased_features,
    n_freqs_from_label,
    parse_input,
)
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.metrics.gradients import (
    gradient_confusion,
    loss_gradient_gram,
    loss_gradient_pairs,
)
from specbias.metrics.pairs import Pairs, global_pairs_1d, local_pairs_1d
from specbias.metrics.patterns import (
    Patterns,
    activation_patterns,
    count_regions,
    dead_units,
    hamming,
    region_counts,
)
from specbias.metrics.spectrum import frequency_convergence, residual_spectrum
from specbias.models import MLP
from specbias.probes import (
    ConfusionProbe,
    ConvergenceProbe,
    DeadUnitProbe,
    HammingProbe,
    PredictionProbe,
    RegionProbe,
)
from specbias.runs import RunConfig, execute_run
from specbias.signals import PowerLaw1D, Signal, ToneMixture
from specbias.training import Schedule, TrainConfig, TrainResult, train

__all__ = [
    "EXPERIMENTS",
    "MLP",
    "ConfigError",
    "ConfusionProbe",
    "ConvergenceProbe",
    "DeadUnitProbe",
    "Encoding",
    "GaussianRFF",
    "HammingProbe",
    "NeRFPE",
    "Pairs",
    "Patterns",
    "PowerLaw1D",
    "PredictionProbe",
    "Raw",
    "RegionProbe",
    "RunConfig",
    "Schedule",
    "Signal",
    "ToneMixture",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "activation_patterns",
    "aliased_features",
    "count_regions",
    "dead_units",
    "execute_run",
    "frequency_convergence",
    "get_experiment",
    "global_pairs_1d",
    "gradient_confusion",
    "hamming",
    "local_pairs_1d",
    "loss_gradient_gram",
    "loss_gradient_pairs",
    "n_freqs_from_label",
    "parse_input",
    "region_counts",
    "residual_spectrum",
    "train",
]
