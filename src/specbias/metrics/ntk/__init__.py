"""The neural tangent kernel, one concept per module:

* :mod:`~specbias.metrics.ntk.empirical` -- the empirical NTK of a model (Jacot et al. 2018) by the
  Gram identity of :mod:`specbias.metrics.gram` or ``torch.func``;
* :mod:`~specbias.metrics.ntk.confusion` -- gradient confusion as a residual-weighted NTK;
* :mod:`~specbias.metrics.ntk.spectrum` -- eigen-decomposition and target alignment;
* :mod:`~specbias.metrics.ntk.drift` -- how far the kernel moves during training (Fort et al. 2020);
* :mod:`~specbias.metrics.ntk.dynamics` -- linearised gradient-descent predictions (Lee et al. 2019),
  the stability limit of the step size and Adam's equivalent rate;
* :mod:`~specbias.metrics.ntk.analytic` -- the infinite-width ReLU NTK at PyTorch's default init.

Every public name is importable from ``specbias.metrics.ntk``.
"""

from specbias.metrics.gradients import func_jacobian
from specbias.metrics.ntk.analytic import AUTO_UNIFORM_MAX_DIM, SIGMA_W2, analytic_nngp, analytic_ntk
from specbias.metrics.ntk.confusion import confusion_from_ntk, loss_gradient_gram_from_ntk
from specbias.metrics.ntk.drift import NTKDrift, ntk_drift
from specbias.metrics.ntk.dynamics import (
    LinearisedPrediction,
    adam_equivalent_lr,
    linearised_residuals,
    predict_frequency_residuals,
    stable_lr,
)
from specbias.metrics.ntk.empirical import empirical_ntk
from specbias.metrics.ntk.spectrum import (
    EIGH_MAX,
    Array,
    NTKSpectrum,
    alignment_curve,
    ntk_spectrum,
    target_alignment,
)

__all__ = [
    "AUTO_UNIFORM_MAX_DIM",
    "EIGH_MAX",
    "SIGMA_W2",
    "Array",
    "LinearisedPrediction",
    "NTKDrift",
    "NTKSpectrum",
    "adam_equivalent_lr",
    "alignment_curve",
    "analytic_nngp",
    "analytic_ntk",
    "confusion_from_ntk",
    "empirical_ntk",
    "func_jacobian",
    "linearised_residuals",
    "loss_gradient_gram_from_ntk",
    "ntk_drift",
    "ntk_spectrum",
    "predict_frequency_residuals",
    "stable_lr",
    "target_alignment",
]
