"""Metric sources the retraining job pulls demand history from (CloudWatch, Prometheus)."""
