"""Train a raw-coordinate and a PE network on the paper's 1D target and compare them.

Run: ``python examples/quickstart.py`` (a few seconds). The tests execute this file.
"""

import numpy as np
import torch

import specbias as sb

signal = sb.ToneMixture(n=512).build(seed=0)  # 14 tones, k = 5..70, sampled at t = n/N
t = torch.as_tensor(signal.t, dtype=torch.float32)
y = torch.as_tensor(signal.y, dtype=torch.float32)
pairs = sb.local_pairs_1d(signal.n, np.random.default_rng(0), n_windows=25, pairs_per_window=100)

for encoding in (sb.Raw(0, 1), sb.NeRFPE(n_freqs=7)):  # raw [0,1) vs the paper's 1D "L=6"
    x = encoding(t)
    torch.manual_seed(0)
    model = sb.MLP(encoding.out_dim, width=128, depth=4)
    sb.train(model, x, y, sb.TrainConfig(epochs=200))
    with torch.no_grad():
        conv = sb.frequency_convergence(model(x).numpy(), signal.y, signal.freqs)
    patterns = sb.activation_patterns(model, x)
    cos = sb.gradient_confusion(model, x, y, pairs).values
    local_hamming = sb.hamming(patterns, pairs.i, pairs.j).sum(axis=0).mean()
    print(
        f"{type(encoding).__name__:7s} rel. error k=5: {conv.rel_error[0]:.2f},"
        f" k=70: {conv.rel_error[-1]:.2f};"
        f" local Hamming {local_hamming:.1f}; local |cos| {np.abs(cos).mean():.2f};"
        f" regions on the grid {sb.count_regions(patterns.packed())}"
    )
