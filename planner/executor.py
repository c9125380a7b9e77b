"""One executor interface for sweeps: local processes or a Ray cluster.

`Executor.map(fn, items)` returns `[fn(item) for item in items]` in order, run
wherever the backend puts them. `fn` must be a module-level function and items
must pickle (both backends ship them to other processes). Ray is imported lazily
so the CLI starts fast when it is not used.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar

from sim.errors import UserInputError

T = TypeVar("T")
R = TypeVar("R")

Backend = Literal["local", "ray"]


class Executor(Protocol):
    """Runs a function over items, preserving order. Use as a context manager."""

    name: str

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        """Results in the order of `items`; `on_done(k)` is told each time k of them
        have finished (in any order), for progress."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _ClosingMixin(ABC):
    """Context-manager support: leaving the `with` block calls `close`."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend's workers (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LocalExecutor(_ClosingMixin):
    """`concurrent.futures.ProcessPoolExecutor` on this machine.

    Workers start with the `spawn` method: forking a process that already holds
    numba's or Ray's threads can deadlock, and spawn behaves the same on every OS.
    With one worker (or one item) the items run in this process: a worker would
    only add its start-up (imports, JIT cache loads). Leaving the `with` block,
    normally or on an error or Ctrl-C, leaves no worker behind.

    Args:
        max_workers: Worker processes; default the machine's CPU count.
    """

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise UserInputError(f"--workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        if not items:
            return []
        tell = on_done or (lambda _done: None)
        if min(self.max_workers, len(items)) == 1:
            results = []
            for item in items:
                results.append(fn(item))
                tell(len(results))
            return results
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=min(self.max_workers, len(items)),
                mp_context=multiprocessing.get_context("spawn"),
            )
        try:
            futures = [self._pool.submit(fn, item) for item in items]
            for done, _ in enumerate(as_completed(futures), start=1):
                tell(done)
            return [future.result() for future in futures]
        except BaseException:
            self._terminate()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.is_alive() and p.pid is not None]

    def _terminate(self) -> None:
        """Stop the workers now: a failed or interrupted map must not leave them running."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor has no public kill; its process table is stable since 3.8.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5.0)


class RayExecutor(_ClosingMixin):
    """Ray tasks: `ray.init(address=...)`, one `@ray.remote` task per item.

    With `address=None` a local Ray is started (and shut down on `close`); with an
    address (`auto`, `ray://host:10001`, `host:6379`) the executor connects to an
    existing cluster and leaves it running.

    Args:
        address: Ray cluster address, or None for a fresh local instance.
        num_cpus: CPUs of a fresh local instance (ignored when connecting).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._started_here = False

    def _ensure_started(self) -> Any:
        import ray  # lazy: importing ray costs about a second

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kwargs["num_cpus"] = self.num_cpus
            else:
                _probe(self.address)
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise UserInputError(
                    f"cannot reach the Ray cluster at {self.address!r} ({exc}); "
                    "check --address or start the cluster with `ray start --head`"
                ) from None
            self._started_here = True
        return ray

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        if not items:
            return []
        ray = self._ensure_started()
        # A Python trampoline: `ray.remote` refuses builtins, and shipping `fn` as an
        # argument puts it in the object store once per task batch.
        remote_apply = ray.remote(_apply)
        fn_ref = ray.put(fn)
        refs = [remote_apply.remote(fn_ref, item) for item in items]
        if on_done is not None:
            pending = list(refs)
            while pending:
                _, pending = ray.wait(pending, num_returns=1)
                on_done(len(refs) - len(pending))
        results: list[R] = ray.get(refs)
        return results

    def close(self) -> None:
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on an unreachable `host:port` (ray.init retries for minutes)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" or a name Ray resolves itself
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UserInputError(
            f"cannot reach the Ray cluster at {address!r} ({exc}); "
            "check --address or start the cluster with `ray start --head`"
        ) from None


def _apply(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


def make_executor(
    backend: str, *, address: str | None = None, workers: int | None = None
) -> LocalExecutor | RayExecutor:
    """The executor a `--backend` flag names."""
    if backend == "local":
        if address is not None:
            raise UserInputError("--address applies only to --backend ray")
        return LocalExecutor(max_workers=workers)
    if backend == "ray":
        return RayExecutor(address=address, num_cpus=workers)
    raise UserInputError(f"unknown backend {backend!r}; use 'local' or 'ray'")
