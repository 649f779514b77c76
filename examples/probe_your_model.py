"""Run specbias's probes on a network you define yourself: a plain ``nn.Sequential`` with your own
sine activation (a SIREN-like network, no specbias class involved).

Gradient confusion, the loss-gradient Gram matrix and the empirical NTK take any model made of
``nn.Linear`` layers and elementwise activations: the Gram identity
``⟨∇ℓᵢ,∇ℓⱼ⟩ = Σₗ (δₗᵢ·δₗⱼ)(aₗ₋₁ᵢ·aₗ₋₁ⱼ + 1)`` reads each layer's input and its δ from autograd, so no
per-example gradient is formed. Per-frequency convergence needs only the model's predictions.
Run: ``python examples/probe_your_model.py``.
"""

import math

import numpy as np
import torch
from torch import nn

import specbias as sb


class Sine(nn.Module):
    """Your activation: ``sin(ω₀ z)``, elementwise, no parameters."""

    def __init__(self, omega0: float = 30.0) -> None:
        super().__init__()
        self.omega0 = omega0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega0 * z)


def sine_network(width: int = 64, omega0: float = 30.0) -> nn.Sequential:
    """Linear → sine → Linear → sine → Linear, with Sitzmann et al.'s initialisation."""
    net = nn.Sequential(
        nn.Linear(1, width), Sine(omega0), nn.Linear(width, width), Sine(omega0), nn.Linear(width, 1)
    )
    with torch.no_grad():
        net[0].weight.uniform_(-1.0, 1.0)  # first layer U(-1/n, 1/n), n = 1 input
        for layer in (net[2], net[4]):
            bound = math.sqrt(6 / layer.in_features) / omega0
            layer.weight.uniform_(-bound, bound)
    return net


signal = sb.ToneMixture(n=256).build(seed=0)  # the paper's 14 tones, k = 5 … 70
t = torch.as_tensor(2 * signal.t - 1, dtype=torch.float32)  # SIREN's [-1, 1) grid
y = torch.as_tensor(signal.y, dtype=torch.float32)
rng = np.random.default_rng(0)
local = sb.local_pairs_1d(signal.n, rng, n_windows=20, pairs_per_window=50)
far = sb.global_pairs_1d(signal.n, rng, n_pairs=1000)


def report(model: nn.Module, label: str) -> None:
    conf_local = sb.gradient_confusion(model, t, y, local).values
    conf_far = sb.gradient_confusion(model, t, y, far).values
    theta = sb.empirical_ntk(model, t)  # N × N, by the same identity
    spectrum = sb.ntk_spectrum(theta, k=32)
    align = sb.target_alignment(spectrum, y - y.mean(), k=32)
    with torch.no_grad():
        rel = sb.frequency_convergence(model(t).numpy(), signal.y, signal.freqs).rel_error
    mean_abs = np.nanmean(np.abs(conf_local)), np.nanmean(np.abs(conf_far))
    print(
        f"{label}: |cos| local {mean_abs[0]:.3f}, global {mean_abs[1]:.3f}; "
        f"λ₁/λ₃₂ {spectrum.eigvals[0] / spectrum.eigvals[-1]:.3g}, target in top 32 modes {align:.2f}; "
        f"rel. error k={signal.freqs[0]}: {rel[0]:.2f}, k={signal.freqs[-1]}: {rel[-1]:.2f}"
    )


torch.manual_seed(0)
model = sine_network()
gram = sb.loss_gradient_gram(model, t[:8], y[:8])  # the full 8 × 8 ⟨∇ℓᵢ, ∇ℓⱼ⟩ matrix
print(
    f"a {sum(p.numel() for p in model.parameters())}-parameter sine network; Gram diagonal {gram.diag()[:3]}"
)
report(model, "at initialisation")
sb.train(model, t, y, sb.TrainConfig(epochs=150, lr=1e-4))
report(model, "after 150 epochs ")
