"""Retry one AWS step on throttling, with exponential backoff and full jitter.

botocore retries each call already (standard mode); this wraps a whole step of
an ordered plan (a read-modify-write of one resource), so a step that is still
throttled after botocore gave up is retried as a unit before the plan is
declared failed and rolled back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from planner.aws.session import error_code

T = TypeVar("T")

#: Error codes AWS services use for throttling (EC2 Auto Scaling, CloudWatch,
#: Application Auto Scaling, SageMaker, EKS).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
        "LimitExceededException",
    }
)


def is_throttling(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING_CODES


def with_backoff(
    step: Callable[[], T],
    *,
    attempts: int = 5,
    base_s: float = 0.5,
    cap_s: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """`step()`, retried while it raises a throttling error, at most `attempts` times.

    Delays follow "exponential backoff with full jitter" (AWS Architecture Blog):
    uniform in [0, min(cap, base * 2**attempt)].
    """
    jitter = rng or random.Random()
    for attempt in range(attempts):
        try:
            return step()
        except Exception as exc:
            if not is_throttling(exc) or attempt == attempts - 1:
                raise
            sleep(jitter.uniform(0.0, min(cap_s, base_s * 2**attempt)))
    raise AssertionError("unreachable")  # the loop returns or raises
