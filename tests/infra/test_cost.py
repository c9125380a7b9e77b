"""Hourly cost of each stack at minimum and maximum size, from the catalog prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cost import EKS_CONTROL_PLANE_USD_PER_H, NAT_GATEWAY_USD_PER_H, cost_table, hourly_cost
from infra.stack_file import load_stack_file
from sim.capacity.catalog import lookup

ROOT = Path(__file__).resolve().parents[2]


def test_dev_cost_by_hand() -> None:
    dev = hourly_cost(load_stack_file(ROOT / "Pulumi.dev.yaml"))
    fixed = EKS_CONTROL_PLANE_USD_PER_H + NAT_GATEWAY_USD_PER_H
    assert dev.fixed_usd_per_h == pytest.approx(fixed)
    # GPUs scale to zero in dev: the minimum is the fixed cost and one m7i.xlarge
    # system node (USD 0.2016/h on demand) for CoreDNS and the add-ons.
    system = 0.2016
    assert dev.min_usd_per_h == pytest.approx(fixed + system)
    spot_pool = 2 * max(lookup("g6.xlarge").spot_usd_per_h, lookup("g5.xlarge").spot_usd_per_h)
    spot_asg = 2 * lookup("g6.xlarge").spot_usd_per_h
    assert dev.max_usd_per_h == pytest.approx(fixed + spot_pool + 2 * system + spot_asg)


def test_prod_asg_prices_the_on_demand_base_and_spot_share() -> None:
    prod = hourly_cost(load_stack_file(ROOT / "Pulumi.prod.yaml"))
    asg_min, asg_max = next((lo, hi) for name, lo, hi in prod.lines if name == "asg")
    od = lookup("g5.2xlarge").on_demand_usd_per_h  # the dearest of the three types
    spot = lookup("g5.2xlarge").spot_usd_per_h
    assert asg_min == pytest.approx(2 * od)
    assert asg_max == pytest.approx(2 * od + 22 * (0.25 * od + 0.75 * spot))


def test_costs_grow_from_dev_to_prod() -> None:
    costs = [
        hourly_cost(load_stack_file(ROOT / f"Pulumi.{s}.yaml")) for s in ("dev", "staging", "prod")
    ]
    assert costs[0].max_usd_per_h < costs[1].max_usd_per_h < costs[2].max_usd_per_h
    table = cost_table(costs)
    assert table.splitlines()[0] == "| stack | fixed $/h | min $/h | max $/h |"
    assert len(table.splitlines()) == 5
