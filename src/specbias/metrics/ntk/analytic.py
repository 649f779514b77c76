"""The analytic infinite-width NTK of the ReLU MLP at PyTorch's default init.

**Analytic infinite-width NTK** of the toolkit's ReLU MLP (arc-cosine recursion: Cho & Saul,
NeurIPS 2009; Jacot et al. 2018; Arora et al., NeurIPS 2019, "On Exact Computation with an
Infinitely Wide Neural Net"), for what the toolkit actually trains: **standard parameterisation**
``z_l = W_l a_{l-1} + b_l`` and **PyTorch's default init**, ``W_l`` and ``b_l`` entries
``U(−1/√n_{l-1}, 1/√n_{l-1})``, i.e. weight variance ``σ_w²/n_{l-1}`` with ``σ_w² = 1/3`` and bias
variance ``1/(3 n_{l-1})``. With input features ``x ∈ R^{d₀}`` (already encoded), ``depth`` hidden
layers of width ``n``, ``E[φ(u)φ(v)]`` and ``Ė = E[φ′(u)φ′(v)]`` over the pre-activation pair:

* layer 1: ``Σ_1(x, x′) = (x·x′ + 1)/(3 d₀)``; ``E_1 = E[relu(z_1(x)) relu(z_1(x′))]``;
* layer ``l ≥ 2``: ``Σ_l = E_{l-1}/3`` (the bias variance ``1/(3n)`` vanishes), and, the
  pre-activations being Gaussian by the CLT over ``n → ∞`` inputs,
  ``E_l = √(Σ_l(x,x) Σ_l(x′,x′)) (sin ϑ + (π − ϑ) cos ϑ)/(2π)``, ``Ė_l = (π − ϑ)/(2π)``,
  ``cos ϑ = Σ_l(x,x′)/√(Σ_l(x,x) Σ_l(x′,x′))``;
* the layer-``l`` weights and biases contribute ``(δ_l·δ′_l)(a_{l-1}·a′_{l-1} + 1)`` with
  ``a_0·a′_0 = x·x′``, ``a_{l-1}·a′_{l-1} → n E_{l-1}`` (``l ≥ 2``) and ``δ_l·δ′_l → P_l``,
  ``P_{depth+1} = 1``, ``P_l = Ė_l P_{l+1}/3``. So in the standard parameterisation **the NTK
  grows linearly with the width**: ``Θ_n = n Θ_∞ + O(1) + O(√n)`` fluctuations, the ``O(1)`` being
  the first layer's weights and every bias.

Two normalisations, both from :func:`analytic_ntk`:

* ``width=None``: the limit ``Θ_∞(x, x′) = lim_{n→∞} Θ_n(x, x′)/n = Σ_{l=2}^{depth+1} P_l E_{l-1}``.
  Compare ``empirical_ntk(model, x)/model.width``; for ``C`` outputs the limit is ``Θ_∞ ⊗ I_C``
  (the trace is ``C Θ_∞``).
* ``width=n``: the mean-field kernel of a width-``n`` network on the empirical scale,
  ``Θ̄_n = Σ_{l=1}^{depth+1} P_l (A_{l-1} + 1)``, ``A_0 = x·x′``, ``A_{l-1} = n E_{l-1}``, with the
  hidden bias variance ``1/(3n)`` kept in ``Σ_l``; ``Θ̄_n/n = Θ_∞ + O(1/n)``. With ``σ_w² = 1/3``
  each layer shrinks the kernel (``Σ_{l+1}(x,x) = Σ_l(x,x)/6``), so the ``O(1)`` terms are large at
  practical widths -- the output bias alone adds 1 to every entry, about ``n Θ_∞`` at depth 3 and
  ``n ≈ 70`` on raw inputs. Use ``width=n`` to predict a real network's dynamics. Finite-width
  corrections to Gaussianity (also ``O(1)``) are not included.

Forward, ``Q_1 = c (x·x′ + 1)``, ``Q_l = Ė_{l-1} Q_{l-1}/3 + s E_{l-1} + c`` for ``l = 2..depth+1``
(``s = n, c = 1`` for ``Θ̄_n``; ``s = 1, c = 0`` for ``Θ_∞``). :func:`analytic_nngp` is the output
covariance at initialisation, ``E_depth/3 + 1/(3n)`` (limit ``E_depth/3``).

Measured (raw ``[-1, 1]`` 1D, 32 points, depth 2; rms over 16 seeds, 8 at ``n ≥ 2048``) relative
Frobenius error of ``Θ_n/n`` for ``n = 64, 128, …, 4096``: against ``Θ_∞`` 0.46, 0.27, 0.16, 0.12,
0.091, 0.069, 0.048 (log-log slope −0.52); against ``Θ̄_n/n`` 0.20, 0.17, 0.13, 0.10, 0.084,
0.069, 0.049 (slope −0.34: fluctuations are below ``n^{-1/2}`` scaling at small widths); the
seed-averaged kernel is within 1–2% of ``Θ̄_n`` at every width.

**The first layer is not Gaussian.** ``z_1 = wᵀx + b`` with ``d₀ + 1`` uniform terms; the textbook
arc-cosine kernel assumes Gaussian weights, which the CLT only gives for large ``d₀``. Measured
relative Frobenius gap of ``E_1`` (Gaussian vs uniform law, 16–32 points): raw ``[-1,1]`` 1D 3.1%,
raw ``[-1,1]²`` 3.6%, PE with 8 / 14 / 22 features 1.2% / 0.8% / 0.4%, RFF with 32 / 128 features
0.3% / ≈0.1% -- roughly ``0.1/d₀``. ``first_layer="uniform"`` computes ``E_1`` under the actual
law: exactly for ``d₀ = 1`` (``g = relu(ξ·X) relu(ξ·X′)`` is 2-homogeneous in ``ξ = (w, b)``, so by
the divergence theorem ``∫_{[−s,s]²} g = (s/4) ∮ g`` along the square's four edges, each a
quadratic over an interval) and by unscrambled, midpoint-shifted Sobol quasi-Monte Carlo with
``n_samples`` points for ``d₀ ≥ 2`` (relative error at ``2^16`` points, measured against ``2^21``:
about 1e-5 for ``d₀ = 2``, 3e-4–5e-4 for PE with 8–14 features, 2e-3 for RFF with 32–128
features -- no better than the Gaussian gap there). ``"gaussian"`` is the arc-cosine formula
throughout; ``"auto"`` (default) takes the uniform law up to ``d₀ = 32`` and the Gaussian formula
above.
"""

from __future__ import annotations

import math

import torch

from specbias.errors import ConfigError
from specbias.metrics.ntk.spectrum import Array

AUTO_UNIFORM_MAX_DIM = 32
"""``first_layer="auto"`` integrates the uniform first-layer law up to this many input features."""


SIGMA_W2 = 1.0 / 3.0
"""Weight variance × fan-in of PyTorch's default ``nn.Linear`` init, ``U(−1/√fan_in, 1/√fan_in)``."""


def _arccos(cross: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[relu(u) relu(v)]`` and ``E[1(u>0) 1(v>0)]`` for ``(u, v)`` Gaussian (Cho & Saul 2009)."""
    norm = torch.sqrt(d1[:, None] * d2[None, :])
    cos = torch.where(norm > 0, cross / norm, torch.zeros_like(cross)).clamp(-1.0, 1.0)
    # arccos is ill-conditioned at 1 (one ulp of cos is 1.5e-8 of angle): a point paired with
    # itself, whose cos is 1 up to rounding, gets angle 0 exactly
    angle = torch.where(cos > 1 - 8 * torch.finfo(cos.dtype).eps, 0.0, torch.arccos(cos))
    e = norm * (torch.sin(angle) + (math.pi - angle) * cos) / (2 * math.pi)
    return e, (math.pi - angle) / (2 * math.pi)


def _edge_integrals(
    alpha: torch.Tensor, beta: torch.Tensor, alpha2: torch.Tensor, beta2: torch.Tensor, s: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``∫_{−s}^{s} relu(α + βt) relu(α′ + β′t) dt`` and the length of ``{α + βt > 0, α′ + β′t > 0}``."""

    def bounds(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        root = -a / torch.where(b == 0, torch.ones_like(b), b)
        inf = torch.full_like(root, math.inf)
        lo = torch.where(b > 0, root, torch.where((b == 0) & (a <= 0), inf, -inf))
        hi = torch.where(b < 0, root, inf)
        return lo, hi

    lo1, hi1 = bounds(alpha, beta)
    lo2, hi2 = bounds(alpha2, beta2)
    lo = torch.maximum(lo1, lo2).clamp(-s, s)
    hi = torch.maximum(torch.minimum(hi1, hi2).clamp(-s, s), lo)
    a, b, c = alpha * alpha2, alpha * beta2 + alpha2 * beta, beta * beta2
    return a * (hi - lo) + b * (hi**2 - lo**2) / 2 + c * (hi**3 - lo**3) / 3, hi - lo


def _uniform_exact_1d(x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[relu(u) relu(v)]`` and ``P(u > 0, v > 0)`` for ``u = wx + b``, ``v = wx′ + b``,
    ``w, b ~ U(−1, 1)`` (``d₀ = 1``), exactly.

    ``g(ξ)`` homogeneous of degree ``p`` in ``ξ = (w, b)`` has ``∇·(g ξ) = (p + 2) g``, so
    ``∫_{[−s,s]²} g = s/(p + 2) Σ_edges ∫_edge g`` (``ξ·n = s`` on every edge); the mean divides by
    ``(2s)²``. ``p = 2`` for ``relu·relu``, ``p = 0`` for the indicator product.
    """
    s = 1.0
    u, v = x[:, 0, None], x2[None, :, 0]
    ones = torch.ones_like(u * v)
    relu = torch.zeros_like(ones)
    length = torch.zeros_like(ones)
    for sign in (1.0, -1.0):
        # edges w = ±s (t = b): u = ±s x + t;  edges b = ±s (t = w): u = t x ± s
        for edge in (
            (sign * s * u * ones, ones, sign * s * v * ones, ones),
            (sign * s * ones, u * ones, sign * s * ones, v * ones),
        ):
            i, n = _edge_integrals(*edge, s)
            relu += i
            length += n
    return relu / (16.0 * s), length / (8.0 * s)


def _uniform_qmc(x: torch.Tensor, x2: torch.Tensor, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[relu(u) relu(v)]`` and ``P(u > 0, v > 0)`` for ``u = ξ·X``, ``v = ξ·X′``,
    ``ξ ~ U(−s, s)^{d₀+1}``, ``s = 1/√d₀``, ``X = (x, 1)``, by unscrambled, midpoint-shifted Sobol
    quasi-Monte Carlo.

    ``ξ`` and ``−ξ`` have the same law, so only the even parts need sampling:
    ``E[relu(u) relu(v)] = (E[uv] + E|u||v|)/4`` with ``E[uv] = Σ_1`` exact and the estimate of
    ``E|u||v|`` rescaled to the exact diagonal ``E u² = Σ_1(x, x)``;
    ``P(u > 0, v > 0) = (1 + E[sgn u sgn v])/4``. This halves the plain estimator's error.
    """
    d0 = x.shape[1]
    s = 1.0 / math.sqrt(d0)
    engine = torch.quasirandom.SobolEngine(d0 + 1, scramble=False)
    pts = engine.draw(n_samples, dtype=torch.float64).to(x.device)
    xi = s * (2.0 * torch.remainder(pts + 0.5 / n_samples, 1.0) - 1.0)
    xa = torch.cat((x, torch.ones_like(x[:, :1])), dim=1)
    xa2 = torch.cat((x2, torch.ones_like(x2[:, :1])), dim=1)
    absprod = torch.zeros(x.shape[0], x2.shape[0], dtype=x.dtype, device=x.device)
    signprod = torch.zeros_like(absprod)
    sq, sq2 = torch.zeros_like(absprod[:, 0]), torch.zeros_like(absprod[0])
    for start in range(0, n_samples, 8192):
        block = xi[start : start + 8192]
        z, z2 = xa @ block.T, xa2 @ block.T
        absprod += z.abs() @ z2.abs().T
        signprod += torch.sign(z) @ torch.sign(z2).T
        sq += (z * z).sum(1)
        sq2 += (z2 * z2).sum(1)
    sigma = (xa @ xa2.T) * SIGMA_W2 / d0
    var, var2 = (xa * xa).sum(1) * SIGMA_W2 / d0, (xa2 * xa2).sum(1) * SIGMA_W2 / d0
    abs_mean = absprod * torch.sqrt((var[:, None] * var2[None, :]) / (sq[:, None] * sq2[None, :]))
    return (sigma + abs_mean) / 4, (1.0 + signprod / n_samples) / 4


def _first_layer(
    x: torch.Tensor, x2: torch.Tensor, first_layer: str, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E_1, Ė_1)`` under the chosen first-layer weight law."""
    d0 = x.shape[1]
    if first_layer == "auto":
        first_layer = "uniform" if d0 <= AUTO_UNIFORM_MAX_DIM else "gaussian"
    if first_layer == "gaussian":
        cross = (x @ x2.T + 1.0) * SIGMA_W2 / d0
        diag1 = ((x * x).sum(1) + 1.0) * SIGMA_W2 / d0
        diag2 = ((x2 * x2).sum(1) + 1.0) * SIGMA_W2 / d0
        return _arccos(cross, diag1, diag2)
    if d0 == 1:
        return _uniform_exact_1d(x, x2)
    return _uniform_qmc(x, x2, n_samples)


def _analytic(
    x: Array, x2: Array | None, depth: int, width: int | None, first_layer: str, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(NTK, output NNGP)``: the width-normalised limit (``width=None``) or the mean-field
    kernel of a width-``width`` network (see :func:`analytic_ntk`)."""
    if not (isinstance(depth, int) and depth >= 1):
        raise ConfigError(f"depth must be an integer >= 1, got {depth}")
    if width is not None and not (isinstance(width, int) and width >= 1):
        raise ConfigError(f"width must be None or an integer >= 1, got {width}")
    if first_layer not in ("auto", "uniform", "gaussian"):
        raise ConfigError(f"first_layer must be 'auto', 'uniform' or 'gaussian', got {first_layer!r}")
    if n_samples < 1 or n_samples & (n_samples - 1):
        raise ConfigError(f"n_samples must be a power of two (Sobol net), got {n_samples}")
    xa = torch.as_tensor(x).detach().to(torch.float64)
    xb = xa if x2 is None else torch.as_tensor(x2).detach().to(dtype=torch.float64, device=xa.device)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[1] != xb.shape[1]:
        raise ConfigError(f"inputs must be (N, d) and (M, d), got {tuple(xa.shape)} and {tuple(xb.shape)}")
    d0 = xa.shape[1]
    # width=None: Θ/n in the limit (bias variance 1/(3n) → 0, O(1) terms → 0)
    scale, const, bias_var = (1.0, 0.0, 0.0) if width is None else (float(width), 1.0, SIGMA_W2 / width)
    # layer 1 (E[relu(z)²] = Σ_1/2 on the diagonal for any symmetric weight law)
    e, e_dot = _first_layer(xa, xb, first_layer, n_samples)
    e_d1 = ((xa * xa).sum(1) + 1.0) * SIGMA_W2 / d0 / 2
    e_d2 = ((xb * xb).sum(1) + 1.0) * SIGMA_W2 / d0 / 2
    q = const * (xa @ xb.T + 1.0)  # layer-1 weights and biases: (x·x′ + 1) at z_1
    for layer in range(2, depth + 2):
        q = SIGMA_W2 * e_dot * q + scale * e + const  # Θ of z_l
        if layer == depth + 1:
            break
        d1, d2 = SIGMA_W2 * e_d1 + bias_var, SIGMA_W2 * e_d2 + bias_var
        e, e_dot = _arccos(SIGMA_W2 * e + bias_var, d1, d2)
        e_d1, e_d2 = d1 / 2, d2 / 2
    return q, SIGMA_W2 * e + bias_var


def analytic_ntk(
    x: Array,
    x2: Array | None = None,
    *,
    depth: int,
    width: int | None = None,
    first_layer: str = "auto",
    n_samples: int = 2**16,
) -> torch.Tensor:
    """Analytic NTK of ``MLP(d₀, width, depth, ·)`` at PyTorch's default init, float64 ``(N, M)``.

    ``width=None``: the infinite-width limit ``Θ_∞ = lim Θ_n/n``. ``width=n``: the mean-field
    kernel of a width-``n`` network on the empirical kernel's scale,
    ``Θ̄_n = Σ_l P_l (A_{l-1} + 1)`` with ``A_0 = x·x′``, ``A_{l-1} = n E_{l-1}`` and the hidden bias
    variance ``1/(3n)`` kept in ``Σ_l`` -- it keeps the ``O(1)`` terms of every bias and of the
    first layer's weights that ``n Θ_∞`` drops (the output bias alone adds 1 to every entry, as
    much as ``n Θ_∞`` at depth 3 and width ≈ 70 on raw inputs); ``Θ̄_n/n → Θ_∞``. The ``O(1)``
    corrections from finite-width non-Gaussianity are not included. ``x``, ``x2``: the network's
    inputs (encoded features), ``(N, d₀)`` and ``(M, d₀)``. Per output channel (channels are
    independent at init in this approximation). See the module docstring for the recursion and
    ``first_layer``.
    """
    return _analytic(x, x2, depth, width, first_layer, n_samples)[0]


def analytic_nngp(
    x: Array,
    x2: Array | None = None,
    *,
    depth: int,
    width: int | None = None,
    first_layer: str = "auto",
    n_samples: int = 2**16,
) -> torch.Tensor:
    """Output covariance at initialisation, ``Cov(f(x), f(x′)) = E_depth/3 + 1/(3n)``
    (``width=None``: the limit ``E_depth/3``)."""
    return _analytic(x, x2, depth, width, first_layer, n_samples)[1]
