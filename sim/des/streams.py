"""Random streams of the SimPy engine: one child generator per purpose.

Every draw in a run comes from `numpy.random.default_rng(seed)`'s entropy, split
into independent children by a fixed spawn key per purpose. Adding a new source
of randomness (a new key) therefore never shifts the draws of the others, so a
change in, say, spot interruptions leaves the arrival and service draws intact.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator

import numpy as np

from sim.capacity.service import ExponentialService, ServiceModel, TokenService
from sim.workload.model import FloatArray

#: Fixed spawn keys. Append new purposes at the end; never renumber.
STREAM_KEYS: dict[str, int] = {
    "workload": 0,
    "policy": 1,
    "pool.service": 2,
    "pool.provisioning": 3,
    "pool.spot": 4,
    "pool.failure": 5,
    "pool.cold_start": 6,
    "spillover.service": 7,
    "spillover.cold_start": 8,
    "spillover.provisioning": 9,
}


def stream(seed: int, purpose: str) -> np.random.Generator:
    """The generator for `purpose` in a run seeded with `seed`.

    Args:
        seed: The run's seed (the same one `numpy.random.default_rng` would take).
        purpose: A key of `STREAM_KEYS`.

    Returns:
        An independent PCG64 generator, identical for identical (seed, purpose).
    """
    key = STREAM_KEYS[purpose]
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,)))


class ServiceSampler:
    """Draws the service times of one run's requests, vectorising where the model allows.

    An `ExponentialService` time is its mean times a standard exponential; those
    are drawn `block` at a time (one numpy call instead of one per request, which
    dominates the cost of a request otherwise). A `TokenService` time is affine in
    the tokens, prefill(input) + step(batch) x output: both parts are taken from
    `TokenService.service_s` itself once (per request, per batch size), so the
    per-request sum is the same float it computes. Any other model is asked per
    request through `ServiceModel.sample_s`.

    Args:
        service: The pool's service model.
        rng: The pool's service stream.
        input_tokens: Prompt tokens of every request of the run.
        output_tokens: Output tokens of every request of the run.
        block: Exponential draws per numpy call.
    """

    __slots__ = (
        "_block",
        "_buffer",
        "_index",
        "_input",
        "_mean_s",
        "_output",
        "_output_per_request",
        "_prefill_s",
        "_rng",
        "_service",
        "_step_s",
    )

    def __init__(
        self,
        service: ServiceModel,
        rng: np.random.Generator,
        input_tokens: FloatArray,
        output_tokens: FloatArray,
        block: int = 65_536,
    ) -> None:
        self._service = service
        self._rng = rng
        self._block = block
        self._input = input_tokens
        self._output = output_tokens
        # Per-request values as array('d'): indexing yields Python floats, so the
        # simulated times stay floats rather than numpy scalars (slower, and they leak).
        self._output_per_request = array("d")
        self._mean_s = service.mean_s if isinstance(service, ExponentialService) else 0.0
        self._buffer: list[float] = []
        self._index = 0
        self._prefill_s = array("d")
        self._step_s: list[float] = []
        if isinstance(service, TokenService):
            # service_s(input, 0, 1) is the prefill alone (+ 0.0) and
            # service_s(0, 1, batch) the decode step alone (0.0 +): exact, not rounded.
            prefill_s = service.service_s(input_tokens, 0.0, 1)  # type: ignore[arg-type]
            self._prefill_s = array("d", np.asarray(prefill_s, dtype=np.float64).tobytes())
            self._output_per_request = array("d", np.asarray(output_tokens, np.float64).tobytes())
            self._step_s = [service.service_s(0.0, 1.0, b) for b in range(service.max_batch + 1)]

    def per_request(self) -> FloatArray:
        """Service times of every request at batch 1, in one vectorised draw.

        For servers that never batch (serverless instances). An exponential model
        draws one standard exponential per request; the token model is evaluated on
        the arrays (the same arithmetic as `TokenService.service_s`, element-wise);
        any other model is asked request by request.
        """
        input_tokens, output_tokens = self._input, self._output
        if isinstance(self._service, ExponentialService):
            return self._service.mean_s * self._rng.standard_exponential(input_tokens.size)
        if isinstance(self._service, TokenService):
            return np.asarray(self._service.service_s(input_tokens, output_tokens, 1))  # type: ignore[arg-type]
        return np.array(
            [
                self._service.sample_s(self._rng, float(i), float(o), 1)
                for i, o in zip(input_tokens, output_tokens, strict=True)
            ]
        )

    def exponential_draws(self) -> Callable[[], float] | None:
        """For an `ExponentialService`, a callable giving the next service time, else None.

        The same times in the same order as `sample_s` would give (use one or the
        other): mean x draw, `block` draws per numpy call, taken on demand.
        """
        if self._mean_s <= 0.0:
            return None
        return self._exponential().__next__

    def _exponential(self) -> Iterator[float]:
        while True:
            yield from (self._mean_s * self._rng.standard_exponential(self._block)).tolist()

    def sample_s(self, request: int, batch: int) -> float:
        """Seconds `request` holds its batch slot, given the occupancy at its start."""
        if self._mean_s > 0.0:
            index = self._index
            if index == len(self._buffer):
                # mean x draw, element-wise: the same product as one at a time.
                draws = self._rng.standard_exponential(self._block)
                self._buffer = (self._mean_s * draws).tolist()
                index = 0
            self._index = index + 1
            return self._buffer[index]
        if self._step_s:
            return (
                self._prefill_s[request] + self._step_s[batch] * self._output_per_request[request]
            )
        return self._service.sample_s(
            self._rng, float(self._input[request]), float(self._output[request]), batch
        )
