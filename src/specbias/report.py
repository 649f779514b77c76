"""The reproduction report: one self-contained HTML page built from every result set under OUT.

A result set is one profile's experiments: ``OUT/<profile>/<EXP>/summary.json`` (and older flat
``OUT/<EXP>/summary.json``, grouped by the profile they record), with the environment of the
profile's last ``reproduce`` in ``OUT/<profile>/invocation.json``. ``build_report(out)`` embeds
every ``figures/*.png`` as a base64 data URI (the page works offline and opened from disk) and
writes ``OUT/report.html`` atomically. The page opens with a scorecard, one column per profile
(every claim's verdict, effect, interval and the scale it was judged at, see :func:`scorecard`);
a claim whose verdict differs between scales is marked scale-sensitive, with its direction. Then
comes one section per experiment and profile. Nothing in the page is hard-coded: each verdict is a
finding the experiment computed from its data. ``specbias report OUT`` rebuilds it without
re-running anything.
"""

from __future__ import annotations

import base64
import html
import json
import platform
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbias import __version__
from specbias.errors import ConfigError
from specbias.experiments.base import PROFILES
from specbias.pipeline import result_dir
from specbias.results import atomic_write_bytes, atomic_write_json

OUTCOMES = ("holds", "contradicted", "inconclusive", "not measurable")
"""The four verdicts of a finding, in the order the report counts them."""

OLD_BOOLEAN = "old boolean"
"""A 0.2.0 finding whose boolean ``holds`` is False: contradicted and unmeasurable look alike."""

INVOCATION = "invocation.json"
"""Per result set: the environment of the profile's last ``reproduce`` (device, workers, wall time)."""

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45;overflow-wrap:break-word}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:right;vertical-align:top}th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
.claim{font-style:italic;color:#444}figure{margin:.8em 0}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0}
.env td{text-align:left;overflow-wrap:anywhere}code{background:#f5f5f5;padding:0 .2em;overflow-wrap:anywhere}
.muted{color:#666}.small{font-size:.82em}
.badge{display:inline-block;padding:0 .55em;border-radius:1em;border:2px solid;font-size:.85em;
font-weight:600;white-space:nowrap;line-height:1.5}
.b-holds{background:#1b6e34;border-color:#1b6e34;color:#fff}
.b-contradicted{background:#fff;border-color:#b3261e;color:#b3261e}
.b-inconclusive{background:#fff1c2;border-color:#8a6100;border-style:dashed;color:#5c4100}
.b-unmeasurable{background:#fff;border-color:#888;border-style:dotted;color:#555;font-style:italic}
.b-old{background:#eee;border-color:#eee;color:#444;font-weight:500;white-space:normal;border-radius:.4em}
.counts{font-size:1.05em;margin:.4em 0}.counts .badge{margin-right:.25em}
.legend{list-style:none;padding:0;font-size:.9em}.legend li{margin:.2em 0}
table.scorecard{table-layout:fixed;width:100%}
.scorecard col.c-verdict{width:11.5em}.scorecard col.c-effect{width:15.5em}.scorecard col.c-n{width:3.2em}
.scorecard td,.scorecard th{overflow-wrap:anywhere}
.scorecard thead th{text-align:left}
.scorecard tr.group th{background:#eef1f5;text-align:left;font-weight:600;padding-top:.45em}
.scorecard tr.group td{background:#eef1f5;text-align:left;font-size:.85em;color:#333}
.scorecard td.v{text-align:left}
.scorecard td.v-holds{background:#eaf5ee}.scorecard td.v-contradicted{background:#fcebea}
.scorecard td.v-inconclusive{background:#fff8e1}.scorecard td.v-unmeasurable{background:#f4f4f4}
.scorecard td.v-old{background:#f7f7f7}
.scorecard td.eff{font-variant-numeric:tabular-nums}.nw{white-space:nowrap}
.count.zero{opacity:.5}
.why{font-size:.8em;color:#666;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;
overflow:hidden;cursor:help}.why:hover{-webkit-line-clamp:unset;overflow:visible}
.thr{font-size:.78em;color:#666}
ul.findings{padding-left:1.2em}ul.findings li{margin:.45em 0}
.fmeta,.detail{font-size:.85em;color:#555}.detail{color:#777}
.headline td:not(:first-child){white-space:nowrap}.warn{color:#b3261e;font-weight:600}
.back{font-size:.85em;font-weight:400;margin-left:.6em}
.scorecard tr.scale-sensitive td:first-child{border-left:5px double #222}
.ss{font-size:.8em;font-weight:600;color:#222}.scale-line{margin:.4em 0}
.worded{font-size:.8em;color:#444;font-style:italic}
.env tr.profile td{font-weight:600;background:#f5f5f5}
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


@dataclass(frozen=True)
class _Look:
    css: str
    symbol: str
    label: str


_LOOKS = {
    "holds": _Look("holds", "✓", "holds"),
    "contradicted": _Look("contradicted", "✗", "contradicted"),
    "inconclusive": _Look("inconclusive", "?", "inconclusive"),
    "not measurable": _Look("unmeasurable", "∅", "not measurable"),
    OLD_BOOLEAN: _Look("old", "–", "does not hold (old boolean)"),
}

_OLD_REASON = "0.2.0 summary: a boolean judged on means only; no effect, interval or reason recorded"


def verdict_of(finding: Mapping[str, Any]) -> str:
    """The finding's verdict: one of :data:`OUTCOMES`; for a 0.2.0 finding (a boolean only) "holds"
    or :data:`OLD_BOOLEAN`, since an old False cannot tell contradicted from unmeasurable."""
    verdict = finding.get("verdict")
    if verdict is None:
        return "holds" if finding.get("holds") else OLD_BOOLEAN
    return str(verdict)


def _look(verdict: str) -> _Look:
    return _LOOKS.get(verdict, _Look("old", "–", verdict))


def _badge(verdict: str) -> str:
    look = _look(verdict)
    return f"<span class='badge b-{look.css}'>{look.symbol} {html.escape(look.label)}</span>"


def count_outcomes(findings: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """How many findings got each verdict (:func:`verdict_of`)."""
    return Counter(verdict_of(f) for f in findings)


def _counts(findings: Sequence[Mapping[str, Any]]) -> str:
    """ "N holds · N contradicted · N inconclusive · N not measurable" (+ old booleans, if any)."""
    counts = count_outcomes(findings)
    shown = list(OUTCOMES) + [v for v in counts if v not in OUTCOMES]
    parts = [
        f"<span class='count{'' if counts[v] else ' zero'}' data-outcome='{html.escape(v)}'>"
        f"<span class='badge b-{_look(v).css}'>{_look(v).symbol}</span> <b>{counts[v]}</b> "
        f"{html.escape(_look(v).label)}</span>"
        for v in shown
    ]
    return " · ".join(parts)


def _signed(value: Any) -> str:
    return f"{value:+.3g}" if isinstance(value, (int, float)) else html.escape(str(value))


def _effect(finding: Mapping[str, Any]) -> str:
    """``+0.12 [+0.05, +0.19]``; "—" when there is no effect."""
    effect = finding.get("effect")
    if effect is None:
        return "—"
    interval = finding.get("interval")
    text = f"<span class='nw'>{_signed(effect)}</span>"
    if interval:
        text += f" <span class='nw'>[{_signed(interval[0])}, {_signed(interval[1])}]</span>"
    else:
        text += " <span class='muted small'>(no interval)</span>"
    return text


def _threshold(finding: Mapping[str, Any]) -> str:
    name, value = finding.get("threshold_name"), finding.get("threshold")
    if value is None:
        return ""
    return f"{html.escape(str(name or 'threshold'))} = {value:g}"


def _reason(finding: Mapping[str, Any]) -> str:
    if "verdict" not in finding:
        return _OLD_REASON
    return str(finding.get("reason") or "")


def _n(finding: Mapping[str, Any]) -> str:
    """The number of seeds behind the effect; "—" where none is (0 for a claim not measurable)."""
    return html.escape(str(finding["n"])) if finding.get("n") else "—"


def _span(values: Any, unit: str = "") -> str | None:
    """A list of scale values as text: all of them when few, else first … last (count)."""
    if values is None:
        return None
    values = [values] if isinstance(values, (str, int, float)) else list(values)
    if not values:
        return None
    text = ", ".join(map(str, values)) if len(values) <= 3 else f"{values[0]} … {values[-1]} ({len(values)})"
    return text + unit


def scale_text(summary: Mapping[str, Any]) -> str:
    """The scale an experiment's claims were judged at: profile · grid or N · network · epochs · seeds."""
    scale = summary.get("scale") or {}
    seeds = scale.get("seeds", summary.get("seeds"))
    parts = [
        _span(scale.get("profile", summary.get("profile"))),
        _span(scale.get("points")),
        _span(scale.get("network")),
        _span(scale.get("epochs"), " epochs"),
        None if seeds is None else f"{seeds} seed{'' if seeds == 1 else 's'}",
    ]
    text = " · ".join(html.escape(p) for p in parts if p)
    if not scale:
        text += " <span class='muted'>(grid, network and epochs not recorded)</span>"
    return text


def _id_key(eid: str) -> tuple:
    """E1, E2, …, E20, then X1, X2, … (ids compare by letter, then number, then suffix)."""
    letter, rest = eid[:1], eid[1:]
    digits = "".join(ch for ch in rest if ch.isdigit())
    return (letter != "E", int(digits or 0), rest)


def _sort_key(exp: Mapping[str, Any]) -> tuple:
    return _id_key(exp["experiment"])


def _claim_keys(findings: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(claim text, occurrence): a key that tells apart two findings with the same text."""
    seen: Counter[str] = Counter()
    keys = []
    for f in findings:
        keys.append((f["claim"], seen[f["claim"]]))
        seen[f["claim"]] += 1
    return keys


def section_id(profile: str, eid: str, multi: bool) -> str:
    """The anchor of an experiment's section: its id alone when the page has one result set, else
    ``<profile>-<id>`` (each experiment has a section per profile)."""
    return f"{profile}-{eid}" if multi else eid


def _by_experiment(
    columns: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
) -> list[tuple[str, list[Mapping[str, Any] | None]]]:
    """Each experiment id (in id order) with its summary per column, None where a column lacks it."""
    tables = [{s["experiment"]: s for s in summaries} for _, summaries in columns]
    ids = sorted({eid for t in tables for eid in t}, key=_id_key)
    return [(eid, [t.get(eid) for t in tables]) for eid in ids]


_SIZED = re.compile(r"\b(?:pe|rff)\d+\b|\b\d+x\d+\b|\b\d+ epochs\b")
"""The parts of a claim's text that name a profile's sizes: the PE or RFF input it reads (quick's
top PE is 8 where standard's is 16), a network (2x64 / 2x128) or an epoch count."""


def claim_shape(claim: str) -> str:
    """A claim's text with the profile's sizes blanked (:data:`_SIZED`): the same claim at two scales."""
    return _SIZED.sub("·", claim)


def _aligned(
    present: Sequence[Mapping[str, Any] | None],
) -> list[tuple[str, list[Mapping[str, Any] | None]]]:
    """Each claim of one experiment (first seen first) with its finding per column, None where a
    column lacks it. Claims match by :func:`_claim_keys` (text and occurrence); then claims that
    one scale words with its own sizes ("pe8" at quick, "pe16" at standard) match in order by
    :func:`claim_shape`, never two findings of one column into one row. The text shown is the
    largest scale's."""
    by_key = [
        dict(zip(_claim_keys(s.get("findings", [])), s.get("findings", []))) if s else {} for s in present
    ]
    rows = [[table.get(key) for table in by_key] for key in dict.fromkeys(k for t in by_key for k in t)]
    merged: list[list[Mapping[str, Any] | None]] = []
    for cells in rows:
        target = next((m for m in merged if None in cells and _joins(m, cells)), None)
        if target is None:
            merged.append(cells)
        else:
            target[:] = [a if a is not None else b for a, b in zip(target, cells)]
    return [(next(f for f in reversed(cells) if f is not None)["claim"], cells) for cells in merged]


def _joins(row: Sequence[Mapping[str, Any] | None], cells: Sequence[Mapping[str, Any] | None]) -> bool:
    """Whether a partial row of findings can take ``cells``: the columns they fill are disjoint
    and their claims have one shape."""
    if any(a is not None and b is not None for a, b in zip(row, cells)):
        return False
    shapes = {claim_shape(f["claim"]) for f in (*row, *cells) if f is not None}
    return len(shapes) == 1


def _judged(labels: Sequence[str], findings: Sequence[Mapping[str, Any] | None]) -> list[tuple[str, str]]:
    """(profile, verdict) per column whose finding has one of :data:`OUTCOMES`: a claim missing at
    a scale, or a 0.2.0 boolean (judged on means only), is nothing to compare."""
    return [
        (label, str(f["verdict"]))
        for label, f in zip(labels, findings)
        if f is not None and f.get("verdict") in OUTCOMES
    ]


def scale_change(labels: Sequence[str], findings: Sequence[Mapping[str, Any] | None]) -> str | None:
    """How a claim's verdict moves with scale, every judged column in order, e.g. "inconclusive at
    quick → holds at standard"; None when its judged verdicts agree (or fewer than two judge it)."""
    judged = _judged(labels, findings)
    if len({verdict for _, verdict in judged}) < 2:
        return None
    return " → ".join(f"{verdict} at {label}" for label, verdict in judged)


def _scale_line(columns: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> str:
    """ "N of M claims judged at more than one scale change verdict with scale", then how many
    moved in each direction (most first)."""
    labels = [label for label, _ in columns]
    judged = 0
    changes: Counter[str] = Counter()
    for _, present in _by_experiment(columns):
        for _, findings in _aligned(present):
            if len(_judged(labels, findings)) > 1:
                judged += 1
                if change := scale_change(labels, findings):
                    changes[change] += 1
    directions = " · ".join(
        f"{n} {html.escape(change)}" for change, n in sorted(changes.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return (
        f"<p class='scale-line' data-changed='{changes.total()}' data-judged='{judged}'>"
        f"<b>↕ {changes.total()} of {judged}</b> claims judged at more than one scale change verdict "
        f"with scale{': ' + directions if directions else ''}. Such a claim is marked "
        "<b>scale-sensitive</b> in the scorecard (a 0.2.0 boolean or a claim missing at a scale is not "
        "compared).</p>"
    )


def scorecard(columns: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> str:
    """The scorecard table: every claim of every experiment, grouped by experiment, with one verdict
    column group (verdict, effect [95 % interval], n) per ``(profile, summaries)`` column, the
    columns in scale order (smallest first).

    Each experiment's group row links to its section and gives, per column, the scale its claims
    were judged at (with several columns, linked to that profile's section). A claim is matched
    across columns by :func:`_claim_keys`; a column without it shows "—". A claim whose verdict
    differs between columns is marked scale-sensitive, with the direction (:func:`scale_change`).
    """
    labels = [label for label, _ in columns]
    multi = len(columns) > 1
    width = 1 + 3 * len(columns)
    cols = "<col class='c-claim'>" + "".join(
        "<col class='c-verdict'><col class='c-effect'><col class='c-n'>" for _ in columns
    )
    sub = "<th>Verdict</th><th>Effect [95 % interval]</th><th>n</th>"
    if multi:
        head = (
            "<tr><th rowspan='2'>Claim</th>"
            + "".join(f"<th colspan='3'>{html.escape(label)}</th>" for label in labels)
            + f"</tr><tr>{sub * len(columns)}</tr>"
        )
    else:
        head = f"<tr><th>Claim</th>{sub}</tr>"
    bodies = []
    for eid, present in _by_experiment(columns):
        rows = [_group_row(eid, labels, present)]
        claims = _aligned(present)
        rows += [_scorecard_row(claim, findings, labels) for claim, findings in claims]
        if not claims:
            rows.append(f"<tr><td colspan='{width}' class='muted'>No computed finding.</td></tr>")
        bodies.append(f"<tbody>{''.join(rows)}</tbody>")
    style = f" style='min-width:{24 + 27.2 * len(columns):.0f}em'" if multi else ""
    return (
        f"<div class='scroll'><table class='scorecard'{style}><colgroup>{cols}</colgroup>"
        f"<thead>{head}</thead>{''.join(bodies)}</table></div>"
    )


def _group_row(eid: str, labels: Sequence[str], present: Sequence[Mapping[str, Any] | None]) -> str:
    """An experiment's row: its id, linked to its section at the largest scale that ran it, and
    title; then per column the scale it was judged at (linked to that column's section)."""
    multi = len(labels) > 1
    ran = [(label, s) for label, s in zip(labels, present) if s is not None]
    top_label, top = ran[-1]
    cells = []
    for label, s in zip(labels, present):
        text = scale_text(s) if s else "<span class=muted>not run</span>"
        if s and multi:
            text = f"<a href='#{html.escape(section_id(label, eid, multi))}'>{text}</a>"
        cells.append(f"<td colspan='3'>{text}</td>")
    return (
        f"<tr class='group'><th><a href='#{html.escape(section_id(top_label, eid, multi))}'>"
        f"{html.escape(eid)}</a> {html.escape(top.get('title', ''))}</th>{''.join(cells)}</tr>"
    )


def _scorecard_row(claim: str, findings: Sequence[Mapping[str, Any] | None], labels: Sequence[str]) -> str:
    multi = len(labels) > 1
    reasons = []
    cells = []
    for label, f in zip(labels, findings):
        if f is None:
            cells.append("<td class='v muted'>—</td><td class='eff'></td><td></td>")
            continue
        verdict = verdict_of(f)
        reason = _reason(f)
        if reason:
            reasons.append(f"{label}: {reason}" if multi else reason)
        thr = _threshold(f)
        cells.append(
            f"<td class='v v-{_look(verdict).css}' title='{html.escape(reason)}' "
            f"data-verdict='{html.escape(verdict)}'>{_badge(verdict)}</td>"
            f"<td class='eff'>{_effect(f)}" + (f"<div class='thr'>{thr}</div>" if thr else "") + "</td>"
            f"<td>{_n(f)}</td>"
        )
    why = "; ".join(reasons)
    why_html = f"<div class='why' title='{html.escape(why)}'>{html.escape(why)}</div>" if why else ""
    worded = [
        f"at {label}: {f['claim']}"
        for label, f in zip(labels, findings)
        if f is not None and f["claim"] != claim
    ]
    worded_html = f"<div class='worded'>{html.escape('; '.join(worded))}</div>" if worded else ""
    change = scale_change(labels, findings)
    if change:
        attrs = f"class='finding scale-sensitive' data-scale-sensitive='{html.escape(change)}'"
        marker = f"<div class='ss'>↕ scale-sensitive: {html.escape(change)}</div>"
    else:
        attrs, marker = "class='finding'", ""
    return (
        f"<tr {attrs}><td><div class='ctext'>{html.escape(claim)}</div>{worded_html}{marker}{why_html}</td>"
        f"{''.join(cells)}</tr>"
    )


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
    head = "".join(f"<th>{html.escape(k).replace('_', '_<wbr>')}</th>" for k in keys)
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
        seeds = html.escape(str(block.get("seeds", "")))
        diverged = block.get("diverged")
        note = f" <span class='warn'>({len(diverged)} diverged)</span>" if diverged else ""
        rows.append(f"<tr><td>{html.escape(label)}{note}</td><td>{seeds}</td>{''.join(cells)}</tr>")
    return (
        f"<div class='scroll'><table class='headline'><tr><th>input</th><th>seeds</th>{head}</tr>"
        f"{''.join(rows)}</table></div>"
    )


def _findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<p>No computed finding applies to these inputs.</p>"
    items = []
    for f in findings:
        verdict = verdict_of(f)
        meta = []
        if f.get("effect") is not None:
            thr = _threshold(f)
            named = thr and str(f.get("threshold_name")) in _reason(f)
            meta.append(f"effect {_effect(f)}" + (f" against {thr}" if thr and not named else ""))
        if f.get("n"):
            meta.append(f"n = {_n(f)}")
        if reason := _reason(f):
            meta.append(html.escape(reason))
        detail = f"<div class='detail'>{html.escape(f['detail'])}</div>" if f.get("detail") else ""
        items.append(
            f"<li class='finding' data-verdict='{html.escape(verdict)}'>{_badge(verdict)} "
            f"<span class='ctext'>{html.escape(f['claim'])}</span>"
            f"<div class='fmeta'>{' · '.join(meta)}</div>{detail}</li>"
        )
    return f"<ul class='findings'>{''.join(items)}</ul>"


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


def _section(exp: dict[str, Any], profile: str, multi: bool) -> str:
    """One experiment's section at one profile; its data paths are relative to OUT."""
    eid = html.escape(exp["experiment"])
    where = html.escape(exp["_path"])
    findings = exp.get("findings", [])
    meta = (
        f"judged at {scale_text(exp)}; compute {exp.get('compute_seconds', 0):.0f} s; "
        f"data: <code>{where}/metrics.csv</code>, <code>{where}/arrays.npz</code>, "
        f"<code>{where}/summary.json</code>"
    )
    at = f" ({html.escape(profile)})" if multi else ""
    return (
        f"<section id='{html.escape(section_id(profile, exp['experiment'], multi))}'>"
        f"<h2>{eid}{at}: {html.escape(exp.get('title', ''))}"
        f"<a class='back' href='#scorecard'>↑ scorecard</a></h2>"
        f"<p class='claim'>Claim: {html.escape(exp.get('claim', ''))}</p><p>{meta}</p>"
        f"<h3>Findings</h3><p class='counts'>{_counts(findings)}</p>{_findings(findings)}"
        f"<h3>Headline numbers (mean over seeds)</h3>{_headline_table(exp.get('inputs', {}))}"
        f"{_figures(exp['_dir'])}</section>"
    )


@dataclass(frozen=True)
class ResultSet:
    """One profile's experiments (in id order) and the environment its last ``reproduce`` saved
    (empty when none did, e.g. results of ``specbias run`` only)."""

    profile: str
    experiments: list[dict[str, Any]]
    invocation: dict[str, Any]


def _env_row(key: str, values: Sequence[Any], css: str = "") -> str:
    cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in values)
    return f"<tr{f' class={css!r}' if css else ''}><td>{html.escape(key)}</td>{cells}</tr>"


def _environment(sets: Sequence[ResultSet]) -> str:
    """One table: this machine's versions across the whole row, then one column per profile with
    what its last ``reproduce`` recorded (device, workers, seeds, wall time) and its compute."""
    import matplotlib
    import numpy
    import torch

    shared = {
        "specbias": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "machine": f"{platform.machine()}, {platform.system()}",
    }
    span = f" colspan='{len(sets)}'" if len(sets) > 1 else ""
    rows = [
        f"<tr><td>{html.escape(k)}</td><td{span}>{html.escape(str(v))}</td></tr>" for k, v in shared.items()
    ]
    per = [
        {
            **{k: v for k, v in s.invocation.items() if k != "profile"},
            "compute per experiment": ", ".join(
                f"{e['experiment']} {e.get('compute_seconds', 0):.0f} s" for e in s.experiments
            ),
        }
        for s in sets
    ]
    rows.append(_env_row("profile", [s.profile for s in sets], "profile"))
    rows += [_env_row(k, [p.get(k, "—") for p in per]) for k in dict.fromkeys(k for p in per for k in p)]
    return f"<table class='env'>{''.join(rows)}</table>"


_LEGEND = (
    ("holds", "the 95 % interval of the effect over seeds lies on the claimed side of the threshold"),
    ("contradicted", "it lies on the other side"),
    ("inconclusive", "it straddles the threshold, or too few seeds form an interval"),
    ("not measurable", "the quantity is degenerate for this claim at this scale (the reason says why)"),
)


def _legend(findings: Sequence[Mapping[str, Any]]) -> str:
    items = [f"<li>{_badge(v)} {html.escape(text)}</li>" for v, text in _LEGEND]
    if any(verdict_of(f) == OLD_BOOLEAN for f in findings):
        items.append(
            f"<li>{_badge(OLD_BOOLEAN)} a 0.2.0 summary's False: contradicted and not measurable were "
            "not told apart</li>"
        )
    return f"<ul class='legend'>{''.join(items)}</ul>"


def save_invocation(out: Path, invocation: Mapping[str, Any]) -> Path:
    """Keep a ``reproduce``'s environment (``profile``, device, workers, seeds, wall time) in
    ``OUT/<profile>/invocation.json``, so that ``specbias report`` shows it again later."""
    path = result_dir(out, str(invocation["profile"])) / INVOCATION
    atomic_write_json(path, dict(invocation))
    return path


def _read_summary(path: Path, out: Path) -> dict[str, Any]:
    """A summary with where it lies: ``_dir`` (for its figures) and ``_path`` (relative to OUT)."""
    data = json.loads(path.read_text())
    data["_dir"] = path.parent
    data["_path"] = path.parent.relative_to(out).as_posix()
    return data


def _recorded_profile(summary: Mapping[str, Any]) -> str:
    """The profile a flat-layout summary records (``unknown`` when it records none)."""
    return str(summary.get("profile") or (summary.get("scale") or {}).get("profile") or "unknown")


def _scale_order(profile: str) -> tuple[int, str]:
    """:data:`PROFILES` order (smallest first), then any other recorded profile by name."""
    return (PROFILES.index(profile), "") if profile in PROFILES else (len(PROFILES), profile)


def load_result_sets(out: Path) -> list[ResultSet]:
    """Every result set under ``out``, smallest scale first: each ``out/<profile>/`` plus the flat
    ``out/<EXP>/`` summaries of older versions, grouped by the profile they record. An experiment
    in both layouts at one profile is taken from the per-profile directory (the newer layout)."""
    out = Path(out)
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(out.glob("*/summary.json")):
        data = _read_summary(path, out)
        grouped.setdefault(_recorded_profile(data), {})[data["experiment"]] = data
    for profile in PROFILES:
        for path in sorted(result_dir(out, profile).glob("*/summary.json")):
            data = _read_summary(path, out)
            grouped.setdefault(profile, {})[data["experiment"]] = data
    return [
        ResultSet(profile, sorted(exps.values(), key=_sort_key), _invocation(out, profile))
        for profile, exps in sorted(grouped.items(), key=lambda kv: _scale_order(kv[0]))
    ]


def _invocation(out: Path, profile: str) -> dict[str, Any]:
    path = result_dir(out, profile) / INVOCATION
    return json.loads(path.read_text()) if path.is_file() else {}


def _top_counts(sets: Sequence[ResultSet]) -> str:
    """The verdict counts: one line, or one line per profile (labelled) when there are several."""
    lines = []
    for s in sets:
        label = f"<b>{html.escape(s.profile)}</b>: " if len(sets) > 1 else ""
        findings = [f for e in s.experiments for f in e.get("findings", [])]
        lines.append(
            f"<p class='counts' data-profile='{html.escape(s.profile)}'>{label}{_counts(findings)}</p>"
        )
    return "".join(lines)


def _sections(sets: Sequence[ResultSet]) -> str:
    """Every experiment's sections, in id order, each experiment's larger scale first."""
    multi = len(sets) > 1
    placed = [(rank, s.profile, e) for rank, s in enumerate(sets) for e in s.experiments]
    placed.sort(key=lambda t: (_sort_key(t[2]), -t[0]))
    return "".join(_section(e, profile, multi) for _, profile, e in placed)


def build_report(out: Path) -> Path:
    """Write ``out/report.html`` from every result set under ``out`` (:func:`load_result_sets`)."""
    out = Path(out)
    sets = load_result_sets(out)
    if not sets:
        raise ConfigError(
            f"no experiment results under {str(out)!r}; run 'specbias reproduce --out {out}' first"
        )
    columns = [(s.profile, s.experiments) for s in sets]
    findings = [f for s in sets for e in s.experiments for f in e.get("findings", [])]
    n_exps = len({e["experiment"] for s in sets for e in s.experiments})
    scales = f" at {len(sets)} scales ({', '.join(s.profile for s in sets)})" if len(sets) > 1 else ""
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>specbias reproduction report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>Spectral bias through training dynamics: reproduction report</h1>"
        "<p>Lazzari &amp; Liu (2023), <i>Understanding the Spectral Bias of Coordinate Based MLPs Via "
        "Training Dynamics</i>, reproduced and extended with <code>specbias</code>. Every verdict below is "
        "computed from the runs' data.</p>"
        f"<h2 id='scorecard'>Scorecard</h2>{_top_counts(sets)}"
        f"<p class='muted small'>{len(findings)} computed findings across {n_exps} experiments{scales}. "
        "Hover a verdict or the grey line under a claim for the reason in full.</p>"
        f"{_legend(findings)}{_scale_line(columns) if len(sets) > 1 else ''}{scorecard(columns)}"
        f"<h2>Environment</h2>{_environment(sets)}{_sections(sets)}</body></html>"
    )
    path = out / "report.html"
    atomic_write_bytes(path, page.encode())
    return path
