"""Delay distributions for provisioning steps (boot, image pull, model load, cold start)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class Delay(BaseModel):
    """A non-negative random delay in seconds.

    In YAML a bare number means a fixed delay: `node_boot_s: 90`. Otherwise
    `{kind: lognormal, mean_s: 90, cv: 0.3}` or `{kind: exponential, mean_s: 2.0}`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fixed", "lognormal", "exponential"] = "fixed"
    mean_s: float = Field(ge=0.0)
    cv: float = Field(default=0.0, ge=0.0, description="coefficient of variation (lognormal)")

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"kind": "fixed", "mean_s": float(value)}
        return value

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one delay. Fixed delays consume no randomness."""
        if self.kind == "fixed" or self.mean_s == 0.0:
            return self.mean_s
        if self.kind == "exponential":
            return float(rng.exponential(self.mean_s))
        if self.cv == 0.0:
            return self.mean_s
        sigma2 = math.log1p(self.cv**2)
        mu = math.log(self.mean_s) - sigma2 / 2.0
        return float(rng.lognormal(mu, math.sqrt(sigma2)))

    def sample_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """The next `size` draws at once: the values `size` calls of `sample` give."""
        if self.kind == "fixed" or self.mean_s == 0.0 or (self.kind == "lognormal" and not self.cv):
            return np.full(size, self.mean_s)
        if self.kind == "exponential":
            return rng.exponential(self.mean_s, size)
        sigma2 = math.log1p(self.cv**2)
        mu = math.log(self.mean_s) - sigma2 / 2.0
        return rng.lognormal(mu, math.sqrt(sigma2), size)


def fixed(seconds: float) -> Delay:
    return Delay(kind="fixed", mean_s=seconds)
