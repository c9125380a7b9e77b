"""Number formats shared by the terminal table, the HTML report and the headline."""

from __future__ import annotations

import math


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}x"


def fmt_latency(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1.0 else f"{value:.2f} s"


def fmt_usd(value: float) -> str:
    """Whole dollars from USD 100 up (a monthly figure), cents below."""
    if not math.isfinite(value):
        return "n/a"
    return f"USD {value:,.0f}" if abs(value) >= 100 else f"USD {value:,.2f}"


def fmt_clock(seconds: float) -> str:
    """Time from the window's start as H:MM:SS (hours past 24 keep counting)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
