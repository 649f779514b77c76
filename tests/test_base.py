"""The checks every study's parameters share (experiments/base.py)."""

from __future__ import annotations

import pytest

from specbias.errors import ConfigError
from specbias.experiments.base import check_study


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inputs": ()}, "at least one input is needed"),
        ({"inputs": ("raw01", "raw01")}, "inputs must be distinct"),
        ({"inputs": ("nope",)}, "nope"),
        ({"mode": "loose"}, "mode must be 'clean' or 'faithful', got 'loose'"),
        ({"width": 0}, "width must be an integer >= 1, got 0"),
        ({"seeds": 2.5}, "seeds must be an integer >= 1, got 2.5"),
        ({"depth": True}, "depth must be an integer >= 1, got True"),
    ],
)
def test_check_study_names_the_bad_value(kwargs, message):
    args = {"inputs": ("raw01", "pe3"), **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_study(**args)


def test_check_study_accepts_a_valid_study():
    check_study(("raw01", "pe3"), width=128, depth=4, seeds=5)
