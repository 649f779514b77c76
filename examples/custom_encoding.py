"""Add an encoding: subclass ``Encoding`` (``in_dim``, ``out_dim``, ``__call__``, ``frequencies``).

Here, a triangle-wave positional encoding: piecewise linear in t, so a ReLU network on it is still
piecewise linear in the coordinate — does it spread neighbours over regions like sin/cos PE?
Run: ``python examples/custom_encoding.py`` (a few seconds; the tests execute it).
"""

from dataclasses import dataclass

import numpy as np
import torch

import specbias as sb


@dataclass(frozen=True)
class TrianglePE(sb.Encoding):
    """``tri(2^l t)`` for ``l < n_freqs``, with ``tri(u) = 2|u − floor(u + 1/2)|`` in [0, 1]."""

    n_freqs: int = 6
    in_dim: int = 1

    @property
    def out_dim(self) -> int:
        return self.n_freqs * self.in_dim

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        u = t[:, None, :] * 2.0 ** torch.arange(self.n_freqs, dtype=t.dtype)[None, :, None]
        return (2 * (u - torch.floor(u + 0.5)).abs()).reshape(t.shape[0], -1)

    def frequencies(self) -> np.ndarray:
        return np.repeat(2.0 ** np.arange(self.n_freqs), self.in_dim)


signal = sb.ToneMixture(n=512).build(seed=0)
t = torch.as_tensor(signal.t, dtype=torch.float32)
y = torch.as_tensor(signal.y, dtype=torch.float32)
pairs = sb.local_pairs_1d(signal.n, np.random.default_rng(0), n_windows=25, pairs_per_window=100)
for encoding in (sb.Raw(0, 1), TrianglePE(), sb.NeRFPE(n_freqs=6)):
    x = encoding(t)
    torch.manual_seed(0)
    model = sb.MLP(encoding.out_dim, width=64, depth=3)
    sb.train(model, x, y, sb.TrainConfig(epochs=150))
    hamming = sb.hamming(sb.activation_patterns(model, x), pairs.i, pairs.j).sum(axis=0).mean()
    print(f"{type(encoding).__name__:10s} local Hamming {hamming:6.2f}")
