"""specbias: see spectral bias in coordinate-based MLPs through their training dynamics."""

__version__ = "0.1.0"
