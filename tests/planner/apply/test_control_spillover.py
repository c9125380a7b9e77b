"""Live control of the serverless spillover's provisioned concurrency (a spillover policy's
second target): the actuator, the controller in active and shadow mode, `planner control`.

Everything moto 5.2.5 serves goes to the moto server over HTTP: the Auto Scaling group,
CloudWatch, the SageMaker model, endpoint config and serverless endpoint (created with
boto3 here), DescribeEndpoint (CurrentServerlessConfig / DesiredServerlessConfig,
EndpointStatus), ListEndpoints and ListTags (discovery). moto accepts
UpdateEndpointWeightsAndCapacities but ignores its ServerlessUpdateConfig
(`test_moto_ignores_serverless_update_config` keeps the evidence), so that one call is
answered by botocore's Stubber (`stub_only`), which still validates the request
against the SageMaker service model and checks it equals the expected one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.stub import Stubber
from typer.testing import CliRunner

from planner.aws.actuator import AsgActuator
from planner.aws.sagemaker import ServerlessVariantActuator, competing_scaling
from planner.aws.session import AwsConnection
from planner.cli import app
from planner.control.live import LiveController, SpilloverControl
from planner.control.shadow_report import score
from policies.kinds import spec_from_dict
from sim.contract import PolicyContext
from tests.planner.apply.conftest import (
    ENDPOINT,
    GROUP,
    REGION,
    LiveStack,
    client,
    put_demand,
)
from tests.planner.apply.test_apply_cli import make_bundle

runner = CliRunner()
VARIANT = "AllTraffic"
TARGET = f"{ENDPOINT}/{VARIANT}"
#: The endpoint as the prod stack deploys it (Pulumi.prod.yaml: max 50, provisioned 5).
MAX_CONCURRENCY, PROVISIONED = 50, 5
#: A spillover policy on recent demand: with 3 ready instances of 2 req/s and 10 req/s
#: of demand, the overflow (above 6 req/s less the SLO's headroom) x 3 s is >= 12.
SPILLOVER_SPEC = {"kind": "spillover", "base": "recent", "serverless_service_s": 3.0}


def edit_stack_config(stack: LiveStack, edit: Callable[[dict[str, Any]], object]) -> None:
    """Change the prod stack file's `config` mapping in place with `edit`."""
    path = stack.project_dir / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["config"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def create_endpoint(endpoint: str, *, tagged: bool = True) -> None:
    """The serverless spillover endpoint `pulumi up` would have created."""
    sm = client(endpoint, "sagemaker")
    sm.create_model(
        ModelName="scaleplan-prod-serverless",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/scaleplan-prod-serverless-exec",
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-inference:cpu",
            "Environment": {"HF_MODEL_ID": "Qwen/Qwen2.5-0.5B-Instruct"},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName="scaleplan-prod-serverless",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": "scaleplan-prod-serverless",
                "ServerlessConfig": {
                    "MemorySizeInMB": 6144,
                    "MaxConcurrency": MAX_CONCURRENCY,
                    "ProvisionedConcurrency": PROVISIONED,
                },
            }
        ],
    )
    tags = [{"Key": "scaleplan:stack", "Value": "prod"}] if tagged else []
    sm.create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName="scaleplan-prod-serverless", Tags=tags
    )


def provisioned(endpoint: str) -> tuple[int, int]:
    """(current, desired) provisioned concurrency as DescribeEndpoint reports it."""
    variant = client(endpoint, "sagemaker").describe_endpoint(EndpointName=ENDPOINT)[
        "ProductionVariants"
    ][0]
    return (
        int(variant["CurrentServerlessConfig"]["ProvisionedConcurrency"]),
        int(variant["DesiredServerlessConfig"]["ProvisionedConcurrency"]),
    )


def stub_only(sagemaker: Any, operation: str = "UpdateEndpointWeightsAndCapacities") -> Stubber:
    """botocore's Stubber answering `operation` of `sagemaker` alone.

    `Stubber.activate` would answer every call of the client; here its two handlers
    (expected-parameter check, canned response) are registered for the one operation,
    so DescribeEndpoint and the rest still go over HTTP to the moto server. The request
    is built and validated against the service model before the handler answers.
    """
    stub = Stubber(sagemaker)
    name = f"{sagemaker.meta.service_model.service_id.hyphenize()}.{operation}"
    sagemaker.meta.events.register_first(
        f"before-parameter-build.{name}",
        stub._assert_expected_params,  # type: ignore[attr-defined]
    )
    sagemaker.meta.events.register(
        f"before-call.{name}",
        stub._get_response_handler,  # type: ignore[attr-defined]
    )
    return stub


def expect_update(stub: Stubber, desired: int) -> None:
    stub.add_response(
        "update_endpoint_weights_and_capacities",
        {"EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}"},
        {
            "EndpointName": ENDPOINT,
            "DesiredWeightsAndCapacities": [
                {
                    "VariantName": VARIANT,
                    "ServerlessUpdateConfig": {"ProvisionedConcurrency": desired},
                }
            ],
        },
    )


@pytest.fixture
def spill_stack(live_stack: LiveStack) -> Iterator[LiveStack]:
    create_endpoint(live_stack.endpoint)
    yield live_stack


def test_moto_ignores_serverless_update_config(spill_stack: LiveStack) -> None:
    """The evidence for the Stubber: moto 5.2.5 answers the update with 200 and changes
    nothing (its update_endpoint_weights_and_capacities copies DesiredWeight and
    DesiredInstanceCount only). If this starts failing, moto learned the field: drop
    `stub_only` and read the change back from the server."""
    sm = client(spill_stack.endpoint, "sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[
            {"VariantName": VARIANT, "ServerlessUpdateConfig": {"ProvisionedConcurrency": 9}}
        ],
    )
    assert provisioned(spill_stack.endpoint) == (PROVISIONED, PROVISIONED)


def test_actuator_reads_the_variant_and_sends_only_provisioned_concurrency(
    spill_stack: LiveStack,
) -> None:
    conn = AwsConnection(REGION, spill_stack.endpoint)
    sm = conn.client("sagemaker")
    changes: list[Any] = []
    variant = ServerlessVariantActuator(sm, ENDPOINT, on_change=changes.append)
    summary = variant.refresh()
    assert summary["VariantName"] == VARIANT
    assert (variant.current(), variant.in_force(), variant.bounds()) == (5, 5, (1, 50))
    assert variant.status() == "InService"
    stub = stub_only(sm)
    expect_update(stub, 8)
    variant.set_desired(8, "overflow", now_s=60.0)
    stub.assert_no_pending_responses()
    assert (variant.current(), variant.status()) == (8, "Updating")
    assert [(c.target, c.previous, c.desired) for c in changes] == [(TARGET, 5, 8)]
    # until the endpoint is InService again SageMaker takes no update: held, no call
    # (the stub has no response queued, so a call would raise)
    variant.set_desired(9, "more overflow", now_s=120.0)
    assert variant.held is not None and "Updating" in variant.held and "kept" in variant.held
    assert len(variant.log) == 1
    with pytest.raises(ValueError, match="outside"):
        variant.set_desired(51, "too many", now_s=180.0)
    with pytest.raises(ValueError, match="outside"):
        variant.set_desired(0, "none", now_s=180.0)


def test_a_throttled_update_is_retried(spill_stack: LiveStack) -> None:
    """SageMaker throttles (ThrottlingException, HTTP 400) once; the actuator's step is
    retried (`planner.aws.retry`) and lands once, with one audit record."""
    sm = AwsConnection(REGION, spill_stack.endpoint).client("sagemaker")
    variant = ServerlessVariantActuator(sm, ENDPOINT)
    variant.refresh()
    stub = stub_only(sm)
    stub.add_client_error(
        "update_endpoint_weights_and_capacities",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    expect_update(stub, 6)
    variant.set_desired(6, "overflow", now_s=60.0)
    stub.assert_no_pending_responses()
    assert [(c.previous, c.desired) for c in variant.log] == [(5, 6)]


def controller(
    stack: LiveStack,
    mode: str,
    *,
    ceiling: int = MAX_CONCURRENCY,
    max_step: int | None = None,
    record_path: Path | None = None,
    asg_ceiling: int = 12,
) -> tuple[LiveController, Any]:
    conn = AwsConnection(REGION, stack.endpoint)
    context = PolicyContext(
        interval_s=60, min_replicas=2, max_replicas=12, replica_capacity_rps=2.0,
        provisioning_s=300, slo_latency_s=30, slo_target=0.95, mean_service_s=0.5, max_batch=1,
        spillover_mean_service_s=3.0,
    )  # fmt: skip
    sm = conn.client("sagemaker")
    live = LiveController(
        policy=spec_from_dict(SPILLOVER_SPEC).build(),
        group=AsgActuator(conn.client("autoscaling"), GROUP),
        cloudwatch=conn.client("cloudwatch"),
        context=context,
        mode=mode,  # type: ignore[arg-type]
        floor=2,
        ceiling=asg_ceiling,
        record_path=record_path,
        spillover=SpilloverControl(
            ServerlessVariantActuator(sm, ENDPOINT), floor=1, ceiling=ceiling, max_step=max_step
        ),
    )
    return live, sm


def test_active_mode_sets_provisioned_concurrency_within_the_max_step(
    spill_stack: LiveStack,
) -> None:
    put_demand(spill_stack.endpoint, requests_per_min=600.0, age_s=60)
    live, sm = controller(spill_stack, "active", max_step=2)
    stub = stub_only(sm)
    expect_update(stub, PROVISIONED + 2)  # the policy's >= 12, cut to one step of 2
    record = live.step()
    stub.assert_no_pending_responses()
    assert (record.spillover_running, record.spillover_would_set) == (5, 7)
    assert "spillover 16 provisioned for" in record.reason  # the policy's own reason
    assert "spillover: change 5 ->" in record.reason and "max step of 2" in record.reason
    assert live.spillover is not None
    assert [(c.previous, c.desired) for c in live.spillover.variant.log] == [(5, 7)]


def test_active_mode_clamps_to_the_stacks_max_concurrency(
    spill_stack: LiveStack,
) -> None:
    put_demand(spill_stack.endpoint, requests_per_min=600.0, age_s=60)
    live, sm = controller(spill_stack, "active", ceiling=6)
    stub = stub_only(sm)
    expect_update(stub, 6)
    record = live.step()
    stub.assert_no_pending_responses()
    assert record.spillover_would_set == 6
    assert "spillover: clamped 16->6 (TooManyReplicas)" in record.reason


def test_a_spillover_change_alone_keeps_the_decisions_reason(spill_stack: LiveStack) -> None:
    put_demand(spill_stack.endpoint, requests_per_min=600.0, age_s=60)
    live, sm = controller(spill_stack, "active", asg_ceiling=3)  # the group stays at 3
    stub = stub_only(sm)
    expect_update(stub, 16)
    record = live.step()
    stub.assert_no_pending_responses()
    assert (record.running_desired, record.would_set) == (3, 3)
    assert record.reason.startswith("kept 3; gpu 3 for base 10.0 rps")  # its own clamp
    assert "spillover 16 provisioned" in record.reason


def test_missing_demand_keeps_the_provisioned_concurrency(spill_stack: LiveStack) -> None:
    live, sm = controller(spill_stack, "active")
    stub = stub_only(sm)  # nothing queued: an update call would raise
    record = live.step()
    stub.assert_no_pending_responses()
    assert record.held and "missing" in record.reason
    assert (record.spillover_running, record.spillover_would_set) == (5, 5)


def test_shadow_mode_records_the_spillover_and_touches_nothing(
    spill_stack: LiveStack, tmp_path: Path
) -> None:
    put_demand(spill_stack.endpoint, requests_per_min=600.0, age_s=60)
    path = tmp_path / "shadow.jsonl"
    live, sm = controller(spill_stack, "shadow", record_path=path)
    stub = stub_only(sm)  # nothing queued: an update call would raise
    first = live.step()
    put_demand(spill_stack.endpoint, requests_per_min=60.0, age_s=0)
    live.step()
    stub.assert_no_pending_responses()
    assert first.spillover_running == PROVISIONED and first.spillover_would_set is not None
    assert first.spillover_would_set >= 12
    assert provisioned(spill_stack.endpoint) == (PROVISIONED, PROVISIONED)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["spillover_running"] for line in lines] == [5, 5]
    result = score(lines)
    assert result.spillover_running is not None and result.spillover_shadow is not None
    assert result.spillover_running.concurrency_hours == pytest.approx(2 * 5 / 60, abs=1e-6)
    assert result.spillover_shadow.concurrency_hours > result.spillover_running.concurrency_hours


def test_competing_application_auto_scaling_is_listed(spill_stack: LiveStack) -> None:
    """moto 5.2.5 refuses the `sagemaker:variant:DesiredProvisionedConcurrency`
    dimension in RegisterScalableTarget (its enum lacks it), so no policy can exist
    there: the Application Auto Scaling client's two describe calls are stubbed
    with botocore's Stubber (with the request each must be)."""
    aas = AwsConnection(REGION, spill_stack.endpoint).client("application-autoscaling")
    assert competing_scaling(aas, ENDPOINT) == []  # over HTTP: moto has none
    ids = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{ENDPOINT}/variant/{VARIANT}",
        "ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency",
    }
    with Stubber(aas) as stub:
        stub.add_response(
            "describe_scaling_policies",
            {
                "ScalingPolicies": [
                    {
                        **ids,
                        "PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x",
                        "PolicyName": "scaleplan-target-tracking",
                        "PolicyType": "TargetTrackingScaling",
                        "CreationTime": "2026-12-01T00:00:00Z",
                    }
                ]
            },
            ids,
        )
        stub.add_response("describe_scheduled_actions", {"ScheduledActions": []}, ids)
        assert competing_scaling(aas, ENDPOINT) == ["scaling policy scaleplan-target-tracking"]


def control_args(stack: LiveStack, bundle: Path, *extra: str) -> list[str]:
    return [
        "control", "--bundle", str(bundle), "--stack", "prod", "--target", "aws",
        "--interval-s", "60", "--replica-capacity-rps", "2", "--once", "--history-days", "0",
        "--project-dir", str(stack.project_dir), "--endpoint-url", stack.endpoint,
        "--audit-log", str(stack.audit), *extra,
    ]  # fmt: skip


def test_control_cli_exits_2_when_the_endpoint_cannot_be_found(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundles", SPILLOVER_SPEC, name="prod-spill")
    put_demand(live_stack.endpoint, requests_per_min=600.0, age_s=60)
    untagged = runner.invoke(app, control_args(live_stack, bundle))
    assert untagged.exit_code == 2, untagged.output
    assert "no SageMaker endpoint carries the tag scaleplan:stack=prod" in untagged.output
    assert "--endpoint-name" in untagged.output
    named = runner.invoke(app, control_args(live_stack, bundle, "--endpoint-name", "nope"))
    assert named.exit_code == 2, named.output
    assert "SageMaker endpoint nope does not exist" in named.output
    assert not live_stack.audit.exists()  # refused before anything started


def test_control_cli_takes_the_serverless_service_time_from_the_stacks_model(
    spill_stack: LiveStack, tmp_path: Path
) -> None:
    """No --serverless-service-s and none in the spec: the simulator's CPU model of what
    the stack serves (Qwen2.5-0.5B at 6 GB in Pulumi.prod.yaml), said where it is used."""
    from sim.capacity.pools import ServerlessEndpoint
    from sim.workload.model import TokenProfile

    expected = ServerlessEndpoint(
        model="Qwen/Qwen2.5-0.5B-Instruct", memory_gb=6
    ).service.mean_service_s(TokenProfile(), 1)
    spec = {"kind": "spillover", "base": "recent"}
    bundle = make_bundle(tmp_path / "bundles", spec, name="prod-spill")
    put_demand(spill_stack.endpoint, requests_per_min=600.0, age_s=60)
    out = runner.invoke(app, control_args(spill_stack, bundle))
    assert out.exit_code == 0, out.output
    assert f"serverless service time {expected:.1f} s a request" in out.output
    assert "CPU model of Qwen/Qwen2.5-0.5B-Instruct at 6 GB" in out.output
    assert "spillover concurrency running 5" in out.output


def test_control_cli_needs_the_service_time_when_the_model_is_unknown(
    spill_stack: LiveStack, tmp_path: Path
) -> None:

    def own_model(config: dict[str, Any]) -> None:
        serverless = config["scaleplan:serverless"]
        serverless.pop("model_id")
        serverless["model_data_url"] = "s3://models/own-model.tar.gz"

    edit_stack_config(spill_stack, own_model)
    bundle = make_bundle(tmp_path / "bundles", {"kind": "spillover", "base": "recent"})
    out = runner.invoke(app, control_args(spill_stack, bundle))
    assert out.exit_code == 2, out.output
    assert "no CPU service" in out.output and "--serverless-service-s" in out.output
    assert not spill_stack.audit.exists()  # refused before anything started


def test_control_cli_active_sets_the_endpoint_and_audits_it(
    spill_stack: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's own SageMaker client gets `stub_only` (UpdateEndpointWeightsAndCapacities
    alone, see the module docstring); discovery and DescribeEndpoint go to moto."""
    bundle = make_bundle(tmp_path / "bundles", SPILLOVER_SPEC, name="prod-spill")
    put_demand(spill_stack.endpoint, requests_per_min=600.0, age_s=60)
    stubs: list[Stubber] = []
    made = AwsConnection.client

    def with_stub(self: AwsConnection, service: str) -> Any:
        created = service not in self._clients
        sagemaker = made(self, service)
        if service == "sagemaker" and created:
            stubs.append(stub_only(sagemaker))
            expect_update(stubs[-1], PROVISIONED + 3)
        return sagemaker

    monkeypatch.setattr(AwsConnection, "client", with_stub)
    args = control_args(spill_stack, bundle, "--mode", "active", "--spillover-max-step", "3")
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "spillover concurrency running 5, policy 8" in out.output
    assert len(stubs) == 1
    stubs[0].assert_no_pending_responses()
    events = [json.loads(line) for line in spill_stack.audit.read_text().splitlines()]
    started = next(e for e in events if e["event"] == "control-started")
    assert started["endpoint"] == TARGET and started["mode"] == "active"
    spill = [e for e in events if e["event"] == "control-change" and e["target"] == TARGET]
    assert [(e["previous"], e["desired"]) for e in spill] == [(5, 8)]
    assert "max step 3" in spill[0]["reason"]
    assert events[-1]["event"] == "control-stopped"


def test_control_cli_shadow_changes_nothing(spill_stack: LiveStack, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundles", SPILLOVER_SPEC, name="prod-spill")
    put_demand(spill_stack.endpoint, requests_per_min=600.0, age_s=60)
    record = tmp_path / "rec.jsonl"
    out = runner.invoke(app, control_args(spill_stack, bundle, "--record", str(record)))
    assert out.exit_code == 0, out.output
    assert "shadow" in out.output and "spillover concurrency running 5" in out.output
    assert provisioned(spill_stack.endpoint) == (PROVISIONED, PROVISIONED)
    events = [json.loads(line) for line in spill_stack.audit.read_text().splitlines()]
    assert not [e for e in events if e["event"] == "control-change"]
    report = runner.invoke(app, ["shadow-report", "--record", str(record)])
    assert report.exit_code == 0, report.output
    assert "spillover conc.-hours" in report.output


def test_stack_without_serverless_runs_the_gpu_pool_only(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    edit_stack_config(live_stack, lambda config: config.pop("scaleplan:serverless"))
    bundle = make_bundle(tmp_path / "bundles", SPILLOVER_SPEC, name="prod-spill")
    put_demand(live_stack.endpoint, requests_per_min=600.0, age_s=60)
    out = runner.invoke(app, control_args(live_stack, bundle))
    assert out.exit_code == 0, out.output
    assert "decided but not acted on" in out.output
    assert "spillover concurrency running" not in out.output


@pytest.mark.parametrize(
    ("spec", "found"),
    [
        (SPILLOVER_SPEC, True),
        ({"kind": "rl", "algo": "ppo", "base": SPILLOVER_SPEC}, True),
        ({"kind": "rl", "algo": "ppo", "base": {"kind": "fixed", "replicas": 3}}, False),
        ({"kind": "fixed", "replicas": 3}, False),
    ],
    ids=["spillover", "rl-over-spillover", "rl-over-fixed", "fixed"],
)
def test_which_policies_drive_the_serverless_endpoint(spec: dict[str, Any], found: bool) -> None:
    from planner.apply.control_commands import spillover_spec

    match = spillover_spec(spec_from_dict(spec))
    assert (match is not None) == found
    if found:
        assert match is not None and match.serverless_service_s == 3.0


def test_a_variant_that_is_not_serverless_exits_2(live_stack: LiveStack, tmp_path: Path) -> None:
    sm = client(live_stack.endpoint, "sagemaker")
    sm.create_model(
        ModelName="gpu",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "vllm/vllm-openai:v0.8.5"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="gpu",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": "gpu",
                "InstanceType": "ml.g4dn.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="gpu-endpoint", EndpointConfigName="gpu")
    bundle = make_bundle(tmp_path / "bundles", SPILLOVER_SPEC, name="prod-spill")
    out = runner.invoke(app, control_args(live_stack, bundle, "--endpoint-name", "gpu-endpoint"))
    assert out.exit_code == 2, out.output
    assert "is not serverless" in out.output


def test_active_mode_is_refused_while_application_auto_scaling_scales_the_variant(
    spill_stack: LiveStack,
) -> None:
    """moto 5.2.5 cannot hold an Application Auto Scaling policy on the
    `sagemaker:variant:DesiredProvisionedConcurrency` dimension (RegisterScalableTarget
    refuses it), so that client alone is answered by botocore's Stubber; discovery
    and DescribeEndpoint go to moto. Shadow mode does not ask (it changes nothing)."""
    from planner.apply.control_commands import spillover_control
    from planner.apply.inputs import stack_file, stack_settings
    from sim.errors import UserInputError

    conn = AwsConnection(REGION, spill_stack.endpoint)
    settings = stack_settings(stack_file(spill_stack.project_dir, "prod"))
    ids = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{ENDPOINT}/variant/{VARIANT}",
        "ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency",
    }
    action = {
        **ids,
        "ScheduledActionName": "weekday-peak",
        "ScheduledActionARN": "arn:aws:autoscaling:us-east-1:123456789012:scheduledAction:x",
        "Schedule": "cron(0 13 ? * 2-6 *)",
        "CreationTime": "2026-12-01T00:00:00Z",
    }
    kwargs: dict[str, Any] = {
        "conn": conn, "stack": "prod", "settings": settings, "endpoint_name": None,
        "max_step": None, "on_change": None,
    }  # fmt: skip
    with Stubber(conn.client("application-autoscaling")) as stub:
        stub.add_response("describe_scaling_policies", {"ScalingPolicies": []}, ids)
        stub.add_response("describe_scheduled_actions", {"ScheduledActions": [action]}, ids)
        with pytest.raises(UserInputError, match="scheduled action weekday-peak"):
            spillover_control(mode="active", **kwargs)
        stub.assert_no_pending_responses()
        shadow = spillover_control(mode="shadow", **kwargs)  # the stub would refuse a call
    assert shadow.variant.endpoint == ENDPOINT  # found by its scaleplan:stack tag
    assert (shadow.floor, shadow.ceiling) == (1, MAX_CONCURRENCY)
