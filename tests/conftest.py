"""Shared test fixtures: the bundled trace fixtures and a seeded generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.scenario import BUNDLED_DIR

FIXTURES_DIR = BUNDLED_DIR / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`sim/scenarios/fixtures/`: the bundled trace extracts (see ATTRIBUTION.md there)."""
    return FIXTURES_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed, so every test is reproducible."""
    return np.random.default_rng(20240501)
