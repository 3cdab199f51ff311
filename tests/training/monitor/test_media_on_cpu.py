"""Token-shift media: heatmap HTML, sample picking, and what really lands in W&B / TensorBoard files.

W&B runs offline through verl's own Tracking; the run is read back from disk afterwards: the
history records in the .wandb file and the run-table artifact with its HTML files.
"""

from __future__ import annotations

import json
import math
import re
import struct
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from sparse_rlvr.training.monitor.samples import ShiftSample, pick_samples
from tests.wandb_offline import history_by_step, wandb_records
from sparse_rlvr.training.monitor.media import (
    JS_CEILING,
    TABLE_COLUMNS,
    js_color,
    js_histograms,
    log_token_shift_media,
    response_heatmap_html,
)

HOSTILE = ["<script>alert(1)</script>", '" onmouseover="alert(2)', "a & b", "'", "</span><b>", "\u202e"]


def _sample(uid: str, tokens: list[str], js: list[float] | None = None, **extra) -> ShiftSample:
    n = len(tokens)
    fields = dict(uid=uid, prompt=f"prompt <{uid}>", response="".join(tokens), tokens=tokens,
                  token_ids=list(range(100, 100 + n)), logprobs=[math.log(0.5)] * n,
                  ref_logprobs=[math.log(0.25)] * n, entropy=[1.5] * n,
                  js=js if js is not None else [0.01] * n, reward=1.0)
    return ShiftSample(**(fields | extra))


class _Spans(HTMLParser):
    """Tags, attributes, and the text and title of every token span of a heatmap."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.tokens: list[dict] = []
        self._depth = 0  # > 0 inside a token span
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        attrs = dict(attrs)
        if tag == "span" and attrs.get("class") == "srl-t":
            self.tokens.append({"title": attrs["title"], "style": attrs["style"], "text": "", "br": 0})
            self._depth = 1
        elif tag == "span" and self._depth:
            self._depth += 1
        elif tag == "br" and self._depth:
            self.tokens[-1]["br"] += 1

    def handle_endtag(self, tag):
        if tag == "span" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.tokens[-1]["text"] += data


def test_heatmap_escapes_model_output_and_has_no_script_or_external_resource():
    sample = _sample('<img src=x onerror="alert(3)">', HOSTILE, weights=[1.0] * len(HOSTILE))
    page = response_heatmap_html(sample)
    parsed = _Spans(page)
    assert page.isascii()  # non-ASCII as character references: renders the same under any charset
    assert parsed.tags <= {"style", "div", "span", "b", "br", "wbr"}  # token text never becomes markup
    assert parsed.attributes <= {"class", "style", "title"}
    assert "<script" not in page and "<img" not in page  # only as &lt;script / &lt;img text
    assert "http" not in page and "url(" not in page and "@import" not in page  # nothing fetched
    texts = [t["text"] for t in parsed.tokens]
    assert texts[:3] == ["<script>alert(1)</script>", '"\u00b7onmouseover="alert(2)', "a\u00b7&\u00b7b"]
    assert texts[3:5] == ["'", "</span><b>"] and texts[5] == "\\u202e"  # bidi override shown, not applied
    assert json.dumps(HOSTILE[1]) in parsed.tokens[1]["title"]  # tooltip shows the exact token text


def test_heatmap_makes_whitespace_and_newlines_visible():
    parsed = _Spans(response_heatmap_html(_sample("g", ["a b", "\n", "\t", "", "caf\u00e9", "x\n\ny"])))
    texts = [t["text"] for t in parsed.tokens]
    assert texts == ["a\u00b7b", "\u21b5", "\u2192", "\u2205", "caf\u00e9", "x\u21b5\u21b5y"]
    assert [t["br"] for t in parsed.tokens] == [0, 1, 0, 0, 0, 2]  # newlines also break the line


def test_tooltip_shows_token_js_probabilities_and_weight():
    sample = _sample("g", ["7", "+"], js=[0.1234, 2e-5], logprobs=[math.log(0.8), math.log(0.05)],
                     ref_logprobs=[math.log(0.3), math.log(0.05)], weights=[1.25, 0.75], advantages=[0.5, 0.5])
    first, second = (t["title"] for t in _Spans(response_heatmap_html(sample)).tokens)
    assert first.splitlines() == ['token "7"  id 100', "JS 1.234e-01", "p_base 0.3  p_policy 0.8",
                                  "entropy 1.5", "w 1.25", "advantage 0.5"]
    assert "JS 2.000e-05" in second and "p_base 0.05  p_policy 0.05" in second and "w 0.75" in second
    no_weights = _Spans(response_heatmap_html(_sample("g", ["7"]))).tokens[0]["title"]
    assert "w " not in no_weights and "advantage" not in no_weights


def test_colour_is_white_to_red_and_monotone_in_js():
    js = [0.0, 1e-5, 1e-4, 3e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3, JS_CEILING]
    styles = [t["style"] for t in _Spans(response_heatmap_html(_sample("g", ["t"] * len(js), js=js))).tokens]
    colours = [re.fullmatch(r"background:#([0-9a-f]{6})", s).group(1) for s in styles]
    green = [int(c[2:4], 16) for c in colours]
    assert colours[:3] == ["ffffff"] * 3 and colours[-1] == "dc2828"  # floor 1e-4 is white, ln 2 is full red
    assert all(a > b for a, b in zip(green[2:], green[3:]))  # strictly darker as JS grows above the floor
    assert js_color(0.01, vmax=0.01) == "#dc2828" and js_color(0.5, vmax=0.01) == "#dc2828"  # vmax rescales
    assert js_color(float("nan")) == "#ffffff"
    with pytest.raises(ValueError, match="vmax"):
        response_heatmap_html(_sample("g", ["t"]), vmax=1e-6)


def test_heatmap_shows_the_scale_and_truncates_long_responses():
    page = response_heatmap_html(_sample("g", ["t"] * 10), max_tokens=4)
    assert 'class="srl-scale"' in page and "linear-gradient" in page and ">0.69<" in page
    assert len(_Spans(page).tokens) == 4 and "6 more tokens" in page


def test_shift_sample_rejects_misaligned_per_token_lists():
    with pytest.raises(ValueError, match="js has 1 values for 2 tokens"):
        _sample("g", ["a", "b"], js=[0.1])
    with pytest.raises(ValueError, match="weights has 3 values"):
        _sample("g", ["a", "b"], weights=[1.0, 1.0, 1.0])


def test_pick_samples_keeps_extremes_then_seeded_random_ones():
    samples = [_sample(f"s{i}", ["t"] * 3, js=[m] * 3) for i, m in enumerate([0.02, 0.5, 0.001, 0.1, 0.03, 0.07])]
    samples.append(_sample("empty", []))
    picked = pick_samples(samples, 4, seed=3)
    assert [s.uid for s in picked[:2]] == ["s1", "s2"]  # highest, lowest mean JS (the empty one never)
    assert len({s.uid for s in picked}) == 4
    assert [s.uid for s in pick_samples(samples, 4, seed=3)] == [s.uid for s in picked]  # deterministic
    assert {s.uid for s in pick_samples(samples, 100, seed=0)} == {s.uid for s in samples}
    assert pick_samples(samples, 0) == [] and pick_samples([], 3) == []
    assert len({tuple(s.uid for s in pick_samples(samples, 4, seed=k)[2:]) for k in range(10)}) > 1


def test_histograms_come_from_finite_response_token_js():
    js = np.array([0.0, 1e-9, 0.01, 0.2, 0.69, np.nan, np.inf])
    hists = js_histograms(js, bins=8)
    counts, edges = hists["token_shift/js_histogram"]
    assert counts.sum() == 5 and edges[0] == 0.0 and math.isclose(edges[-1], 0.69) and len(edges) == 9
    log_counts, log_edges = hists["token_shift/log10_js_histogram"]
    assert log_counts.sum() == 5 and log_edges[0] == -8.0 and log_counts[0] == 2  # 0 and 1e-9 clip to 1e-8
    assert js_histograms([], bins=8) == {} and js_histograms([np.nan]) == {}
    with pytest.raises(ValueError, match="512"):
        js_histograms(js, bins=513)


# ---- verl Tracking backends --------------------------------------------------------------------

def _wandb_env(mp: pytest.MonkeyPatch, root: Path) -> None:
    for name, sub in (("WANDB_DIR", "run"), ("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                      ("WANDB_CONFIG_DIR", "config")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        mp.setenv(name, str(root / sub))  # artifact staging and caches stay out of $HOME
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")


STEP_SAMPLES = [_sample("g0", HOSTILE, js=[0.3, 0.0, 1e-3, 0.05, 0.6, 1e-6], weights=[1.1] * 6),
                _sample("g1", ["4", "2", "\n"], js=[1e-5, 0.2, 0.0])]
STEP1_JS = np.concatenate([s.js for s in STEP_SAMPLES])
STEP2_JS = np.array([0.001, 0.002, 0.5])


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    """One offline W&B run through verl's Tracking: our media, then verl's own log, at steps 1 and 2."""
    from verl.utils.tracking import Tracking

    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as mp:
        _wandb_env(mp, root)
        tracking = Tracking(project_name="sparse_rlvr_tests", experiment_name="media", default_backend=["wandb"], config={})
        try:
            backends = [log_token_shift_media(tracking, 1, STEP1_JS, STEP_SAMPLES, bins=16)]
            tracking.log({"token_shift/js_mean": 0.5}, step=1)  # verl logs the step after us
            backends.append(log_token_shift_media(tracking, 2, STEP2_JS, None, bins=16))
            tracking.log({"token_shift/js_mean": 0.25}, step=2)
        finally:
            tracking.finish()
    (wandb_file,) = root.glob("run/wandb/offline-run-*/run-*.wandb")
    return backends, wandb_file, _finished_records(wandb_file)


def _finished_records(path: Path, timeout_s: float = 60.0) -> list:
    """The run's records once its exit record is on disk.

    On a loaded machine wandb-core can still be flushing the .wandb file when `finish()` returns
    (the file then held no record yet and both W&B tests failed at random); a run is only read
    whole, never half-written.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = list(wandb_records(path))
        except (AssertionError, struct.error):  # a chunk still being written
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} has no exit record {timeout_s:g} s after wandb.finish(): the run never completed")
        time.sleep(0.2)


def test_wandb_histograms_and_table_are_logged_at_verls_step(wandb_run):
    backends, wandb_file, records = wandb_run
    assert backends == [["wandb"], ["wandb"]]
    rows = history_by_step(records)
    assert sorted(rows) == [1, 2]
    for step, js in ((1, STEP1_JS), (2, STEP2_JS)):
        row = rows[step]
        assert row["token_shift/js_mean"] == (0.5 if step == 1 else 0.25)  # same row as verl's scalars
        counts, edges = np.histogram(js, bins=16, range=(0.0, js.max()))
        assert row["token_shift/js_histogram"]["_type"] == "histogram"
        assert row["token_shift/js_histogram"]["values"] == counts.tolist()
        np.testing.assert_allclose(row["token_shift/js_histogram"]["bins"], edges)
        assert sum(row["token_shift/log10_js_histogram"]["values"]) == len(js)
    table = rows[1]["token_shift/heatmaps"]
    assert table["_type"] == "table-file" and table["nrows"] == 2 and table["ncols"] == len(TABLE_COLUMNS)
    assert (wandb_file.parent / "files" / table["path"]).is_file()
    assert "token_shift/heatmaps" not in rows[2]  # no samples at step 2: histograms only


def test_wandb_table_cells_hold_the_heatmap_html(wandb_run):
    _, _, records = wandb_run
    (artifact,) = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact" and r.artifact.type == "run_table"]
    files = {c.path: Path(c.local_path) for c in artifact.manifest.contents}
    table = json.loads(files["token_shift/heatmaps.table.json"].read_text())
    assert table["columns"] == TABLE_COLUMNS
    col = {name: i for i, name in enumerate(TABLE_COLUMNS)}
    for row, sample in zip(table["data"], STEP_SAMPLES, strict=True):
        assert row[col["step"]] == 1 and row[col["uid"]] == sample.uid and row[col["tokens"]] == len(sample.tokens)
        assert math.isclose(row[col["mean_js"]], sample.mean_js) and math.isclose(row[col["max_js"]], sample.max_js)
        assert row[col["response"]] == sample.response and row[col["prompt"]] == sample.prompt
        cell = row[col["heatmap"]]
        assert cell["_type"] == "html-file"
        assert files[cell["path"]].read_text(encoding="utf-8") == response_heatmap_html(sample)  # verbatim, no injection
    assert table["data"][0][col["mean_weight"]] == pytest.approx(1.1) and table["data"][1][col["mean_weight"]] is None


def test_console_and_file_backends_are_a_no_op(tmp_path, monkeypatch):
    from verl.utils.tracking import Tracking

    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "metrics.jsonl"))
    tracking = Tracking(project_name="p", experiment_name="e", default_backend=["console", "file"], config={})
    try:
        assert log_token_shift_media(tracking, 1, STEP1_JS, STEP_SAMPLES) == []
    finally:
        tracking.finish()
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_tensorboard_gets_the_same_histograms(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import HISTOGRAMS, EventAccumulator
    from verl.utils.tracking import Tracking

    monkeypatch.setenv("TENSORBOARD_DIR", str(tmp_path))
    tracking = Tracking(project_name="p", experiment_name="e", default_backend=["tensorboard"], config={})
    try:
        assert log_token_shift_media(tracking, 3, STEP1_JS, STEP_SAMPLES, bins=16) == ["tensorboard"]
    finally:
        tracking.finish()
    events = EventAccumulator(str(tmp_path), size_guidance={HISTOGRAMS: 0})
    events.Reload()
    (event,) = events.Histograms("token_shift/js_histogram")
    counts, edges = np.histogram(STEP1_JS, bins=16, range=(0.0, STEP1_JS.max()))
    assert event.step == 3 and event.histogram_value.bucket == counts.tolist()
    np.testing.assert_allclose(event.histogram_value.bucket_limit, edges[1:])
    assert events.Histograms("token_shift/log10_js_histogram")[0].histogram_value.num == len(STEP1_JS)
