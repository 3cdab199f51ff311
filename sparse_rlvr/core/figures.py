"""Figures as PNG bytes: matplotlib without a display (Agg), one way to render them for every report."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def png_bytes(fig: plt.Figure, dpi: int = 90) -> bytes:
    """The figure as PNG bytes (tight layout), closed afterwards so long runs do not pile up figures."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()
