"""ServeGen per-client window fits (Xiang et al., arXiv:2505.09999; alibaba/ServeGen).

A model directory holds one headerless file per client, `chunk-N-trace.csv`, with one
row per 600 s window: `t_s, rate_rps, cv, pattern, shape, scale`. `pattern` is the
fitted inter-arrival distribution (`Gamma`, `Weibull`, or empty for an idle client).
The model's total rate is the sum of its clients' rates. A window where *every*
client is zero (or has no row) is a collection gap: it becomes a missing bin, not
zero load. ServeGen's t = 0 is local midnight of an unstated day; the loader anchors
it to a Monday midnight (`SERVEGEN_EPOCH_S`) so weekday-aware policies see a
consistent calendar.
"""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import TraceFormatError
from sim.workload.loaders._csv import check_order, non_negative, numbers, read_table
from sim.workload.model import (
    MONDAY_EPOCH_S,
    ArrivalPattern,
    BoolArray,
    ClientFits,
    FloatArray,
    IntArray,
    RateEnvelope,
)

WINDOW_S = 600.0
SERVEGEN_EPOCH_S = MONDAY_EPOCH_S
FIELDS = ("t_s", "rate_rps", "cv", "pattern", "shape", "scale")
_CHUNK = re.compile(r"^chunk-(\d+)-trace\.csv$")
Client = tuple[np.ndarray, ...]
"""One client's windows: (window index, rate, pattern, shape, scale)."""
_PATTERNS = {"gamma": ArrivalPattern.GAMMA, "weibull": ArrivalPattern.WEIBULL}


def client_files(directory: Path) -> list[Path]:
    """The `chunk-N-trace.csv` files of a model directory, ordered by N."""
    if not directory.is_dir():
        raise TraceFormatError(
            f"{directory}: not a directory; a servegen trace is a model directory holding "
            "chunk-N-trace.csv files"
        )
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CHUNK.match(p.name))]
    if not found:
        raise TraceFormatError(
            f"{directory}: no chunk-N-trace.csv files; pass a ServeGen model directory "
            "such as data/language/m-small"
        )
    return [path for _, path in sorted(found)]


def _read_client(path: Path) -> Client:
    """One client's windows: (window index, rate, pattern, shape, scale)."""
    table = read_table(path, FIELDS, header="none", what="servegen")
    t_s = numbers(table, "t_s")
    check_order(table, "t_s", t_s, duplicates_ok=False)
    index, off_grid = _window_index(t_s)
    if off_grid.any():
        row = int(np.argmax(off_grid))
        raise table.fail(
            row, "t_s", f"{t_s[row]:g} is not a multiple of 600", "ServeGen windows are 600 s"
        )
    rate = numbers(table, "rate_rps")
    non_negative(table, "rate_rps", rate)
    shape = numbers(table, "shape", allow_empty=True)
    scale = numbers(table, "scale", allow_empty=True)
    names = table.frame["pattern"].str.strip().str.lower().to_numpy(dtype=object)
    pattern, known = _pattern_codes(names, rate)
    unknown = ~known
    if unknown.any():
        row = int(np.argmax(unknown))
        raise table.fail(
            row,
            "pattern",
            f"{table.frame['pattern'].iat[row]!r} is not a known arrival pattern",
            "use Gamma, Weibull or leave it empty for an idle window",
        )
    fitted = pattern >= int(ArrivalPattern.GAMMA)
    bad_shape = fitted & ~(shape > 0)
    if bad_shape.any():
        row = int(np.argmax(bad_shape))
        raise table.fail(row, "shape", "a fitted pattern needs a shape > 0", "fix the fit")
    return index, rate, pattern.astype(np.int8), shape, scale


def _window_index(t_s: FloatArray) -> tuple[IntArray, BoolArray]:
    """Each row's 600 s window number, and which rows lie off that grid."""
    index = np.rint(t_s / WINDOW_S).astype(np.int64)
    return index, np.abs(t_s - index * WINDOW_S) > 1e-6


def _pattern_codes(names: np.ndarray, rate: FloatArray) -> tuple[IntArray, BoolArray]:
    """`ArrivalPattern` codes from lower-cased pattern names, and which names are known.

    A window with traffic but no fitted pattern is POISSON; one without traffic is IDLE.
    """
    pattern = np.where(rate > 0, int(ArrivalPattern.POISSON), int(ArrivalPattern.IDLE))
    known = names == ""
    for name, code in _PATTERNS.items():
        match = names == name
        known |= match
        pattern[match & (rate > 0)] = int(code)
    return pattern, known


_NUMERIC = ("t_s", "rate_rps", "cv", "shape", "scale")


def _read_all_fast(files: list[Path]) -> list[Client] | None:
    """All clients parsed in one pandas call; None if anything looks wrong.

    The common case (a well-formed directory) costs one C-parser pass over the
    concatenated files. Any doubt (a parse error, a non-numeric column, a check
    that fails) returns None, and the caller re-reads file by file with
    `_read_client`, whose job is to say precisely what is wrong and where.
    """
    blobs = [path.read_bytes() for path in files]
    blobs = [blob if blob.endswith(b"\n") else blob + b"\n" for blob in blobs]
    lines = np.array([blob.count(b"\n") for blob in blobs])
    try:
        frame = pd.read_csv(
            io.BytesIO(b"".join(blobs)),
            header=None,
            names=list(FIELDS),
            index_col=False,
            dtype={"pattern": str},
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if len(frame) != lines.sum() or np.any(lines == 0):
        return None
    if not all(pd.api.types.is_numeric_dtype(frame[name]) for name in _NUMERIC):
        return None
    t_s, rate, shape, scale = (
        frame[name].to_numpy(dtype=np.float64) for name in ("t_s", "rate_rps", "shape", "scale")
    )
    names = frame["pattern"].str.strip().str.lower().to_numpy(dtype=object)
    if not (np.isfinite(t_s).all() and np.isfinite(rate).all() and (rate >= 0).all()):
        return None
    if not (np.isfinite(shape).all() and np.isfinite(scale).all()):
        return None
    pattern, known = _pattern_codes(names, rate)
    if not known.all() or np.any((pattern >= ArrivalPattern.GAMMA) & ~(shape > 0)):
        return None
    index, off_grid = _window_index(t_s)
    if off_grid.any():
        return None
    bounds = np.concatenate(([0], np.cumsum(lines)))
    step = np.diff(t_s)
    starts = bounds[1:-1] - 1  # a file boundary may step backwards
    step[starts] = 1.0
    if np.any(step <= 0):
        return None
    pattern8 = pattern.astype(np.int8)
    return [
        (index[a:b], rate[a:b], pattern8[a:b], shape[a:b], scale[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


def load_servegen(directory: Path) -> RateEnvelope:
    """Load a ServeGen model directory as a `RateEnvelope` with per-client fits.

    Raises:
        TraceFormatError: Not a directory, no client files, or a malformed client file
            (the message names the file, line and field).
    """
    files = client_files(directory)
    clients = _read_all_fast(files) or [_read_client(path) for path in files]
    first = min(int(c[0][0]) for c in clients)
    n_bins = max(int(c[0][-1]) for c in clients) - first + 1
    shape2 = (len(files), n_bins)
    rate = np.zeros(shape2)
    pattern = np.zeros(shape2, dtype=np.int8)
    shape = np.zeros(shape2)
    scale = np.zeros(shape2)
    for row, (index, c_rate, c_pattern, c_shape, c_scale) in enumerate(clients):
        cols = index - first
        rate[row, cols] = c_rate
        pattern[row, cols] = c_pattern
        shape[row, cols] = c_shape
        scale[row, cols] = c_scale
    total = rate.sum(axis=0)
    missing = total == 0.0
    total[missing] = np.nan
    return RateEnvelope(
        bin_s=WINDOW_S,
        rate_rps=total,
        missing=missing,
        clients=ClientFits(
            rate_rps=rate,
            pattern=pattern,
            shape=shape,
            scale=scale,
            names=tuple(path.stem.removesuffix("-trace") for path in files),
        ),
        epoch_s=SERVEGEN_EPOCH_S + first * WINDOW_S,
        source=f"servegen:{directory.name}",
    )
