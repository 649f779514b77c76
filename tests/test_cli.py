"""The command line: list, help texts, and one-line errors with exit code 2 and no output."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from specbias import __version__, cli
from specbias.cli import build_parser, main
from specbias.cost import USABLE_FRACTION, run_memory
from specbias.experiments import EXPERIMENTS, get_experiment
from specbias.runner import SCHEDULER_TIMEOUT
from tests.conftest import TINY


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert "Traceback" not in err[0]
    return err[0]


def test_list_shows_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(EXPERIMENTS)


@pytest.mark.parametrize("command", [[], ["run"], ["reproduce"], ["list"]])
def test_help_explains_options_with_defaults(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    if command in (["run"], ["reproduce"]):
        for option in ("--profile", "--seeds", "--out", "--device", "--workers", "--force"):
            assert option in text
        assert "default: quick" in text and "default: results" in text and "default: cpu" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "E99"], "unknown experiment 'E99'"),
        (["run", "E2", "--width", "-4"], "width must be"),
        (["run", "E2", "--depth", "0"], "depth must be"),
        (["run", "E2", "--inputs", "pe-1"], "L must be >= 0"),
        (["run", "E2", "--inputs", "raw01,siren"], "unknown encoding 'siren'"),
        (["run", "E2", "--inputs", "rff0"], "sigma must be a finite number > 0"),
        (["run", "E2", "--inputs", "rff-2"], "sigma must be a finite number > 0"),
        (["run", "E2", "--epochs", "0"], "epochs must be an integer >= 1"),
        (["run", "E2", "--lr", "-1"], "learning rate must be a finite number > 0"),
        (["run", "E2", "--seeds", "0"], "--seeds must be an integer >= 1"),
        (["run", "E2", "--workers", "0"], "--workers must be an integer >= 1"),
        (["run", "E2", "--profile", "huge"], "invalid choice: 'huge'"),
        (["reproduce", "--only", "E2,nope"], "unknown experiment 'nope'"),
    ],
)
def test_bad_input_is_one_error_line_exit_2_and_writes_nothing(args, needle, tmp_path, capsys):
    out = tmp_path / "out"
    try:
        code = main([*args, "--out", str(out)])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    assert code == 2
    assert needle in _error_line(capsys)
    assert not out.exists()


def test_unwritable_out_is_an_error(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    assert main(["run", "E2", *TINY, "--out", str(blocker / "sub")]) == 2
    assert "is not writable" in _error_line(capsys)
    assert main(["run", "E2", *TINY, "--out", str(blocker)]) == 2
    assert "not a directory" in _error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_an_error(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "E2", *TINY, "--device", "cuda", "--out", str(out)]) == 2
    assert "CUDA is not available" in _error_line(capsys)
    assert not out.exists()


def test_error_from_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "specbias", "run", "E2", "--width", "-1", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: --width must be")
    assert not (tmp_path / "o").exists()


def test_run_writes_the_documented_layout(tmp_path, capsys):
    assert main(["run", "E3", *TINY, "--inputs", "raw01,pe3", "--out", str(tmp_path), "--workers", "1"]) == 0
    folder = tmp_path / "quick/E3"
    for name in ("config.json", "metrics.csv", "arrays.npz", "summary.json", "figures/hamming.png"):
        assert (folder / name).is_file(), name
    assert Path(folder / "figures/hamming.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "E3: 1D Hamming" in out
    verdicts = re.findall(r"^  \[([a-z ]+)\] ", out, flags=re.M)
    findings = json.loads((folder / "summary.json").read_text())["findings"]
    assert verdicts == [f["verdict"] for f in findings] and verdicts


# --------------------------------------------------------------------------- --data (E17-E19)


def _tiny_npz(path: Path) -> str:
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.integers(0, 256, (45, 8, 8)).astype(np.uint8), y=np.arange(45) % 3)
    return str(path)


def test_run_with_user_data(tmp_path, capsys):
    data = _tiny_npz(tmp_path / "tiny.npz")
    args = ["run", "E19", "--data", data, "--epochs", "2", "--width", "8", "--depth", "1", "--seeds", "1"]
    assert main([*args, "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "quick/E19" / "summary.json").read_text())
    assert summary["setup"]["dataset"] == "tiny" and summary["setup"]["n_train"] == 36
    assert set(summary["inputs"]) == {"mlp tiny", "cnn tiny"}
    assert "E19: Training and test curves" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "E17", "--data", "{missing}"], "no such file"),
        (["run", "E18", "--data", "{text}"], "is not a readable NumPy .npz archive"),
        (["run", "E19", "--data", "{nolabels}"], "lacks X or y"),
        (["run", "E2", "--data", "{nolabels}"], "--data does not apply to E2"),
        (["reproduce", "--only", "E2,E3", "--data", "{nolabels}"], "--data applies to E17, E18, E19"),
    ],
)
def test_bad_data_is_one_error_line(args, needle, tmp_path, capsys):
    files = {
        "missing": tmp_path / "missing.npz",
        "text": tmp_path / "notes.npz",
        "nolabels": tmp_path / "x.npz",
    }
    files["text"].write_text("hello")
    np.savez(files["nolabels"], X=np.zeros((4, 8, 8)))
    out = tmp_path / "out"
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    assert main([*argv, "--out", str(out)]) == 2
    assert needle in _error_line(capsys)
    assert not out.exists()


# --------------------------------------------------------------------------- refusals before anything runs


def _refuse(args: list[str], tmp_path, capsys) -> tuple[str, float]:
    """Run the CLI in-process; return its one error line and the seconds it took (exit 2, nothing
    written, no traceback)."""
    out = tmp_path / "out"
    start = time.perf_counter()
    try:
        code = main([*args, "--out", str(out)])
    except SystemExit as exc:
        code = exc.code
    seconds = time.perf_counter() - start
    assert code == 2
    assert not out.exists()
    return _error_line(capsys), seconds


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "E2", "--width", "1000000000"], "--width 1000000000 is more than planning accepts"),
        (["run", "E2", "--n", "1000000000"], "--n 1000000000 is more than planning accepts"),
        (["run", "E2", "--seeds", "1000000"], "--seeds 1000000 is more than planning accepts"),
        (["run", "E5", "--size", "100000"], "--size 100000 is more than planning accepts"),
        (["run", "E2", "--epochs", "1000000000"], "--epochs 1000000000 is more than planning accepts"),
        (["run", "E2", "--workers", "100000"], "--workers 100000 is more than planning accepts"),
        (["reproduce", "--seeds", "1000000"], "--seeds 1000000 is more than planning accepts"),
        (["run", "E5", "--size", "1024"], "image size 1024 exceeds the 512-pixel centre crop"),
    ],
)
def test_absurd_counts_are_refused_before_any_run_is_listed(args, needle, tmp_path, capsys):
    line, seconds = _refuse(args, tmp_path, capsys)
    assert needle in line
    assert seconds < 5, f"took {seconds:.1f} s"  # listing a million runs takes minutes


@pytest.fixture
def eight_gb(monkeypatch):
    """This machine has 8 GB available, whatever it really has (the checks are deterministic)."""
    monkeypatch.setattr(cli, "available_memory", lambda device="cpu": 8e9)


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["run", "E2", "--width", "60000"], "--width"),  # 4 x 60000^2 weights
        (["run", "E2", "--n", "10000000"], "--n"),  # full-batch activations of 10^7 points
        (["run", "E5", "--width", "2048", "--size", "300"], "--size"),
        (["run", "E17", "--width", "20000", "--depth", "2"], "--width"),  # counted, never built
    ],
)
def test_a_run_that_cannot_fit_is_one_line_naming_it_its_estimate_and_what_fits(
    args, what, eight_gb, tmp_path, capsys
):
    line, _ = _refuse(args, tmp_path, capsys)
    assert line.startswith(f"error: run {args[1]} ")
    assert "needs about" in line and "GB of memory" in line and "8.00 GB is available" in line
    assert f"what would fit: {what} " in line or f"or {what} " in line


def test_sweep_that_fits_only_on_fewer_workers_uses_fewer_and_says_so(monkeypatch, tmp_path, capsys):
    args = ["run", "E3", *TINY, "--inputs", "raw01,pe3", "--workers", "2", "--out", str(tmp_path)]
    plans = [cli.plan(get_experiment("E3"), "quick", 2, {"epochs": 30, "n": 256, "width": 16})]
    one = max(run_memory(c).host for c in plans[0].configs)
    monkeypatch.setattr(cli, "available_memory", lambda device="cpu": 1.5 * one / USABLE_FRACTION)
    calls = []
    monkeypatch.setattr(cli, "execute", lambda plans, out, **kw: calls.append(kw) or [])
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "note: using 1 worker(s) instead of 2" in err
    assert calls[0]["workers"] == 1


@pytest.mark.parametrize("command", [["run", "E2"], ["reproduce", "--only", "E2,E3"]])
def test_over_an_hour_needs_yes_at_every_profile(command, monkeypatch, tmp_path, capsys):
    slow = [*command, "--seeds", "200"]  # quick profile: 800 runs of 500 epochs, hours on 2 cores
    line, _ = _refuse(slow, tmp_path, capsys)
    assert "estimated at" in line and "re-run with --yes to start" in line
    calls = []
    monkeypatch.setattr(cli, "execute", lambda plans, out, **kw: calls.append(kw) or [])
    monkeypatch.setattr(cli, "build_report", lambda out, extra=None: out / "report.html")
    assert main([*slow, "--yes", "--out", str(tmp_path / "yes"), "--no-progress"]) == 0
    assert len(calls) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("estimated training: about") and "peak memory" in err[0]


def test_every_check_runs_before_anything_is_printed(tmp_path, capsys):
    """A bad value found late (the output directory) still gives exactly one line."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["run", "E2", *TINY, "--out", str(blocker)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_refused_dask_scheduler_is_one_line_naming_the_address(tmp_path, capsys):
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nobody listens at once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    line, seconds = _refuse(["run", "E2", "--executor", "dask", "--scheduler", address], tmp_path, capsys)
    assert f"cannot reach the Dask scheduler at {address}" in line
    assert seconds < SCHEDULER_TIMEOUT


@pytest.mark.parametrize("kind", ["directory", "unreadable"])
def test_an_image_path_that_is_not_a_readable_file_says_what_it_is(kind, tmp_path, capsys):
    path = tmp_path / "some_folder"
    if kind == "directory":
        path.mkdir()
        needle = "is a directory, not a file"
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        path.write_bytes(b"\x89PNG")
        path.chmod(0)
        needle = "cannot be read (permission denied)"
    line, _ = _refuse(["run", "E5", "--images", str(path)], tmp_path, capsys)
    assert f"image file {str(path)!r} {needle}" in line


def test_data_path_that_is_a_directory_says_so(tmp_path, capsys):
    line, _ = _refuse(["run", "E17", "--data", str(tmp_path)], tmp_path, capsys)
    assert "is a directory, not a file" in line


def test_installed_version_is_the_package_version():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    assert importlib.metadata.version("specbias") == __version__
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "specbias.__version__"}


# --------------------------------------------------------------------------- --dry-run (issue 12, item 3)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", "E3", *TINY, "--inputs", "raw01,pe3", "--workers", "1", "--out", str(out)]
    assert main([*args, "--dry-run"]) == 0
    assert not out.exists()
    text = capsys.readouterr().out
    assert "4 distinct run(s): 0 cached, 4 to train" in text
    assert "E3" in text and "time: about" in text and "on cuda instead" in text
    assert "peak memory:" in text and "per worker" in text
    assert text.strip().endswith("dry run: nothing was trained or written")
    assert main(args) == 0  # train them, then the plan finds them cached
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    assert "4 distinct run(s): 4 cached, 0 to train" in capsys.readouterr().out


def test_dry_run_of_the_paper_profile_for_cuda_needs_no_gpu_and_no_yes(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["reproduce", "--profile", "paper", "--only", "E4b,E2", "--device", "cuda", "--out", str(out)]
    assert main([*args, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "GPU memory" in text and "on cpu instead" in text
    assert "would stop: over 1 h of estimated training" not in text or "--yes" in text


def test_dry_run_still_refuses_bad_values(tmp_path, capsys):
    line, _ = _refuse(["run", "E2", "--width", "-1", "--dry-run"], tmp_path, capsys)
    assert "width must be" in line


def test_dry_run_reports_what_would_stop_a_real_run(eight_gb, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "E2", "--width", "60000", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "would stop: run E2 " in text and "what would fit: --width" in text
    assert not out.exists()
    assert main(["run", "E2", "--seeds", "200", "--dry-run", "--out", str(out)]) == 0
    assert "would stop: over 1 h of estimated training; starting it needs --yes" in capsys.readouterr().out
    # a real-data run's time comes from its built model: one that cannot fit is left out
    assert main(["run", "E17", "--width", "20000", "--depth", "2", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "would stop: run E17 mlp" in text and "that cannot fit are left out of the times" in text


def test_runs_lost_with_a_dask_worker_are_one_line_exit_1(monkeypatch, tmp_path, capsys):
    from specbias.runner import RunsLost

    def lose(plans, out, **kw):
        raise RunsLost(plans[0].configs[:1])

    monkeypatch.setattr(cli, "execute", lose)
    assert main(["run", "E3", *TINY, "--inputs", "raw01", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: 1 run(s) were lost with their Dask worker (raw01 seed 0)")
    assert "Traceback" not in "".join(err)
