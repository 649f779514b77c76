"""Atomic writes and the run cache: nothing half-written, ever."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from specbias.results import (
    METRIC_COLUMNS,
    RunStore,
    atomic_write_bytes,
    csv_bytes,
    ensure_writable_dir,
    remove_stale_staging,
    replace_dir,
    staging_dir,
)
from specbias.runs import RunData
from tests.test_runner import tiny_configs


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a" / "f.txt"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_failed_atomic_write_leaves_old_content_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    atomic_write_bytes(target, b"old")

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_replace_dir_swaps_complete_directories(tmp_path):
    final = tmp_path / "E2"
    for content in (b"first", b"second"):
        stage = staging_dir(final)
        (stage / "x").write_bytes(content)
        replace_dir(stage, final)
    assert (final / "x").read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["E2"]


def test_stale_staging_of_dead_processes_is_removed(tmp_path):
    """Leftovers of a killed process go; a live process's staging directory stays."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    stale = tmp_path / f".abc.tmp-{int(dead.stdout)}-x1"
    stale.mkdir()
    (stale / "arrays.npz").write_bytes(b"half")
    live = staging_dir(tmp_path / "abc")
    assert remove_stale_staging(tmp_path) == [stale]
    assert not stale.exists() and live.is_dir()


def test_csv_has_tidy_header_and_exact_floats():
    text = csv_bytes([("E2", "raw01", 0, 3, "cos_local", "mean", 0.1 + 0.2)]).decode()
    header, row = text.strip().splitlines()
    assert tuple(header.split(",")) == METRIC_COLUMNS
    assert float(row.split(",")[-1]) == 0.1 + 0.2


def test_ensure_writable_dir_creates_missing(tmp_path):
    assert ensure_writable_dir(tmp_path / "x" / "y").is_dir()


def test_store_round_trip(tmp_path):
    cfg = tiny_configs(1)[0]
    store = RunStore(tmp_path)
    assert not store.has(cfg)
    data = RunData({"a/b": np.arange(3.0)}, {"seed": 0, "diverged_at": None})
    store.save(cfg, data)
    assert store.has(cfg)
    loaded = store.load(cfg)
    np.testing.assert_array_equal(loaded.arrays["a/b"], data.arrays["a/b"])
    assert loaded.meta == data.meta
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [cfg.key()]
