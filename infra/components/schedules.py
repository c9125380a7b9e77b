"""Scheduled scaling actions as AWS and pulumi-aws need them (issue 12, items 1 and 2).

Three provider and API behaviours a scheduled action must respect: pulumi-aws
sends an unset size as 0, AWS refuses a start time in the past, and pulumi-aws
resends the start time AWS computed for a recurring action on every update
(pulumi-aws issue 2473). Used by the ASG and the serverless endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pulumi

#: pulumi-aws sends an unset min/max/desired of a scheduled action as 0 (AWS would
#: then set the group's max to 0); -1 is the provider's "leave this field out".
UNSET = -1

#: One-shot actions must start after the resources exist: AWS rejects a start time
#: in the past ("Given start time is in the past"), and a stack's first `pulumi up`
#: reaches its scheduled actions after the cluster, some 15-20 minutes in.
SCHEDULE_LEAD = timedelta(minutes=30)

#: Recurring actions are replaced on any change: pulumi-aws keeps the start time AWS
#: filled in at creation and sends it back on update, which AWS rejects once that
#: time has passed (pulumi-aws issue 2473); a new action gets a fresh one.
RECURRING_OPTIONS = pulumi.ResourceOptions(replace_on_changes=["*"], delete_before_replace=True)


def sentinel(value: int | None) -> int:
    """A scheduled action's size field as pulumi-aws needs it: None becomes `UNSET`."""
    return UNSET if value is None else value


def future_changes(
    changes: Sequence[tuple[datetime, int]], now: datetime
) -> list[tuple[datetime, int]]:
    """The changes of a precomputed schedule that start at least `SCHEDULE_LEAD` after now.

    Earlier ones have passed (or would by the time AWS sees them); the retraining
    job refreshes the schedule, so a stale one simply yields nothing.
    """
    earliest = now + SCHEDULE_LEAD
    return [(when, desired) for when, desired in changes if when >= earliest]
