"""The per-example Gram identity on any model built from ``nn.Linear`` layers, elementwise operations
and :class:`~specbias.hashgrid.HashGrid` tables: its terms, where they come from, and the one routine
that sums them.

**Dense term** (one ``nn.Linear``, ``z = W a + b``). With ``δ_i = ∂s_i/∂z_i`` for a per-example scalar
``s_i`` (a loss ``ℓ_i``, or an output ``f_c(x_i)``), ``∂s_i/∂W = δ_i a_iᵀ`` and ``∂s_i/∂b = δ_i``, so

    ⟨∂s_i/∂(W, b), ∂s′_j/∂(W, b)⟩ = (δ_i·δ′_j)(a_i·a_j + 1)        (the ``+1`` only with a bias).

It holds whatever comes before or after the layer, as long as the layer runs once per example and
examples do not interact (Sankararaman et al. 2020 use it for MLPs; Goodfellow 2015, "Efficient
per-example gradient computations", for the norms). ``a`` is the layer's input, recorded by a forward
hook; ``δ`` is the gradient of ``Σ_i s_i`` with respect to the layer's output, from one batched
``torch.autograd.grad`` call (per example, since examples do not interact) -- so any elementwise
activation (``sin``, Gaussian, a user's own) works.

**Sparse term** (one level of a HashGrid, or any table looked up by rows and weights). Level ``l``'s
feature is ``y_l(x_i) = Σ_c w_{ic} T[r_{ic}]``, so ``∂s_i/∂T = Σ_c w_{ic} e_{r_{ic}} ⊗ g_i`` with
``g_i = ∂s_i/∂y_l(x_i)``, and

    ⟨∂s_i/∂T, ∂s′_j/∂T⟩ = (g_i·g′_j) Σ_{c,c′} w_{ic} w_{jc′} [r_{ic} = r_{jc′}],

hash collisions included (two corners of one point on one row count twice). Rows of different
levels never coincide, so the table's total is the sum over levels.

**Sum.** Every term is ``(δ_i·δ′_j) F(i, j)`` with a *factor* ``F`` that does not depend on which
scalar ``s`` is differentiated. With ``K`` scalars per example (the ``C`` outputs of the empirical NTK)
the ``δ`` are ``(N, K, m)``: the trace ``Σ_k`` stacks them into ``(N, K·m)``, the blocks keep
``k`` and ``k′`` apart. :func:`pair_products`, :func:`sq_norms` and :func:`kernel` are the only
routines that sum terms, for pairs, norms and whole matrices.

**Coverage** (:func:`coverage_error`). Every parameter must belong to an ``nn.Linear`` (with
``nn.Linear``'s own ``forward``) or a HashGrid, no parameter may be shared by two modules, no
BatchNorm may be in train mode (it couples the examples of a batch), and at run time every covered
module must run once per forward pass on a ``(N, ·)`` input (a layer applied twice shares its weights
between two uses, and the identity then misses the cross terms). Other couplings between examples
inside a user's own ``forward`` (e.g. ``x - x.mean(0)``) cannot be seen and are the user's to avoid.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from specbias.errors import ConfigError
from specbias.hashgrid import HashGrid
from specbias.models import MLP

Index = torch.Tensor | slice
CotangentFn = Callable[[torch.Tensor], torch.Tensor]
"""``f(output) → cotangents``: ``(N, C)`` (one scalar per example) or ``(N, K, C)`` (``K`` of them)."""

SYM_TILE = 2048
"""Rows of the square tiles of a symmetric kernel: 4,096 points take 3 of 4 tiles (75% of the
products); smaller tiles save more products but, on a loaded 2-core CPU, lose it to per-operation
overheads."""
COVERED = "only nn.Linear layers and HashGrid tables with per-example elementwise operations between them"


class Uncovered(Exception):
    """The model is outside what the Gram identity covers (the message says why, on one line)."""


# --------------------------------------------------------------------------- factors and terms


@dataclass(frozen=True)
class Dot:
    """``a_i·a_j + bias`` for a linear layer's inputs ``a`` ``(N, n)`` (``bias`` 1 or 0)."""

    a: torch.Tensor
    bias: float

    def pairs(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return (self.a[i] * self.a[j]).sum(1) + self.bias

    def diag(self) -> torch.Tensor:
        return (self.a * self.a).sum(1) + self.bias

    def block(self, r: Index, c: Index) -> torch.Tensor:
        a_r, a_c = self.a[r], self.a[c]
        if not self.bias:
            return a_r @ a_c.T
        return torch.addmm(a_r.new_ones(()).expand(a_r.shape[0], a_c.shape[0]), a_r, a_c.T)


@dataclass(frozen=True)
class SharedRows:
    """``Σ_{c,c′} w_{ic} w_{jc′} [r_{ic} = r_{jc′}]`` for table rows and weights ``(N, corners)``."""

    rows: torch.Tensor
    weights: torch.Tensor

    def pairs(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        same = self.rows[i][:, :, None] == self.rows[j][:, None, :]
        return (self.weights[i][:, :, None] * self.weights[j][:, None, :] * same).sum((1, 2))

    def diag(self) -> torch.Tensor:
        every = torch.arange(self.rows.shape[0], device=self.rows.device)
        return self.pairs(every, every)

    def _matrix(self, r: Index, width: int) -> torch.Tensor:
        rows, weights = self.rows[r], self.weights[r]
        n, corners = rows.shape
        point = torch.arange(n, device=rows.device).repeat_interleave(corners)
        index = torch.stack((point, rows.reshape(-1)))
        return torch.sparse_coo_tensor(index, weights.reshape(-1), (n, width), check_invariants=False)

    def block(self, r: Index, c: Index) -> torch.Tensor:
        """``A_r A_cᵀ`` with the sparse point-by-row weight matrices ``A`` (duplicates summed)."""
        width = int(self.rows.max()) + 1
        left, right = self._matrix(r, width).coalesce(), self._matrix(c, width).coalesce()
        with warnings.catch_warnings():  # torch's "sparse CSR support is in beta" (used inside mm)
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse.mm(left, right.t()).to_dense()


@dataclass(frozen=True)
class Term:
    """One parameter group's share of the Gram identity: ``δ`` ``(N, K, m)`` and its factor."""

    delta: torch.Tensor
    factor: Dot | SharedRows


def pair_products(terms: list[Term], i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """``Σ_terms Σ_k (δ^k_i·δ^k_j) F(i, j)`` for the pairs ``(i, j)``."""
    total = torch.zeros(i.shape[0], dtype=terms[0].delta.dtype, device=i.device)
    for t in terms:
        total += (t.delta[i] * t.delta[j]).sum((1, 2)) * t.factor.pairs(i, j)
    return total


def sq_norms(terms: list[Term]) -> torch.Tensor:
    """``Σ_terms Σ_k ‖δ^k_i‖² F(i, i)`` for every example: the squared gradient (Jacobian) norms."""
    return sum((t.delta * t.delta).sum((1, 2)) * t.factor.diag() for t in terms)


def _tile(terms: list[Term], rows: slice, cols: slice, blocks: bool) -> torch.Tensor:
    """One tile ``Σ_terms (δ_r δ_cᵀ) ⊙ F(r, c)``: the trace ``(R, M)`` or the blocks ``(K, K, R, M)``
    (every ``(k, k′)`` pair by one matrix product)."""
    total = None
    for t in terms:
        d, d2 = t.delta[rows], t.delta[cols]
        if blocks:
            k, r, m = d.shape[1], d.shape[0], d2.shape[0]
            prod = (d.transpose(0, 1).reshape(k * r, -1) @ d2.transpose(0, 1).reshape(k * m, -1).T).view(
                k, r, k, m
            )
            prod = prod.permute(0, 2, 1, 3)
        else:
            prod = d.flatten(1) @ d2.flatten(1).T
        if total is None:
            total = prod.mul_(t.factor.block(rows, cols))
        else:
            total.addcmul_(prod, t.factor.block(rows, cols))
    return total


def kernel(terms: list[Term], n: int | None, blocks: bool, chunk: int) -> torch.Tensor:
    """The matrix ``Σ_terms (δ_i·δ′_j) F(i, j)`` between examples ``:n`` and ``n:`` of the terms,
    ``chunk`` rows at a time; ``n=None``: all with all, exactly symmetric, by square tiles of at most
    :data:`SYM_TILE` rows of which only those on or above the diagonal are computed (about half
    the products).

    ``blocks=False``: the trace over ``k``, ``(N, M)``; ``blocks=True``: ``(N, M, K, K)``.
    """
    ref = terms[0].delta
    total, k = ref.shape[0], ref.shape[1]
    sym = n is None
    n_rows = total if sym else n
    m = total if sym else total - n
    out = torch.zeros((n_rows, m) if not blocks else (k, k, n_rows, m), dtype=ref.dtype, device=ref.device)
    step = min(chunk, SYM_TILE) if sym else chunk
    starts = range(0, n_rows, step)
    for r0 in starts:
        rows = slice(r0, min(r0 + step, n_rows))
        if not sym:
            out[..., rows, :] = _tile(terms, rows, slice(n, total), blocks)
            continue
        for c0 in (c for c in starts if c >= r0):
            cols = slice(c0, min(c0 + step, n_rows))
            tile = _tile(terms, rows, cols, blocks)
            out[..., rows, cols] = tile
            if c0 != r0:
                out[..., cols, rows] = tile.transpose(-1, -2) if not blocks else tile.permute(1, 0, 3, 2)
    if sym:  # the diagonal tiles: Θ_{kk′}(i, j) = Θ_{k′k}(j, i) exactly
        out = 0.5 * (out + (out.T if not blocks else out.permute(1, 0, 3, 2)))
    return out if not blocks else out.permute(2, 3, 0, 1).contiguous()


# --------------------------------------------------------------------------- coverage


def coverage_error(model: nn.Module) -> str | None:
    """Why the Gram identity does not cover ``model`` (one line), or None where its parameters and
    modules are covered (the run-time conditions are checked by :func:`hooked_terms`)."""
    owner: dict[int, str] = {}
    for name, module in model.named_modules():
        label = f"'{name}' ({type(module).__name__})" if name else f"the model ({type(module).__name__})"
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            return f"{label} is a BatchNorm in train mode, which couples the examples of a batch"
        for pname, param in module.named_parameters(recurse=False):
            qual = f"{name}.{pname}" if name else pname
            if id(param) in owner:
                return f"parameter '{qual}' is shared with '{owner[id(param)]}' (weight tying)"
            owner[id(param)] = qual
            if not _covered_module(module):
                return f"parameter '{qual}' of {type(module).__name__} is not covered ({COVERED})"
    return None


def _covered_module(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return type(module).forward is nn.Linear.forward
    if isinstance(module, HashGrid):
        return type(module).forward is HashGrid.forward and type(module).lookup is HashGrid.lookup
    return False


# --------------------------------------------------------------------------- δ and layer inputs


@dataclass
class _Record:
    name: str
    module: nn.Module
    calls: int = 0
    inputs: torch.Tensor | None = None
    output: torch.Tensor | None = None


def _as_batched_cotangents(cot: torch.Tensor) -> torch.Tensor:
    return cot[:, None] if cot.ndim == 2 else cot


def hooked_terms(model: nn.Module, x: torch.Tensor, cotangent_fn: CotangentFn) -> list[Term]:
    """The Gram terms of any covered model: layer inputs from forward hooks on every ``nn.Linear``
    and HashGrid, ``δ`` from ``torch.autograd.grad`` of the output with the given cotangents (one
    batched backward pass per cotangent). Raises :class:`Uncovered` on a module that runs more than
    once per forward pass or gets an input that is not ``(N, ·)``."""
    records = [
        _Record(name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | HashGrid)
    ]

    def hook(rec: _Record) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor]:
        def record(_: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            rec.calls += 1
            rec.inputs, rec.output = inputs[0], output
            return output.clone()  # an in-place op downstream (ReLU(inplace=True)) must not touch z

        return record

    handles = [rec.module.register_forward_hook(hook(rec)) for rec in records]
    try:
        with torch.enable_grad():
            # an input that requires grad puts every layer output on the graph, frozen layers too
            out = model(x.detach().requires_grad_(x.is_floating_point()))
    finally:
        for h in handles:
            h.remove()
    used = [rec for rec in records if rec.calls]
    for rec in used:
        kind = type(rec.module).__name__
        if rec.calls > 1:
            raise Uncovered(f"{kind} '{rec.name}' runs {rec.calls} times per forward pass (weight sharing)")
        shape = tuple(rec.inputs.shape)
        if not (len(shape) == 2 or (isinstance(rec.module, HashGrid) and len(shape) == 1)) or (
            shape[0] != x.shape[0]
        ):
            raise Uncovered(f"{kind} '{rec.name}' gets an input of shape {shape}, not ({x.shape[0]}, ·)")
    if not used:
        raise Uncovered("no nn.Linear or HashGrid runs in the forward pass")
    cot = _as_batched_cotangents(cotangent_fn(out.detach()))
    # all K cotangents in one vmapped backward pass: grads (K, N, out) per module
    outputs = [rec.output for rec in used]
    batched = cot.shape[1] > 1
    grads = torch.autograd.grad(
        out,
        outputs,
        cot.transpose(0, 1) if batched else cot[:, 0],
        allow_unused=True,
        is_grads_batched=batched,
    )
    terms: list[Term] = []
    for g, rec in zip(grads, used):
        if g is None:  # the module's output does not reach the model's: a zero gradient
            g = rec.output.new_zeros((cot.shape[1], *rec.output.shape) if batched else rec.output.shape)
        delta = (g.transpose(0, 1) if batched else g[:, None]).detach()  # (N, K, out)
        terms.extend(_module_terms(rec, delta))
    return terms


def _module_terms(rec: _Record, delta: torch.Tensor) -> list[Term]:
    if isinstance(rec.module, nn.Linear):
        bias = 0.0 if rec.module.bias is None else 1.0
        return [Term(delta, Dot(rec.inputs.detach(), bias))]
    grid: HashGrid = rec.module
    with torch.no_grad():
        look = grid.lookup(rec.inputs.detach())
    per_level = delta.reshape(*delta.shape[:2], grid.levels, grid.features)
    return [
        Term(per_level[:, :, level], SharedRows(look.rows[:, level], look.weights[:, level]))
        for level in range(grid.levels)
    ]


def unit_cotangents(out: torch.Tensor) -> torch.Tensor:
    """The cotangents ``e_1 … e_C`` of every example, ``(N, C, C)``: ``δ^c = ∂f_c/∂z``."""
    eye = torch.eye(out.shape[1], dtype=out.dtype, device=out.device)
    return eye.expand(out.shape[0], -1, -1).contiguous()


def backprop_deltas(
    model: MLP, x: torch.Tensor, cotangent_fn: CotangentFn
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Layer inputs ``a_{l-1}`` and per-example ``δ_l`` for every linear layer of a specbias ReLU
    ``MLP``, back-propagated by hand: ``δ_out = cotangent``, ``δ_l = (δ_{l+1} W_{l+1}) ⊙ [z_l > 0]``.

    ``cotangent_fn(output)`` gives ``(N, C)``, or ``(N, K, C)`` for ``K`` cotangents per example at
    once (the ``δ_l`` are then ``(N, K, n_l)``).
    """
    with torch.no_grad():
        trace = model.trace(x)
        delta = cotangent_fn(trace.output)
        deltas = [delta]
        for layer, z in zip(reversed(model.layers[1:]), reversed(trace.hidden)):
            mask = (z > 0).reshape(z.shape[0], *[1] * (delta.ndim - 2), z.shape[1])
            delta = (delta @ layer.weight) * mask
            deltas.append(delta)
    return trace.inputs, deltas[::-1]


def mlp_terms(model: MLP, x: torch.Tensor, cotangent_fn: CotangentFn) -> list[Term]:
    """The Gram terms of a specbias ``MLP`` by :func:`backprop_deltas` (no autograd graph)."""
    inputs, deltas = backprop_deltas(model, x, cotangent_fn)
    return [Term(_as_batched_cotangents(d), Dot(a, 1.0)) for a, d in zip(inputs, deltas)]


def gram_terms(
    model: nn.Module, x: torch.Tensor, cotangent_fn: CotangentFn, strict: bool
) -> list[Term] | None:
    """The model's Gram terms (the hand-written ReLU backward for a specbias ``MLP``, hooks and
    autograd for any other covered model), or None where the identity does not cover the model
    (``strict``: raise a one-line :class:`~specbias.errors.ConfigError` instead)."""
    if type(model) is MLP:
        return mlp_terms(model, x, cotangent_fn)
    try:
        reason = coverage_error(model)
        if reason is not None:
            raise Uncovered(reason)
        return hooked_terms(model, x, cotangent_fn)
    except Uncovered as err:
        if strict:
            raise ConfigError(f"the Gram identity does not apply: {err}; use method='func'") from None
        return None
