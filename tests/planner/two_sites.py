"""The two-site hand case of docs/model.md, "Buyback" (the session-26 review's), as scenario data.

One quarter, no discounting; sites sa and sb each one existing 10-GPU rack (no room to build);
tenants t1 and t2 at US$10/GPU-h, allowed anywhere; in s1 t1 wants 15 GPUs, in s2 t2 does (each
scenario 0.5); buyback US$5/GPU-h at share 1.0, revenue share 0.1, no margin; the guarantor's
view. Neither party requires anything: by the matching rule the guarantor owes more buyback than
it earns in revenue share whatever the plan (20 GPUs, 15 wanted: at least 5 GPUs had no buyer),
so a floor at zero would leave no plan.

A data module of its own, so a plan file written by an earlier dsx
(`tests/planner/plans/two_sites_1_4.json`) was made from exactly this data.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.planner.small_scenarios import BASE, NO_REQUIREMENTS

BUYBACK_PRICE = 5.0


def two_sites_data(*, one_site_each: bool = False) -> dict[str, Any]:
    """The hand case as scenario-file data; `one_site_each`: sb in another jurisdiction, t1 may
    use only sa, t2 only sb."""
    data = copy.deepcopy(BASE)
    site = data["sites"][0]
    site.update(gpu_cap=10, max_racks_built_per_period=0, max_power_blocks_per_period=0)
    site["existing_racks"] = {"rack10": 1}
    data["sites"] = [
        {**site, "id": "sa"},
        {**site, "id": "sb", "jurisdiction": "SG" if one_site_each else "AU"},
    ]
    data["tenants"] = [
        {"id": "t1", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"s1": [15.0], "s2": [0.0]}},
        {"id": "t2", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"s1": [0.0], "s2": [15.0]}},
    ]
    if one_site_each:
        data["tenants"][0]["allowed_jurisdictions"] = ["AU"]
        data["tenants"][1]["allowed_jurisdictions"] = ["SG"]
    data["participation"] = copy.deepcopy(NO_REQUIREMENTS)
    data["scenarios"] = [{"id": "s1", "probability": 0.5}, {"id": "s2", "probability": 0.5}]
    data["terms"] = {
        "buyback_price_usd_per_gpu_hour": BUYBACK_PRICE,
        "buyback_share": 1.0,
        "revenue_share": 0.1,
        "guarantor_hardware_margin": 0.0,
    }
    data["objective"] = {"perspective": "guarantor"}
    return data
