"""What the retraining CronJob runs: `planner retrain` with this stack's settings.

Pure functions (no pulumi import), so the tests check the exact command line
against the real CLI, and the stack file the job reads against the real reader:

- `retrain_args`: the container's arguments, from `RetrainingSettings`;
- `job_stack_file`: the stack's config as a `Pulumi.<stack>.yaml`, secrets left
  out, for a ConfigMap mounted into `JOB_PROJECT_DIR` (a pod has no checkout of the
  repository, and `planner retrain --stack` reads the stack's pools and SLO there;
  the directory itself is writable, for `--apply`'s audit log).

The job never passes `--emit`: it cannot edit the repository's stack file. A new
champion lands in the store (the stack's bundle bucket) and live scaling is left
alone (`mode: shadow`); `mode: active` would add `--apply --yes --mode active`,
which the settings refuse until the job's role grants what `planner apply` calls.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from infra.settings import RetrainingSettings, StackSettings
from infra.stack_file import CONFIG_KEYS

#: Where the job's pod finds `Pulumi.<stack>.yaml` (the ConfigMap's mount).
JOB_PROJECT_DIR = "/etc/scaleplan"
#: The store's prefix inside the stack's bundle bucket.
STORE_PREFIX = "policies"
#: CPUs of the job's pod, and its worker processes: Python 3.11's `os.cpu_count()`
#: sees the node's CPUs, not the pod's limit, so `--workers` says it.
JOB_CPUS = 2
#: CPU-only: tuning and the RL budget run on CPU (the image has no CUDA). Requests
#: equal limits (Guaranteed QoS), so a run of hours is the last pod evicted under
#: node pressure; it fits one m7i.xlarge system node (3.67 CPU, 14 GiB free).
JOB_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": str(JOB_CPUS), "memory": "8Gi"},
    "limits": {"cpu": str(JOB_CPUS), "memory": "8Gi"},
}
#: The Dockerfile's unprivileged user.
JOB_UID = 1000
#: What the in-cluster Prometheus keeps when no job reads it: the autoscalers need minutes.
MIN_RETENTION_DAYS = 2


def store_url(bucket: str) -> str:
    """The policy store in the stack's bundle bucket."""
    return f"s3://{bucket}/{STORE_PREFIX}"


def retrain_args(
    settings: RetrainingSettings,
    *,
    stack: str,
    bucket: str,
    region: str,
    prometheus_url: str,
    asg_name: str | None = None,
) -> list[str]:
    """Arguments of `planner` for one scheduled retraining run of `stack`.

    Args:
        settings: The stack's `scaleplan:retraining` block.
        stack: The stack name (`--stack`: the job reads its pools and SLO).
        bucket: The stack's bundle bucket (the store).
        region: The stack's AWS region (the store's bucket, CloudWatch).
        prometheus_url: The Prometheus to read when `settings.prometheus_url` is unset
            (the in-cluster server the program installs).
        asg_name: The stack's Auto Scaling group (CloudWatch source).

    Raises:
        ValueError: A CloudWatch source without an ASG (the settings refuse it first).
    """
    args = [
        "retrain",
        "--source",
        settings.source,
        "--days",
        f"{settings.days:g}",
        "--store",
        store_url(bucket),
        "--stack",
        stack,
        "--project-dir",
        JOB_PROJECT_DIR,
        # The store's S3 client and CloudWatch both take it (the CLI's default is us-east-1).
        "--region",
        region,
        "--rl-budget-min",
        str(settings.rl_budget_min),
        "--trials",
        str(settings.trials),
        "--workers",
        str(JOB_CPUS),
    ]
    if settings.source == "prometheus":
        args += ["--prometheus-url", settings.prometheus_url or prometheus_url]
    else:
        if asg_name is None:
            raise ValueError("retraining.source cloudwatch needs the stack's ASG")
        # The group's own demand: plan (and compile the winner for) the ASG pool.
        args += ["--asg-name", asg_name, "--target", "asg"]
    if settings.mode == "active":
        args += ["--apply", "--yes", "--mode", "active"]
    return args


def job_stack_config(settings: StackSettings) -> dict[str, Any]:
    """The `config:` mapping of the stack file the job reads (no secrets: `StackSettings`
    never holds them, `infra.stack_file.SECRET_KEYS` are read apart)."""
    dumped = settings.model_dump(mode="json")
    config: dict[str, Any] = {"aws:region": settings.region}
    for key, field in CONFIG_KEYS.items():
        if dumped.get(field) is not None:
            config[f"{settings.project}:{key}"] = dumped[field]
    return config


def job_stack_file(settings: StackSettings) -> str:
    """`Pulumi.<stack>.yaml` as the job's pod reads it (see `job_stack_config`)."""
    header = (
        f"# Stack {settings.stack} as the Pulumi program validated it, secrets left out:\n"
        "# rendered for the retraining job (infra/retrain_command.py); edit the\n"
        "# repository's stack file, not this.\n"
    )
    body = yaml.safe_dump({"config": job_stack_config(settings)}, sort_keys=False)
    return header + body


def stack_file_name(stack: str) -> str:
    """The file name `planner retrain --stack` looks for."""
    return f"Pulumi.{stack}.yaml"


def prometheus_retention_days(settings: StackSettings) -> int:
    """Days the in-cluster Prometheus keeps: the job's window and a day when it reads them."""
    job = settings.retraining
    if job.source != "prometheus" or job.prometheus_url is not None:
        return MIN_RETENTION_DAYS
    return max(MIN_RETENTION_DAYS, math.ceil(job.days) + 1)
