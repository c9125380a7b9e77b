"""Refuse a workload that would not fit in memory, before allocating it.

Every engine holds a run's requests one by one (the DES as events, the fluid engine
as sampled arrival times and token counts, binned afterwards), and rescaling a
request trace builds its copies in a handful of index arrays at once. A rescale to
a rate the machine cannot hold used to end, minutes later, in a MemoryError of tens
of GiB; this check turns it into a message before the first allocation.
"""

from __future__ import annotations

import os

from sim.errors import ScenarioError

#: Peak bytes per request while a request trace is rescaled: arrival time, two token
#: counts and the resampling's index arrays (source, rank, gap, offset, sort order).
#: tracemalloc measures 82 on the Azure conv hour scaled 20x (387,320 requests);
#: 104 (13 eight-byte values) leaves room for the engine's own per-request arrays.
#: tests/sim/workload/test_units_and_limits.py checks the measured peak stays below it.
BYTES_PER_REQUEST = 104


def available_bytes() -> int | None:
    """Memory the system can hand out now (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(requests: float, what: str, *, available: int | None = None) -> None:
    """Raise `ScenarioError` when `requests` would need more memory than is available.

    Args:
        requests: Requests the run would hold.
        what: What needs them, for the message ("scaling trace.csv").
        available: Bytes available (default: `available_bytes()`; unknown skips the check).
    """
    needed = requests * BYTES_PER_REQUEST
    free = available_bytes() if available is None else available
    if free is None or needed <= free:
        return
    raise ScenarioError(
        f"{what} needs about {requests:,.0f} requests, {needed / 2**30:,.1f} GiB of memory, "
        f"and this machine has {free / 2**30:,.1f} GiB available; lower "
        "workload.scale_mean_rps (--scale-mean-rps) or shorten the window (--duration-h)"
    )
