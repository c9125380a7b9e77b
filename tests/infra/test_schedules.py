"""Scheduled actions as the provider and AWS would take them (issue 12, items 1 and 2).

The plain mocks hand back a resource's inputs unchanged, so a field the program
leaves unset looks unset. pulumi-aws does not leave it unset: it sends an unset
min/max/desired of `aws.autoscaling.Schedule` as 0 (only -1 means "leave it
out"), and it keeps the start time AWS computes for a recurring action. The
mocks here fill those defaults the way the provider does, and the checks reject
what AWS's PutScheduledUpdateGroupAction rejects: sizes out of order and start
times in the past.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from infra import __main__ as entry
from infra.components import asg as asg_module
from infra.guardrails import ResourceView
from infra.program import build_stack
from tests.infra.conftest import RecordingMocks, fixture_scaling, stack_config

SCHEDULE = "aws:autoscaling/schedule:Schedule"
SIZE_FIELDS = ("minSize", "maxSize", "desiredCapacity")


class ProviderDefaultMocks(RecordingMocks):
    """Mocks that fill the scheduled-action fields pulumi-aws fills."""

    def __init__(self, environment: str, created_at: datetime) -> None:
        super().__init__(environment=environment)
        self.created_at = created_at

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == SCHEDULE:
            for key in SIZE_FIELDS:
                outputs.setdefault(key, 0)  # the provider's zero value for an unset int
            if "recurrence" in outputs and "startTime" not in outputs:
                # AWS computes the next occurrence; the provider stores it.
                outputs["startTime"] = (self.created_at + timedelta(hours=1)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                )
            self.resources[-1] = ResourceView(args.typ, args.name, outputs)
        return resource_id, outputs


def aws_rejects(props: dict[str, Any], now: datetime) -> list[str]:
    """What PutScheduledUpdateGroupAction says about these inputs (empty: accepted)."""
    sent = {k: int(props[k]) for k in SIZE_FIELDS if int(props.get(k, -1)) != -1}
    problems = []
    if not sent:
        problems.append("at least one of min, max or desired is required")
    lo, hi, want = sent.get("minSize"), sent.get("maxSize"), sent.get("desiredCapacity")
    if lo is not None and hi is not None and lo > hi:
        problems.append(f"min {lo} above max {hi}")
    if want is not None and hi is not None and want > hi:
        problems.append(f"desired {want} above max {hi}")
    if want is not None and lo is not None and want < lo:
        problems.append(f"desired {want} below min {lo}")
    start = props.get("startTime")
    if start is not None and datetime.fromisoformat(start.replace("Z", "+00:00")) < now:
        problems.append("Given start time is in the past")
    return problems


def build(stack: str, now: datetime | None = None) -> ProviderDefaultMocks:
    """The real program for a stack file and its fixed policy (`fixture_scaling`), with the
    clock at `now` (None: through the entry point, on the real clock)."""
    config = stack_config(stack, {"scaleplan:scaling": fixture_scaling(stack)})
    mocks = ProviderDefaultMocks(config["scaleplan:environment"], now or datetime.now(UTC))
    pulumi.runtime.set_mocks(mocks, project="scaleplan", stack=stack, preview=False)
    pulumi.runtime.set_all_config(config, secret_keys=["scaleplan:modelToken"])

    @pulumi.runtime.test
    def body() -> None:
        if now is None:
            entry.main()
            return
        settings, token = entry.read_settings()
        build_stack(settings, token, now=now)

    body()
    pulumi.runtime.set_all_config({})
    return mocks


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_aws_accepts_every_scheduled_action_as_the_provider_sends_it(stack: str) -> None:
    """Item 1: `business-hours {min: 4}` must not go out as max 0, desired 0."""
    now = datetime.now(UTC)
    mocks = build(stack)
    schedules = mocks.of_type(SCHEDULE)
    assert schedules, f"{stack} has scheduled actions"
    for action in schedules:
        assert aws_rejects(dict(action.props), now) == [], action.name


def test_the_plan_keeps_only_changes_after_the_clock() -> None:
    """Item 2: before the plan starts every change is created; after, none that passed."""
    before = datetime(2026, 11, 22, tzinfo=UTC)
    mocks = build("prod", before)
    plan = [s for s in mocks.of_type(SCHEDULE) if "-plan-" in s.name]
    assert len(plan) == 21  # the start and each change of value in the 48 h plan
    first = plan[0].props
    assert (first["startTime"], first["desiredCapacity"]) == ("2026-11-23T00:00:00Z", 2)
    midway = datetime(2026, 11, 24, 3, tzinfo=UTC)
    later = [s for s in build("prod", midway).of_type(SCHEDULE) if "-plan-" in s.name]
    assert 0 < len(later) < 21
    for action in later:
        assert aws_rejects(dict(action.props), midway) == []
    sagemaker = build("prod", midway).of_type("aws:appautoscaling/scheduledAction:ScheduledAction")
    assert all(not a.props["schedule"].startswith("at(2026-11-23") for a in sagemaker)


def test_nothing_starts_in_the_past_when_the_program_runs_today() -> None:
    """Dates: the committed stacks, built now, schedule nothing before now."""
    now = datetime.now(UTC)
    for stack in ("dev", "staging", "prod"):
        for action in build(stack).of_type(SCHEDULE):
            start = action.props.get("startTime")
            if start is not None:
                assert datetime.fromisoformat(start.replace("Z", "+00:00")) >= now


def test_recurring_actions_are_replaced_not_updated(monkeypatch: pytest.MonkeyPatch) -> None:
    """pulumi-aws issue 2473: an update resends the start time AWS filled in at creation.

    Once that time has passed AWS rejects the update, so a changed recurring action
    must be replaced (a fresh create gets a fresh start time), and deleted first
    because its name is unique within the group.
    """
    seen: dict[str, pulumi.ResourceOptions] = {}

    class Recording(aws.autoscaling.Schedule):
        def __init__(self, name: str, *args: Any, opts: Any = None, **kwargs: Any) -> None:
            seen[name] = opts
            super().__init__(name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(asg_module.aws.autoscaling, "Schedule", Recording)
    build("staging")
    recurring = {n: o for n, o in seen.items() if "-plan-" not in n}
    assert recurring
    for name, opts in recurring.items():
        assert opts.replace_on_changes == ["*"], name
        assert opts.delete_before_replace is True, name
