"""Token-shift statistics shared by the W&B monitor, summary.json and report.html.

One definition of the JS percentiles, the relative-position bins and the base-entropy bins, as
pure functions over flat per-token numpy arrays, so the dashboard and the offline report give the
same numbers on the same tokens.

Notation (every array is flat, one value per response token, N tokens):
    js        [N]  JS(base, policy) of the token, in nats (0 .. ln 2)
    position  [N]  0-based index of the token in its response
    length    [N]  number of tokens of that response (position < length)
    entropy   [N]  entropy of the base model's next-token distribution, in nats

Relative position is (position + 0.5) / length, the centre of the token's share of the response,
so a response of any length spreads evenly over POSITION_BINS equal bins (a 10-token response puts
one token in each decile). Base-entropy bin k holds ENTROPY_EDGES[k] <= entropy < ENTROPY_EDGES[k+1];
the first bin also takes slightly negative rounding of an entropy of 0, non-finite entropies sit
in no bin. Percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

import math

import numpy as np

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)
"""JS percentiles of summary.json (and the report's headline)."""
MONITOR_PERCENTILES = (50, 90, 95, 99)
"""The subset of PERCENTILES the W&B monitor logs every step."""
POSITION_BINS = 10
"""Equal relative-position bins of a response (deciles)."""
ENTROPY_EDGES = (0.0, 0.1, 0.5, 1.0, 2.0, 4.0, math.inf)
"""Base-entropy bin edges in nats: near-deterministic, low, ... , high-entropy forks."""


def _as_flat(values: object, name: str) -> np.ndarray:
    """`values` as a 1-D float64 array (lists, numpy arrays, CPU torch tensors)."""
    if hasattr(values, "detach"):  # a torch tensor: numpy cannot take bfloat16 or device memory
        values = values.detach().double().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat array of per-token values, got shape {array.shape}; "
                         "select the response tokens first (e.g. js[response_mask.bool()])")
    return array


def js_percentiles(js: np.ndarray, percentiles: tuple[float, ...] = PERCENTILES) -> dict[str, float]:
    """{str(p): JS at percentile p} over all tokens; `js` must hold at least one value."""
    js = _non_empty(_as_flat(js, "js"))
    return {str(p): float(q) for p, q in zip(percentiles, np.percentile(js, percentiles))}


def relative_position(position: np.ndarray, length: np.ndarray) -> np.ndarray:
    """(position + 0.5) / length per token, in (0, 1)."""
    position, length = _as_flat(position, "position"), _as_flat(length, "length")
    if position.shape != length.shape:
        raise ValueError(f"position has {position.size} values and length {length.size}; give one of each per token")
    bad = (position < 0) | (position >= length)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"token {i} has position {position[i]:g} outside its response of length {length[i]:g}; "
                         "positions are 0-based indices into the response (0 <= position < length)")
    return (position + 0.5) / length


def position_bins(position: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Relative-position bin (0 .. POSITION_BINS - 1) of every token: floor(10 (pos + 0.5) / len)."""
    bins = np.floor(relative_position(position, length) * POSITION_BINS).astype(np.int64)
    return np.minimum(bins, POSITION_BINS - 1)


def entropy_bins(entropy: np.ndarray) -> np.ndarray:
    """Base-entropy bin (0 .. len(ENTROPY_EDGES) - 2) of every token; -1 for a non-finite entropy."""
    entropy = _as_flat(entropy, "entropy")
    bins = np.searchsorted(np.asarray(ENTROPY_EDGES[1:-1]), entropy, side="right").astype(np.int64)
    bins[~np.isfinite(entropy)] = -1
    return bins


def entropy_bin_labels() -> list[tuple[float, float]]:
    """(from, to) of every base-entropy bin, in bin order."""
    return list(zip(ENTROPY_EDGES[:-1], ENTROPY_EDGES[1:]))


def mean_by_bin(js: np.ndarray, bins: np.ndarray, count: int) -> list[float | None]:
    """Mean JS of the tokens in each bin 0 .. count - 1; None for an empty bin (bins < 0 are ignored)."""
    js, bins = _aligned(js, bins)
    inside = bins >= 0
    totals = np.bincount(bins[inside], weights=js[inside], minlength=count)[:count]
    tokens = np.bincount(bins[inside], minlength=count)[:count]
    return [float(t / n) if n else None for t, n in zip(totals, tokens)]


def percentile_by_bin(js: np.ndarray, bins: np.ndarray, count: int, percentile: float) -> list[float | None]:
    """JS at `percentile` within each bin 0 .. count - 1; None for an empty bin."""
    js, bins = _aligned(js, bins)
    return [float(np.percentile(js[bins == b], percentile)) if (bins == b).any() else None for b in range(count)]


def tokens_by_bin(bins: np.ndarray, count: int) -> list[int]:
    """How many tokens fall in each bin 0 .. count - 1."""
    bins = np.asarray(bins, dtype=np.int64)
    return [int(n) for n in np.bincount(bins[bins >= 0], minlength=count)[:count]]


def js_by_position(js: np.ndarray, position: np.ndarray, length: np.ndarray) -> dict:
    """Mean and p90 JS per relative-position decile, and mean JS of first and last response tokens."""
    js = _non_empty(_as_flat(js, "js"))
    position, length = _as_flat(position, "position"), _as_flat(length, "length")
    bins = position_bins(position, length)
    js, bins = _aligned(js, bins)
    return {
        "bin_mean": mean_by_bin(js, bins, POSITION_BINS),
        "bin_p90": percentile_by_bin(js, bins, POSITION_BINS, 90),
        "bin_tokens": tokens_by_bin(bins, POSITION_BINS),
        "first_token_mean": float(js[position == 0].mean()),
        "last_token_mean": float(js[position == length - 1].mean()),
    }


def js_by_entropy(js: np.ndarray, entropy: np.ndarray, high: float) -> list[dict]:
    """Per base-entropy bin: its edges, token count, mean JS and share of tokens with JS > high."""
    js = _as_flat(js, "js")
    bins = entropy_bins(entropy)
    js, bins = _aligned(js, bins)
    means = mean_by_bin(js, bins, len(ENTROPY_EDGES) - 1)
    highs = mean_by_bin((js > high).astype(np.float64), bins, len(ENTROPY_EDGES) - 1)
    counts = tokens_by_bin(bins, len(ENTROPY_EDGES) - 1)
    return [{"entropy_from": lo, "entropy_to": hi, "tokens": n, "js_mean": m, "fraction_high": f}
            for (lo, hi), n, m, f in zip(entropy_bin_labels(), counts, means, highs)]


def _aligned(js: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    js, bins = _as_flat(js, "js"), np.asarray(bins, dtype=np.int64)
    if js.shape != bins.shape:
        raise ValueError(f"js has {js.size} values and the bins {bins.size}; give one bin per token")
    return js, bins


def _non_empty(js: np.ndarray) -> np.ndarray:
    if js.size == 0:
        raise ValueError("no response tokens to summarise (every response empty or masked out); check the data")
    return js
