"""The input checks every layer shares: an integer, a positive number, a flag.

Both raise :class:`~specbias.errors.ConfigError` with one line naming the value and what is allowed,
which the command line prints as ``error: …`` with exit code 2.
"""

from __future__ import annotations

import math
import numbers

from specbias.errors import ConfigError


def check_int(name: str, value: object, least: int = 1) -> None:
    """ConfigError unless ``value`` is an integer (Python or NumPy; a bool is not) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ConfigError(f"{name} must be an integer >= {least}, got {value!r}")


def check_positive(name: str, value: object) -> None:
    """ConfigError unless ``value`` is a finite real number above 0 (a bool is not)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def check_flag(name: str, value: object) -> None:
    """ConfigError unless ``value`` is True or False (a 0/1 or a string is not)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
