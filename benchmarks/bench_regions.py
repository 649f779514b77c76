"""Unique activation regions of a 512×512 grid through a 4×128 net (2D PE L=8 input).

Two comparisons (issue 3 targets: counting ≥ 10× faster with ≤ 1/16 of the memory; patterns +
count under 1 s):

* counting alone, from the same activation signs: ours packs the bits and takes a unique over
  packed rows viewed as byte strings; the baseline is ``torch.unique(dim=0)`` on the float
  activation-indicator matrix (the reference's method);
* end to end, forward pass included: ``activation_patterns`` + ``count_regions`` against the same
  forward followed by the float ``torch.unique``.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import Result, interleaved
from specbias import MLP, NeRFPE, activation_patterns, count_regions
from specbias.signals import grid_2d


def _setup():
    enc = NeRFPE(n_freqs=8, in_dim=2)
    x = enc(torch.as_tensor(grid_2d(512, 512), dtype=torch.float64)).float()
    torch.manual_seed(0)
    return MLP(enc.out_dim, 128, 4, 3), x


def _ours(model, x) -> int:
    return count_regions(activation_patterns(model, x).packed())


@torch.no_grad()
def _baseline(model, x) -> int:
    acts = torch.cat([(z > 0).float() for z in model.hidden_preacts(x)], dim=1)
    return int(torch.unique(acts, dim=0).shape[0])


@torch.no_grad()
def _signs(model, x) -> torch.Tensor:
    return torch.cat([z > 0 for z in model.hidden_preacts(x)], dim=1)


def _count_packed(signs: torch.Tensor) -> int:
    return count_regions(np.packbits(signs.numpy(), axis=1))


def _count_float(signs: torch.Tensor) -> int:
    return int(torch.unique(signs.float(), dim=0).shape[0])


def main() -> list[Result]:
    model, x = _setup()
    assert _ours(model, x) == _baseline(model, x)
    signs = _signs(model, x)
    b1, o1 = interleaved(lambda: _count_float(signs), lambda: _count_packed(signs), repeats=3)
    float_bytes = x.shape[0] * model.n_hidden * 4
    packed_bytes = activation_patterns(model, x).packed().nbytes
    memory = f"memory {packed_bytes / 2**20:.0f} MiB packed vs {float_bytes / 2**20:.0f} MiB float"
    b2, o2 = interleaved(lambda: _baseline(model, x), lambda: _ours(model, x), repeats=2)
    return [
        Result("region_count_512x512_vs_torch_unique", b1, o1, f"target >= 10x; {memory}"),
        Result("patterns_and_count_512x512_end_to_end", b2, o2, "target: ours < 1 s"),
    ]
