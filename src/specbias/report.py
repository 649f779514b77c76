"""The reproduction report: one self-contained HTML page built from experiment directories.

``build_report(out)`` reads every ``OUT/<EXP>/summary.json`` and its ``figures/*.png`` (embedded
as base64 data URIs, so the page works offline and opened from disk) and writes
``OUT/report.html`` atomically. Nothing in the page is hard-coded: each verdict is a finding the
experiment computed from its data, and "does not hold" is shown as plainly as "holds".
``specbias report OUT`` rebuilds it without re-running anything.
"""

from __future__ import annotations

import base64
import html
import json
import platform
from pathlib import Path
from typing import Any

from specbias import __version__
from specbias.errors import ConfigError
from specbias.results import atomic_write_bytes

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:right}th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
.holds{color:#176f2c;font-weight:600}.fails{color:#b3261e;font-weight:600}
.claim{font-style:italic;color:#444}img{max-width:100%;border:1px solid #eee;margin:.4em 0}
.env td{text-align:left}nav ul{columns:2}code{background:#f5f5f5;padding:0 .2em}
.summary-count{font-size:1.1em}
"""

HEADLINE_KEYS = (
    "final_loss",
    "hamming_local",
    "hamming_global",
    "cos_local_abs_mean",
    "cos_global_abs_mean",
    "regions_first",
    "regions_last",
    "dead_first",
    "dead_last",
    "norm_product_last",
    "boundary_input_mean_last",
    "psnr_last",
    "train_psnr",
    "test_psnr",
)


def _load_experiments(out: Path) -> list[dict[str, Any]]:
    found = []
    for summary in sorted(out.glob("*/summary.json")):
        data = json.loads(summary.read_text())
        data["_dir"] = summary.parent
        found.append(data)
    return found


def _sort_key(exp: dict[str, Any]) -> tuple:
    """E1, E2, …, E20, then X1, X2, … (ids compare by letter, then number, then suffix)."""
    eid = exp["experiment"]
    letter, rest = eid[0], eid[1:]
    digits = "".join(ch for ch in rest if ch.isdigit())
    return (letter != "E", int(digits or 0), rest)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _headline_table(inputs: dict[str, dict[str, Any]]) -> str:
    keys = [k for k in HEADLINE_KEYS if any(k in block for block in inputs.values())]
    if not keys:
        keys = sorted(
            {k for block in inputs.values() for k, v in block.items() if isinstance(v, (int, float))}
        )[:8]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for label, block in inputs.items():
        cells = []
        for k in keys:
            if k not in block:
                cells.append("<td>–</td>")
            elif f"{k}_std" in block:
                cells.append(f"<td>{_fmt(block[k])} ± {_fmt(block[f'{k}_std'])}</td>")
            else:
                cells.append(f"<td>{_fmt(block[k])}</td>")
        seeds = block.get("seeds", "")
        diverged = block.get("diverged")
        note = f" <span class='fails'>({len(diverged)} diverged)</span>" if diverged else ""
        rows.append(f"<tr><td>{html.escape(label)}{note}</td><td>{seeds}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>input</th><th>seeds</th>{head}</tr>{''.join(rows)}</table>"


def _findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<p>No computed finding applies to these inputs.</p>"
    items = []
    for f in findings:
        cls, word = ("holds", "holds") if f["holds"] else ("fails", "does not hold")
        items.append(
            f"<li><span class='{cls}'>{word}</span>: {html.escape(f['claim'])} "
            f"<small>({html.escape(f['detail'])})</small></li>"
        )
    return f"<ul>{''.join(items)}</ul>"


def _figures(folder: Path) -> str:
    parts = []
    for png in sorted((folder / "figures").glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        alt = html.escape(png.stem.replace("_", " "))
        parts.append(
            f"<figure><img alt='{alt}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{alt}</figcaption></figure>"
        )
    return "".join(parts)


def _section(exp: dict[str, Any]) -> str:
    eid = html.escape(exp["experiment"])
    held = sum(f["holds"] for f in exp.get("findings", []))
    total = len(exp.get("findings", []))
    meta = (
        f"profile <code>{html.escape(str(exp.get('profile')))}</code>, {exp.get('seeds')} seed(s), "
        f"compute {exp.get('compute_seconds', 0):.0f} s; data: <code>{eid}/metrics.csv</code>, "
        f"<code>{eid}/arrays.npz</code>, <code>{eid}/summary.json</code>"
    )
    return (
        f"<section id='{eid}'><h2>{eid}: {html.escape(exp.get('title', ''))}</h2>"
        f"<p class='claim'>Claim: {html.escape(exp.get('claim', ''))}</p><p>{meta}</p>"
        f"<h3>Findings ({held} of {total} hold)</h3>{_findings(exp.get('findings', []))}"
        f"<h3>Headline numbers (mean over seeds)</h3>{_headline_table(exp.get('inputs', {}))}"
        f"{_figures(exp['_dir'])}</section>"
    )


def _environment(exps: list[dict[str, Any]], extra: dict[str, Any]) -> str:
    import matplotlib
    import numpy
    import torch

    rows = {
        "specbias": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "machine": f"{platform.machine()}, {platform.system()}",
        **extra,
        "compute per experiment": ", ".join(
            f"{e['experiment']} {e.get('compute_seconds', 0):.0f} s" for e in exps
        ),
    }
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<table class='env'>{body}</table>"


def build_report(out: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``out/report.html`` from the experiment directories under ``out``."""
    out = Path(out)
    exps = sorted(_load_experiments(out), key=_sort_key)
    if not exps:
        raise ConfigError(
            f"no experiment results under {str(out)!r}; run 'specbias reproduce --out {out}' first"
        )
    held = sum(f["holds"] for e in exps for f in e.get("findings", []))
    total = sum(len(e.get("findings", [])) for e in exps)
    toc = "".join(
        f"<li><a href='#{html.escape(e['experiment'])}'>{html.escape(e['experiment'])}: "
        f"{html.escape(e.get('title', ''))}</a></li>"
        for e in exps
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>specbias reproduction report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>Spectral bias through training dynamics: reproduction report</h1>"
        "<p>Lazzari &amp; Liu (2023), <i>Understanding the Spectral Bias of Coordinate Based MLPs Via "
        "Training Dynamics</i>, reproduced and extended with <code>specbias</code>. Every verdict below is "
        "computed from the runs' data.</p>"
        f"<p class='summary-count'>{held} of {total} computed findings hold across {len(exps)} "
        "experiments.</p>"
        f"<h2>Environment</h2>{_environment(exps, extra or {})}"
        f"<nav><h2>Contents</h2><ul>{toc}</ul></nav>"
        f"{''.join(_section(e) for e in exps)}</body></html>"
    )
    path = out / "report.html"
    atomic_write_bytes(path, page.encode())
    return path
