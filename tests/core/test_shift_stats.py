"""Shared token-shift statistics against values worked out by hand, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparse_rlvr.core.js_scale import JS_CEILING, JS_FLOOR, js_color, js_intensity
from sparse_rlvr.core.shift_stats import (
    ENTROPY_EDGES,
    POSITION_BINS,
    entropy_bins,
    js_by_entropy,
    js_by_position,
    js_percentiles,
    mean_by_bin,
    position_bins,
    relative_position,
)


def test_relative_position_is_the_centre_of_the_tokens_share():
    np.testing.assert_allclose(relative_position([0, 1, 2], [3, 3, 3]), [1 / 6, 1 / 2, 5 / 6], rtol=0, atol=1e-15)
    assert position_bins([0, 1, 2], [3, 3, 3]).tolist() == [1, 5, 8]  # pos / len would give 0, 3, 6
    assert position_bins([0], [1]).tolist() == [5]  # a one-token response sits mid-response, not at its start


@pytest.mark.parametrize("length", [10, 20, 1000])
def test_a_response_spreads_evenly_over_the_deciles(length):
    bins = position_bins(np.arange(length), np.full(length, length))
    assert POSITION_BINS == 10 and np.bincount(bins).tolist() == [length // 10] * 10
    assert (np.diff(bins) >= 0).all()


def test_entropy_bins_follow_the_edges():
    assert ENTROPY_EDGES == (0.0, 0.1, 0.5, 1.0, 2.0, 4.0, math.inf)
    entropy = [0.0, 0.05, 0.1, 0.4999, 0.5, 1.5, 2.0, 3.99, 4.0, 100.0, -1e-9, math.nan, math.inf]
    assert entropy_bins(entropy).tolist() == [0, 0, 1, 1, 2, 3, 4, 4, 5, 5, 0, -1, -1]


def test_percentiles_interpolate_linearly():
    # index p/100 * (n - 1) into the sorted values: 50 -> 2, 90 -> 3.6, 99.9 -> 3.996
    assert js_percentiles([0.4, 0.0, 0.2, 0.1, 0.3], (50, 90, 99.9)) == pytest.approx({"50": 0.2, "90": 0.36, "99.9": 0.3996})


def test_mean_by_bin_leaves_empty_bins_empty_and_ignores_unbinned_tokens():
    assert mean_by_bin([0.1, 0.3, 0.2, 9.0], [0, 0, 2, -1], 3) == pytest.approx([0.2, None, 0.2])


def test_js_by_position_by_hand():
    # response A: 2 tokens, deciles 10 * (0.5, 1.5) / 2 -> 2, 7; response B: 4 tokens -> 1, 3, 6, 8
    js = [0.0, 0.2, 0.1, 0.3, 0.5, 0.7]
    stats = js_by_position(js, [0, 1, 0, 1, 2, 3], [2, 2, 4, 4, 4, 4])
    assert stats["bin_mean"] == pytest.approx([None, 0.1, 0.0, 0.3, None, None, 0.5, 0.2, 0.7, None])
    assert stats["bin_tokens"] == [0, 1, 1, 1, 0, 0, 1, 1, 1, 0]
    assert stats["first_token_mean"] == pytest.approx(0.05) and stats["last_token_mean"] == pytest.approx(0.45)
    assert stats["bin_p90"] == pytest.approx(stats["bin_mean"])  # one token per bin


def test_js_by_entropy_by_hand():
    rows = js_by_entropy([0.0, 0.2, 0.05, 0.3], [0.01, 0.02, 1.5, 1.7], high=0.1)
    assert [(r["entropy_from"], r["entropy_to"]) for r in rows] == list(zip(ENTROPY_EDGES[:-1], ENTROPY_EDGES[1:]))
    assert [r["tokens"] for r in rows] == [2, 0, 0, 2, 0, 0]
    assert rows[0]["js_mean"] == pytest.approx(0.1) and rows[0]["fraction_high"] == 0.5
    assert rows[3]["js_mean"] == pytest.approx(0.175) and rows[3]["fraction_high"] == 0.5
    assert rows[1]["js_mean"] is None and rows[1]["fraction_high"] is None


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="position 3 outside its response of length 3"):
        position_bins([0, 3], [3, 3])
    with pytest.raises(ValueError, match="flat array.*shape \\(2, 2\\).*response_mask"):
        js_percentiles(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no response tokens"):
        js_percentiles([])
    with pytest.raises(ValueError, match="js has 3 values and the bins 2"):
        mean_by_bin([0.1, 0.2, 0.3], [0, 1], 2)
    with pytest.raises(ValueError, match="position has 2 values and length 1"):
        relative_position([0, 1], [2])


def test_colour_scale_by_hand():
    assert js_color(JS_FLOOR) == "#ffffff" and js_color(JS_CEILING) == "#dc2828"
    js = 10 ** (0.6 * math.log10(JS_FLOOR) + 0.4 * math.log10(JS_CEILING))  # 40% of the way on the log scale
    assert js_intensity(js) == pytest.approx(0.4)
    assert js_color(js) == "#f1a9a9"  # 255 - 0.4 (255 - (220, 40, 40)) = (241, 169, 169)
    assert js_intensity(math.nan) == 0.0 and js_intensity(math.inf) == 1.0
    with pytest.raises(ValueError, match="vmax"):
        js_intensity(0.1, vmax=JS_FLOOR)
