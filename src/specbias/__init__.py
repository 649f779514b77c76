"""specbias: see spectral bias in coordinate-based MLPs through their training dynamics.

The public API, by stage of the data flow
``signal → encoding → MLP → train (probes at checkpoints) → metrics → results``:
"""

__version__ = "0.2.0"

from specbias.classify import ClassifierRun, KnnSpec
from specbias.datasets import DataSpec
from specbias.encodings import (
    BasicEncoding,
    Encoding,
    GaussianRFF,
    NeRFPE,
    Raw,
    RestrictedPE,
    aliased_features,
    n_freqs_from_label,
    parse_input,
)
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.hashgrid import HashGrid
from specbias.metrics.geometry import (
    boundary_distance_feature,
    boundary_distance_input,
    encoding_distance_matrix,
    hyperplane_cosines,
    hyperplane_stats,
    spectral_norms,
)
from specbias.metrics.gradients import (
    gradient_confusion,
    loss_gradient_gram,
    loss_gradient_pairs,
    output_jacobian_cosine,
    output_jacobian_pairs,
)
from specbias.metrics.inspheres import chebyshev_ball, inspheres, local_constraints
from specbias.metrics.ntk import (
    adam_equivalent_lr,
    analytic_ntk,
    confusion_from_ntk,
    empirical_ntk,
    linearised_residuals,
    ntk_drift,
    ntk_spectrum,
    predict_frequency_residuals,
    stable_lr,
    target_alignment,
)
from specbias.metrics.pairs import (
    Pairs,
    global_pairs_1d,
    global_pairs_2d,
    knn_pairs,
    local_pairs_1d,
    local_pairs_2d,
    random_pairs,
    window_pairs_2d_faithful,
)
from specbias.metrics.patterns import (
    Patterns,
    activation_patterns,
    count_regions,
    dead_units,
    hamming,
    region_counts,
    region_ids,
)
from specbias.metrics.regions import (
    dense_region_count_1d,
    exact_partition_2d,
    exact_regions_1d,
    grid_vs_exact_1d,
    grid_vs_exact_2d,
    piece_density,
    region_lower_bound_2d,
)
from specbias.metrics.sections import section
from specbias.metrics.spectrum import frequency_convergence, psnr, radial_band_error, residual_spectrum
from specbias.models import CNN, MLP
from specbias.probes import (
    ConfusionProbe,
    ConvergenceProbe,
    DeadUnitProbe,
    HammingProbe,
    PredictionProbe,
    RegionProbe,
    SnapshotProbe,
)
from specbias.runs import RunConfig, Runnable, SnapshotSpec, execute_run, model_at
from specbias.signals import (
    Burst,
    Chirp,
    NaturalImage,
    PowerLaw1D,
    RandomImage,
    Signal,
    ToneMixture,
    grid_2d,
    held_out_split,
)
from specbias.training import Schedule, TrainConfig, TrainResult, train

__all__ = [
    "CNN",
    "EXPERIMENTS",
    "MLP",
    "BasicEncoding",
    "Burst",
    "Chirp",
    "ClassifierRun",
    "ConfigError",
    "ConfusionProbe",
    "ConvergenceProbe",
    "DataSpec",
    "DeadUnitProbe",
    "Encoding",
    "GaussianRFF",
    "HammingProbe",
    "HashGrid",
    "KnnSpec",
    "NaturalImage",
    "NeRFPE",
    "Pairs",
    "Patterns",
    "PowerLaw1D",
    "PredictionProbe",
    "RandomImage",
    "Raw",
    "RegionProbe",
    "RestrictedPE",
    "RunConfig",
    "Runnable",
    "Schedule",
    "Signal",
    "SnapshotProbe",
    "SnapshotSpec",
    "ToneMixture",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "activation_patterns",
    "adam_equivalent_lr",
    "aliased_features",
    "analytic_ntk",
    "boundary_distance_feature",
    "boundary_distance_input",
    "chebyshev_ball",
    "confusion_from_ntk",
    "count_regions",
    "dead_units",
    "dense_region_count_1d",
    "empirical_ntk",
    "encoding_distance_matrix",
    "exact_partition_2d",
    "exact_regions_1d",
    "execute_run",
    "frequency_convergence",
    "get_experiment",
    "global_pairs_1d",
    "global_pairs_2d",
    "gradient_confusion",
    "grid_2d",
    "grid_vs_exact_1d",
    "grid_vs_exact_2d",
    "hamming",
    "held_out_split",
    "hyperplane_cosines",
    "hyperplane_stats",
    "inspheres",
    "knn_pairs",
    "linearised_residuals",
    "local_constraints",
    "local_pairs_1d",
    "local_pairs_2d",
    "loss_gradient_gram",
    "loss_gradient_pairs",
    "model_at",
    "n_freqs_from_label",
    "ntk_drift",
    "ntk_spectrum",
    "output_jacobian_cosine",
    "output_jacobian_pairs",
    "parse_input",
    "piece_density",
    "predict_frequency_residuals",
    "psnr",
    "radial_band_error",
    "random_pairs",
    "region_counts",
    "region_ids",
    "region_lower_bound_2d",
    "residual_spectrum",
    "section",
    "spectral_norms",
    "stable_lr",
    "target_alignment",
    "train",
    "window_pairs_2d_faithful",
]
