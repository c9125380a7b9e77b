"""Per-replica service models: how long a request occupies a replica.

`TokenService` models an LLM server with continuous batching (vLLM, TGI): a
replica runs up to `max_batch` requests at once; a request's time is its prefill
(proportional to prompt tokens) plus one decode step per output token, and a
decode step slows down as the batch fills. `ExponentialService` is the textbook
M/M/c server, used for cross-checks against closed forms.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.workload.model import TokenProfile


class TokenService(BaseModel):
    """Token-driven service time with continuous batching.

    Defaults are the order of magnitude of a 7-8B model in fp16 on one A10G under
    vLLM (about 25-30 ms per output token at batch 1, prefill of about 1k tokens per
    0.1 s); calibrate them for your model and GPU.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tokens"] = "tokens"
    prefill_s_per_1k_tokens: float = Field(default=0.10, ge=0.0)
    decode_s_per_token: float = Field(default=0.028, gt=0.0)
    max_batch: int = Field(default=16, ge=1)
    batch_slowdown: float = Field(
        default=0.6, ge=0.0, description="fractional decode-step slowdown at a full batch"
    )

    def service_s(self, input_tokens: float, output_tokens: float, batch: int) -> float:
        """Time one request holds a batch slot when `batch` requests share the replica."""
        fill = 0.0 if self.max_batch == 1 else (max(batch, 1) - 1) / (self.max_batch - 1)
        step_s = self.decode_s_per_token * (1.0 + self.batch_slowdown * fill)
        return self.prefill_s_per_1k_tokens * input_tokens / 1000.0 + step_s * output_tokens

    def mean_service_s(self, tokens: TokenProfile, batch: int) -> float:
        return self.service_s(tokens.input_mean, tokens.output_mean, batch)

    def throughput_rps(self, tokens: TokenProfile) -> float:
        """Requests per second one replica completes with a full batch."""
        return self.max_batch / self.mean_service_s(tokens, self.max_batch)

    def sample_s(
        self, rng: np.random.Generator, input_tokens: float, output_tokens: float, batch: int
    ) -> float:
        """Service time; deterministic given the tokens (the randomness is in the sizes)."""
        del rng
        return self.service_s(input_tokens, output_tokens, batch)


class ExponentialService(BaseModel):
    """Exponentially distributed service time, independent of tokens and batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["exponential"] = "exponential"
    mean_s: float = Field(gt=0.0)
    max_batch: int = Field(default=1, ge=1)

    def mean_service_s(self, tokens: TokenProfile, batch: int) -> float:
        del tokens, batch
        return self.mean_s

    def throughput_rps(self, tokens: TokenProfile) -> float:
        return self.max_batch / self.mean_s

    def sample_s(
        self, rng: np.random.Generator, input_tokens: float, output_tokens: float, batch: int
    ) -> float:
        del input_tokens, output_tokens, batch
        return float(rng.exponential(self.mean_s))


ServiceModel = Annotated[TokenService | ExponentialService, Field(discriminator="kind")]
