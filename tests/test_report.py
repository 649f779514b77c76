"""The HTML report: self-contained, every figure and link resolves, verdicts come from the data."""

from __future__ import annotations

import base64
import html
import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from specbias.cli import main

TINY_ARGS = ["--epochs", "3", "--seeds", "2", "--width", "8", "--no-progress", "--workers", "1"]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag in ("img", "script", "link") and ("src" in attrs or "href" in attrs):
            self.srcs.append(attrs.get("src") or attrs.get("href"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["run", "E4b", "--size", "16", "--out", str(out), *TINY_ARGS]) == 0
    assert main(["run", "E3", "--n", "256", "--out", str(out), *TINY_ARGS]) == 0
    assert main(["report", str(out)]) == 0
    return out


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
    assert {"E3", "E4b"} <= parser.ids


def test_report_shows_computed_verdicts_both_ways(results):
    page = (results / "report.html").read_text()
    summary = json.loads((results / "E4b/summary.json").read_text())
    for finding in summary["findings"]:
        word = "holds" if finding["holds"] else "does not hold"
        assert f"{word}</span>: {finding['claim']}" in html.unescape(page)
    assert "Environment" in page and "torch" in page


def test_report_without_results_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no experiment results")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no headless chromium on this machine")
def test_report_renders_in_a_headless_browser(results, tmp_path):
    shot = tmp_path / "page.png"
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1200,2000", (results / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
