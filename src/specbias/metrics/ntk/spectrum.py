"""The kernel's spectrum and the target's alignment with it.

**Spectrum.** ``Θ = U Λ Uᵀ`` (blocks flattened to ``(N·C) × (N·C)``, row ``i·C + c``): full
``torch.linalg.eigh`` up to ``N·C = 8192``; top-``k`` Lanczos (``scipy.sparse.linalg.eigsh`` on a
``LinearOperator``) beyond, or whenever ``k`` is given. Eigenvalues descend; each eigenvector's
largest-magnitude entry is positive. **Target alignment** (Yüce et al., CVPR 2022; Kopitkov &
Indelman 2020): ``A_k(y) = Σ_{m<k} (u_mᵀ y)² / ‖y‖²``, the fraction of the target's energy in the
top-``k`` eigenvectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from specbias.errors import ConfigError

EIGH_MAX = 8192
"""Largest kernel side (``N·C``) that :func:`ntk_spectrum` decomposes in full by default."""


Array = torch.Tensor | np.ndarray


def _as_tensor(a: Array, like: torch.Tensor | None = None) -> torch.Tensor:
    t = torch.as_tensor(a)
    if like is not None:
        t = t.to(dtype=like.dtype, device=like.device)
    return t


def _flatten_kernel(theta: Array) -> tuple[torch.Tensor, int]:
    """``(N, N)`` → itself with ``C = 1``; ``(N, N, C, C)`` → ``(N·C, N·C)``, row ``i·C + c``."""
    t = _as_tensor(theta)
    if t.ndim == 2 and t.shape[0] == t.shape[1]:
        return t, 1
    if t.ndim == 4 and t.shape[0] == t.shape[1] and t.shape[2] == t.shape[3]:
        n, _, c, _ = t.shape
        return t.permute(0, 2, 1, 3).reshape(n * c, n * c), c
    raise ConfigError(f"kernel must be (N, N) or (N, N, C, C), got shape {tuple(t.shape)}")


def _fix_signs(vecs: np.ndarray) -> np.ndarray:
    """Flip each column so that its largest-magnitude entry is positive (deterministic output)."""
    idx = np.abs(vecs).argmax(axis=0)
    signs = np.sign(vecs[idx, np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return vecs * signs


@dataclass(frozen=True)
class NTKSpectrum:
    """Eigenvalues (descending, ``(K,)``) and eigenvectors of a kernel.

    ``eigvecs`` is ``(N, K)`` for an ``(N, N)`` kernel and ``(N, C, K)`` for blocks: column
    ``eigvecs[..., m]`` is mode ``m`` as a signal over the points (and channels).
    """

    eigvals: np.ndarray
    eigvecs: np.ndarray

    @property
    def flat_vecs(self) -> np.ndarray:
        """Eigenvectors as ``(N·C, K)`` columns."""
        return self.eigvecs.reshape(-1, self.eigvecs.shape[-1])

    def mode(self, m: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Eigenvector ``m`` as a signal, reshaped to ``shape`` (e.g. ``(H, W)``) plus a channel axis
        for blocks -- ready to plot as a 1D signal or an image (row-major pixels)."""
        vec = self.eigvecs[..., m]
        if shape is None:
            return vec
        return vec.reshape(*shape, *vec.shape[1:])


def _eigh_top(mat: torch.Tensor, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    vals, vecs = torch.linalg.eigh(mat.to(torch.float64))
    vals, vecs = vals.flip(0), vecs.flip(1)
    if k is not None:
        vals, vecs = vals[:k], vecs[:, :k]
    return vals.cpu().numpy(), vecs.cpu().numpy()


def _lanczos_top(mat: torch.Tensor, k: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = mat.shape[0]

    def matmat(v: np.ndarray) -> np.ndarray:
        out = mat @ torch.as_tensor(v, dtype=mat.dtype, device=mat.device)
        return out.cpu().double().numpy()

    op = LinearOperator((n, n), matvec=matmat, matmat=matmat, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)
    vals, vecs = eigsh(op, k=k, which="LA", v0=v0, tol=tol)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def ntk_spectrum(theta: Array, k: int | None = None, method: str = "auto", tol: float = 0.0) -> NTKSpectrum:
    """Eigen-decomposition of a kernel ``(N, N)`` or blocks ``(N, N, C, C)``, largest first.

    ``method="eigh"``: full ``torch.linalg.eigh`` in float64 (then the top ``k`` if given);
    ``"lanczos"``: the top ``k`` by ``scipy.sparse.linalg.eigsh`` (``which="LA"``, fixed start
    vector, tolerance ``tol``; 0 = machine precision); ``"auto"``: eigh when ``k`` is None and
    ``N·C ≤ 8192``, Lanczos otherwise (eigh when ``k ≥ N·C``).
    """
    mat, c = _flatten_kernel(theta)
    n = mat.shape[0]
    if k is not None and not (1 <= k <= n):
        raise ConfigError(f"number of eigenpairs k must be in 1..{n}, got {k}")
    if method not in ("auto", "eigh", "lanczos"):
        raise ConfigError(f"spectrum method must be 'auto', 'eigh' or 'lanczos', got {method!r}")
    if method == "auto":
        if k is None and n > EIGH_MAX:
            raise ConfigError(f"a {n}×{n} kernel is too large for a full eigh; give k (top-k Lanczos)")
        method = "eigh" if k is None or k >= n else "lanczos"
    if method == "lanczos" and (k is None or k >= n):
        raise ConfigError(f"Lanczos needs 1 <= k < N·C = {n}, got k = {k}")
    vals, vecs = _eigh_top(mat, k) if method == "eigh" else _lanczos_top(mat, k, tol)
    vecs = _fix_signs(vecs)
    shape = (n // c, c, vecs.shape[1]) if c > 1 else vecs.shape
    return NTKSpectrum(eigvals=vals, eigvecs=vecs.reshape(shape))


def _vec_columns(eigvecs: np.ndarray | NTKSpectrum) -> np.ndarray:
    if isinstance(eigvecs, NTKSpectrum):
        return eigvecs.flat_vecs
    vecs = np.asarray(eigvecs, dtype=np.float64)
    return vecs.reshape(-1, vecs.shape[-1])


def alignment_curve(eigvecs: np.ndarray | NTKSpectrum, y: Array) -> np.ndarray:
    """``A_k(y)`` for ``k = 1..K``: cumulative fraction of ``‖y‖²`` in the leading eigenvectors.

    ``eigvecs``: ``(N, K)``, ``(N, C, K)`` or an :class:`NTKSpectrum`; ``y``: ``(N,)`` or
    ``(N, C)`` (the raw target; centre it first to leave out its mean).
    """
    vecs = _vec_columns(eigvecs)
    target = np.asarray(torch.as_tensor(y).detach().cpu().double().numpy()).reshape(-1)
    if target.shape[0] != vecs.shape[0]:
        raise ConfigError(f"target has {target.shape[0]} entries, eigenvectors have {vecs.shape[0]}")
    energy = float(target @ target)
    if energy == 0:
        raise ConfigError("target alignment of an all-zero target is undefined")
    return np.cumsum((vecs.T @ target) ** 2) / energy


def target_alignment(eigvecs: np.ndarray | NTKSpectrum, y: Array, k: int) -> float:
    """``A_k(y) = Σ_{m<k} (u_mᵀ y)² / ‖y‖²``: the target's energy fraction in the top ``k`` modes."""
    curve = alignment_curve(eigvecs, y)
    if not (1 <= k <= curve.shape[0]):
        raise ConfigError(f"alignment k must be in 1..{curve.shape[0]}, got {k}")
    return float(curve[k - 1])
