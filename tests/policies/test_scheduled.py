"""Scheduled policy: cron windows in time zones, bounds and floors around an inner policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from policies.scheduled import DEFAULT_EPOCH_S, ScheduledPolicy, ScheduledSpec, ScheduleEntry
from sim.contract import Observation
from sim.errors import PolicyError
from sim.replay import FixedPolicy

MONDAY_2024 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()  # 2024-01-01 was a Monday
H = 3600.0

BUSINESS = ScheduleEntry(name="business", cron="0 9 * * MON-FRI", duration_s=9 * H, min_replicas=2)
BATCH = ScheduleEntry(name="batch", cron="0 2 * * SAT", duration_s=4 * H, desired=4)
CAP = ScheduleEntry(name="night-cap", cron="0 0 * * *", duration_s=6 * H, max_replicas=3)


@pytest.mark.parametrize(
    ("t_s", "inner", "expected", "open_names"),
    [
        pytest.param(8.99 * H, 1, 1, "none", id="monday-before-9"),
        pytest.param(9 * H, 1, 2, "business", id="monday-9-opens"),
        pytest.param(17.99 * H, 1, 2, "business", id="monday-just-before-18"),
        pytest.param(18 * H, 1, 1, "none", id="monday-18-closes"),
        pytest.param(
            5 * 24 * H + 3 * H, 1, 4, "batch,night-cap", id="saturday-batch-floor-beats-cap"
        ),
        pytest.param(5 * 24 * H + 10 * H, 1, 1, "none", id="saturday-no-business"),
        pytest.param(1 * H, 10, 3, "night-cap", id="cap-below-inner"),
        pytest.param(24 * H + 10 * H, 7, 7, "business", id="inner-above-floor-kept"),
    ],
)
def test_windows_in_utc(
    make_obs: Callable[..., Observation], t_s: float, inner: int, expected: int, open_names: str
) -> None:
    policy = ScheduledPolicy((BUSINESS, BATCH, CAP), FixedPolicy(inner))
    decision = policy.decide(make_obs(time_s=t_s, epoch_s=MONDAY_2024))
    assert decision.desired == expected
    assert decision.reason.startswith(f"Scheduled[{open_names}]")


def test_time_zone_and_daylight_saving(make_obs: Callable[..., Observation]) -> None:
    """09:00 Europe/Paris is 08:00 UTC before 2024-03-31 and 07:00 UTC after."""
    paris = ScheduleEntry(
        name="paris-morning",
        cron="0 9 * * *",
        timezone="Europe/Paris",
        duration_s=H,
        min_replicas=5,
    )
    policy = ScheduledPolicy((paris,), FixedPolicy(1))
    winter = datetime(2024, 3, 30, 7, 30, tzinfo=UTC).timestamp()
    summer = datetime(2024, 4, 1, 7, 30, tzinfo=UTC).timestamp()
    assert policy.decide(make_obs(time_s=0, epoch_s=winter)).desired == 1
    assert policy.decide(make_obs(time_s=0, epoch_s=summer)).desired == 5
    assert policy.decide(make_obs(time_s=H, epoch_s=winter)).desired == 5


def test_unknown_epoch_is_monday_midnight_utc(make_obs: Callable[..., Observation]) -> None:
    assert datetime.fromtimestamp(DEFAULT_EPOCH_S, tz=UTC).strftime("%A %H:%M") == "Monday 00:00"
    policy = ScheduledPolicy((BUSINESS, BATCH), FixedPolicy(1))
    assert policy.decide(make_obs(time_s=9.5 * H, epoch_s=None)).desired == 2
    assert policy.decide(make_obs(time_s=5 * 24 * H + 3 * H, epoch_s=None)).desired == 4


def test_inner_policy_sees_scheduled_bounds(make_obs: Callable[..., Observation]) -> None:
    seen: list[tuple[int, int]] = []

    class Recorder:
        name = "recorder"

        def reset(self, context: object) -> None:
            del context

        def decide(self, observation: Observation):  # type: ignore[no-untyped-def]
            seen.append((observation.min_replicas, observation.max_replicas))
            return FixedPolicy(0).decide(observation)

    policy = ScheduledPolicy((BUSINESS, CAP), Recorder())
    assert policy.decide(make_obs(time_s=10 * H, epoch_s=MONDAY_2024, max_replicas=20)).desired == 2
    policy.decide(make_obs(time_s=1 * H, epoch_s=MONDAY_2024, max_replicas=20))
    assert seen == [(2, 20), (1, 3)]


def test_pool_bounds_always_win(make_obs: Callable[..., Observation]) -> None:
    big = ScheduleEntry(name="big", cron="* * * * *", duration_s=60, min_replicas=50)
    policy = ScheduledPolicy((big,), None)
    assert policy.decide(make_obs(epoch_s=MONDAY_2024, max_replicas=10)).desired == 10


def test_cached_windows_match_fresh_evaluation(make_obs: Callable[..., Observation]) -> None:
    """The per-entry window cache gives the same answer as a fresh policy at every step."""
    cached = ScheduledPolicy((BUSINESS, BATCH, CAP), FixedPolicy(1))
    for step in range(0, 7 * 24 * 2):
        t = step * 1800.0 + 7.0
        fresh = ScheduledPolicy((BUSINESS, BATCH, CAP), FixedPolicy(1))
        obs = make_obs(time_s=t, epoch_s=MONDAY_2024)
        assert cached.decide(obs) == fresh.decide(obs), t


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param(
            dict(name="bad-cron", cron="61 * * * *"),
            "schedule entry 'bad-cron': invalid cron",
            id="invalid-cron",
        ),
        pytest.param(
            dict(name="bad-zone", cron="0 9 * * *", timezone="Mars/Olympus"),
            "schedule entry 'bad-zone': unknown time zone",
            id="unknown-zone",
        ),
        pytest.param(dict(name="empty", cron="0 9 * * *"), "set at least one", id="no-effect"),
        pytest.param(
            dict(name="inverted", cron="0 9 * * *", min_replicas=5, max_replicas=2),
            "min_replicas 5 > max_replicas 2",
            id="inverted-bounds",
        ),
    ],
)
def test_entry_errors_name_the_entry(entry: dict, message: str) -> None:
    from policies.registry import spec_from_dict

    data = {"kind": "scheduled", "entries": [{"duration_s": 60, "min_replicas": None, **entry}]}
    if "min_replicas" not in entry and entry["name"] != "empty":
        data["entries"][0]["min_replicas"] = 1
    with pytest.raises(PolicyError, match=message):
        spec_from_dict(data)


def test_spec_with_inner_round_trips_and_builds(make_obs: Callable[..., Observation]) -> None:
    spec = ScheduledSpec.model_validate(
        {
            "entries": [BUSINESS.model_dump()],
            "inner": {
                "kind": "hpa",
                "target": 0.6,
                "hysteresis": {"scale_down": {"tolerance": 0.2}},
            },
        }
    )
    again = ScheduledSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert again.inner is not None and again.inner.kind == "hpa"
    policy = spec.build()
    decision = policy.decide(make_obs(time_s=10 * H, epoch_s=MONDAY_2024, utilisation=0.01))
    assert decision.desired >= 2


def test_spec_needs_entries_and_unique_names() -> None:
    from policies.registry import spec_from_dict

    with pytest.raises(PolicyError, match="entries"):
        spec_from_dict({"kind": "scheduled", "entries": []})
    with pytest.raises(PolicyError, match="unique"):
        spec_from_dict({"kind": "scheduled", "entries": [BUSINESS.model_dump()] * 2})
