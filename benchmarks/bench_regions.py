"""Unique activation regions of a 512×512 grid through a 4×128 net (2D PE L=8 input).

Ours: bit-packed patterns (forward in chunks) + a unique over packed rows viewed as byte strings.
Baseline: the same forward, then ``torch.unique(dim=0)`` on the float activation-indicator matrix
(what the reference does). Targets (issue 3): ours under 1 s, ≥ 10×, ≤ 1/16 of the memory.
"""

from __future__ import annotations

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


def main() -> list[Result]:
    model, x = _setup()
    assert _ours(model, x) == _baseline(model, x)
    base, ours = interleaved(lambda: _baseline(model, x), lambda: _ours(model, x), repeats=2)
    float_bytes = x.shape[0] * model.n_hidden * 4
    packed_bytes = activation_patterns(model, x).packed().nbytes
    note = f"target >= 10x and < 1 s; memory {packed_bytes / 2**20:.0f} MiB vs {float_bytes / 2**20:.0f} MiB"
    return [Result("regions_512x512_grid_vs_torch_unique", base, ours, note)]
