"""Results on disk: atomic writes, the run cache and experiment directories.

Layout under an output directory ``DIR``::

    DIR/runs/<key>/{config.json, meta.json, arrays.npz}   one finished training run (cache)
    DIR/<EXP>/config.json       resolved experiment parameters and the runs it used
    DIR/<EXP>/metrics.csv       tidy rows: experiment,input,seed,epoch,metric,key,value
    DIR/<EXP>/arrays.npz        raw arrays behind the figures
    DIR/<EXP>/figures/*.png
    DIR/<EXP>/summary.json      headline numbers and computed findings

Every file is written to a temporary name and renamed into place; a run or experiment directory
is assembled under a temporary name and renamed whole. A process killed at any moment therefore
leaves either the previous complete state or the new complete state, never half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from specbias.errors import ConfigError
from specbias.runs import RunConfig, RunData

METRIC_COLUMNS = ("experiment", "input", "seed", "epoch", "metric", "key", "value")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def csv_bytes(rows: Iterable[tuple]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in rows:
        writer.writerow(_fmt(v) for v in row)
    return buf.getvalue().encode()


def _fmt(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return value


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check a file can be written there (ConfigError if not)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {str(path)!r} is not writable: {exc.strerror or exc}") from None
    return path


def replace_dir(staging: Path, final: Path) -> None:
    """Move a fully written ``staging`` directory to ``final``, replacing any old one."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def staging_dir(final: Path) -> Path:
    """A fresh hidden directory beside ``final`` whose name carries this process's id, so a
    later run can tell the leftovers of a killed process (:func:`remove_stale_staging`)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_staging(folder: Path) -> list[Path]:
    """Delete staging directories in ``folder`` left by processes that no longer run (a run killed
    with SIGKILL cannot clean up after itself); those of live processes are kept. Returns them."""
    removed = []
    for path in Path(folder).glob(".*.tmp-*-*"):
        pid = path.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class RunStore:
    """The run cache: one directory per finished run, named by the run config's key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "runs"

    def path(self, cfg: RunConfig) -> Path:
        return self.root / cfg.key()

    def has(self, cfg: RunConfig) -> bool:
        return (self.path(cfg) / "arrays.npz").is_file()

    def save(self, cfg: RunConfig, data: RunData) -> None:
        final = self.path(cfg)
        tmp = staging_dir(final)
        try:
            (tmp / "config.json").write_text(json.dumps(cfg.to_json(), indent=2, sort_keys=True))
            (tmp / "meta.json").write_text(json.dumps(data.meta, indent=2, sort_keys=True))
            (tmp / "arrays.npz").write_bytes(npz_bytes(data.arrays))
            replace_dir(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def load(self, cfg: RunConfig) -> RunData:
        folder = self.path(cfg)
        with np.load(folder / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        return RunData(arrays, json.loads((folder / "meta.json").read_text()))
