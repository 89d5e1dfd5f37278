"""The model is sparse where the data is, and its components carry the spec's names."""

from __future__ import annotations

import pyomo.environ as pyo

from planner.model.build import build_model
from tests.planner.small_scenarios import tiny

SPEC_COMPONENTS = [
    "racks_built",
    "blocks_ordered",
    "quota_gpus",
    "served_gpu_hours",
    "unserved_gpu_hours",
    "racks_installed",
    "gpus_installed",
    "available_mw",
    "power_fits",
    "power_cap",
    "gpu_cap",
    "build_rate",
    "block_rate",
    "quota_fits",
    "serve_within_quota",
    "demand_balance",
    "scenario_value",
    "scenario_value_def",
]


def two_sites_two_tenants(data):
    data["periods"]["count_quarters"] = 3
    alpha = data["sites"][0]
    alpha["power_lead_time_periods"] = 2
    alpha["power_cap_mw"] = 12.0
    data["sites"].append({**alpha, "id": "bravo", "jurisdiction": "NO"})
    data["tenants"][0]["demand_gpus"] = {"only": [0.0, 10.0, 20.0]}
    data["tenants"][0]["allowed_jurisdictions"] = ["AU"]
    data["tenants"].append(
        {"id": "globex", "price_usd_per_gpu_hour": 3.0, "demand_gpus": {"only": [5.0, 5.0, 5.0]}}
    )


def test_components_have_the_spec_names():
    m = build_model(tiny(two_sites_two_tenants))
    for name in SPEC_COMPONENTS:
        assert m.find_component(name) is not None, name
    assert m.find_component("cvar_eta") is None  # no CVaR weight, no CVaR variables
    # implied by serve_within_quota + quota_fits; the verifier checks it on every plan
    assert m.find_component("serve_within_capacity") is None


def test_array_rows_are_named_by_the_family_index():
    m = build_model(tiny(two_sites_two_tenants))
    row = m.serve_within_quota["globex", "bravo", "rack10", 2, "only"]
    assert row.name == "serve_within_quota[globex,bravo,rack10,2,only]"
    assert str(row.body) == (
        "served_gpu_hours[globex,bravo,rack10,2,only] - 2190.0*quota_gpus[globex,bravo,rack10,2]"
    )
    assert (row.lower, row.upper) == (None, 0.0)
    balance = m.demand_balance["globex", 1, "only"]
    assert balance.lower == balance.upper == 2190.0 * 5.0
    assert len(m.serve_within_quota) == len(m.served_gpu_hours)


def test_serving_variables_exist_only_where_jurisdiction_and_demand_allow():
    m = build_model(tiny(two_sites_two_tenants))
    served = set(m.served_gpu_hours.index_set())
    # acme is AU-only and has no demand in quarter 0; globex may go anywhere.
    assert ("acme", "bravo", "rack10", 1, "only") not in served
    assert ("acme", "alpha", "rack10", 0, "only") not in served
    assert ("acme", "alpha", "rack10", 1, "only") in served
    assert {k for k, i, *_ in served if i == "bravo"} == {"globex"}
    assert len(served) == 2 + 6  # acme: alpha x 2 quarters; globex: 2 sites x 3 quarters
    assert set(m.quota_gpus.index_set()) >= {("acme", "alpha", "rack10", t) for t in range(3)}
    assert not any(k == "acme" and i == "bravo" for k, i, _r, _t in m.quota_gpus.index_set())


def test_blocks_that_cannot_arrive_in_the_horizon_are_not_decisions():
    m = build_model(tiny(two_sites_two_tenants))
    # lead time 2 in a 3-quarter horizon: only quarter 0 orders can arrive.
    assert set(m.blocks_ordered.index_set()) == {("alpha", 0), ("bravo", 0)}


def test_integer_bounds_come_from_the_data():
    def tight(data):
        site = data["sites"][0]
        site.update(existing_mw=0.35, power_cap_mw=0.35, gpu_cap=1000, max_racks_built_per_period=7)

    m = build_model(tiny(tight))
    # power allows floor(0.35 / 0.1) = 3 racks, fewer than the build rate (7) or the GPU cap (100)
    assert m.racks_built["alpha", "rack10", 0].bounds == (0, 3)
    assert m.racks_built["alpha", "rack10", 0].domain is pyo.NonNegativeIntegers


def test_relax_integrality_gives_continuous_racks():
    def relax(data):
        data["solver"]["relax_integrality"] = True

    m = build_model(tiny(relax))
    assert m.racks_built["alpha", "rack10", 0].domain is pyo.NonNegativeReals


def test_a_site_already_at_its_power_cap_orders_no_blocks():
    m = build_model(tiny())  # existing_mw == power_cap_mw
    assert len(m.blocks_ordered) == 0
    assert len(m.power_cap) == 0
