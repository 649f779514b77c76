"""Study parameters that derive their command-line overrides from one declaration.

Each override is declared once in :data:`OPTIONS` (its command-line type and help, from which
``specbias run`` builds its ``--epochs``, ``--lr``, … options) and, per study, in the study's
``OVERRIDES``: the dotted paths in its parameter dataclass that the value sets. ``override()`` then
sets those paths; the dataclass's own ``__post_init__`` validates the result, so a bad value is the
same one-line error from the command line and from Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from specbias.encodings import INPUT_GRAMMAR


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list as a tuple (blank items dropped)."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


@dataclass(frozen=True)
class Option:
    """A command-line override: how the text is parsed, its help, and its choices (if any)."""

    parse: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None


OPTIONS: dict[str, Option] = {
    "epochs": Option(int, "training epochs"),
    "lr": Option(float, "learning rate"),
    "width": Option(int, "hidden units per layer"),
    "depth": Option(int, "number of hidden layers"),
    "n": Option(int, "number of 1D samples on [0,1) (1D experiments)"),
    "size": Option(int, "image side in pixels (2D experiments)"),
    "images": Option(
        _names,
        "comma-separated scikit-image names or PNG/JPEG paths (natural-image experiments); "
        "seed s uses image s mod count",
    ),
    "inputs": Option(
        _names,
        f"comma-separated inputs from: {INPUT_GRAMMAR} (1D 'pe<L>': L = largest exponent; "
        "2D: L = number of octaves)",
    ),
    "mode": Option(
        str,
        "clean fixes the reference's quirks; faithful mirrors its samplers and shared phases",
        ("clean", "faithful"),
    ),
}
"""Every override the command line offers (``--data`` is the real-data file option, declared with
the dataset loader)."""

TRAIN: dict[str, tuple[str, ...]] = {"epochs": ("train.epochs",), "lr": ("train.lr",)}
NETWORK: dict[str, tuple[str, ...]] = {"width": ("width",), "depth": ("depth",)}

_P = TypeVar("_P", bound="Overridable")


def replace_at(obj: Any, path: str, value: Any) -> Any:
    """``dataclasses.replace`` along a dotted ``path`` (``"train.epochs"``); a ``*`` step maps over
    the items of a tuple (``"images.*.size"``)."""
    head, _, rest = path.partition(".")
    if head == "*":
        return tuple(replace_at(item, rest, value) for item in obj)
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: replace_at(getattr(obj, head), rest, value)})


class Overridable:
    """Mixin for frozen parameter dataclasses: ``OVERRIDES`` maps each override it accepts to the
    dotted paths the value sets. A study whose override does more than set paths (a mode that also
    changes the batching) extends :meth:`apply` for that name."""

    OVERRIDES: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def override(self: _P, **changes: Any) -> _P:
        """A copy with every given override (None: not given) applied in turn."""
        out = self
        for name, value in changes.items():
            if value is not None:
                out = out.apply(name, tuple(value) if isinstance(value, list) else value)
        return out

    def apply(self: _P, name: str, value: Any) -> _P:
        """A copy with override ``name`` set to ``value`` at each of its paths."""
        out = self
        for path in self.OVERRIDES[name]:
            out = replace_at(out, path, value)
        return out
