"""Serverless spillover (hybrid): GPUs for the base load, serverless for bursts.

After MArk (Zhang, Yu, Wang and Wang, USENIX ATC 2019): provision the cheap,
slow-to-start capacity (GPU nodes, minutes to boot) for the load that is
predictable, and let a fast-starting but pricier serverless endpoint absorb what
exceeds it while more GPU nodes boot. The policy sizes both pools:

- GPU replicas (`Decision.desired`): the capacity model's sizing of the *base*
  rate, which is the forecast's `base_quantile` (median by default) over
  [t, t + provisioning] when a forecast is available, else that quantile of the
  demand observed over `base_window_s`; and of the *sustained* rate, the lowest
  demand of the last `sustain_s` (load that has lasted a boot time is no burst:
  MArk launches instances when overflow persists).
- Provisioned concurrency of the endpoint (`Decision.targets[SPILLOVER]`): by
  Little's law, the overflow rate above what the *ready* GPU replicas carry
  within the SLO (the inverse of the sizing), taken at the `burst_quantile` of
  recent demand, times
  the serverless service time; capped at `max_provisioned` (SageMaker
  serverless: max concurrency 1-200). Provisioned concurrency avoids cold starts
  on the spilled requests; it shrinks as GPU replicas become ready.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

import numpy as np
from pydantic import Field

from policies.predictive.base import ForecastPolicyBase
from policies.predictive.online import ForecastConfig
from policies.predictive.sizing import SizingConfig, clamp
from policies.predictive.spec import PredictiveSpec
from policies.spec import PolicySpecBase
from sim.contract import SPILLOVER, Decision, Observation, Policy, PolicyContext
from sim.errors import PolicyError

#: SageMaker serverless inference: MaxConcurrency 1-200 (developer guide).
SAGEMAKER_MAX_CONCURRENCY = 200


class SpilloverPolicy(ForecastPolicyBase):
    """Size a GPU pool for the base load and a serverless endpoint for the overflow.

    Args:
        config: Forecast parameters for the base load, or None to use recent demand.
        base_quantile: Quantile of forecast (or recent demand) the GPUs carry.
        base_window_s: Window of observed demand for the base (without forecast)
            and for the burst quantile.
        sustain_s: Demand lasting this long goes to GPUs (None: the provisioning delay).
        burst_quantile: Quantile of recent demand the endpoint is provisioned for.
        serverless_service_s: Seconds a request holds a serverless instance (None:
            from the scenario's spillover pool via the context).
        max_provisioned: Cap on provisioned concurrency.
        sizing: Corrections of the Erlang C sizing (`SizingConfig`; default M/M/c).
        name: Display name.

    Edge behaviour: a forecast that cannot be fitted is logged and the base falls
    back to recent demand, named in every reason; with no spillover pool in the
    scenario and no `serverless_service_s`, `reset` raises `PolicyError`.
    """

    def __init__(
        self,
        config: ForecastConfig | None,
        *,
        base_quantile: float = 0.5,
        base_window_s: float = 3600.0,
        sustain_s: float | None = None,
        burst_quantile: float = 0.99,
        serverless_service_s: float | None = None,
        max_provisioned: int = SAGEMAKER_MAX_CONCURRENCY,
        sizing: SizingConfig | None = None,
        name: str = "spillover",
    ) -> None:
        super().__init__(
            config, sizing=sizing, name=name, fallback_action="base load from recent demand"
        )
        self.base_quantile = base_quantile
        self.base_window_s = base_window_s
        self.sustain_s = sustain_s
        self.burst_quantile = burst_quantile
        self.serverless_service_s = serverless_service_s
        self.max_provisioned = max_provisioned
        self._recent: deque[tuple[float, float]] = deque()
        self._spill_service_s = 0.0

    def _reset_state(self, context: PolicyContext) -> None:
        spill_s = self.serverless_service_s or context.spillover_mean_service_s
        if spill_s is None:
            raise PolicyError(
                f"policy {self.name!r} sizes a serverless spillover pool, but the scenario has "
                "none: add a 'spillover:' block to the scenario or set serverless_service_s"
            )
        self._spill_service_s = spill_s
        self._recent.clear()

    def _base_rate(self, observation: Observation, recent: np.ndarray) -> tuple[float, str]:
        label = f"q{self.base_quantile:g}"
        forecast = self.observe(observation)
        if forecast is not None:
            ends = (observation.time_s, observation.time_s + self.provisioning_s)
            rate = max(forecast.forecast_at(t)[1] for t in ends)
            return rate, f"forecast {label}"
        source = "recent" if self.fallback is None else f"fallback: recent ({self.fallback})"
        return float(np.quantile(recent, self.base_quantile)), f"{source} {label}"

    def decide(self, observation: Observation) -> Decision:
        sizer = self.sizer  # raises before reset()
        now = observation.time_s
        if observation.demand_rps is not None:
            self._recent.append((now, observation.demand_rps))
        while self._recent and self._recent[0][0] <= now - self.base_window_s:
            self._recent.popleft()
        if not self._recent:
            desired = clamp(observation.desired, observation)
            return Decision(desired, f"demand metric missing: hold {desired}")
        recent = np.fromiter((d for _, d in self._recent), dtype=float)
        base, base_why = self._base_rate(observation, recent)
        sustain_s = self.provisioning_s if self.sustain_s is None else self.sustain_s
        lasting = [d for t, d in self._recent if t > now - sustain_s]
        # No sample in the sustain window (a metrics gap): nothing has provably lasted.
        sustained = min(lasting) if lasting and sustain_s > 0 else 0.0
        gpu = max(sizer.replicas(base), sizer.replicas(sustained))
        desired = clamp(gpu, observation)
        burst = max(float(np.quantile(recent, self.burst_quantile)), recent[-1])
        absorbed = sizer.max_rate(observation.ready)
        overflow = max(burst - absorbed, 0.0)
        provisioned = min(math.ceil(overflow * self._spill_service_s), self.max_provisioned)
        reason = (
            f"gpu {desired} for base {base:.1f} rps ({base_why}), sustained {sustained:.1f} rps; "
            f"spillover {provisioned} provisioned for {overflow:.1f} rps overflow "
            f"(burst {burst:.1f} rps over {observation.ready} ready)"
        )
        return Decision(desired, reason, {SPILLOVER: provisioned})


class SpilloverSpec(PolicySpecBase):
    """Hybrid GPU + serverless spillover (`SpilloverPolicy`).

    `base: forecast` takes the base load from a forecaster configured like
    `PredictiveSpec` (`forecast:` block; `base_quantile` replaces its quantile);
    `base: recent` uses observed demand only.
    """

    kind: Literal["spillover"] = "spillover"
    base: Literal["forecast", "recent"] = "forecast"
    forecast: PredictiveSpec = Field(default_factory=PredictiveSpec)
    base_quantile: float = Field(default=0.5, ge=0.05, lt=1.0)
    base_window_s: float = Field(default=3600.0, gt=0.0)
    sustain_s: float | None = Field(default=None, ge=0.0)
    burst_quantile: float = Field(default=0.99, gt=0.0, lt=1.0)
    serverless_service_s: float | None = Field(default=None, gt=0.0)
    max_provisioned: int = Field(
        default=SAGEMAKER_MAX_CONCURRENCY, ge=0, le=SAGEMAKER_MAX_CONCURRENCY
    )

    def fits_history(self) -> bool:
        return True

    def history_needed_s(self) -> float:
        return self.forecast.history_needed_s() if self.base == "forecast" else 0.0

    def build(self) -> Policy:
        config = None
        if self.base == "forecast":
            config = self.forecast.model_copy(
                update={"quantile": self.base_quantile}
            ).forecast_config()
        return self.wrap(
            SpilloverPolicy(
                config,
                base_quantile=self.base_quantile,
                base_window_s=self.base_window_s,
                sustain_s=self.sustain_s,
                burst_quantile=self.burst_quantile,
                serverless_service_s=self.serverless_service_s,
                max_provisioned=self.max_provisioned,
                sizing=self.forecast.sizing(),
                name=self.display_name(),
            )
        )
