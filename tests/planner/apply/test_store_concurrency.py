"""Writers racing on the policy store, local and on S3 (moto over HTTP): real races.

Each writer has its own store object (its own boto3 client and HTTP connection on
S3) and runs in its own thread, or locally in its own process; a barrier releases
them together. Whatever the interleaving, a key is created by exactly one writer,
and of promotions from one champion exactly one takes effect while the others raise
`StoreError` and leave no trace in `history()`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from planner.aws.session import AwsConnection
from planner.store import open_store
from planner.store.base import PolicyStore, StoreError
from planner.store.local import LocalStore
from tests.planner.apply.conftest import REGION, client
from tests.planner.apply.test_apply_cli import make_bundle

REPO = Path(__file__).resolve().parents[3]
BUCKET = "race-bucket"
WRITERS = 4
T = TypeVar("T")

StoreFactory = Callable[[], PolicyStore]


@pytest.fixture
def serial_s3(aws_env: str) -> Iterator[str]:
    """A second moto server on 127.0.0.1, over the same in-process backends as
    `aws_env`'s, that serves one request at a time; its endpoint URL.

    S3 evaluates a conditional write (`If-None-Match`, `If-Match`) atomically; moto
    checks the condition and stores the object in separate Python steps that two of
    its server threads could interleave. One request at a time gives moto S3's
    atomicity; the clients still race: their requests arrive in any order, between
    any two requests of another writer's store call.
    """
    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serial(environ: dict[str, Any], start_response: Any) -> Any:
        with one_at_a_time:
            return list(app(environ, start_response))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = make_server(
        "127.0.0.1", port, serial, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(params=["local", "s3"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of store objects over one store: one per writer."""
    if request.param == "local":
        return lambda: open_store(str(tmp_path / "store"))
    endpoint = request.getfixturevalue("serial_s3")
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return lambda: open_store(f"s3://{BUCKET}/p", AwsConnection(REGION, endpoint))


def race(calls: list[Callable[[], T]]) -> list[T | StoreError]:
    """Run `calls` in threads released together; each one's result or `StoreError`."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def released(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    outcomes: list[T | StoreError] = []
    with ThreadPoolExecutor(len(calls)) as pool:
        for future in [pool.submit(released, call) for call in calls]:
            try:
                outcomes.append(future.result(timeout=120))
            except StoreError as exc:
                outcomes.append(exc)
    return outcomes


def put_versions(store: PolicyStore, root: Path, first: int, count: int) -> list[str]:
    """Store `count` fixed-replica bundles, versions `first`..; their versions."""
    return [
        store.put_bundle(make_bundle(root, {"kind": "fixed", "replicas": n}, version=n))
        for n in range(first, first + count)
    ]


def stored_history_files(store: PolicyStore) -> int:
    """How many history records are stored, pending ones included."""
    if isinstance(store, LocalStore):
        return len(list((store.root / "history").glob("*.json")))
    return len(store._keys("history/"))  # type: ignore[attr-defined]


def test_of_writers_racing_for_a_key_exactly_one_creates_it(new_store: StoreFactory) -> None:
    for round_ in range(3):
        key = f"runs/r{round_}/report.json"
        # Writers 0 and 1 carry the same content, 2 and 3 other content each.
        contents = [b"a\n", b"a\n", b"b\n", b"c\n"]
        stores = [new_store() for _ in contents]
        outcomes = race(
            [partial(s.put_file, key, data) for s, data in zip(stores, contents, strict=True)]
        )
        assert outcomes.count(True) == 1, outcomes
        winner = contents[outcomes.index(True)]
        assert stores[0].read_file(key) == winner
        for data, outcome in zip(contents, outcomes, strict=True):
            if outcome is True:
                continue
            if data == winner:
                assert outcome is False  # the same content again: a no-op
            else:
                assert isinstance(outcome, StoreError) and "other content" in str(outcome)


def test_of_writers_racing_for_a_version_exactly_one_stores_its_bundle(
    new_store: StoreFactory, tmp_path: Path
) -> None:
    bundles = [
        make_bundle(tmp_path / f"w{i}", {"kind": "fixed", "replicas": 3 + i}, version=1)
        for i in range(WRITERS)
    ]
    stores = [new_store() for _ in bundles]
    outcomes = race([partial(s.put_bundle, b) for s, b in zip(stores, bundles, strict=True)])
    won = [i for i, o in enumerate(outcomes) if o == "prod-fixed@1"]
    assert len(won) == 1, outcomes
    assert all(isinstance(o, StoreError) for i, o in enumerate(outcomes) if i != won[0])
    got = stores[0].get("prod-fixed@1", "prod", tmp_path / "work")
    assert got.bundle_dir is not None
    assert (got.bundle_dir / "bundle.json").read_bytes() == (
        bundles[won[0]] / "bundle.json"
    ).read_bytes()


def test_of_promotions_from_one_champion_exactly_one_takes_effect(
    new_store: StoreFactory, tmp_path: Path
) -> None:
    first = new_store()
    (seed,) = put_versions(first, tmp_path / "b", 1, 1)
    first.set_champion("prod", seed, who="seed", reason="first")
    expected_history = [seed]
    for round_ in range(3):
        challengers = put_versions(first, tmp_path / "b", 10 * (round_ + 1), WRITERS)
        stores = [new_store() for _ in challengers]
        # Every writer decides from the same champion, then they promote together.
        seen = [s.champion("prod") for s in stores]
        files_before = stored_history_files(first)
        outcomes = race(
            [
                partial(s.set_champion, "prod", v, who=f"writer-{i}", reason="race", expected=e)
                for i, (s, v, e) in enumerate(zip(stores, challengers, seen, strict=True))
            ]
        )
        records = [o for o in outcomes if isinstance(o, dict)]
        assert len(records) == 1, outcomes
        (won,) = records
        pointer = first.champion("prod")
        assert pointer == won
        for lost in (o for o in outcomes if isinstance(o, StoreError)):
            assert f"changed to {won['version']} by {won['who']} at {won['time']}" in str(lost)
            assert "re-run" in str(lost)
        expected_history.append(won["version"])
        history = first.history("prod")
        assert [h["version"] for h in history] == expected_history
        assert history[-1] == pointer
        # Losers that got as far as writing a record left it pending: stored, not history.
        assert stored_history_files(first) >= files_before + 1


def test_unchecked_promotions_racing_keep_the_pointer_and_history_in_step(
    new_store: StoreFactory, tmp_path: Path
) -> None:
    first = new_store()
    versions = put_versions(first, tmp_path / "b", 1, WRITERS)
    stores = [new_store() for _ in versions]
    outcomes = race(
        [
            partial(s.set_champion, "prod", v, who=f"writer-{i}", reason="race")
            for i, (s, v) in enumerate(zip(stores, versions, strict=True))
        ]
    )
    taken = sorted((o for o in outcomes if isinstance(o, dict)), key=lambda r: r["seq"])
    assert taken, outcomes  # the first to move the pointer always succeeds
    for lost in (o for o in outcomes if isinstance(o, StoreError)):
        assert "while this run was deciding" in str(lost)
    history = first.history("prod")
    # Exactly the promotions that returned, in the order the pointer moved.
    assert history == taken
    assert first.champion("prod") == history[-1]
    assert [h["previous"] for h in history] == [None, *[h["version"] for h in history[:-1]]]


def test_a_promotion_decided_on_a_stale_champion_is_refused(
    new_store: StoreFactory, tmp_path: Path
) -> None:
    retrain, operator = new_store(), new_store()
    v1, v2, v3 = put_versions(retrain, tmp_path / "b", 1, 3)
    retrain.set_champion("prod", v1, who="seed", reason="first")
    decided_on = retrain.champion("prod")  # a retraining run reads the champion ...
    operator.set_champion("prod", v3, who="arn:aws:iam::1:user/ops", reason="planner apply")
    files = stored_history_files(retrain)
    with pytest.raises(StoreError) as lost:  # ... and promotes after the operator did
        retrain.set_champion("prod", v2, who="retrain", reason="cheaper", expected=decided_on)
    moved = retrain.champion("prod")
    assert moved is not None and moved["version"] == v3
    assert str(lost.value) == (
        f"the champion of prod changed to {v3} by arn:aws:iam::1:user/ops at {moved['time']} "
        "while this run was deciding; nothing was promoted: re-run"
    )
    assert stored_history_files(retrain) == files  # refused before writing anything
    assert [h["version"] for h in retrain.history("prod")] == [v1, v3]
    # Deciding on "no champion yet" is checked too.
    with pytest.raises(StoreError, match=f"changed to {v3}"):
        retrain.set_champion("prod", v2, who="retrain", reason="first", expected=None)


def test_s3_pointer_moved_between_read_and_write_loses_the_compare_and_swap(
    serial_s3: str, tmp_path: Path
) -> None:
    """The pointer moves after the store read it and before its conditional put: the
    put's `If-Match` fails (412), and the record it wrote stays pending."""
    s3 = client(serial_s3, "s3")
    s3.create_bucket(Bucket=BUCKET)
    connection = AwsConnection(REGION, serial_s3)
    store = open_store(f"s3://{BUCKET}/p", connection)
    operator = open_store(f"s3://{BUCKET}/p", AwsConnection(REGION, serial_s3))
    v1, v2, v3 = put_versions(store, tmp_path / "b", 1, 3)
    store.set_champion("prod", v1, who="seed", reason="first")

    def operator_promotes_first(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].endswith("champion/prod.json") and not hooked:
            hooked.append(True)
            operator.set_champion("prod", v3, who="ops", reason="planner apply")

    hooked: list[bool] = []
    connection.client("s3").meta.events.register(
        "provide-client-params.s3.PutObject", operator_promotes_first
    )
    with pytest.raises(StoreError, match=f"changed to {v3} by ops at"):
        store.set_champion("prod", v2, who="retrain", reason="cheaper")
    assert hooked
    pointer = operator.champion("prod")
    assert pointer is not None and pointer["version"] == v3 and pointer["previous"] == v1
    assert [h["version"] for h in operator.history("prod")] == [v1, v3]
    pending = [
        json.loads(s3.get_object(Bucket=BUCKET, Key=f"p/{key}")["Body"].read())
        for key in operator._keys("history/")  # type: ignore[attr-defined]
    ]
    assert sorted(r["version"] for r in pending) == sorted([v1, v2, v3])  # v2 pending


def test_s3_a_crash_before_the_pointer_moves_leaves_history_as_it_was(
    aws_env: str, tmp_path: Path
) -> None:
    s3 = client(aws_env, "s3")
    s3.create_bucket(Bucket=BUCKET)
    connection = AwsConnection(REGION, aws_env)
    store = open_store(f"s3://{BUCKET}/p", connection)
    v1, v2 = put_versions(store, tmp_path / "b", 1, 2)
    store.set_champion("prod", v1, who="seed", reason="first")

    def power_cut(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].endswith("champion/prod.json"):
            raise OSError("power cut")

    connection.client("s3").meta.events.register("provide-client-params.s3.PutObject", power_cut)
    with pytest.raises(OSError, match="power cut"):
        store.set_champion("prod", v2, who="retrain", reason="cheaper")
    reader = open_store(f"s3://{BUCKET}/p", AwsConnection(REGION, aws_env))
    pointer = reader.champion("prod")
    assert pointer is not None and pointer["version"] == v1
    assert [h["version"] for h in reader.history("prod")] == [v1]
    assert reader.set_champion("prod", v2, who="retrain", reason="again")["previous"] == v1
    assert [h["version"] for h in reader.history()] == [v1, v2]


_PROMOTE_IN_A_PROCESS = """
import pathlib, sys, time
from planner.store.base import StoreError
from planner.store.local import LocalStore

root, version, go = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
store = LocalStore(root)
seen = store.champion("prod")
go.with_name(f"ready-{version}").touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.002)
try:
    store.set_champion("prod", version, who=f"process {version}", reason="race", expected=seen)
except StoreError as exc:
    print(exc)
    sys.exit(1)
"""


def test_local_promotions_from_two_processes_exactly_one_takes_effect(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalStore(root)
    seed, *challengers = put_versions(store, tmp_path / "b", 1, 3)
    store.set_champion("prod", seed, who="seed", reason="first")
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PROMOTE_IN_A_PROCESS, str(root), version, str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in challengers
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{v}").exists() for v in challengers):
            assert time.monotonic() < deadline, "the writers never got ready"
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=60) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    codes = [p.returncode for p in processes]
    assert sorted(codes) == [0, 1], results
    won = challengers[codes.index(0)]
    lost_output = results[codes.index(1)][0]
    assert f"changed to {won} by process {won} at" in lost_output
    pointer = store.champion("prod")
    assert pointer is not None and pointer["version"] == won
    assert [h["version"] for h in store.history("prod")] == [seed, won]


def test_history_written_before_concurrency_guards_still_reads_whole(tmp_path: Path) -> None:
    """Records from before `previous_seq` (every record counted) stay history; a new
    promotion chains onto them."""
    root = tmp_path / "store"
    store = LocalStore(root)
    v1, v2, v3 = put_versions(store, tmp_path / "b", 1, 3)
    (root / "history").mkdir()
    (root / "champion").mkdir()
    old = [
        {"seq": 1, "stack": "prod", "version": v1, "previous": None},
        {"seq": 2, "stack": "dev", "version": v1, "previous": None},
        {"seq": 3, "stack": "prod", "version": v2, "previous": v1},
    ]
    for record in old:
        base = {"time": "2026-11-30T00:00:00Z", "emitted": None, "who": "ci", "reason": "old"}
        (root / "history" / f"{record['seq']:08d}.json").write_text(json.dumps(base | record))
    (root / "champion" / "prod.json").write_text((root / "history" / "00000003.json").read_text())
    (root / "champion" / "dev.json").write_text((root / "history" / "00000002.json").read_text())
    assert [h["version"] for h in store.history("prod")] == [v1, v2]
    new = store.set_champion("prod", v3, who="ci", reason="new", expected=store.champion("prod"))
    assert (new["seq"], new["previous"], new["previous_seq"]) == (4, v2, 3)
    assert [h["seq"] for h in store.history("prod")] == [1, 3, 4]
    assert [h["seq"] for h in store.history()] == [1, 2, 3, 4]


def test_a_retraining_run_does_not_promote_over_a_promotion_made_while_it_decided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's `planner apply` lands while a retraining run is deciding: the run
    stops with the store's message, the operator's champion stays, and history agrees."""
    from tests.planner.retrain.test_retrain_job import retrain, seed_champion

    store_dir = tmp_path / "store"
    before = seed_champion(store_dir, 30)  # over-provisioned: the run will want to promote
    operator = LocalStore(store_dir)
    (applied,) = put_versions(operator, tmp_path / "ops", 12, 1)
    store_bundle = LocalStore.put_bundle

    def operator_promotes_meanwhile(self: LocalStore, bundle_dir: Path) -> str:
        version = store_bundle(self, bundle_dir)  # the run stores its winner ...
        if not promoted:  # ... as the operator's apply records its own champion
            promoted.append(operator.set_champion("default", applied, who="ops", reason="apply"))
        return version

    promoted: list[dict[str, Any]] = []
    monkeypatch.setattr(LocalStore, "put_bundle", operator_promotes_meanwhile)
    with pytest.raises(StoreError) as lost:
        retrain(store_dir)
    assert str(lost.value) == (
        f"the champion of default changed to {applied} by ops at {promoted[0]['time']} "
        "while this run was deciding; nothing was promoted: re-run"
    )
    assert operator.champion("default") == promoted[0]
    assert [h["version"] for h in operator.history("default")] == [before, applied]
    assert operator.read_lock("default") is None  # released on the way out
    assert not list((store_dir / "runs").glob("*/done.json"))  # the next run decides again
