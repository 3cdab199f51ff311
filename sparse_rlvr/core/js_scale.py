"""The one JS colour scale: white at JS <= 1e-4 to red at ln 2 (or a chosen vmax), log10 in between.

The W&B heatmaps (training/monitor/media.py) and report.html (analysis/report.py) both colour
tokens with `js_color`; the report receives the colours as data, so no second copy of the formula
exists in JavaScript and a colour means the same JS on the dashboard and in the report.
"""

from __future__ import annotations

import math

JS_FLOOR = 1e-4
"""JS at or below this is white."""
JS_CEILING = math.log(2)
"""Largest possible JS (natural log): full colour by default."""
RED = (220, 40, 40)
"""RGB of full colour."""


def js_intensity(js: float, vmax: float = JS_CEILING) -> float:
    """Position of `js` on the scale, 0 (white) .. 1 (red): (log10 js - log10 1e-4) / (log10 vmax - log10 1e-4), clipped.

    NaN and -inf count as 0 (white), +inf as 1.
    """
    if not vmax > JS_FLOOR:
        raise ValueError(f"vmax (JS at full colour) must be above {JS_FLOOR:g}, got {vmax}")
    if not math.isfinite(js):
        return 1.0 if js > 0 else 0.0
    lo, hi = math.log10(JS_FLOOR), math.log10(vmax)
    return min(1.0, max(0.0, (math.log10(max(js, 1e-30)) - lo) / (hi - lo)))


def js_color(js: float, vmax: float = JS_CEILING) -> str:
    """Background colour of one token as #rrggbb: RED blended over white by js_intensity."""
    a = js_intensity(js, vmax)
    r, g, b = (round(255 - a * (255 - c)) for c in RED)
    return f"#{r:02x}{g:02x}{b:02x}"
