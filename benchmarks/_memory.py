"""Process memory readings for the benchmarks (Linux /proc)."""

from __future__ import annotations

from pathlib import Path


def rss_kib(field: str) -> int:
    """A /proc/self/status memory field in KiB: VmRSS (now) or VmHWM (peak since the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
