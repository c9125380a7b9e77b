"""The local executor runs functions in worker processes, in order."""

from __future__ import annotations

import math
import operator
import os

import pytest

from planner.executor import LocalExecutor, RayExecutor, make_executor
from sim.errors import UserInputError


def test_local_executor_maps_in_order_in_other_processes() -> None:
    with LocalExecutor(max_workers=2) as executor:
        assert executor.map(math.factorial, [5, 3, 0, 7]) == [120, 6, 1, 5040]
        assert executor.map(math.factorial, []) == []


def test_local_executor_propagates_worker_errors() -> None:
    with LocalExecutor(max_workers=1) as executor, pytest.raises(ValueError):
        executor.map(math.factorial, [-1])


def test_one_worker_runs_in_this_process() -> None:
    with LocalExecutor(max_workers=1) as executor:
        assert executor.map(operator.call, [os.getpid] * 2) == [os.getpid()] * 2
        assert executor.worker_pids() == []


def test_no_worker_is_left_behind_after_a_failed_map() -> None:
    executor = LocalExecutor(max_workers=2)
    with pytest.raises(ValueError), executor:
        executor.map(math.factorial, [3, -1, 4, 5])
    assert executor.worker_pids() == []
    with LocalExecutor(max_workers=2) as executor:
        pids = executor.map(operator.call, [os.getpid] * 4)
        assert os.getpid() not in pids
        live = executor.worker_pids()
        assert live
    for pid in live:  # closed: every worker has exited
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_make_executor_validates_flags() -> None:
    assert isinstance(make_executor("local", workers=2), LocalExecutor)
    assert isinstance(make_executor("ray", address="auto"), RayExecutor)
    with pytest.raises(UserInputError, match="--address applies only"):
        make_executor("local", address="auto")
    with pytest.raises(UserInputError, match="unknown backend"):
        make_executor("dask")
    with pytest.raises(UserInputError, match="--workers"):
        LocalExecutor(max_workers=0)


def test_ray_executor_rejects_an_unreachable_address_fast() -> None:
    # Port 1 on localhost is closed: the probe refuses before ray.init retries for minutes.
    executor = RayExecutor(address="127.0.0.1:1")
    with pytest.raises(UserInputError, match="cannot reach the Ray cluster"):
        executor.map(abs, [1])


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_counts_every_finished_item_and_results_keep_their_order(workers: int) -> None:
    done: list[int] = []
    with LocalExecutor(max_workers=workers) as executor:
        results = executor.map(math.factorial, [6, 1, 4, 3, 5], done.append)
    assert results == [720, 1, 24, 6, 120]
    assert done == [1, 2, 3, 4, 5]
