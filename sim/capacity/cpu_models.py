"""Small LLMs on a serverless endpoint's CPU: their service time and cold start.

SageMaker serverless inference has no GPUs (developer guide, "Serverless
Inference": CPU only, memory 1-6 GB, max concurrency 1-200), so the spillover the
stacks deploy (`infra.components.serverless`) is a small model on CPU, served by
the Hugging Face PyTorch CPU container one request at a time. A `ServerlessEndpoint`
takes its default service model and cold start from the entry here named by its
`model`, at its `memory_gb`; `infra.settings.ServerlessSettings` checks the
stack's memory against the same entry.

Every figure is an assumption to calibrate against the endpoint's own CloudWatch
metrics (`ModelLatency` per request, `ModelSetupTime` per cold start), not a
measurement of SageMaker:

* CPU share. SageMaker gives a serverless container compute in proportion to
  its memory and runs it on AWS Lambda's platform; Lambda documents one vCPU's
  worth of compute at 1,769 MB. So a 6 GB endpoint gets about 3.5 vCPUs, 4 GB
  about 2.3, 1 GB about 0.6.
* Time per vCPU. The prefill and decode CPU seconds of Qwen2.5-0.5B-Instruct's
  architecture (random weights, float32, transformers 4.49 as in the stacks'
  container) on one thread of the development machine, measured by
  `benchmarks/serverless_cpu_qwen.py` (docs/infra.md has the run): 6.7 s per 1k
  prompt tokens and 0.17 s per output token (6 tokens/s) per vCPU, divided by the
  vCPU share. Public figures agree in order: about 10 tokens/s for this model on a
  few desktop cores (llama.cpp Q4_K_M and candle reports). Decode on CPU is bound
  by memory bandwidth, so the linear scaling is optimistic above a few vCPUs.
* Cold start. A new instance starts its container (`CONTAINER_START_S`, the 8 s
  this pool used before it named a model), downloads the weights from the Hub
  (`HF_MODEL_ID`: the bfloat16 safetensors, at an assumed `DOWNLOAD_MB_PER_S`), and
  imports torch and transformers and loads the weights in float32 (measured by
  the same benchmark, from local disk).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.capacity.distributions import Delay
from sim.capacity.service import TokenService
from sim.errors import ScenarioError

#: Lambda: "at 1,769 MB, a function has the equivalent of one vCPU" (Lambda developer
#: guide, "Configuring function memory"); SageMaker serverless runs on Lambda.
MB_PER_VCPU = 1769.0
#: The container start of a serverless instance before any weights load (the pool's
#: former cold start default, with no model named).
CONTAINER_START_S = 8.0
#: Assumed Hub download rate inside a serverless instance, MB per second.
DOWNLOAD_MB_PER_S = 50.0
#: Coefficient of variation of a cold start (lognormal).
COLD_START_CV = 0.3
#: The weights may take at most this share of the endpoint's memory: the runtime,
#: the tokenizer and one request's activations and KV cache share the rest.
MAX_WEIGHTS_SHARE = 0.6


def vcpus_at(memory_gb: float) -> float:
    """vCPUs' worth of compute a serverless instance of `memory_gb` gets."""
    return memory_gb * 1024.0 / MB_PER_VCPU


@dataclass(frozen=True)
class CpuModel:
    """One model's size and its per-request times on serverless CPU.

    Attributes:
        model_id: The Hugging Face Hub id the stacks deploy (`HF_MODEL_ID`).
        parameters: Parameter count.
        download_mb: Size of the weights as the Hub stores them (safetensors).
        weights_gib: The weights as the CPU container holds them (float32).
        prefill_s_per_1k_at_vcpus: Prefill seconds per 1k prompt tokens at
            `reference_vcpus`.
        decode_s_per_token_at_vcpus: Decode seconds per output token at
            `reference_vcpus`.
        reference_vcpus: The vCPUs the two times were measured on.
        load_s: Importing torch and transformers and loading the weights in a
            fresh process (the part of a cold start after the download).
        source: Where the times come from.
    """

    model_id: str
    parameters: int
    download_mb: float
    weights_gib: float
    prefill_s_per_1k_at_vcpus: float
    decode_s_per_token_at_vcpus: float
    reference_vcpus: float
    load_s: float
    source: str

    def _scale(self, memory_gb: float) -> float:
        return self.reference_vcpus / vcpus_at(memory_gb)

    def service(self, memory_gb: float) -> TokenService:
        """The service model at `memory_gb`: one request per instance, times by vCPU share."""
        scale = self._scale(memory_gb)
        return TokenService(
            prefill_s_per_1k_tokens=self.prefill_s_per_1k_at_vcpus * scale,
            decode_s_per_token=self.decode_s_per_token_at_vcpus * scale,
            max_batch=1,
            batch_slowdown=0.0,
        )

    def cold_start_mean_s(self) -> float:
        """Container start, weights download and load, in seconds."""
        return CONTAINER_START_S + self.download_mb / DOWNLOAD_MB_PER_S + self.load_s

    def cold_start(self) -> Delay:
        return Delay(kind="lognormal", mean_s=self.cold_start_mean_s(), cv=COLD_START_CV)

    def fits(self, memory_gb: float) -> bool:
        """Whether the float32 weights leave the runtime enough of `memory_gb`."""
        return self.weights_gib <= MAX_WEIGHTS_SHARE * memory_gb

    def smallest_memory_gb(self) -> int:
        """The smallest SageMaker serverless memory size (1-6 GB) the model fits in."""
        return next((gb for gb in range(1, 7) if self.fits(gb)), 7)


QWEN25_05B_INSTRUCT = CpuModel(
    model_id="Qwen/Qwen2.5-0.5B-Instruct",
    parameters=494_032_768,
    # model.safetensors on the Hub: 988 MB (bfloat16).
    download_mb=988.0,
    # 494 M parameters x 4 bytes.
    weights_gib=1.84,
    # One thread, CPU seconds (medians of 5; 1,000 prompt tokens, 32 output tokens).
    prefill_s_per_1k_at_vcpus=6.68,
    decode_s_per_token_at_vcpus=0.169,
    reference_vcpus=1.0,
    # A fresh process: import torch and transformers 4.5 s, load the weights 2.9 s.
    load_s=7.4,
    source=(
        "benchmarks/serverless_cpu_qwen.py --threads 1,2: the model's architecture with "
        "random weights, float32, one thread's CPU seconds on a shared 2-core Xeon "
        "(torch 2.13, transformers 4.49), 2026-12-03"
    ),
)

#: The models the simulator can serve on a serverless endpoint, by Hub id.
CPU_MODELS: dict[str, CpuModel] = {m.model_id: m for m in (QWEN25_05B_INSTRUCT,)}
#: What the stacks deploy as the spillover, and a serverless pool's default.
DEFAULT_SERVERLESS_MODEL = QWEN25_05B_INSTRUCT.model_id


def cpu_model(model_id: str) -> CpuModel:
    """The entry for `model_id`, or a ScenarioError naming the known models and what to do."""
    try:
        return CPU_MODELS[model_id]
    except KeyError:
        known = ", ".join(sorted(CPU_MODELS))
        raise ScenarioError(
            f"serverless model {model_id!r}: the simulator has no CPU service model for it "
            f"(known: {known}); give the pool's `service` and `cold_start_s` for it, or add "
            "an entry to sim/capacity/cpu_models.py"
        ) from None
