"""Every `planner ...` line in the README's and docs' code blocks runs as written.

Examples are collected from fenced code blocks of README.md and docs/*.md: a line
starting with `planner` or `.venv/bin/planner` (or a `... && .venv/bin/planner ...`
chain, whose planner part is taken), backslash continuations joined, a trailing
`# comment` dropped. Two kinds:

- A *synopsis* (it has `[--flag ...]`, `a|b` or a placeholder in capitals such as
  `PATH`): every `--flag` it names must be a flag of that command (`planner CMD
  --help`).
- An *example*: it runs in-process, in order, in one temporary directory (so `tune
  --out bundles/x` and then `bundle:bundles/x` work as the README chains them), and
  must exit 0, or the code its comment documents (`# ... exits N ...`).

Commands that `planner --help` does not list yet (other work adds them) are not
run; the test warns with each of them, and runs them as soon as they exist.

A ```json block followed within three lines by an inline `` `planner ... --json
FILE` `` is a sample of that command's output: the command is run, every key of the
sample must exist in the real document, and each policy's own figures (cost,
attainment, latencies, ...; not the oracle-relative ones) must match the real run.

Examples name real data or long runs; the mappings below are the only changes made
before running, each listed here and printed with the example (`-rw` shows them):

- `SUBSTITUTED_PATHS`: a placeholder path to the bundled fixture that stands for it.
- `SHORTER_RUNS`: a flag value to a smaller one, to keep this test under a minute
  (a shorter window or fewer trials; the command and its other flags unchanged).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from planner.cli import app
from sim.scenario import BUNDLED_DIR

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FIXTURES = BUNDLED_DIR / "fixtures"
#: Folders of the clone that examples name by relative path.
REPO_FOLDERS = ("sim", "policies", "planner", "infra", "docs", "benchmarks")

#: Placeholder path in a document -> the bundled fixture the test runs instead.
SUBSTITUTED_PATHS = {
    "/path/to/servegen/m-small": str(FIXTURES / "servegen_m_small_2d"),
}
#: (flag, documented value) -> value run here: shorter windows and fewer trials.
SHORTER_RUNS = {
    ("--duration-h", "24"): "2",
    ("--trials", "40"): "2",
    ("--trials", "4"): "2",
    ("--train-h", "0:24"): "0:2",
    ("--eval-h", "24:48"): "24:26",
}
_FENCE = re.compile(r"^```")
_EXIT = re.compile(r"\bexits? (\d)\b")
#: An argument in capitals (PATH, NAME, N, FILE.html) is a synopsis's placeholder.
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.[a-z]+)?$")


@dataclass(frozen=True)
class Example:
    """One `planner` line of a document."""

    source: str
    line: int
    argv: tuple[str, ...]
    expected_exit: int
    synopsis: bool

    @property
    def command(self) -> str:
        """The subcommand (`simulate`, `tune`, ...), after any global option."""
        return next((arg for arg in self.argv if not arg.startswith("-")), "")

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: planner {shlex.join(self.argv)}"


def _planner_part(text: str) -> str | None:
    for segment in reversed(text.split("&&")):
        words = segment.strip()
        for prefix in (".venv/bin/planner ", "planner ", "$ planner "):
            if words.startswith(prefix):
                return words[len(prefix) :]
        if words in (".venv/bin/planner", "planner"):
            return ""
    return None


def collect(document: Path) -> list[Example]:
    """Every planner line in the document's fenced code blocks."""
    examples = []
    in_block = False
    lines = document.read_text().splitlines()
    index = 0
    while index < len(lines):
        raw = lines[index]
        start = index
        index += 1
        if _FENCE.match(raw.strip()):
            in_block = not in_block
            continue
        if not in_block:
            continue
        text = raw
        while text.rstrip().endswith("\\") and index < len(lines):
            text = text.rstrip()[:-1] + " " + lines[index].strip()
            index += 1
        code, _, comment = text.partition(" #")
        rest = _planner_part(code.strip())
        if rest is None:
            continue
        # A synopsis goes on over the block's following lines that open with "[".
        while index < len(lines) and lines[index].strip().startswith("["):
            rest += " " + lines[index].strip()
            index += 1
        synopsis = "[" in rest or "|" in rest or any(map(_PLACEHOLDER.match, rest.split()))
        expected = _EXIT.search(comment)
        argv = tuple(rest.split()) if synopsis else tuple(shlex.split(rest))
        examples.append(
            Example(
                source=str(document.relative_to(REPO)),
                line=start + 1,
                argv=argv,
                expected_exit=int(expected.group(1)) if expected else 0,
                synopsis=synopsis,
            )
        )
    return examples


def substituted(argv: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """`argv` with the documented mappings applied, and a note for each one applied."""
    out: list[str] = []
    notes: list[str] = []
    for arg in argv:
        value = arg
        for placeholder, fixture in SUBSTITUTED_PATHS.items():
            if placeholder in value:
                value = value.replace(placeholder, fixture)
                notes.append(f"{placeholder} -> {fixture}")
        if out and (out[-1], value) in SHORTER_RUNS:
            shorter = SHORTER_RUNS[(out[-1], value)]
            notes.append(f"{out[-1]} {value} -> {shorter}")
            value = shorter
        out.append(value)
    return out, notes


def available_commands() -> dict[str, object]:
    """The subcommands `planner --help` lists, by name."""
    group = typer.main.get_command(app)
    return dict(getattr(group, "commands", {}))


ALL = [example for document in DOCUMENTS for example in collect(document)]


def test_the_documents_have_examples() -> None:
    """The collector finds the README's quick start (a guard against a silent parser)."""
    readme = [e for e in ALL if e.source == "README.md" and not e.synopsis]
    assert len(readme) >= 6
    assert {e.command for e in readme} >= {"simulate", "sweep", "tune"}


@pytest.mark.parametrize("example", [e for e in ALL if e.synopsis], ids=str)
def test_every_flag_of_a_synopsis_exists(example: Example) -> None:
    commands = available_commands()
    if example.command not in commands:
        warnings.warn(
            f"not checked, `planner {example.command}` does not exist yet: {example}", stacklevel=2
        )
        return
    help_text = CliRunner().invoke(app, [example.command, "--help"], terminal_width=200).output
    for flag in re.findall(r"--[a-z][a-z0-9-]*", " ".join(example.argv)):
        assert flag in help_text, f"{example}: {flag} is not a flag of planner {example.command}"


def test_every_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All examples, in document order, in one directory (later ones use earlier outputs).

    The documents' commands run from the clone's root: the directory links the
    repository's source folders (`sim/scenarios/fixtures/...` resolves) and holds
    copies of what examples read and may write (the stack files, `bundles/`), so
    every output lands in the temporary directory and the clone stays untouched.
    """
    for folder in REPO_FOLDERS:
        (tmp_path / folder).symlink_to(REPO / folder, target_is_directory=True)
    for item in REPO.iterdir():
        if item.is_file() and item.name.startswith("Pulumi"):
            shutil.copy2(item, tmp_path / item.name)
    if (REPO / "bundles").is_dir():
        shutil.copytree(REPO / "bundles", tmp_path / "bundles")
    monkeypatch.chdir(tmp_path)
    commands = available_commands()
    runner = CliRunner()
    not_run: list[str] = []
    ran: list[str] = []
    for example in (e for e in ALL if not e.synopsis):
        if example.command not in commands:
            not_run.append(str(example))
            continue
        argv, notes = substituted(example.argv)
        result = runner.invoke(app, argv)
        shown = f"{example}" + (f" (run with {'; '.join(notes)})" if notes else "")
        assert result.exit_code == example.expected_exit, f"{shown}\n{result.output}"
        ran.append(shown)
    if not_run:
        warnings.warn(
            "not run, their commands do not exist yet (they run once they do):\n  "
            + "\n  ".join(not_run),
            stacklevel=2,
        )
    substitutions = [line for line in ran if "(run with" in line]
    if substitutions:
        warnings.warn(
            "run with the documented substitutions:\n  " + "\n  ".join(substitutions),
            stacklevel=2,
        )
    assert ran


#: Figures of a policy's own run: they do not depend on the oracle, so a sample
#: taken from a real run keeps them until an engine changes.
RUN_FIGURES = (
    "cost_usd", "gpu_hours", "slo_attainment", "p50_latency_s", "p95_latency_s",
    "p99_latency_s", "dropped", "scaling_actions", "meets_slo",
)  # fmt: skip
_INLINE_COMMAND = re.compile(r"`(planner [^`]*--json [^`]*)`")


@dataclass(frozen=True)
class JsonSample:
    """A ```json block of a document and the inline `planner ... --json` line that made it."""

    source: str
    line: int
    document: object
    argv: tuple[str, ...]


def json_samples(document: Path) -> list[JsonSample]:
    """JSON blocks followed (within three lines) by the command that wrote them."""
    lines = document.read_text().splitlines()
    samples = []
    for index, line in enumerate(lines):
        if line.strip() != "```json":
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        after = " ".join(lines[end + 1 : end + 4])
        found = _INLINE_COMMAND.search(after)
        if found is None:
            continue
        samples.append(
            JsonSample(
                source=str(document.relative_to(REPO)),
                line=index + 1,
                document=json.loads("\n".join(lines[index + 1 : end])),
                argv=tuple(shlex.split(found.group(1))[1:]),
            )
        )
    return samples


def _keys_within(sample: object, real: object, where: str) -> None:
    """Every key of the sample is in the real document, at every level ("..." elides)."""
    if isinstance(sample, dict) and isinstance(real, dict):
        for key, value in sample.items():
            if key == "...":
                continue
            assert key in real, f"{where}.{key} is in the sample but not in a real run"
            _keys_within(value, real[key], f"{where}.{key}")
    elif isinstance(sample, list) and isinstance(real, list):
        for position, (a, b) in enumerate(zip(sample, real, strict=False)):
            _keys_within(a, b, f"{where}[{position}]")


SAMPLES = [sample for document in DOCUMENTS for sample in json_samples(document)]


def test_the_cli_doc_has_a_json_sample() -> None:
    assert any(sample.source == "docs/cli.md" for sample in SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.source}:{s.line}")
def test_json_samples_come_from_a_real_run(
    sample: JsonSample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample's keys exist in the command's real output, and its runs' figures match."""
    monkeypatch.chdir(tmp_path)
    argv = list(sample.argv)
    argv[argv.index("--json") + 1] = str(tmp_path / "real.json")
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    real = json.loads((tmp_path / "real.json").read_text())
    _keys_within(sample.document, real, sample.source)
    assert isinstance(sample.document, dict)
    for shown, ran in zip(sample.document.get("results", []), real["results"], strict=True):
        for figure in RUN_FIGURES:
            if figure in shown:
                assert shown[figure] == pytest.approx(ran[figure], rel=1e-9), (
                    f"{sample.source}:{sample.line}: {shown['policy']}.{figure} is "
                    f"{shown[figure]} in the sample, {ran[figure]} in a real run"
                )
