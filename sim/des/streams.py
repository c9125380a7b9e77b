"""Random streams of the SimPy engine: one child generator per purpose.

Every draw in a run comes from `numpy.random.default_rng(seed)`'s entropy, split
into independent children by a fixed spawn key per purpose. Adding a new source
of randomness (a new key) therefore never shifts the draws of the others, so a
change in, say, spot interruptions leaves the arrival and service draws intact.
"""

from __future__ import annotations

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
    """Draws service times, vectorising the draws where the model allows it.

    An `ExponentialService` time is its mean times a standard exponential; those
    are drawn `block` at a time (one numpy call instead of one per request, which
    dominates the cost of a request otherwise). Any other model is asked per
    request through `ServiceModel.sample_s`, since its time depends on the tokens
    and on the batch occupancy at the start.
    """

    __slots__ = ("_block", "_buffer", "_index", "_mean_s", "_rng", "_service")

    def __init__(self, service: ServiceModel, rng: np.random.Generator, block: int = 65_536):
        self._service = service
        self._rng = rng
        self._block = block
        self._mean_s = service.mean_s if isinstance(service, ExponentialService) else 0.0
        self._buffer: list[float] = []
        self._index = 0

    def per_request(self, input_tokens: FloatArray, output_tokens: FloatArray) -> FloatArray:
        """Service times of every request at batch 1, in one vectorised draw.

        For servers that never batch (serverless instances). An exponential model
        draws one standard exponential per request; the token model is evaluated on
        the arrays (the same arithmetic as `TokenService.service_s`, element-wise);
        any other model is asked request by request.
        """
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

    def sample_s(self, input_tokens: float, output_tokens: float, batch: int) -> float:
        """Seconds one request holds its batch slot, given the occupancy at its start."""
        if self._mean_s > 0.0:
            index = self._index
            if index == len(self._buffer):
                self._buffer = self._rng.standard_exponential(self._block).tolist()
                index = 0
            self._index = index + 1
            return self._mean_s * self._buffer[index]
        return self._service.sample_s(self._rng, input_tokens, output_tokens, batch)
