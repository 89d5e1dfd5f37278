"""Tiny scenarios whose optimal plans can be worked out by hand (used by the model and solve tests).

The base case: one quarter, no discounting, h = 2190 hours. One site with 10 MW energised and
no room for more, PUE 1.0, free power. One rack type: 10 GPUs, 100 kW (0.1 MW), US$100,000,
amortised in its single quarter of life, no opex. One tenant paying US$10 per GPU-hour for 55
GPUs. No buyback, revenue share or margin. Cloud perspective. Participation at its defaults
(each party needs an expected value of at least zero), quota terms of 4 quarters.
"""

from __future__ import annotations

import copy
from typing import Any

from planner.files import parse_scenario
from planner.schema.scenario import Scenario

H = 2190.0

BASE: dict[str, Any] = {
    "version": 1,
    "name": "tiny",
    "periods": {"start_quarter": "2026Q1", "count_quarters": 1, "discount_rate_annual": 0.0},
    "sites": [
        {
            "id": "alpha",
            "jurisdiction": "AU",
            "power_cap_mw": 10.0,
            "existing_mw": 10.0,
            "power_block_mw": 1.0,
            "power_lead_time_periods": 0,
            "power_price_usd_per_mwh": 0.0,
            "pue": 1.0,
            "gpu_cap": 1000,
            "max_racks_built_per_period": 100,
            "max_power_blocks_per_period": 5,
            "power_capex_usd_per_mw": 0.0,
        }
    ],
    "rack_types": [
        {
            "id": "rack10",
            "gpu_product": "NVIDIA-TEST",
            "gpus_per_rack": 10,
            "nodes_per_rack": 1,
            "kw_per_rack": 100.0,
            "capex_usd": 100_000.0,
            "lifetime_periods": 1,
        }
    ],
    "tenants": [{"id": "acme", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"only": [55.0]}}],
    "scenarios": [{"id": "only", "probability": 1.0}],
    "terms": {
        "buyback_price_usd_per_gpu_hour": 0.0,
        "buyback_share": 0.0,
        "revenue_share": 0.0,
        "guarantor_hardware_margin": 0.0,
    },
    "objective": {"perspective": "cloud"},
    "solver": {"time_limit_s": 20, "mip_rel_gap": 0.0},
}


def tiny(mutate=None) -> Scenario:
    """The base case, optionally changed in place by `mutate(data)` before validation."""
    data = copy.deepcopy(BASE)
    if mutate is not None:
        mutate(data)
    return parse_scenario(data, "tiny")


NO_REQUIREMENTS: dict[str, Any] = {
    "cloud": {"min_expected_value_usd": None},
    "guarantor": {"min_expected_value_usd": None},
}
"""A participation section that requires nothing of either party."""


def uncertain(
    *, buyback_price: float, cvar_weight: float = 0.0, participation: dict[str, Any] | None = None
) -> Scenario:
    """Two equally likely futures: the tenant wants 10 GPUs at US$20 ('boom') or none ('bust').

    A rack (10 GPUs) costs US$300,000; fully rented it earns 10 x 2190 x 20 = US$438,000.
    Neither party requires anything unless `participation` is given ({} for the defaults: each
    party's expected value >= 0).
    """

    def change(data: dict[str, Any]) -> None:
        data["rack_types"][0]["capex_usd"] = 300_000.0
        data["tenants"][0]["price_usd_per_gpu_hour"] = 20.0
        data["tenants"][0]["demand_gpus"] = {"boom": [10.0], "bust": [0.0]}
        data["scenarios"] = [{"id": "boom", "probability": 0.5}, {"id": "bust", "probability": 0.5}]
        data["terms"]["buyback_price_usd_per_gpu_hour"] = buyback_price
        data["terms"]["buyback_share"] = 1.0
        if cvar_weight:
            data["objective"] = {"perspective": "cloud", "cvar_alpha": 0.5, "cvar_weight": cvar_weight}
        data["participation"] = NO_REQUIREMENTS if participation is None else participation

    return tiny(change)
