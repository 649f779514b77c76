"""Shared fixtures: a throwaway matplotlib config dir and tiny study settings."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="specbias-mpl-"))

# Small enough for seconds, large enough for every sampler: N = 256 samples, 30 epochs.
TINY = ["--epochs", "30", "--n", "256", "--width", "16", "--seeds", "2", "--no-progress"]
