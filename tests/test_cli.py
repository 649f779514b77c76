"""The command line: list, help texts, and one-line errors with exit code 2 and no output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from specbias.cli import build_parser, main
from specbias.experiments import EXPERIMENTS
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
        (["run", "E2", "--inputs", "rff0"], "sigma must be > 0"),
        (["run", "E2", "--inputs", "rff-2"], "sigma must be > 0"),
        (["run", "E2", "--epochs", "0"], "epochs must be >= 1"),
        (["run", "E2", "--lr", "-1"], "learning rate must be > 0"),
        (["run", "E2", "--seeds", "0"], "--seeds must be >= 1"),
        (["run", "E2", "--workers", "0"], "--workers must be >= 1"),
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
    assert proc.stderr.startswith("error: width must be")
    assert not (tmp_path / "o").exists()


def test_run_writes_the_documented_layout(tmp_path, capsys):
    assert main(["run", "E3", *TINY, "--inputs", "raw01,pe3", "--out", str(tmp_path), "--workers", "1"]) == 0
    folder = tmp_path / "E3"
    for name in ("config.json", "metrics.csv", "arrays.npz", "summary.json", "figures/hamming.png"):
        assert (folder / name).is_file(), name
    assert Path(folder / "figures/hamming.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "E3: 1D Hamming" in capsys.readouterr().out


# --------------------------------------------------------------------------- --data (E17-E19)


def _tiny_npz(path: Path) -> str:
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.integers(0, 256, (45, 8, 8)).astype(np.uint8), y=np.arange(45) % 3)
    return str(path)


def test_run_with_user_data(tmp_path, capsys):
    data = _tiny_npz(tmp_path / "tiny.npz")
    args = ["run", "E19", "--data", data, "--epochs", "2", "--width", "8", "--depth", "1", "--seeds", "1"]
    assert main([*args, "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "E19" / "summary.json").read_text())
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
