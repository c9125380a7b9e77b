"""The `planner` application object and what every command shares.

`app` is the typer application; `guarded` maps exceptions to exit codes (0 success;
2 a mistake the user can fix, `sim.errors.UserInputError` or a usage error, printed
in red without a traceback; 1 an internal error, with a hint to rerun with
`planner --debug ...`); `stdout` / `stderr` are rich consoles bound to the current
streams. Commands live beside what they drive (`planner/cli.py` for simulate, sweep
and tune; a package's own `commands` module for the others) and register on `app`
when `planner.cli` imports them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.text import Text

from sim.errors import UserInputError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    add_completion=False,
    help="Plan GPU autoscaling: what-if simulations, sweeps and policy tuning.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
#: Width for tables written to a pipe or file (rich would squeeze them to 80 columns).
PIPE_WIDTH = 160


class _LazyConsole:
    """A rich Console bound to the *current* sys.stdout/sys.stderr at each print.

    Test runners swap the streams after import; a terminal keeps its own width,
    anything else gets `PIPE_WIDTH` so tables stay readable in logs.
    """

    def __init__(self, *, stderr: bool) -> None:
        self.stderr = stderr

    def console(self) -> Console:
        probe = Console(stderr=self.stderr)
        return probe if probe.is_terminal else Console(stderr=self.stderr, width=PIPE_WIDTH)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.console().print(*objects, **kwargs)

    def status(self, message: str) -> Any:
        return self.console().status(message)


stdout = _LazyConsole(stderr=False)
stderr = _LazyConsole(stderr=True)


class EngineChoice(StrEnum):
    fluid = "fluid"
    des = "des"


class TraceFormatChoice(StrEnum):
    azure_llm = "azure-llm"
    servegen = "servegen"
    nab = "nab"
    requests_csv = "requests-csv"
    rate_csv = "rate-csv"


class BackendChoice(StrEnum):
    local = "local"
    ray = "ray"


#: The engine `simulate` uses without --engine: the fluid engine runs the bundled
#: default scenario in seconds; `des` is the request-level reference.
DEFAULT_ENGINE = EngineChoice.fluid


class _Flags:
    """Global flags, set by the root callback on every invocation (one per process)."""

    debug = False


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Map exceptions to exit codes: user errors 2 (no traceback), bugs 1 (hint --debug)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except UserInputError as exc:
            # soft_wrap: the message keeps its own line breaks (paths stay greppable).
            stderr.print(Text(f"error: {exc}", style="bold red"), soft_wrap=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            if _Flags.debug:
                raise
            stderr.print(
                Text(f"internal error: {type(exc).__name__}: {exc}", style="red"), soft_wrap=True
            )
            stderr.print("rerun with `planner --debug ...` to see the traceback")
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
) -> None:
    """Plan GPU autoscaling: what-if simulations, sweeps and policy tuning."""
    _Flags.debug = debug
