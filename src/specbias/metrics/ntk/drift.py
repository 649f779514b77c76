"""How far the kernel moves during training.

**Drift** (Fort et al., NeurIPS 2020): ``‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F`` and the
change of the top-``k`` eigenspace ``1 − ‖U_tᵀ U_0‖_F² / k`` (0 = same subspace, 1 = orthogonal),
with the principal angles ``arccos σ_i(U_tᵀ U_0)`` and the top-``k`` eigenvalues of ``Θ_t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias.errors import ConfigError
from specbias.metrics.ntk.spectrum import Array, NTKSpectrum, _flatten_kernel, ntk_spectrum


@dataclass(frozen=True)
class NTKDrift:
    """Kernel change from ``Θ_0`` to ``Θ_t``.

    ``rel_change = ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F``; ``subspace_change = 1 − ‖U_tᵀ U_0‖_F² / k`` for the
    top-``k`` eigenvectors (0 = same subspace, 1 = orthogonal); ``angles``: the ``k`` principal
    angles between the two subspaces in radians, ascending; ``top_eigvals``: the ``k`` largest
    eigenvalues of ``Θ_t``, descending (their growth is the kernel's "sharpening").
    """

    rel_change: float
    subspace_change: float
    angles: np.ndarray
    top_eigvals: np.ndarray


def ntk_drift(theta_t: Array, theta_0: Array, k: int = 10, spectrum_0: NTKSpectrum | None = None) -> NTKDrift:
    """Relative Frobenius change of the kernel and the change of its top-``k`` eigenspace.

    ``spectrum_0``: ``Θ_0``'s spectrum (at least ``k`` leading pairs, e.g. the full one a prediction
    already needed) so that a run's many checkpoints decompose ``Θ_0`` once.
    """
    mat_t, _ = _flatten_kernel(theta_t)
    mat_0, _ = _flatten_kernel(theta_0)
    if mat_t.shape != mat_0.shape:
        raise ConfigError(f"kernel shapes differ: {tuple(mat_t.shape)} vs {tuple(mat_0.shape)}")
    mat_t, mat_0 = mat_t.double(), mat_0.to(dtype=torch.float64, device=mat_t.device)
    rel = float(torch.linalg.matrix_norm(mat_t - mat_0) / torch.linalg.matrix_norm(mat_0))
    top_t = ntk_spectrum(mat_t, k=k)
    spec_0 = ntk_spectrum(mat_0, k=k) if spectrum_0 is None else spectrum_0
    u_0 = spec_0.flat_vecs[:, :k]
    if u_0.shape != (mat_0.shape[0], k):
        raise ConfigError(
            f"spectrum_0 must hold at least k = {k} eigenvectors of length {mat_0.shape[0]}, "
            f"got {spec_0.flat_vecs.shape}"
        )
    cosines = np.clip(np.linalg.svd(top_t.flat_vecs.T @ u_0, compute_uv=False), 0.0, 1.0)
    return NTKDrift(
        rel_change=rel,
        subspace_change=float(max(0.0, 1.0 - np.sum(cosines**2) / k)),
        angles=np.sort(np.arccos(cosines)),
        top_eigvals=top_t.eigvals,
    )
