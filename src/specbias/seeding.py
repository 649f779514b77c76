"""Named random streams derived from one run seed.

Every random source of a run (signal, initialisation, batches, pair samplers, RFF matrix) draws
from its own stream, derived from ``(seed, name)``. Adding a probe therefore never shifts the
numbers another part of the run sees.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def stream_seed(seed: int, name: str) -> int:
    """A 63-bit integer seed for the stream ``name`` of run ``seed`` (stable across processes)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A NumPy generator for the stream ``name`` of run ``seed``."""
    return np.random.default_rng(stream_seed(seed, name))


def torch_generator(seed: int, name: str) -> torch.Generator:
    """A CPU torch generator for the stream ``name`` of run ``seed``."""
    gen = torch.Generator()
    gen.manual_seed(stream_seed(seed, name))
    return gen
