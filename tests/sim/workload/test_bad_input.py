"""Bad trace input fails at the boundary with a message naming file, line/field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import TraceFormatError, UserInputError
from sim.workload import load_trace

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
AZ_ROW = "2023-11-16 18:15:46.68,374,44\n"

# (format, file name, content or None for "no file", bin_s, fragments expected in message)
CASES = [
    ("azure-llm", "a.csv", None, None, ["no such file"]),
    ("azure-llm", "a.csv", "", None, ["empty"]),
    ("azure-llm", "a.csv", AZURE_HEADER, None, ["no data rows"]),
    ("azure-llm", "a.csv", "ts,in,out\n" + AZ_ROW, None, ["header", "TIMESTAMP"]),
    ("azure-llm", "a.csv", AZ_ROW, None, ["line 1 is data", "add the header"]),
    (
        "azure-llm",
        "a.csv",
        AZURE_HEADER + AZ_ROW + "2023-11-16 18:15:47,12x,3\n",
        None,
        ["line 3", "ContextTokens", "'12x' is not a finite number"],
    ),
    (
        "azure-llm",
        "a.csv",
        AZURE_HEADER + AZ_ROW + "2023-11-16 18:15:40,5,3\n",
        None,
        ["line 3", "TIMESTAMP", "earlier", "sort the file"],
    ),
    ("azure-llm", "a.csv", AZURE_HEADER + AZ_ROW + "yesterday,5,3\n", None, ["line 3", "ISO"]),
    (
        "azure-llm",
        "a.csv",
        AZURE_HEADER + AZ_ROW + "2023-11-16 18:15:47,-5,3\n",
        None,
        ["line 3", "negative"],
    ),
    (
        "azure-llm",
        "a.csv",
        AZURE_HEADER + AZ_ROW + "2023-11-16 18:15:47,5\n",
        None,
        ["line 3", "GeneratedTokens", "empty"],
    ),
    (
        "azure-llm",
        "a.csv",
        AZURE_HEADER + AZ_ROW + "2023-11-16 18:15:47,5,3,9\n",
        None,
        ["malformed CSV", "line 3"],
    ),
    ("azure-llm", "a.csv", AZURE_HEADER + AZ_ROW + "\n" + AZ_ROW, None, ["line 3", "blank"]),
    ("rate-csv", "r.csv", "0,1\n60,2\n60,3\n", None, ["line 3", "duplicate", "one row per bin"]),
    ("rate-csv", "r.csv", "0,1\n60,-2\n", None, ["line 2", "value", "negative"]),
    ("rate-csv", "r.csv", "0,1\n60,abc\n", None, ["line 2", "value", "not a finite number"]),
    ("rate-csv", "r.csv", "0,1\n90,2\n", 60.0, ["line 2", "not a multiple of the bin width"]),
    ("rate-csv", "r.csv", "0,1\n", None, ["infer the bin width", "bin_s"]),
    ("rate-csv", "r.csv", "0,1\n2024-01-01,2\n", None, ["line 2", "one timestamp style"]),
    ("rate-csv", "r.csv", "0,1,2,3\n", None, ["4 fields per row", "timestamp,value"]),
    ("rate-csv", "r.csv", "yesterday,5\n60,2\n", None, ["line 1", "timestamp", "ISO"]),
    (
        "nab",
        "n.csv",
        "timestamp,value\n2014-07-01 00:30:00,5\n2014-07-01 00:00:00,7\n",
        None,
        ["line 3", "earlier"],
    ),
    ("requests-csv", "q.csv", "0,100\n1,200\n", None, ["2 fields", "output_tokens"]),
    ("requests-csv", "q.csv", "0\n1\n0.5\n", None, ["line 3", "earlier"]),
    ("requests-csv", "q.csv", "0,1,2\n1,nan,2\n", None, ["line 2", "input_tokens"]),
    ("servegen", "dir", None, None, ["not a directory"]),
    ("parquet", "x.csv", "0,1\n", None, ["unknown trace format", "rate-csv"]),
    ("azure-llm", "a.csv", AZURE_HEADER + AZ_ROW, 60.0, ["bin_s applies to rate-csv and nab"]),
]
IDS = [
    "missing-file",
    "empty-file",
    "header-only",
    "wrong-header",
    "no-header",
    "non-numeric-tokens",
    "unsorted-timestamps",
    "unparseable-timestamp",
    "negative-tokens",
    "short-row",
    "long-row",
    "blank-line",
    "rate-duplicate-timestamp",
    "rate-negative",
    "rate-non-numeric",
    "rate-off-grid",
    "rate-single-row-no-bin",
    "rate-mixed-timestamp-styles",
    "rate-too-many-fields",
    "rate-bad-first-row-is-not-a-header",
    "nab-unsorted",
    "requests-one-token-column",
    "requests-unsorted",
    "requests-nan-token",
    "servegen-not-a-directory",
    "unknown-format",
    "bin-for-request-format",
]


@pytest.mark.parametrize(("fmt", "name", "content", "bin_s", "fragments"), CASES, ids=IDS)
def test_bad_trace_input_names_the_problem(
    tmp_path: Path,
    fmt: str,
    name: str,
    content: str | None,
    bin_s: float | None,
    fragments: list[str],
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(TraceFormatError) as info:
        load_trace(path, fmt, bin_s)
    message = str(info.value)
    assert isinstance(info.value, UserInputError)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


SERVEGEN_CASES = [
    ({"chunk-0-trace.csv": "0,1,1,Gamma,0.5,1\n600,1,1,Lognormal,0.5,1\n"}, ["line 2", "pattern"]),
    ({"chunk-0-trace.csv": "0,1,1,Gamma,0,1\n"}, ["line 1", "shape > 0"]),
    ({"chunk-0-trace.csv": "0,1,1,,0,0\n300,1,1,,0,0\n"}, ["line 2", "multiple of 600"]),
    ({"chunk-0-trace.csv": "0,1,1,,0,0\n0,2,1,,0,0\n"}, ["line 2", "duplicate"]),
    ({"chunk-0-trace.csv": "0,-1,1,,0,0\n"}, ["line 1", "rate_rps", "negative"]),
    ({"notes.txt": "hello"}, ["no chunk-N-trace.csv files"]),
]


@pytest.mark.parametrize(
    ("files", "fragments"),
    SERVEGEN_CASES,
    ids=[
        "unknown-pattern",
        "zero-shape",
        "off-grid-window",
        "duplicate-window",
        "negative-rate",
        "no-client-files",
    ],
)
def test_bad_servegen_directory(
    tmp_path: Path, files: dict[str, str], fragments: list[str]
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(TraceFormatError) as info:
        load_trace(tmp_path, "servegen")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
