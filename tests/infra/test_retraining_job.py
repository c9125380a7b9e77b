"""The retraining CronJob: `planner retrain` with each stack's settings (issue 13, "Scheduling").

The stacks are built by the real program under Pulumi mocks (conftest); the
container's arguments are then parsed by the real `planner retrain` command
(`click.Command.make_context`: every flag and value is checked, nothing runs),
and the stack file the job mounts is read back by the readers the command uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer

from infra.retrain_command import (
    JOB_PROJECT_DIR,
    job_stack_file,
    prometheus_retention_days,
    retrain_args,
)
from infra.settings import RetrainingSettings
from infra.stack_file import SECRET_KEYS, load_stack_file, read_stack_file
from sim.errors import StackConfigError
from tests.infra.conftest import STACKS, RecordingMocks, RunStack
from tests.infra.test_k8s_schemas import manifest

ROOT = Path(__file__).resolve().parents[2]
CRONJOB = "kubernetes:batch/v1:CronJob"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
TOKEN = "hf_test_token"  # conftest.stack_config's model token


def retrain_command() -> Any:
    """The real `planner retrain` (a click command: typer 0.29 vendors click as
    `typer._click`), as `planner --help` registers it."""
    import planner.cli  # noqa: F401  (registers every command on the app)
    from planner.cli_app import app

    group = typer.main.get_command(app)
    command = getattr(group, "commands", {}).get("retrain")
    assert command is not None, "planner has no `retrain` command (planner/retrain/commands.py)"
    return command


def parse(argv: list[str]) -> dict[str, Any]:
    """`planner <argv>` parsed by the real command: flags, types and choices checked."""
    assert argv[0] == "retrain", argv
    ctx = retrain_command().make_context("retrain", list(argv[1:]))
    assert ctx.args == [], f"left over: {ctx.args}"
    return dict(ctx.params)


def container(mocks: RecordingMocks) -> dict[str, Any]:
    return pod(mocks)["containers"][0]


def pod(mocks: RecordingMocks) -> dict[str, Any]:
    spec = mocks.one(CRONJOB).props["spec"]
    return spec["jobTemplate"]["spec"]["template"]["spec"]


def bucket(mocks: RecordingMocks) -> str:
    return str(mocks.one("aws:s3/bucket:Bucket").props["bucket"])


@pytest.fixture(scope="module")
def committed(committed_stacks: dict[str, RecordingMocks]) -> dict[str, RecordingMocks]:
    """Each stack file exactly as committed (conftest.committed_stacks)."""
    return committed_stacks


def test_prod_runs_exactly_this_command(committed: dict[str, RecordingMocks]) -> None:
    prod = committed["prod"]
    assert container(prod)["command"] == ["planner"]
    assert container(prod)["args"] == [
        "retrain",
        "--source", "prometheus",
        "--days", "28",
        "--store", f"s3://{bucket(prod)}/policies",
        "--stack", "prod",
        "--project-dir", "/etc/scaleplan",
        "--region", "us-east-1",
        "--rl-budget-min", "30",
        "--trials", "40",
        "--workers", "2",  # the pod's CPUs (os.cpu_count() would see the node's)
        "--prometheus-url", "http://prometheus-server.monitoring.svc:80",
    ]  # fmt: skip
    assert "--emit" not in container(prod)["args"]  # a pod cannot edit the repository


@pytest.mark.parametrize("stack", STACKS)
def test_the_job_args_parse_with_the_real_cli(
    committed: dict[str, RecordingMocks], stack: str
) -> None:
    """Issue 13: the CronJob's arguments are a valid `planner retrain` command line."""
    settings = load_stack_file(ROOT / f"Pulumi.{stack}.yaml").retraining
    params = parse(container(committed[stack])["args"])
    assert params["stack"] == stack
    assert params["region"] == "us-east-1"
    assert Path(params["project_dir"]) == Path(JOB_PROJECT_DIR)
    assert params["store"] == f"s3://{bucket(committed[stack])}/policies"
    assert float(params["days"]) == settings.days
    assert int(params["trials"]) == settings.trials
    assert float(params["rl_budget_min"]) == settings.rl_budget_min
    assert str(getattr(params["source"], "value", params["source"])) == "prometheus"
    assert params["emit"] is False and params["apply"] is False
    cpus = container(committed[stack])["resources"]["limits"]["cpu"]
    assert params["workers"] == int(cpus)


def test_every_setting_parses_with_the_real_cli() -> None:
    """CloudWatch, an external Prometheus, active mode, a fractional window."""
    slo = {"latency_s": 25, "target_attainment": 0.95}
    cloudwatch = RetrainingSettings.model_validate({"slo": slo, "source": "cloudwatch"})
    cases = [
        cloudwatch,
        # Refused by the settings for now (test_active_mode_is_refused_with_the_reason), but
        # the arguments are ready for it.
        cloudwatch.model_copy(update={"mode": "active"}),
        RetrainingSettings.model_validate(
            {"slo": slo, "prometheus_url": "https://prom.example.internal:9090", "days": 2.5}
        ),
        RetrainingSettings.model_validate({"slo": slo, "rl_budget_min": 0, "trials": 1}),
    ]
    for settings in cases:
        argv = retrain_args(
            settings,
            stack="staging",
            bucket="scaleplan-staging-bundles-0a1b2c",
            region="us-east-1",
            prometheus_url="http://prometheus-server.monitoring.svc:80",
            asg_name="scaleplan-staging-asg-1234567",
        )
        params = parse(argv)
        assert float(params["days"]) == settings.days
        if settings.source == "cloudwatch":
            assert params["region"] == "us-east-1"
            assert params["asg_name"] == "scaleplan-staging-asg-1234567"
            assert str(getattr(params["target"], "value", params["target"])) == "asg"
        if settings.mode == "active":
            assert params["apply"] is True and params["yes"] is True
            assert str(getattr(params["mode"], "value", params["mode"])) == "active"


def test_a_cloudwatch_job_reads_the_stacks_own_group(run_stack: RunStack) -> None:
    raw = read_stack_file(ROOT / "Pulumi.staging.yaml")
    retraining = {**raw["scaleplan:retraining"], "source": "cloudwatch"}
    staging = run_stack("staging", {"scaleplan:retraining": retraining})
    args = container(staging)["args"]
    group = staging.one("aws:autoscaling/group:Group").props["name"]
    assert args[args.index("--asg-name") + 1] == group
    assert args[args.index("--region") + 1] == "us-east-1"
    assert args[args.index("--target") + 1] == "asg"  # the pool whose metrics it reads
    assert "--prometheus-url" not in args and "--apply" not in args
    parse(args)


@pytest.mark.parametrize("stack", STACKS)
def test_the_mounted_stack_file_reads_back_without_secrets(
    committed: dict[str, RecordingMocks], stack: str, tmp_path: Path
) -> None:
    """What `planner retrain --stack` reads in the pod is the stack the program built."""
    from planner.emit.target import read_stack_target

    config_map = committed[stack].one(CONFIGMAP, "retrain").props
    name = f"Pulumi.{stack}.yaml"
    assert list(config_map["data"]) == [name]
    text = config_map["data"][name]
    for secret in (*SECRET_KEYS, TOKEN):
        assert secret not in text
    mounted = tmp_path / name
    mounted.write_text(text)
    assert load_stack_file(mounted) == load_stack_file(ROOT / name)
    target = read_stack_target(mounted)
    assert target.settings.retraining.slo.latency_s == 25
    assert target.settings.retraining.slo.target_attainment == 0.95
    # The pod mounts that file where --project-dir points, in a writable directory
    # (`--apply` writes its audit log under --project-dir).
    spec = pod(committed[stack])
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container(committed[stack])["volumeMounts"]}
    file_mount = mounts[f"{JOB_PROJECT_DIR}/{name}"]
    assert file_mount["subPath"] == name and file_mount["readOnly"] is True
    assert volumes[file_mount["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
    assert "emptyDir" in volumes[mounts[JOB_PROJECT_DIR]["name"]]
    assert not mounts[JOB_PROJECT_DIR].get("readOnly")


@pytest.mark.parametrize("stack", STACKS)
def test_the_job_is_safe_to_schedule(committed: dict[str, RecordingMocks], stack: str) -> None:
    settings = load_stack_file(ROOT / f"Pulumi.{stack}.yaml").retraining
    spec = committed[stack].one(CRONJOB).props["spec"]
    assert spec["schedule"] == settings.schedule and spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["suspend"] is False
    assert 0 < spec["startingDeadlineSeconds"] <= 3600
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] <= 2
    assert job["activeDeadlineSeconds"] == settings.active_deadline_s
    assert job["activeDeadlineSeconds"] > settings.rl_budget_min * 60
    spec_pod = job["template"]["spec"]
    assert spec_pod["securityContext"]["runAsNonRoot"] is True
    assert spec_pod["securityContext"]["runAsUser"] == 1000  # the Dockerfile's user
    assert spec_pod["nodeSelector"] == {"scaleplan/node-role": "system"}
    assert "tolerations" not in spec_pod  # never on the GPU nodes
    assert spec_pod["serviceAccountName"] == "scaleplan-retrain"
    resources = spec_pod["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "2", "memory": "8Gi"}
    image = spec_pod["containers"][0]["image"]
    repository = committed[stack].one("aws:ecr/repository:Repository").props["repositoryUrl"]
    assert image == f"{repository}:{settings.image_tag}"


@pytest.mark.parametrize("stack", STACKS)
def test_cronjob_and_configmap_pass_strict_schema_validation(
    committed: dict[str, RecordingMocks], stack: str
) -> None:
    version = load_stack_file(ROOT / f"Pulumi.{stack}.yaml").cluster.version
    for typ in (CRONJOB, CONFIGMAP):
        obj = manifest(dict(committed[stack].one(typ, "retrain").props))
        kubernetes_validate.validate(obj, f"{version}.0", strict=True)


def test_a_misspelt_field_fails_the_schema(committed: dict[str, RecordingMocks]) -> None:
    """The validation above can fail: a field the CronJob schema lacks is refused."""
    obj = manifest(dict(committed["dev"].one(CRONJOB).props))
    obj["spec"] = {**obj["spec"], "concurrencyPolicyy": "Forbid"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, "1.33.0", strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_keeps_the_window_the_job_reads(
    committed: dict[str, RecordingMocks], stack: str
) -> None:
    """The in-cluster Prometheus kept 2 days; the jobs read 7 to 28."""
    settings = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    release = next(
        r for r in committed[stack].of_type("kubernetes:helm.sh/v3:Release")
        if r.props["name"] == "prometheus"
    )  # fmt: skip
    retention = release.props["values"]["server"]["retention"]
    assert retention == f"{prometheus_retention_days(settings)}d"
    assert int(retention.removesuffix("d")) >= settings.retraining.days + 1


def test_a_disabled_job_is_suspended_not_removed(run_stack: RunStack) -> None:
    raw = read_stack_file(ROOT / "Pulumi.dev.yaml")
    dev = run_stack(
        "dev", {"scaleplan:retraining": {**raw["scaleplan:retraining"], "enabled": False}}
    )
    assert dev.one(CRONJOB).props["spec"]["suspend"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": "0 3 * *"}, "5-field cron"),
        ({"schedule": "0 25 * * *"}, "5-field cron"),
        ({"schedule": "*/5 * * * * *"}, "5-field cron"),
        ({"slo": None}, "slo"),
        ({"source": "datadog"}, "source"),
        ({"rl_budget_min": 300, "active_deadline_s": 3600}, "active_deadline_s"),
        ({"prometheus_url": "prometheus:9090"}, "prometheus_url"),
        ({"days": 0}, "days"),
        ({"mode": "active"}, "not supported by the scheduled job yet"),
    ],
    ids=[
        "four-fields",
        "hour-25",
        "seconds-field",
        "no-slo",
        "source",
        "deadline",
        "url",
        "days",
        "active",
    ],
)
def test_bad_retraining_settings_name_the_key(change: dict[str, Any], message: str) -> None:
    from infra.stack_file import settings_from_config

    raw = read_stack_file(ROOT / "Pulumi.dev.yaml")
    values = {k.removeprefix("scaleplan:"): v for k, v in raw.items() if k.startswith("scaleplan:")}
    retraining = {**values["retraining"], **change}
    values["retraining"] = {k: v for k, v in retraining.items() if v is not None}
    with pytest.raises(StackConfigError, match=message) as info:
        settings_from_config(values, stack="dev", region="us-east-1", source="Pulumi.dev.yaml")
    assert "scaleplan:retraining" in str(info.value)


def test_a_cloudwatch_job_needs_an_asg() -> None:
    from infra.stack_file import settings_from_config

    raw = read_stack_file(ROOT / "Pulumi.dev.yaml")
    values = {k.removeprefix("scaleplan:"): v for k, v in raw.items() if k.startswith("scaleplan:")}
    values.pop("asg")
    values.pop("scaling")
    values["retraining"] = {**values["retraining"], "source": "cloudwatch"}
    with pytest.raises(StackConfigError, match="no asg"):
        settings_from_config(values, stack="dev", region="us-east-1", source="Pulumi.dev.yaml")


def test_the_rendered_file_round_trips_for_every_stack(tmp_path: Path) -> None:
    """`job_stack_file` alone: settings -> YAML -> the same settings."""
    for stack in STACKS:
        settings = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
        path = tmp_path / f"Pulumi.{stack}.yaml"
        path.write_text(job_stack_file(settings))
        assert load_stack_file(path) == settings


README_SECTION = "## Scheduling the retraining job"
#: Shell syntax that ends a command's own arguments on a cron line.
SHELL_OPERATORS = (">", ">>", "2>&1", "&&", "||", ";", "|")


def readme_blocks() -> list[list[str]]:
    """The fenced code blocks of the README's scheduling section, as lists of lines."""
    text = (ROOT / "README.md").read_text()
    assert README_SECTION in text
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in section.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def planner_argv(words: list[str]) -> list[str]:
    """The arguments after the `planner` executable, up to the first shell operator."""
    start = next(i for i, w in enumerate(words) if w.endswith("/planner") or w == "planner")
    argv = []
    for word in words[start + 1 :]:
        if word in SHELL_OPERATORS:
            break
        argv.append(word)
    return argv


def test_the_readme_schedules_the_same_command_outside_kubernetes() -> None:
    """The README's cron line and systemd service run `planner retrain` as it parses."""
    import shlex

    from croniter import croniter

    blocks = readme_blocks()
    cron = [line for block in blocks for line in block if "planner retrain" in line]
    cron = [line for line in cron if not line.startswith("ExecStart=")]
    assert len(cron) == 1, cron
    cron_words = shlex.split(cron[0])
    assert croniter.is_valid(" ".join(cron_words[:5]))
    service = next(b for b in blocks if any(line.startswith("ExecStart=") for line in b))
    timer = next(b for b in blocks if any(line.startswith("OnCalendar=") for line in b))
    exec_start = next(line for line in service if line.startswith("ExecStart="))
    from_cron = planner_argv(cron_words[5:])
    from_systemd = planner_argv(shlex.split(exec_start.removeprefix("ExecStart=")))
    assert from_cron == from_systemd
    params = parse(from_cron)
    # A local store (no S3 outside AWS) and the stack file of the host's checkout.
    assert not params["store"].startswith("s3://")
    assert params["stack"] == "prod"
    assert (ROOT / "Pulumi.prod.yaml").is_file()
    # The timer starts the service of its own name; the service runs once per start.
    assert service[0] == "# /etc/systemd/system/scaleplan-retrain.service"
    assert timer[0] == "# /etc/systemd/system/scaleplan-retrain.timer"
    assert "Type=oneshot" in service and "WantedBy=timers.target" in timer


def test_the_image_runs_as_the_pods_user() -> None:
    """runAsNonRoot with UID 1000 needs the image's user to be 1000 (Dockerfile)."""
    from infra.retrain_command import JOB_UID

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"useradd --uid {JOB_UID} " in dockerfile
    assert f"\nUSER {JOB_UID}\n" in dockerfile
