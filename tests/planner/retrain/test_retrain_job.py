"""End-to-end retraining cycles on a local store, with a trace as the metric source.

Real runs throughout: the fluid engine, optuna, the replay-verified oracle. The
history is the bundled one-hour Azure conv trace on the default scenario's cluster;
two families with a few trials keep a cycle to seconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from planner.executor import LocalExecutor
from planner.retrain.inputs import HistorySource
from planner.retrain.job import RetrainRequest, RetrainResult, run_retrain
from planner.retrain.lock import RunLocked, run_lock
from planner.retrain.pipeline import ContestSettings
from planner.store import open_store
from planner.store.local import LocalStore
from policies.bundle import PolicyBundle, collect_versions, write_bundle
from policies.spec import FixedSpec

ROOT = Path(__file__).resolve().parents[3]
TRACE = ROOT / "sim" / "scenarios" / "fixtures" / "azure_conv.csv"
SCENARIO = ROOT / "sim" / "scenarios" / "default.yaml"
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def request(store: Path, *, days: float = 0.04, trials: int = 3) -> RetrainRequest:
    return RetrainRequest(
        source=HistorySource(kind="trace", days=days, trace=TRACE, trace_format="azure-llm"),
        settings=ContestSettings(trials=trials, seeds=2, families=["threshold", "hpa"]),
        store_url=str(store),
        scenario_path=SCENARIO,
        out_dir=store.parent / "report",
    )


def retrain(store_dir: Path, *, days: float = 0.04, trials: int = 3) -> RetrainResult:
    with LocalExecutor(max_workers=1) as executor:
        return run_retrain(
            request(store_dir, days=days, trials=trials),
            open_store(str(store_dir)),
            executor,
            now=NOW,
        )


def champion_of(store_dir: Path) -> str:
    record = LocalStore(store_dir).champion("default")
    assert record is not None, "no champion"
    version: str = record["version"]
    return version


def seed_champion(store_dir: Path, replicas: int) -> str:
    """Store a fixed:N bundle and make it the champion of the scenario ("default")."""
    bundle = PolicyBundle(
        name=f"fixed-{replicas}",
        version=1,
        spec=FixedSpec(replicas=replicas),
        created_at=NOW,
        versions=collect_versions(),
    )
    path = write_bundle(bundle, store_dir.parent / "seeded")
    store = LocalStore(store_dir)
    version = store.put_bundle(path)
    store.set_champion("default", version, who="test", reason="seeded")
    return version


def test_a_cheaper_challenger_replaces_an_overprovisioned_champion(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    before = seed_champion(store_dir, 30)
    result = retrain(store_dir)
    assert result.action == "promote", result.reason
    champion = LocalStore(store_dir).champion("default")
    assert champion is not None and champion["version"] == result.champion != before
    assert champion["previous"] == before
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    roles = {c["label"]: c for c in report["candidates"]}
    held = roles[f"champion {before}"]
    assert result.champion is not None
    winner = next(c for c in report["candidates"] if c["label"] in result.champion)
    # The rule: the winner meets the SLO and is at least 5 % cheaper than the champion.
    assert winner["meets_slo"]
    assert winner["cost_usd"]["mean"] <= 0.95 * held["cost_usd"]["mean"]
    assert all(o["cost_usd"] > 0 for o in report["oracle"])
    # What was promoted is a bundle that runs.
    stored = LocalStore(store_dir).get(result.champion, "default", tmp_path / "work")
    assert stored.bundle_dir is not None and (stored.bundle_dir / "bundle.json").is_file()


def test_the_champion_is_kept_when_no_challenger_is_cheaper_by_the_margin(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    first = retrain(store_dir)
    assert first.action == "promote"  # no champion yet
    # The same traffic, more trials: the champion is one of the challengers' equals.
    second = retrain(store_dir, trials=4)
    assert second.action == "keep", second.reason
    assert champion_of(store_dir) == first.champion
    assert len(LocalStore(store_dir).history("default")) == 1


def test_a_rerun_on_the_same_data_returns_the_recorded_decision(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    first = retrain(store_dir)
    again = retrain(store_dir)
    assert again.cached and again.run_id == first.run_id and again.champion == first.champion
    assert len(LocalStore(store_dir).history("default")) == 1


def test_a_crash_before_the_pointer_moves_leaves_the_old_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    before = seed_champion(store_dir, 30)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected crash")

    with monkeypatch.context() as patch:
        patch.setattr(LocalStore, "set_champion", crash)
        with pytest.raises(RuntimeError, match="injected crash"):
            retrain(store_dir)
    store = LocalStore(store_dir)
    assert champion_of(store_dir) == before
    assert store.read_lock("default") is None  # released on the way out
    assert not list((store_dir / "runs").glob("*/done.json"))
    # The next run completes and promotes; its pointer names a complete bundle.
    result = retrain(store_dir)
    assert result.action == "promote" and not result.cached
    assert champion_of(store_dir) == result.champion
    assert (store_dir / "bundles" / result.champion / "bundle.json").is_file()


def test_too_short_history_keeps_the_champion_and_says_what_is_missing(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    before = seed_champion(store_dir, 30)
    result = retrain(store_dir, days=2.0)
    assert result.action == "keep"
    assert "covers 0.04 of the 2 days" in result.reason
    assert champion_of(store_dir) == before
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["history"]["problems"] and "candidates" not in report
    assert "Missing metrics" in (tmp_path / "report" / "report.html").read_text()


def test_a_second_run_cannot_take_a_held_lock(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = LocalStore(store_dir)
    with (
        run_lock(store, "default"),
        pytest.raises(RunLocked, match="another retraining run holds the lock"),
    ):
        retrain(store_dir)
    assert store.read_lock("default") is None
    assert store.champion("default") is None


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    assert store.create_lock("default", b"dead run\n")
    with run_lock(store, "default", stale_after_s=0.0) as record:
        assert record["took_over_stale_lock"] is True
    assert store.read_lock("default") is None


def test_the_rl_challenger_is_trained_within_budget_and_scored(tmp_path: Path) -> None:
    from planner.retrain.pipeline import run_contest
    from sim.scenario import load_scenario

    settings = ContestSettings(trials=2, seeds=1, families=["threshold"], rl_budget_s=6.0)
    with LocalExecutor(max_workers=1) as executor:
        outcome = run_contest(load_scenario(SCENARIO), settings, executor, workdir=tmp_path)
    assert outcome.rl is not None and outcome.rl.timesteps > 0
    assert outcome.timings_s["rl"] < 6.0 + 10.0  # the budget, plus writing the bundle
    scored = {s.candidate.family: s for s in outcome.board.scores}
    assert set(scored) == {"threshold", "rl"}
    assert scored["rl"].candidate.spec.kind == "rl"
    assert scored["rl"].slo_attainment.mean > 0 and scored["rl"].cost_usd.mean > 0


def day_trace(path: Path) -> Path:
    """A day of light traffic the dev stack's two-replica node pool can serve."""
    rows = ["timestamp,value"] + [
        f"{1_764_547_200 + 60 * i},{0.3 + 0.2 * (i // 60 % 4)}" for i in range(1440)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("refresh", [True, False])
def test_a_kept_champion_is_compiled_again_from_each_runs_now(
    tmp_path: Path, refresh: bool
) -> None:
    """A predictive champion on EKS becomes a 48-hour KEDA cron schedule; a later run that
    keeps it (and will emit or apply) compiles it again from its own `now`, so a daily
    run keeps the schedule from running out."""
    from policies.predictive.spec import PredictiveSpec

    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.dev.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    store_dir = tmp_path / "store"
    bundle = PolicyBundle(
        name="predictive", version=1, spec=PredictiveSpec(), created_at=NOW,
        versions=collect_versions(),
    )  # fmt: skip
    version = LocalStore(store_dir).put_bundle(write_bundle(bundle, tmp_path / "seeded"))
    LocalStore(store_dir).set_champion("dev", version, who="test", reason="seeded")
    trace = day_trace(tmp_path / "day.csv")
    starts = []
    for day in (0, 3):  # two runs three days apart, on different data (new run ids)
        req = RetrainRequest(
            source=HistorySource(kind="trace", days=1.0 - 0.1 * day, trace=trace,
                                 trace_format="rate-csv"),
            settings=ContestSettings(trials=2, seeds=1, families=["hpa"], margin=0.99),
            store_url=str(store_dir), stack="dev", project_dir=project,
            out_dir=tmp_path / f"report{day}", refresh_champion=refresh,
        )  # fmt: skip
        with LocalExecutor(max_workers=1) as executor:
            now = NOW + timedelta(days=day)
            result = run_retrain(req, open_store(str(store_dir)), executor, now=now)
        assert result.action == "keep", result.reason
        assert result.champion == version and result.promoted_bundle is None
        if not refresh:
            assert result.scaling is None and result.refreshed_bundle is None
            continue
        assert result.refreshed_bundle is not None and result.scaling is not None
        source = result.scaling.source
        assert source is not None and source.policy_kind == "predictive"
        assert result.scaling.eks is not None and result.scaling.eks.keda is not None
        (first, *_) = result.scaling.eks.keda.cron
        minute, hour, dom, month, _ = first.start.split()
        starts.append(datetime(now.year, int(month), int(dom), int(hour), int(minute), tzinfo=UTC))
        assert now <= starts[-1] <= now + timedelta(hours=1)
    if refresh:
        assert starts[1] - starts[0] == timedelta(days=3)
