"""Run every benchmark and print one line each: ``NAME: ratio=R.Rx baseline=B.BBs ours=O.OOs``.

``python benchmarks/run.py [NAME ...]`` runs the named modules only (see ``MODULES``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODULES = ("confusion", "trainer", "regions", "gram", "exact_regions", "ntk", "study1d", "e4", "inr")


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; allowed: {', '.join(MODULES)}", file=sys.stderr)
        return 2
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        for result in module.main():
            print(result.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
