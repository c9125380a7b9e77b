"""Pulumi unit-test harness: the engine is mocked, the program code is real.

Follows Pulumi's documented pattern (`pulumi.runtime.set_mocks(..., preview=False)`,
`@pulumi.runtime.test`). The mocks record every resource the real program
registers and run `infra.guardrails.check_resource` on each one as it arrives,
so every test also proves the stack passes the guardrails. Mocks and config are
global runtime state: each run installs fresh mocks and a fresh config map.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.guardrails import ResourceView, Violation, check_resource, check_stack
from infra.stack_file import read_stack_file

ROOT = Path(__file__).resolve().parents[2]
FAKE_AMI = "ami-0123456789abcdef0"
FAKE_ACCOUNT = "123456789012"


def _fake_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Provider-computed outputs the program reads back (ARNs, endpoints, issuers)."""
    service = typ.split(":")[1].split("/")[0]
    out = dict(inputs)
    out.setdefault("arn", f"arn:aws:{service}:us-east-1:{FAKE_ACCOUNT}:{name}")
    out.setdefault("name", name)
    if typ == "aws:eks/cluster:Cluster":
        out["endpoint"] = f"https://{name}.gr7.us-east-1.eks.amazonaws.com"
        out["certificateAuthority"] = {"data": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"}
        out["vpcConfig"] = {**out.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-0c1a2b3c"}
        out["identities"] = [
            {"oidcs": [{"issuer": f"https://oidc.eks.us-east-1.amazonaws.com/id/{name.upper()}"}]}
        ]
    if typ == "aws:ec2/launchTemplate:LaunchTemplate":
        out["latestVersion"] = 1
    if typ == "aws:s3/bucket:Bucket":
        out.setdefault("bucket", f"{name}-0a1b2c")
        # S3 ARNs carry neither region nor account.
        out["arn"] = f"arn:aws:s3:::{out['bucket']}"
    if typ == "aws:kms/key:Key":
        out["arn"] = f"arn:aws:kms:us-east-1:{FAKE_ACCOUNT}:key/{name}-0a1b2c3d"
    if typ == "aws:ssm/parameter:Parameter":
        path = str(out.get("name", name)).lstrip("/")
        out["arn"] = f"arn:aws:ssm:us-east-1:{FAKE_ACCOUNT}:parameter/{path}"
    if typ == "aws:ecr/repository:Repository":
        out["repositoryUrl"] = f"{FAKE_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}"
    if typ == "aws:eks/nodeGroup:NodeGroup":
        out["nodeGroupName"] = name
    if typ.startswith("kubernetes:"):
        meta = dict(out.get("metadata") or {})
        meta.setdefault("name", name)
        out["metadata"] = meta
    return out


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record resources and check each against the guardrails."""

    environment: str
    resources: list[ResourceView] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs = _fake_outputs(args.typ, args.name, inputs)
        with self._lock:
            # Per-resource rules see inputs (as CrossGuard resource policies do);
            # the stack-wide rules see outputs (as CrossGuard stack policies do).
            self.violations.extend(
                check_resource(ResourceView(args.typ, args.name, inputs), self.environment)
            )
            self.resources.append(ResourceView(args.typ, args.name, outputs))
        resource_id = outputs["bucket"] if args.typ == "aws:s3/bucket:Bucket" else f"{args.name}-id"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        with self._lock:
            self.calls.append(args.token)
        if args.token == "aws:ssm/getParameter:getParameter":
            return {"name": args.args["name"], "value": FAKE_AMI, "type": "String", "version": 1}
        raise AssertionError(f"unexpected provider call {args.token}")

    def of_type(self, typ: str) -> list[ResourceView]:
        """Recorded resources of one type token, in registration order."""
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name_part: str = "") -> ResourceView:
        """The single recorded resource of `typ` whose name contains `name_part`."""
        found = [r for r in self.of_type(typ) if name_part in r.name]
        assert len(found) == 1, (
            f"expected one {typ} named *{name_part}*, got {[r.name for r in found]}"
        )
        return found[0]

    def stack_violations(self) -> list[Violation]:
        """Per-resource violations plus the whole-stack rules."""
        return [*self.violations, *check_stack(self.resources, self.environment)]


def stack_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """`Pulumi.<stack>.yaml` as the CLI hands config to a program: JSON for objects."""
    raw = read_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    raw["scaleplan:modelToken"] = "hf_test_token"
    for key, value in (overrides or {}).items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def install(stack: str, environment: str, config: dict[str, str]) -> RecordingMocks:
    """Fresh mocks and config for one run (both are global runtime state)."""
    mocks = RecordingMocks(environment=environment)
    pulumi.runtime.set_mocks(mocks, project="scaleplan", stack=stack, preview=False)
    pulumi.runtime.set_all_config(config, secret_keys=["scaleplan:modelToken"])
    return mocks


RunStack = Callable[..., RecordingMocks]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pulumi_aws warns about its own deprecated v2 S3 aliases on import: not ours."""
    for item in items:
        if "tests/infra" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning"))


@pytest.fixture
def run_stack() -> Iterator[RunStack]:
    """Run the REAL program entry point (`infra.__main__.main`) for a stack file."""
    from infra import __main__ as program

    def run(stack: str, overrides: dict[str, Any] | None = None) -> RecordingMocks:
        config = stack_config(stack, overrides)
        mocks = install(stack, config.get("scaleplan:environment", "prod"), config)

        @pulumi.runtime.test
        def body() -> None:
            program.main()

        body()
        return mocks

    yield run
    pulumi.runtime.set_all_config({})


STACKS = ("dev", "staging", "prod")
FIXTURES = Path(__file__).resolve().parent / "scaling_fixtures"


def fixture_scaling(stack: str) -> dict[str, Any]:
    """The fixed emitted policy of `stack` (tests/infra/scaling_fixtures, see its header)."""
    import yaml

    value: dict[str, Any] = yaml.safe_load((FIXTURES / f"{stack}.yaml").read_text())
    return value


def _build(stack: str, overrides: dict[str, Any] | None) -> RecordingMocks:
    from infra import __main__ as program

    config = stack_config(stack, overrides)
    mocks = install(stack, config["scaleplan:environment"], config)

    @pulumi.runtime.test
    def body() -> None:
        program.main()

    body()
    pulumi.runtime.set_all_config({})
    return mocks


@pytest.fixture(scope="session")
def built_stacks() -> dict[str, RecordingMocks]:
    """Each stack file with its fixed policy (`fixture_scaling`), built once per session."""
    return {s: _build(s, {"scaleplan:scaling": fixture_scaling(s)}) for s in STACKS}


@pytest.fixture(scope="session")
def committed_stacks() -> dict[str, RecordingMocks]:
    """Each stack file exactly as committed (the policy `planner emit` last wrote)."""
    return {s: _build(s, None) for s in STACKS}


@pytest.fixture(scope="session")
def every_build(
    built_stacks: dict[str, RecordingMocks], committed_stacks: dict[str, RecordingMocks]
) -> dict[str, RecordingMocks]:
    """Both builds of every stack, keyed `<stack>` (fixed policy) and `<stack>@committed`."""
    return {**built_stacks, **{f"{s}@committed": m for s, m in committed_stacks.items()}}


#: Keys of `every_build`, for parametrizing.
EVERY_BUILD = (*STACKS, *(f"{s}@committed" for s in STACKS))
