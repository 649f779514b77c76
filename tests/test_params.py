"""Study parameters derive their overrides: dotted paths, hooks, and the command line's options."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from specbias.cli import build_parser
from specbias.errors import ConfigError
from specbias.experiments import EXPERIMENTS
from specbias.experiments.params import OPTIONS, Overridable, replace_at
from specbias.training import TrainConfig


@dataclasses.dataclass(frozen=True)
class _Leaf:
    size: int = 1


@dataclasses.dataclass(frozen=True)
class _Study(Overridable):
    train: TrainConfig = TrainConfig(epochs=5)
    leaves: tuple[_Leaf, ...] = (_Leaf(), _Leaf(2))
    inputs: tuple[str, ...] = ("raw01",)

    OVERRIDES: ClassVar = {"epochs": ("train.epochs",), "size": ("leaves.*.size",), "inputs": ("inputs",)}


def test_replace_at_follows_dotted_paths_and_maps_stars_over_tuples():
    study = _Study()
    assert replace_at(study, "train.epochs", 9).train.epochs == 9
    assert replace_at(study, "leaves.*.size", 4).leaves == (_Leaf(4), _Leaf(4))
    assert study.train.epochs == 5  # frozen: a copy


def test_override_applies_given_values_only_and_validates_through_the_dataclass():
    study = _Study()
    out = study.override(epochs=3, size=None, inputs=["pe6", "raw01"])
    assert out.train.epochs == 3 and out.leaves == study.leaves and out.inputs == ("pe6", "raw01")
    with pytest.raises(ConfigError, match="epochs must be an integer >= 1"):
        study.override(epochs=0)  # TrainConfig's own check


def test_every_override_an_experiment_accepts_is_a_command_line_option():
    parser = build_parser()
    run = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith(" run"))
    flags = {s for action in run._actions for s in action.option_strings}
    for exp in EXPERIMENTS.values():
        for profile in exp.profiles:
            for name in getattr(exp.params(profile), "OVERRIDES", ()):
                assert name in OPTIONS or name == "data", (exp.id, name)
                assert f"--{name}" in flags
