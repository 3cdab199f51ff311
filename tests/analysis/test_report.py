"""report.html: model text never becomes markup, and token colours are the W&B heatmap's scale."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from sparse_rlvr.analysis.report import render_report
from sparse_rlvr.analysis.summary import summarize
from sparse_rlvr.core.js_scale import js_color

BREAKOUT = "</script><img src=x onerror=alert(1)>"
QUIET_BREAKOUT = "</script><img src=x onerror=document.documentElement.dataset.pwned=1>"
"""The same attack without a dialog, which would hang headless Chromium instead of failing the test."""
HOSTILE = [BREAKOUT, "</script><script>document.documentElement.dataset.pwned=2</script>", "<!--", "a & b",
           "\u2028", "<b>bold</b>"]


def _tokens(hostile: list[str] = HOSTILE) -> pd.DataFrame:
    """Per-token rows of two responses; the hostile tokens open the first one."""
    texts = hostile + [f"w{i}" for i in range(10)]
    js = np.geomspace(1e-6, 0.6, len(texts))
    rows = [{"sample_id": s, "token": t, "js": float(j), "position": i, "response_length": len(texts),
             "base_entropy": 1.0, "top1_agree": j < 1e-3, "policy_top1_rank_in_base": 2, "base_prob_of_policy_top1": 0.1,
             "topk_overlap": np.ones(3), "base_top_ids": [0, 1], "base_top_probs": [0.6, 0.3],
             "policy_top_ids": [1, 0], "policy_top_probs": [0.7, 0.2]}
            for s in (0, 1) for i, (t, j) in enumerate(zip(texts, js))]
    return pd.DataFrame(rows)


def _page(hostile: list[str] = HOSTILE) -> str:
    tokens = _tokens(hostile)
    summary = summarize(tokens, cutoffs=[1e-3], high=0.1, counts={"sequences": 2})
    candidates = {0: hostile[0], 1: "<i>cand</i>"}  # decoded candidates are model text too
    return render_report(summary | {"base": "<base>", "policy": "p"}, tokens, candidates.__getitem__, samples=2)


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each <script>."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.scripts.append("")

    def handle_data(self, data):
        if self.tags and self.tags[-1][0] == "script" and self.scripts:
            self.scripts[-1] += data


def test_token_json_cannot_break_out_of_the_script():
    page = _page()
    assert "</script><img" not in page and "<img src=x" not in page and "<!--" not in page
    assert "\u2028" not in page
    parsed = _Elements(page)
    assert [t for t, _ in parsed.tags].count("script") == 2  # the data and the page's own script, nothing else
    assert all(a.get("src", "").startswith("data:image/png;base64,") for t, a in parsed.tags if t == "img")
    assert not any(name.startswith("on") for _, a in parsed.tags for name in a)
    assert [a.get("type") for t, a in parsed.tags if t == "script"] == ["application/json", None]
    tokens = json.loads(parsed.scripts[0])  # the data element holds plain JSON of the exact model text
    assert [d[0] for d in tokens[0][: len(HOSTILE)]] == HOSTILE
    assert tokens[0][0][3][0][0] == BREAKOUT


def test_token_colours_are_the_monitors_scale_and_not_rewritten_in_javascript():
    page, frame = _page(), _tokens()
    tokens = json.loads(_Elements(page).scripts[0])
    first = frame[frame["sample_id"] == 0]
    assert [d[2] for d in tokens[0]] == [js_color(j) for j in first["js"]]
    assert tokens[0][0][2] == "#ffffff" and tokens[0][-1][2] != "#ffffff"
    assert "log10" not in page and "rgba(" not in page  # the formula lives in Python only


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium not installed (apt-get install chromium)")
def test_chromium_shows_hostile_tokens_as_text(tmp_path):
    report = tmp_path / "report.html"
    hostile = [QUIET_BREAKOUT] + HOSTILE[1:]
    report.write_text(_page(hostile), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", f"{report.as_uri()}#hover=0"],
                         capture_output=True, text=True, timeout=120).stdout
    elements = _Elements(dom)
    assert all(a.get("src", "").startswith("data:image/png;base64,") for t, a in elements.tags if t == "img")
    assert "pwned" not in dom.split("<body")[0]  # neither injected script ran
    assert dom.count('class="t"') == 2 * (len(HOSTILE) + 10), "the heatmap's token spans were not built"
    assert "<i>" not in dom and "<b>bold" not in dom  # candidates and tokens are text, not markup
    spans = re.findall(r'<span class="t"[^>]*>(.*?)</span>', dom, flags=re.S)
    assert spans[0] == "&lt;/script&gt;&lt;img src=x onerror=document.documentElement.dataset.pwned=1&gt;"
    assert spans[5] == "&lt;b&gt;bold&lt;/b&gt;"
    tooltip = dom[dom.index('id="tip"'):]
    assert "display: block" in tooltip and "<th>base</th><th>policy</th>" in tooltip  # hover shows candidates
    assert "&lt;/script&gt;&lt;img src=x onerror=document.documentElement.dataset.pwned=1&gt; 0.600" in tooltip
    assert "&lt;i&gt;cand&lt;/i&gt; 0.300" in tooltip
