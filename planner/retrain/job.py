"""`planner retrain` around the contest: the store, the lock, idempotence and promotion.

Order of writes, which is the crash-safety argument (`planner.store` never
overwrites, and moves the champion pointer last):

1. the winner's bundle (and its config compiled for the stack) go into the store;
2. the run's report (`runs/<run id>/<attempt>/report.json`, `report.html`);
3. the champion pointer moves (a history record, then the pointer);
4. `runs/<run id>/done.json` marks the run complete.

A crash before 3 leaves the previous champion in force (at most an unreferenced
bundle); a crash between 3 and 4 leaves the new champion complete, and the rerun
finds it already champion and only writes 4. The run id is a digest of the
history data, the cluster and the settings, so a rerun on the same data returns
the recorded decision instead of running again.
"""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from planner.executor import Executor
from planner.retrain.inputs import HistorySource, PulledHistory, pull_history, stack_scenario
from planner.retrain.pipeline import ContestOutcome, ContestSettings, Progress, run_contest
from planner.retrain.scoring import Candidate
from planner.scenario_input import ClusterOverrides
from planner.store.base import PolicyStore
from policies.stack_config import StackScaling, TargetName
from sim.errors import UserInputError
from sim.scenario import Scenario

WHO = "planner retrain"


@dataclass(frozen=True)
class RetrainRequest:
    """Everything one `planner retrain` needs (the CLI builds it from flags)."""

    source: HistorySource
    settings: ContestSettings
    store_url: str
    stack: str | None = None
    scenario_path: Path | None = None
    cluster: ClusterOverrides = field(default_factory=ClusterOverrides)
    project_dir: Path = Path(".")
    target: str | None = None
    out_dir: Path | None = None
    region: str | None = None
    endpoint_url: str | None = None
    #: Compile a kept champion for the stack again from this run's `now` (the command
    #: asks when it will emit or apply): a forecast schedule lasts 48 hours, so the
    #: daily run keeps it fresh; native constructs compile to the same block.
    refresh_champion: bool = False

    def check(self) -> None:
        if (self.stack is None) == (self.scenario_path is None):
            raise UserInputError(
                "give the cluster and SLO with exactly one of --stack STACK (its pools and "
                "scaleplan:retraining.slo) or --scenario FILE"
            )
        if self.scenario_path is not None and not self.scenario_path.is_file():
            raise UserInputError(f"--scenario {self.scenario_path}: no such file")
        self.source.check()
        self.settings.check()


@dataclass
class RetrainResult:
    """What the run decided and where its report is."""

    run_id: str
    action: str  # promote, keep
    reason: str
    champion: str | None
    report: dict[str, Any]
    report_dir: Path | None
    cached: bool = False
    promoted_bundle: Path | None = None
    #: The kept champion's bundle, when `refresh_champion` compiled it again.
    refreshed_bundle: Path | None = None
    #: The promoted bundle (or the refreshed champion) compiled for the stack's pool:
    #: what --emit writes and --apply applies.
    scaling: StackScaling | None = None
    outcome: ContestOutcome | None = None


def history_scenario(
    request: RetrainRequest,
    history: PulledHistory,
    workdir: Path,
    stack_data: dict[str, Any] | None,
) -> Scenario:
    """The cluster and SLO with the pulled history as workload, written to `workdir`."""
    from planner.retrain.inputs import write_scenario
    from planner.scenario_input import resolve_scenario
    from sim.scenario import load_scenario

    workload: dict[str, Any] = {
        "format": history.trace_format,
        "path": str(history.trace),
        "start_h": history.start_h,
    }
    if history.bin_s is not None:
        workload["bin_s"] = history.bin_s
    if history.time_unit is not None:
        workload["time_unit"] = history.time_unit
    if stack_data is not None:
        data = dict(stack_data)
    else:
        assert request.scenario_path is not None
        base = resolve_scenario(request.scenario_path)
        data = base.model_dump(mode="json", exclude={"base_dir"})
        keep = {
            k: v for k, v in data["workload"].items() if k in ("scale_mean_rps", "tokens") and v
        }
        workload.update(keep)
    data["workload"] = workload
    request.cluster.apply(data)
    path = write_scenario(data, workdir)
    return load_scenario(path)


def run_id_of(history: PulledHistory, scenario: Scenario, settings: ContestSettings) -> str:
    """The digest that makes a rerun on the same data a no-op (see the module docstring)."""
    cluster = scenario.model_dump(mode="json", exclude={"workload", "base_dir", "name"})
    payload = json.dumps(
        {"history": history.digest, "start_h": history.start_h, "cluster": cluster,
         "settings": settings.to_json()},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run_retrain(
    request: RetrainRequest,
    store: PolicyStore,
    executor: Executor,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RetrainResult:
    """One retraining run (the module docstring's order of writes)."""
    from planner.retrain.lock import run_lock

    request.check()
    now = now or datetime.now(UTC)
    tell = progress or (lambda _text: None)
    workdir = Path(tempfile.mkdtemp(prefix="scaleplan-retrain-"))
    stack_data, settings = (None, None)
    if request.stack is not None:
        stack_data, settings = stack_scenario(request.project_dir, request.stack, request.target)
    tell(f"pulling {request.source.kind} history")
    history = pull_history(request.source, workdir, now=now, stack_settings=settings)
    scenario = history_scenario(request, history, workdir, stack_data)
    key = request.stack or scenario.name
    contest, skipped = request.settings, list[str]()
    if request.stack is not None:
        contest, skipped = expressible_settings(scenario, request.settings, request.target)
    run_id = run_id_of(history, scenario, contest)
    with run_lock(store, key):
        done = store.read_file(f"runs/{run_id}/done.json")
        if done is not None:
            record = json.loads(done)
            report = json.loads(store.read_file(record["report"]) or b"{}")
            return RetrainResult(
                run_id, record["action"], record["reason"], record["champion"], report, None, True
            )
        champion_record = store.champion(key)
        champion, champion_bundle, champion_note = _champion(store, key, champion_record, workdir)
        outcome: ContestOutcome | None = None
        if history.problems:
            action, reason = "keep", "the history is not usable: " + "; ".join(history.problems)
        else:
            outcome = run_contest(
                scenario,
                contest,
                executor,
                workdir=workdir,
                champion=champion,
                champion_bundle=champion_bundle,
                progress=tell,
            )
            action, reason = outcome.decision.action, outcome.decision.reason
        from planner.retrain.report import build_report, write_report

        before = None if champion_record is None else champion_record["version"]
        promoted_dir: Path | None = None
        version = before
        if outcome is not None and outcome.decision.promote is not None:
            promoted_dir = write_winner_bundle(outcome, workdir / "bundles", now, store)
            version = store.put_bundle(promoted_dir)
        report = build_report(
            run_id=run_id,
            created_at=now,
            key=key,
            history=history,
            scenario=scenario,
            settings=contest,
            outcome=outcome,
            action=action,
            reason=reason,
            champion_before=before,
            champion_after=version,
            notes=[n for n in (champion_note, *skipped) if n],
        )
        files = write_report(report, request.out_dir or workdir / "report")
        # Each attempt writes its own report: one that crashed left a partial record,
        # which must neither block this one nor be overwritten.
        attempt = f"runs/{run_id}/{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
        for path in files:
            store.put_file(f"{attempt}/{path.name}", path.read_bytes())
        scaling = None
        if promoted_dir is not None and version is not None:
            emitted = None
            if request.stack is not None:
                scaling = stack_scaling(
                    request.project_dir, request.stack, request.target, promoted_dir, now
                )
                emitted = store.put_emitted(version, request.stack, scaling.to_config())
            current = store.champion(key)
            if current is None or current["version"] != version:
                # Only from the champion this run contested: a promotion made meanwhile
                # (`planner apply`, `rollback`) makes this a StoreError, not a lost update.
                store.set_champion(
                    key,
                    version,
                    who=_who(),
                    reason=reason,
                    emitted=emitted,
                    expected=champion_record,
                )
        refreshed = None
        if promoted_dir is None and request.refresh_champion and request.stack is not None:
            refreshed = champion_bundle  # None: the champion has no bundle to compile
            if refreshed is not None:
                scaling = stack_scaling(
                    request.project_dir, request.stack, request.target, refreshed, now
                )
        record = {
            "action": action,
            "reason": reason,
            "champion": version,
            "run_id": run_id,
            "report": f"{attempt}/report.json",
        }
        store.put_file(f"runs/{run_id}/done.json", (json.dumps(record) + "\n").encode())
    return RetrainResult(
        run_id,
        action,
        reason,
        version,
        report,
        files[0].parent,
        promoted_bundle=promoted_dir,
        refreshed_bundle=refreshed,
        scaling=scaling,
        outcome=outcome,
    )


def expressible_settings(
    scenario: Scenario, settings: ContestSettings, target: str | None
) -> tuple[ContestSettings, list[str]]:
    """`settings` with only the families the stack's pool can run natively or as a
    schedule (`planner.emit.compile.construct_of`): a winner the stack cannot express
    could not be emitted or applied. The left-out families are named in a note."""
    from dataclasses import replace

    from planner.emit.compile import construct_of
    from planner.emit.native import Unexpressible
    from planner.retrain.candidates import families_for

    pool = target or "eks"
    kept, left_out = [], []
    for family in families_for(scenario, settings.families):
        try:
            construct_of(family, pool)
            kept.append(family)
        except Unexpressible as exc:
            left_out.append(f"{family} ({exc.reason})")
    if not kept:
        raise UserInputError(
            f"--families: none of {', '.join(settings.families or [])} can run on the stack's "
            f"{pool} pool; choose among those it can express (see docs/emit.md)"
        )
    notes = [f"not tuned, the {pool} pool cannot express them: {'; '.join(left_out)}"]
    return replace(settings, families=kept), notes if left_out else []


def _who() -> str:
    return f"{WHO} on {socket.gethostname()}"


def _champion(
    store: PolicyStore, key: str, record: dict[str, Any] | None, workdir: Path
) -> tuple[Candidate | None, Path | None, str | None]:
    """The champion as a candidate (None when there is none or it cannot be simulated)."""
    from policies.registry import resolve

    if record is None:
        return None, None, None
    version = record["version"]
    stored = store.get(version, key, workdir / "champion")
    if stored.bundle_dir is None:
        return (
            None,
            None,
            (
                f"the champion {version} was applied from a stack config without a bundle, so it "
                "cannot be simulated; challengers are judged on the SLO alone"
            ),
        )
    spec = resolve(f"bundle:{stored.bundle_dir}")
    candidate = Candidate(f"champion {version}", spec, "champion", version, spec.kind)
    return candidate, stored.bundle_dir, None


def write_winner_bundle(
    outcome: ContestOutcome, root: Path, now: datetime, store: PolicyStore | None = None
) -> Path:
    """The decision's winner as a PolicyBundle under `root` (the next version of its name)."""
    from planner.runs import scenario_inputs
    from policies.bundle import (
        PolicyBundle,
        TrainingWindow,
        collect_versions,
        next_version,
        read_bundle,
        write_bundle,
    )

    winner = outcome.decision.promote or outcome.decision.best_challenger
    assert winner is not None
    spec = winner.candidate.spec
    name = spec.display_name()
    version = next_version(root, name)
    if store is not None:
        taken = [v.split("@", 1)[1] for v in store.versions() if v.startswith(f"{name}@")]
        version = max([version, *(int(t) + 1 for t in taken if t.isdigit())])
    start_h, duration_h = outcome.windows.train
    # The scoring window's clock starts at its own first second; the bundle records
    # the trace's t = 0, as `planner tune` does.
    epoch_s = scenario_inputs(outcome.score_scenario)[0].epoch_s
    files: dict[str, bytes] = {}
    if winner.candidate.family == "rl" and outcome.rl is not None:
        learned = read_bundle(outcome.rl.bundle_dir)
        files, spec = learned.files, learned.spec
    family = next((t for t in outcome.tuned if t.family == winner.candidate.family), None)
    bundle = PolicyBundle(
        name=name,
        version=version,
        spec=spec,
        fitted_params={} if family is None else family.params,
        training_window=TrainingWindow(
            source=str(outcome.scenario.workload.path or outcome.scenario.workload.format),
            start_s=start_h * 3600.0,
            end_s=(start_h + duration_h) * 3600.0,
            epoch_s=None if epoch_s is None else epoch_s - outcome.windows.score[0] * 3600.0,
        ),
        scores={"score_window": winner.to_json(), "decision": outcome.decision.reason},
        versions=collect_versions(),
        created_at=now,
        files=files,
    )
    return write_bundle(bundle, root)


def stack_scaling(
    project_dir: Path, stack: str, target: str | None, bundle_dir: Path, now: datetime
) -> StackScaling:
    """A promoted bundle compiled onto the pool it was planned for (and the serverless
    endpoint when it is a spillover policy), not onto every target of the stack: a
    policy tuned on the node pool says nothing about the Auto Scaling group."""
    from planner.apply.inputs import scaling_from_bundle, stack_file
    from policies.bundle import read_bundle

    only: tuple[TargetName, ...] = ("asg",) if target == "asg" else ("eks",)
    if read_bundle(bundle_dir).spec.kind == "spillover":
        only += ("serverless",)
    return scaling_from_bundle(bundle_dir, stack_file(project_dir, stack), now, [], only)
