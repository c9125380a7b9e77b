"""The serverless spillover: the stacks deploy and the simulator plans the same endpoint.

SageMaker serverless has no GPUs, so the stacks serve a small CPU model there
(Qwen2.5-0.5B-Instruct). The planner's view of a stack (`planner retrain --stack`)
must simulate that endpoint: the model the SageMaker Model loads, the memory and
max concurrency of its endpoint configuration, and the CPU service time and cold
start of that model (`sim.capacity.cpu_models`), not the GPU model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.settings import ServerlessSettings
from sim.capacity.cpu_models import DEFAULT_SERVERLESS_MODEL, cpu_model
from sim.capacity.pools import ServerlessEndpoint
from sim.capacity.service import TokenService
from sim.errors import StackConfigError
from tests.infra.conftest import ROOT, RecordingMocks

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:cpu"


def deployed(mocks: RecordingMocks) -> dict[str, Any]:
    """What the stack gives SageMaker: the model id, memory and max concurrency."""
    model = mocks.one("aws:sagemaker/model:Model").props["primaryContainer"]
    config = mocks.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").props
    serverless = config["productionVariants"][0]["serverlessConfig"]
    return {
        "model": model["environment"]["HF_MODEL_ID"],
        "memory_mb": serverless["memorySizeInMb"],
        "max_concurrency": serverless["maxConcurrency"],
        "provisioned": serverless.get("provisionedConcurrency", 0),
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_planner_simulates_the_endpoint_the_stack_deploys(
    committed_stacks: dict[str, RecordingMocks], stack: str
) -> None:
    from planner.retrain.inputs import stack_scenario

    infra = deployed(committed_stacks[stack])
    data, _ = stack_scenario(ROOT, stack)
    pool = ServerlessEndpoint.model_validate(data["spillover"])
    assert pool.model == infra["model"] == DEFAULT_SERVERLESS_MODEL
    assert pool.memory_gb * 1024 == infra["memory_mb"]
    assert pool.max_replicas == infra["max_concurrency"]
    # the provisioned concurrency the stack configures is warm from the start
    assert pool.start_replicas == infra["provisioned"] > 0
    # Served on CPU at that memory size, one request per instance, with its cold start.
    entry = cpu_model(infra["model"])
    assert pool.service == entry.service(pool.memory_gb)
    assert pool.service.max_batch == 1
    assert pool.cold_start_s == entry.cold_start()
    assert pool.served_by == f"Qwen2.5-0.5B-Instruct on CPU ({pool.memory_gb} GB serverless)"
    assert pool.service != TokenService()  # not the GPU pool's model


def test_a_stack_serving_a_model_the_simulator_does_not_know_is_refused(
    tmp_path: Path,
) -> None:
    """Planning it with another model's times would describe a different endpoint."""
    from planner.retrain.inputs import stack_scenario

    raw = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    raw["config"]["scaleplan:serverless"]["model_id"] = "HuggingFaceTB/SmolLM2-360M-Instruct"
    raw["config"]["scaleplan:serverless"].pop("weights_gib", None)
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(StackConfigError) as caught:
        stack_scenario(tmp_path, "staging")
    message = str(caught.value)
    assert "SmolLM2-360M-Instruct, which the simulator has no CPU service model for" in message
    assert "known: Qwen/Qwen2.5-0.5B-Instruct" in message
    assert "sim/capacity/cpu_models.py" in message


def test_planner_retrain_on_such_a_stack_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from planner.cli import app

    raw = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    raw["config"]["scaleplan:serverless"]["model_id"] = "HuggingFaceTB/SmolLM2-360M-Instruct"
    raw["config"]["scaleplan:serverless"].pop("weights_gib", None)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.staging.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    trace = ROOT / "sim" / "scenarios" / "fixtures" / "azure_conv.csv"
    result = CliRunner().invoke(
        app,
        [
            *("retrain", "--source", "trace", "--trace", str(trace)),
            *("--trace-format", "azure-llm", "--store", str(tmp_path / "store")),
            *("--stack", "staging", "--project-dir", str(project)),
        ],
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.stderr.split())
    assert "which the simulator has no CPU service model for" in said
    assert "Traceback" not in result.output
    assert not (tmp_path / "store").exists()


def test_a_model_from_s3_is_refused_too() -> None:
    settings = ServerlessSettings(image=IMAGE, model_data_url="s3://models/qwen.tar.gz")
    with pytest.raises(StackConfigError, match=r"the model at s3://models/qwen\.tar\.gz"):
        settings.sim_spillover()


def test_the_stack_checks_memory_against_the_simulators_model() -> None:
    """One description: the weights a known model needs come from the simulator's entry."""
    with pytest.raises(ValueError, match=r"1\.84 GiB of weights leave too little of 3072 MB"):
        ServerlessSettings(image=IMAGE, model_id=DEFAULT_SERVERLESS_MODEL, memory_mb=3072)
    with pytest.raises(ValueError, match=r"whose float32 weights are 1\.84 GiB"):
        ServerlessSettings(image=IMAGE, model_id=DEFAULT_SERVERLESS_MODEL, weights_gib=0.5)
    # The simulator refuses the same memory size for the same reason.
    with pytest.raises(ValueError, match="do not fit in memory_gb 3"):
        ServerlessEndpoint(memory_gb=3)
    fits = ServerlessSettings(image=IMAGE, model_id=DEFAULT_SERVERLESS_MODEL, memory_mb=4096)
    assert ServerlessEndpoint.model_validate(fits.sim_spillover()).memory_gb == 4
