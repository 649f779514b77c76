"""The HTML report: self-contained, every figure and link resolves, verdicts come from the data, the
scorecard shows every finding with its verdict, and the page does not scroll sideways. Result sets of
several profiles get a column each, and a claim whose verdict changes with scale is marked."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

from specbias import cli
from specbias.cli import main
from specbias.report import build_report, claim_shape, save_invocation, scorecard

TINY_ARGS = ["--epochs", "3", "--seeds", "2", "--width", "8", "--no-progress", "--workers", "1"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag in ("img", "script", "link") and ("src" in attrs or "href" in attrs):
            self.srcs.append(attrs.get("src") or attrs.get("href"))


class _Scorecard(HTMLParser):
    """The scorecard's rows: per finding row, its claim text, its scale-sensitive direction (None
    when unmarked) and (verdict, cell class, badge class, title) per verdict cell; per group row, its
    text and links; and the text of the first counts line."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.groups: list[str] = []
        self.group_links: list[list[str]] = []
        self.counts = ""
        self._in_card = self._in_claim = self._in_group = self._in_counts = False
        self._counts_done = False
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "p" and "counts" in classes and not self._counts_done:
            self._in_counts = True
        if tag == "table" and "scorecard" in classes:
            self._in_card = True
        if not self._in_card:
            return
        if tag == "tr" and "finding" in classes:
            assert ("scale-sensitive" in classes) == ("data-scale-sensitive" in a)
            self.rows.append({"claim": "", "cells": [], "scale": a.get("data-scale-sensitive")})
        elif tag == "tr" and "group" in classes:
            self.groups.append("")
            self.group_links.append([])
            self._in_group = True
        elif tag == "a" and self._in_group:
            self.group_links[-1].append(a["href"])
        elif tag == "tr":
            self._in_group = False
        elif tag == "div" and "ctext" in classes:
            self._in_claim = True
        elif tag == "td" and "data-verdict" in a:
            self.rows[-1]["cells"].append(
                {"verdict": a["data-verdict"], "class": classes, "title": a.get("title"), "badge": None}
            )
        elif tag == "span" and "badge" in classes and self.rows and self.rows[-1]["cells"]:
            cell = self.rows[-1]["cells"][-1]
            cell["badge"] = cell["badge"] or classes

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_claim = False
        if tag == "p" and self._in_counts:
            self._in_counts, self._counts_done = False, True
        if tag == "table" and self._in_card:
            self._in_card = False

    def handle_data(self, data):
        if self._in_counts:
            self.counts += data
        if self._in_claim:
            self.rows[-1]["claim"] += data
        elif self._in_group and self._in_card:
            self.groups[-1] += data


def _parse_card(page: str) -> _Scorecard:
    parser = _Scorecard()
    parser.feed(page)
    return parser


def _png(width: int, height: int) -> bytes:
    """A plain white RGB PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff" * (3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _finding(claim, verdict, effect=None, interval=None, n=0, reason="", detail="", thr=("material", 0.05)):
    return {
        "claim": claim,
        "verdict": verdict,
        "holds": verdict == "holds",
        "effect": effect,
        "interval": interval,
        "n": n,
        "threshold": thr and thr[1],
        "threshold_name": thr and thr[0],
        "reads": "hamming_local",
        "reason": reason,
        "detail": detail,
    }


ESCAPED_CLAIM = "local |cos|: raw01 > pe6 <b>bold</b> & 'quoted'"
TRICKY_REASON = "the 95 % interval [0.33, 0.49] lies 'above' <material> = 0.05 & more"
LONG_TOKEN = "raw01@N1024/b128/" + "x" * 300

NEW = {
    "experiment": "E2",
    "title": "Gradient confusion <local> & global",
    "claim": "raw neighbours' gradients are (anti)parallel",
    "profile": "quick",
    "seeds": 5,
    "scale": {"profile": "quick", "seeds": 5, "points": ["N=2048"], "network": ["4×128"], "epochs": [500]},
    "findings": [
        _finding(ESCAPED_CLAIM, "holds", 0.41, [0.33, 0.49], 5, TRICKY_REASON, "raw01 0.5 vs pe6 0.3"),
        _finding("global |cos|: raw11 < pe6", "contradicted", -0.21, [-0.3, -0.12], 5, "lies below"),
        _finding("high tones end further as N grows", "inconclusive", 0.003, [-0.04, 0.046], 5, "straddles"),
        _finding("two seeds only", "inconclusive", 0.2, None, 2, "2 seed(s): at least 3 are needed"),
        _finding("fewer tones converge as N grows", "not measurable", reason="nothing converges", thr=None),
        _finding("all of: " + LONG_TOKEN, "contradicted", -0.5, [-0.7, -0.3], 5, "; ".join(["part"] * 80)),
    ],
    "compute_seconds": 12.3,
    "inputs": {
        "raw01_" + "long" * 20: {
            **{k: 0.123456 for k in __import__("specbias.report").report.HEADLINE_KEYS},
            "seeds": 5,
            "final_loss_std": 0.001,
            "diverged": [1],
        },
    },
}
OLD = {  # a 0.2.0 summary: claim, holds, detail only; no scale
    "experiment": "E4b",
    "title": "Region counts",
    "claim": "raw coordinates use far fewer regions",
    "profile": "quick",
    "seeds": 2,
    "compute_seconds": 3.0,
    "findings": [
        {"claim": "old: regions raw01 < pe5", "holds": True, "detail": "raw01 120 vs pe5 3900"},
        {"claim": "old: regions grow over training", "holds": False, "detail": "raw01 120 -> 118"},
    ],
    "inputs": {"raw01": {"regions_last": 120.0, "seeds": 2}},
}
EMPTY = {
    "experiment": "X1",
    "title": "Per-frequency convergence",
    "claim": "PE learns every tone",
    "profile": "quick",
    "seeds": 5,
    "scale": {
        "profile": "quick",
        "seeds": 5,
        "points": ["N=256", "N=512", "N=1024", "N=2048", "N=4096", "N=8192"],
        "network": ["4×128"],
        "epochs": [500],
    },
    "findings": [],
    "inputs": {},
}
# the verdict each finding must show: new ones their own, old True "holds", old False the old boolean
EXPECTED = [(f["claim"], f["verdict"]) for f in NEW["findings"]] + [
    ("old: regions raw01 < pe5", "holds"),
    ("old: regions grow over training", "old boolean"),
]
BADGE = {
    "holds": "b-holds",
    "contradicted": "b-contradicted",
    "inconclusive": "b-inconclusive",
    "not measurable": "b-unmeasurable",
    "old boolean": "b-old",
}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    out = tmp_path_factory.mktemp("crafted")
    for summary in (NEW, OLD, EMPTY):
        folder = out / summary["experiment"]
        (folder / "figures").mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps(summary))
    (out / "E2/figures/wide.png").write_bytes(_png(3000, 40))
    build_report(out)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["run", "E4b", "--size", "16", "--out", str(out), *TINY_ARGS]) == 0
    assert main(["run", "E3", "--n", "256", "--out", str(out), *TINY_ARGS]) == 0
    assert main(["report", str(out)]) == 0
    return out


def test_scorecard_lists_every_finding_with_its_verdict_class(crafted):
    card = _parse_card((crafted / "report.html").read_text())
    got = [(row["claim"], row["cells"][0]["verdict"]) for row in card.rows]
    assert got == EXPECTED
    for row in card.rows:
        (cell,) = row["cells"]
        assert BADGE[cell["verdict"]] in cell["badge"], row
        assert f"v-{BADGE[cell['verdict']][2:]}" in cell["class"], row
    assert [g.split()[0] for g in card.groups] == ["E2", "E4b", "X1"]


def test_scorecard_counts_every_outcome(crafted):
    counts = " ".join(_parse_card((crafted / "report.html").read_text()).counts.split())
    assert counts == (
        "✓ 2 holds · ✗ 2 contradicted · ? 2 inconclusive · ∅ 1 not measurable · "
        "– 1 does not hold (old boolean)"
    )


def test_scorecard_shows_effect_interval_and_scale(crafted):
    page = (crafted / "report.html").read_text()
    assert "+0.41</span> <span class='nw'>[+0.33, +0.49]" in page and "material = 0.05" in page
    assert "+0.2</span> <span class='muted small'>(no interval)</span>" in page
    card = _parse_card(page)
    assert "quick · N=2048 · 4×128 · 500 epochs · 5 seeds" in card.groups[0]
    assert "quick · 2 seeds" in card.groups[1] and "not recorded" in card.groups[1]
    assert "N=256 … N=8192 (6)" in card.groups[2]
    parser = _Collector()
    parser.feed(page)
    for eid in ("E2", "E4b", "X1"):
        assert f"#{eid}" in parser.hrefs and eid in parser.ids
    for href in parser.hrefs:
        assert href[1:] in parser.ids, href


def test_old_summaries_render_with_a_neutral_old_boolean(crafted):
    page = (crafted / "report.html").read_text()
    card = _parse_card(page)
    old_false = next(r for r in card.rows if r["claim"] == "old: regions grow over training")
    assert "b-old" in old_false["cells"][0]["badge"]
    assert "b-contradicted" not in old_false["cells"][0]["badge"]
    assert "0.2.0 summary" in old_false["cells"][0]["title"]
    section = page[page.index("<section id='E4b'>") :]
    assert "does not hold (old boolean)" in section and "raw01 120 -&gt; 118" in section


def test_claims_and_reasons_are_html_escaped(crafted):
    page = (crafted / "report.html").read_text()
    assert "<b>bold</b>" not in page and "<material>" not in page
    assert html.escape(ESCAPED_CLAIM) in page
    assert "Gradient confusion &lt;local&gt; &amp; global" in page
    card = _parse_card(page)
    first = card.rows[0]
    assert first["claim"] == ESCAPED_CLAIM
    assert first["cells"][0]["title"] == TRICKY_REASON  # the attribute is quoted whole


def test_scorecard_puts_several_profiles_side_by_side():
    quick = dict(NEW, findings=NEW["findings"][:2])
    paper = dict(
        NEW,
        profile="paper",
        scale=dict(NEW["scale"], profile="paper", points=["N=8192"]),
        findings=[_finding("global |cos|: raw11 < pe6", "holds", 0.3, [0.2, 0.4], 5, "above")],
    )
    card = _parse_card(scorecard([("quick", [quick]), ("paper", [paper, OLD])]))
    by_claim = {r["claim"]: [c["verdict"] for c in r["cells"]] for r in card.rows}
    assert by_claim == {
        ESCAPED_CLAIM: ["holds"],  # paper lacks it: no verdict cell there
        "global |cos|: raw11 < pe6": ["contradicted", "holds"],
        "old: regions raw01 < pe5": ["holds"],
        "old: regions grow over training": ["old boolean"],
    }
    assert "quick · N=2048" in card.groups[0] and "paper · N=8192" in card.groups[0]
    assert "not run" in card.groups[1]


def test_wide_content_scrolls_inside_its_own_box(crafted):
    page = (crafted / "report.html").read_text()
    assert re.search(r"<div class='scroll'><table class='headline'>", page)
    assert re.search(r"<div class='scroll'><table class='scorecard'", page)
    assert "img{max-width:100%" in page


@pytest.mark.skipif(CHROMIUM is None, reason="no headless chromium on this machine")
def test_page_does_not_scroll_sideways_at_1400px(crafted, tmp_path):
    probe = tmp_path / "probe.html"
    script = (
        "<script>const e=document.documentElement;"
        "document.body.setAttribute('data-widths', e.scrollWidth + '/' + e.clientWidth)</script>"
    )
    probe.write_text((crafted / "report.html").read_text().replace("</body>", script + "</body>"))
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,2400",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    scroll, client = map(int, re.search(r'data-widths="(\d+)/(\d+)"', proc.stdout).groups())
    assert client > 1000 and scroll <= client


def test_report_is_self_contained_and_links_resolve(results):
    page = (results / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    assert parser.srcs, "figures are embedded"
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert parser.hrefs
    for href in parser.hrefs:
        assert href.startswith("#") and href[1:] in parser.ids, href
    assert {"E3", "E4b", "scorecard"} <= parser.ids


def test_report_shows_every_computed_finding_in_the_scorecard(results):
    page = (results / "report.html").read_text()
    card = _parse_card(page)
    got = [(r["claim"], r["cells"][0]["verdict"]) for r in card.rows]
    want = [
        (f["claim"], f.get("verdict", "holds" if f["holds"] else "old boolean"))
        for eid in ("E3", "E4b")
        for f in json.loads((results / "quick" / eid / "summary.json").read_text())["findings"]
    ]
    assert got == want and want
    assert "Environment" in page and "torch" in page


def test_report_without_results_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no experiment results")


# --- several profiles: one column each, scale-sensitive claims marked --------------------------

CHANGES = "inconclusive at quick → holds at standard"


def _at(profile, summary, findings):
    """``summary`` as judged at ``profile``, with these findings."""
    scale = dict(summary.get("scale") or {}, profile=profile)
    return dict(summary, profile=profile, scale=scale, findings=findings)


def _write(out, folder, summary):
    (out / folder / "figures").mkdir(parents=True)
    (out / folder / "summary.json").write_text(json.dumps(summary))


def _old(claim, holds):
    return {"claim": claim, "holds": holds, "detail": ""}


@pytest.fixture(scope="module")
def scales(tmp_path_factory):
    """quick and standard result sets of E2 (and X1 at quick only), in the per-profile layout."""
    out = tmp_path_factory.mktemp("scales")
    quick = [
        _finding("changes", "inconclusive", 0.01, [-0.02, 0.04], 5, "straddles"),
        _finding("same", "holds", 0.3, [0.2, 0.4], 5, "above"),
        _finding("quick only", "contradicted", -0.3, [-0.4, -0.2], 5, "below"),
        _old("old true then contradicted", True),
        _old("old false then holds", False),
    ]
    standard = [
        _finding("changes", "holds", 0.2, [0.1, 0.3], 5, "above"),
        _finding("same", "holds", 0.4, [0.3, 0.5], 5, "above"),
        _finding("old true then contradicted", "contradicted", -0.3, [-0.4, -0.2], 5, "below"),
        _finding("old false then holds", "holds", 0.3, [0.2, 0.4], 5, "above"),
        _finding("standard only", "holds", 0.3, [0.2, 0.4], 5, "above"),
    ]
    _write(out, "standard/E2", _at("standard", NEW, standard))
    _write(out, "quick/E2", _at("quick", NEW, quick))
    _write(out, "quick/X1", EMPTY)
    build_report(out)
    return out


def _marks(out):
    return {r["claim"]: r["scale"] for r in _parse_card((out / "report.html").read_text()).rows}


def test_a_claim_whose_verdict_changes_with_scale_is_marked_with_its_direction(scales):
    page = (scales / "report.html").read_text()
    assert _marks(scales)["changes"] == CHANGES
    assert f"scale-sensitive: {CHANGES}</div>" in page  # in words, not only a colour


def test_equal_verdicts_one_scale_and_old_booleans_are_not_marked(scales):
    marks = _marks(scales)
    assert set(marks) == {
        "changes",
        "same",
        "quick only",
        "old true then contradicted",
        "old false then holds",
        "standard only",
    }
    assert [claim for claim, mark in marks.items() if mark] == ["changes"]


def test_the_count_line_says_how_many_judged_claims_change_and_which_way(scales):
    page = (scales / "report.html").read_text()
    line = re.search(r"<p class='scale-line' data-changed='(\d+)' data-judged='(\d+)'>(.*?)</p>", page)
    assert line.groups()[:2] == ("1", "2")  # "changes" and "same" are the two judged at both scales
    text = re.sub(r"<[^>]+>", "", line.group(3))
    assert text.startswith(
        f"↕ 1 of 2 claims judged at more than one scale change verdict with scale: 1 {CHANGES}."
    )


def test_each_profile_gets_a_column_counts_and_sections_larger_scale_first(scales):
    page = (scales / "report.html").read_text()
    assert re.findall(r"<th colspan='3'>(\w+)</th>", page) == ["quick", "standard"]
    counts = re.findall(r"<p class='counts' data-profile='(\w+)'><b>\1</b>: ", page)
    assert counts == ["quick", "standard"]
    parser = _Collector()
    parser.feed(page)
    assert parser.sections == ["standard-E2", "quick-E2", "quick-X1"]
    for href in parser.hrefs:
        assert href.startswith("#") and href[1:] in parser.ids, href
    card = _parse_card(page)
    # the id links the largest scale's section, each scale cell its own profile's
    assert card.group_links == [["#standard-E2", "#quick-E2", "#standard-E2"], ["#quick-X1", "#quick-X1"]]
    assert "not run" in card.groups[1]
    standard = page[page.index("<section id='standard-E2'>") : page.index("<section id='quick-E2'>")]
    assert "<h2>E2 (standard): " in standard
    assert "<code>standard/E2/metrics.csv</code>" in standard and "<code>quick/" not in standard


def test_a_single_profile_keeps_plain_section_ids(crafted):
    parser = _Collector()
    parser.feed((crafted / "report.html").read_text())
    assert parser.sections == ["E2", "E4b", "X1"]


def test_legacy_flat_summaries_join_their_recorded_profile(tmp_path):
    _write(tmp_path, "E2", _at("quick", NEW, [_finding("legacy claim", "holds", 0.3, [0.2, 0.4], 5)]))
    _write(tmp_path, "quick/E2", _at("quick", NEW, [_finding("new claim", "inconclusive", 0.0, [-1, 1], 5)]))
    _write(tmp_path, "X1", EMPTY)  # flat, recorded at quick
    _write(tmp_path, "E4b", dict(OLD, profile="paper"))  # flat, recorded at paper
    build_report(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert re.findall(r"<th colspan='3'>(\w+)</th>", page) == ["quick", "paper"]
    claims = [r["claim"] for r in _parse_card(page).rows]
    assert "new claim" in claims and "legacy claim" not in claims  # the per-profile directory wins
    parser = _Collector()
    parser.feed(page)
    assert parser.sections == ["quick-E2", "paper-E4b", "quick-X1"]
    for href in parser.hrefs:
        assert href[1:] in parser.ids, href
    assert "<code>quick/E2/summary.json</code>" in page and "<code>X1/summary.json</code>" in page
    assert "<code>E4b/metrics.csv</code>" in page


def test_three_profiles_in_scale_order_with_every_verdict_in_the_mark(tmp_path):
    verdicts = {"paper": "holds", "quick": "inconclusive", "standard": "holds"}
    for profile, verdict in verdicts.items():  # written largest first: the order comes from the scale
        _write(tmp_path, f"{profile}/E2", _at(profile, NEW, [_finding("grows", verdict, 0.1, [0, 0.2], 5)]))
    build_report(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert re.findall(r"<th colspan='3'>(\w+)</th>", page) == ["quick", "standard", "paper"]
    assert _marks(tmp_path) == {"grows": "inconclusive at quick → holds at standard → holds at paper"}
    parser = _Collector()
    parser.feed(page)
    assert parser.sections == ["paper-E2", "standard-E2", "quick-E2"]
    assert re.findall(r"<p class='counts' data-profile='(\w+)'>", page)[:3] == ["quick", "standard", "paper"]


def _env(page):
    """The environment table's rows: name -> the texts of its value cells."""
    table = page[page.index("<table class='env'>") :]
    table = table[: table.index("</table>")]
    return {
        m.group(1): re.findall(r"<td[^>]*>(.*?)</td>", m.group(2))
        for m in re.finditer(r"<tr[^>]*><td>(.*?)</td>(.*?)</tr>", table)
    }


def test_reproduce_saves_its_environment_and_report_reads_it_back(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "quick/E2", NEW)
    monkeypatch.setattr(cli, "execute", lambda plans, out, **kw: [])  # the results are already there
    args = ["reproduce", "--only", "E2", "--out", str(tmp_path), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    saved = json.loads((tmp_path / "quick" / "invocation.json").read_text())
    assert saved["profile"] == "quick" and saved["device"] == "cpu" and saved["workers"] == 1
    save_invocation(tmp_path, {"profile": "standard", "device": "cuda", "workers": 1})
    _write(tmp_path, "standard/E2", _at("standard", NEW, NEW["findings"]))
    (tmp_path / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"report: {tmp_path / 'report.html'}\n"
    env = _env((tmp_path / "report.html").read_text())
    assert env["profile"] == ["quick", "standard"]
    assert env["device"] == ["cpu", "cuda"] and env["workers"] == ["1", "1"]
    assert env["seeds"] == [saved["seeds"], "—"]
    assert len(env["torch"]) == 1  # this machine's versions span the profiles' columns


def test_a_claim_worded_with_each_scales_sizes_is_one_row(tmp_path):
    """quick's top PE is pe8 where standard's is pe16: the same claim, one row, both wordings shown;
    a claim of another shape stays apart, and two claims of one scale never share a row."""
    quick = [
        _finding("tail heavier at the highest L (pe8)", "contradicted", 0.02, [0.01, 0.03], 3),
        _finding("2x64: ratio raw < PE", "holds", 0.9, [0.8, 1.0], 3),
        _finding("4x128: ratio raw < PE", "holds", 0.9, [0.8, 1.0], 3),
        _finding("quick only (pe2)", "holds", 0.5, [0.4, 0.6], 3),
    ]
    standard = [
        _finding("tail heavier at the highest L (pe16)", "inconclusive", 0.02, [-0.03, 0.06], 3),
        _finding("2x128: ratio raw < PE", "holds", 0.9, [0.8, 1.0], 5),
        _finding("4x256: ratio raw < PE", "inconclusive", 0.9, [-0.8, 1.0], 5),
    ]
    _write(tmp_path, "quick/E13", _at("quick", NEW, quick))
    _write(tmp_path, "standard/E13", _at("standard", NEW, standard))
    build_report(tmp_path)
    assert claim_shape("raw01 vs pe16 after 300 epochs on 6x256") == "raw01 vs · after · on ·"
    rows = _parse_card((tmp_path / "report.html").read_text()).rows
    assert [r["claim"] for r in rows] == [
        "tail heavier at the highest L (pe16)",
        "2x128: ratio raw < PE",
        "4x256: ratio raw < PE",
        "quick only (pe2)",
    ]
    assert [[c["verdict"] for c in r["cells"]] for r in rows] == [
        ["contradicted", "inconclusive"],
        ["holds", "holds"],
        ["holds", "inconclusive"],
        ["holds"],
    ]
    assert (
        _marks(tmp_path)["tail heavier at the highest L (pe16)"]
        == "contradicted at quick → inconclusive at standard"
    )
    page = (tmp_path / "report.html").read_text()
    assert "at quick: tail heavier at the highest L (pe8)" in page
