"""Predictive scaling: statsmodels forecasters selected by backtest, sized by Erlang C.

`PredictiveSpec` is the entry point (registry kind "predictive"). See
`docs/predictive.md` for the method, fallbacks and measured results.
"""

from __future__ import annotations

from policies.predictive.aws import AwsPredictivePolicy
from policies.predictive.policy import PredictivePolicy
from policies.predictive.spec import PredictiveSpec

__all__ = ["AwsPredictivePolicy", "PredictivePolicy", "PredictiveSpec"]
