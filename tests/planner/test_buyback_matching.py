"""The plan measures its buyback against the matching rule (docs/model.md, "Buyback").

The model's rule subtracts a refused tenant's hours at every site it may use; the contract's
("matching") places each refused GPU-hour on one site's unsold hour, once. The hand case (the
session-26 review's): one quarter, sites sa and sb each one existing 10-GPU rack, tenants t1 and
t2 allowed anywhere at US$10/GPU-h; in s1 t1 wants 15 GPUs, in s2 t2 does; buyback US$5/GPU-h at
share 1.0, revenue share 0.1, solved for the guarantor. The plan gives each tenant 5 GPUs at each
site, serves 10, refuses 5: by the model's rule each site's 5 unsold GPUs are offset by the 5
refused, buyback 0. Matched once, the 5 refused GPUs (10,950 GPU-h) fill half of the 10 unsold
(21,900 GPU-h): 10,950 GPU-h had no buyer, US$54,750 of buyback in each scenario. No discounting,
so the cloud's expected value is US$54,750 higher under the matching rule, the guarantor's as
much lower.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from planner.files import parse_scenario, read_plan
from planner.pipeline import solve_scenario
from planner.results import matched_refused_gpu_hours
from planner.schema.plan import Plan
from planner.schema.scenario import Scenario
from planner.verify import verify_plan
from planner.verify.buyback_matching import NOT_RECORDED_NOTE, max_flow
from tests.planner.small_scenarios import BASE, NO_REQUIREMENTS, H

BUYBACK_PRICE = 5.0
MATCHING_USD = 5 * H * BUYBACK_PRICE  # 54,750: half the 10 unsold GPUs had no buyer


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
        # The guarantor pays more buyback than it earns in revenue share: no floor at zero.
        data["participation"] = NO_REQUIREMENTS
    data["scenarios"] = [{"id": "s1", "probability": 0.5}, {"id": "s2", "probability": 0.5}]
    data["terms"] = {
        "buyback_price_usd_per_gpu_hour": BUYBACK_PRICE,
        "buyback_share": 1.0,
        "revenue_share": 0.1,
        "guarantor_hardware_margin": 0.0,
    }
    data["objective"] = {"perspective": "guarantor"}
    return data


def two_sites(*, one_site_each: bool = False) -> Scenario:
    return parse_scenario(two_sites_data(one_site_each=one_site_each), "two-sites")


@pytest.fixture(scope="module")
def hand_case() -> tuple[Scenario, Plan]:
    scenario = two_sites()
    return scenario, solve_scenario(scenario, value_of_information=False)


@pytest.fixture(scope="module")
def one_site_each() -> tuple[Scenario, Plan]:
    scenario = two_sites(one_site_each=True)
    return scenario, solve_scenario(scenario, value_of_information=False)


def test_hand_case_records_buyback_0_and_the_matching_rule_54750_per_scenario(hand_case):
    _, plan = hand_case
    assert plan.verification.passed, plan.verification.violations
    assert sorted((q.tenant, q.site, q.quota_gpus) for q in plan.quotas) == [
        ("t1", "sa", 5.0),
        ("t1", "sb", 5.0),
        ("t2", "sa", 5.0),
        ("t2", "sb", 5.0),
    ]
    assert [o.buyback_usd for o in plan.outcomes] == [0.0, 0.0]
    record = plan.buyback_matching
    assert record is not None
    for row in record.scenarios:
        assert row.buyback_usd == 0.0 and row.buyback_discounted_usd == 0.0
        assert row.matching_buyback_usd == pytest.approx(MATCHING_USD)
        assert row.matching_buyback_discounted_usd == pytest.approx(MATCHING_USD)
    [quarter] = record.quarters
    assert quarter.period == "2026Q1"
    assert quarter.expected_buyback_usd == 0.0
    assert quarter.matching_expected_buyback_gpu_hours == pytest.approx(5 * H)
    assert quarter.matching_expected_buyback_usd == pytest.approx(MATCHING_USD)
    assert record.expected_buyback_usd == 0.0 and record.expected_buyback_discounted_usd == 0.0
    assert record.matching_expected_buyback_usd == pytest.approx(MATCHING_USD)
    assert record.matching_expected_buyback_discounted_usd == pytest.approx(MATCHING_USD)
    assert record.cloud_expected_value_change_usd == pytest.approx(MATCHING_USD)
    assert record.guarantor_expected_value_change_usd == pytest.approx(-MATCHING_USD)


def test_where_each_tenant_may_use_one_site_the_rules_agree(one_site_each):
    """t1 may use only sa, t2 only sb: each site keeps 10 GPUs for its tenant, and the other site's
    10 unsold GPUs had no buyer under either rule (10 x 2190 x US$5 = US$109,500 per scenario)."""
    _, plan = one_site_each
    assert plan.verification.passed, plan.verification.violations
    record = plan.buyback_matching
    assert record is not None
    assert [o.buyback_usd for o in plan.outcomes] == pytest.approx([10 * H * BUYBACK_PRICE] * 2)
    assert record.matching_expected_buyback_usd == pytest.approx(record.expected_buyback_usd)
    assert record.expected_buyback_usd == pytest.approx(10 * H * BUYBACK_PRICE)
    assert record.cloud_expected_value_change_usd == pytest.approx(0.0, abs=1e-6)
    assert record.guarantor_expected_value_change_usd == pytest.approx(0.0, abs=1e-6)


def edited(plan: Plan, **changes: Any) -> Plan:
    """The plan with its matching record's summary fields replaced (a quarter's or a scenario's
    row by `quarters=` / `scenarios=`)."""
    assert plan.buyback_matching is not None
    return plan.model_copy(update={"buyback_matching": plan.buyback_matching.model_copy(update=changes)})


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        ("matching_expected_buyback_usd", "buyback_matching matching_expected_buyback_usd"),
        (
            "matching_expected_buyback_discounted_usd",
            "buyback_matching matching_expected_buyback_discounted_usd",
        ),
        ("cloud_expected_value_change_usd", "buyback_matching cloud_expected_value_change_usd"),
        ("guarantor_expected_value_change_usd", "buyback_matching guarantor_expected_value_change_usd"),
        ("expected_buyback_usd", "buyback_matching expected_buyback_usd"),
    ],
)
def test_the_verifier_catches_an_edited_summary_figure(hand_case, field, shown):
    scenario, plan = hand_case
    verification = verify_plan(scenario, edited(plan, **{field: 12_345.0}))
    assert not verification.passed
    assert any(v.startswith(shown) for v in verification.violations), verification.violations


def test_the_verifier_catches_an_edited_quarter_or_scenario_row(hand_case):
    scenario, plan = hand_case
    record = plan.buyback_matching
    assert record is not None
    quarter = record.quarters[0].model_copy(update={"matching_expected_buyback_usd": 0.0})
    row = record.scenarios[1].model_copy(update={"matching_buyback_usd": 1.0})
    verification = verify_plan(
        scenario, edited(plan, quarters=[quarter], scenarios=[record.scenarios[0], row])
    )
    assert not verification.passed
    said = "\n".join(verification.violations)
    assert (
        "buyback_matching 2026Q1 matching_expected_buyback_usd: the plan reports 0.00, recomputed 54,750.00"
        in said
    )
    assert "buyback_matching [s2] matching_buyback_usd: the plan reports 1.00, recomputed 54,750.00" in said


def test_the_verifier_catches_a_missing_or_doubled_row(hand_case):
    scenario, plan = hand_case
    record = plan.buyback_matching
    assert record is not None
    verification = verify_plan(
        scenario, edited(plan, quarters=[], scenarios=[record.scenarios[0], record.scenarios[0]])
    )
    assert not verification.passed
    said = "\n".join(verification.violations)
    assert "buyback_matching quarters: the plan lists []" in said
    assert "buyback_matching scenarios: the plan lists ['s1', 's1']" in said


def test_a_plan_written_before_the_record_verifies_with_a_note(hand_case):
    scenario, plan = hand_case
    verification = verify_plan(scenario, plan.model_copy(update={"buyback_matching": None}))
    assert verification.passed, verification.violations
    assert NOT_RECORDED_NOTE in verification.notes
    assert NOT_RECORDED_NOTE not in plan.verification.notes


# A graph where the first placement found must be undone: t_a may use both sites, t_b only s1.
# Placing t_a's hour on s1 first leaves t_b nowhere; the most is 2 (t_a on s2, t_b on s1).
REROUTE_REFUSED = {"t_a": 1.0, "t_b": 1.0}
REROUTE_UNSOLD = {"s1": 1.0, "s2": 1.0}
REROUTE_MAY_USE = {("t_a", "s1"), ("t_a", "s2"), ("t_b", "s1")}


def test_the_verifiers_max_flow_reroutes_an_earlier_placement():
    tenants, sites = list(REROUTE_REFUSED), list(REROUTE_UNSOLD)
    may_use = [[(k, i) in REROUTE_MAY_USE for i in sites] for k in tenants]
    assert max_flow([REROUTE_REFUSED[k] for k in tenants], [REROUTE_UNSOLD[i] for i in sites], may_use) == 2.0
    assert max_flow([1.0, 1.0], [1.0, 1.0], [[True, False], [True, False]]) == 1.0
    assert max_flow([3.5, 0.25], [1.0, 10.0], [[True, True], [False, True]]) == pytest.approx(3.75)


@pytest.mark.parametrize("max_site_classes", [12, 0], ids=["cuts", "lp"])
def test_the_plans_max_flow_reroutes_an_earlier_placement(max_site_classes):
    """results' min cuts over classes of sites (and its LP, past too many classes) on the same
    graphs, every quarter and scenario at once: x is the graph above, y has no room at s2."""
    refused = {("t_a", 0, "x"): 1.0, ("t_b", 0, "x"): 1.0, ("t_a", 0, "y"): 1.0, ("t_b", 0, "y"): 1.0}
    unsold = {("s1", 0, "x"): 1.0, ("s2", 0, "x"): 1.0, ("s1", 0, "y"): 1.0, ("s2", 0, "y"): 0.0}
    may_use = {"s1": ["t_a", "t_b"], "s2": ["t_a"]}
    flow = matched_refused_gpu_hours(refused, unsold, may_use, max_site_classes=max_site_classes)
    assert flow[0, "x"] == pytest.approx(2.0) and flow[0, "y"] == pytest.approx(1.0)
    assert matched_refused_gpu_hours({}, unsold, may_use, max_site_classes=max_site_classes) == {}
    # Three sites, two of them alike (s1, s3: both tenants): their room pools; t_b refuses 0.5 more
    # than they hold together, t_a fills s2 and the rest of s1 and s3.
    refused = {("t_a", 1, "x"): 2.0, ("t_b", 1, "x"): 3.0}
    unsold = {("s1", 1, "x"): 1.0, ("s2", 1, "x"): 1.0, ("s3", 1, "x"): 1.5}
    may_use = {"s1": ["t_a", "t_b"], "s2": ["t_a"], "s3": ["t_b", "t_a"]}
    flow = matched_refused_gpu_hours(refused, unsold, may_use, max_site_classes=max_site_classes)
    assert flow == {(1, "x"): pytest.approx(3.5)}


def test_a_1_4_plan_file_without_the_record_reads_and_verifies_with_a_note(hand_case, tmp_path):
    scenario, plan = hand_case
    data = json.loads(plan.model_dump_json())
    del data["buyback_matching"]
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(data))
    earlier = read_plan(path)
    assert earlier.schema_version == "1.4" and earlier.buyback_matching is None
    verification = verify_plan(scenario, earlier)
    assert verification.passed and NOT_RECORDED_NOTE in verification.notes


def test_the_planners_cuts_its_lp_and_the_verifiers_max_flow_agree_on_random_graphs():
    """Three algorithms, one answer: 300 random graphs of up to 6 sites (some alike) and 6
    tenants, fractional hours from 1e-3 to 1e8."""
    rng = np.random.default_rng(26)
    for case in range(300):
        n_i, n_k = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        sites, tenants = [f"i{i}" for i in range(n_i)], [f"k{k}" for k in range(n_k)]
        may = rng.random((n_k, n_i)) < 0.5
        if case % 3 == 0:  # sites alike, as sites of one jurisdiction are
            may[:, n_i // 2 :] = may[:, :1]
        scale = 10.0 ** rng.uniform(-3, 8)
        refused = rng.uniform(0, scale, n_k) * (rng.random(n_k) < 0.8)
        unsold = rng.uniform(0, scale, n_i) * (rng.random(n_i) < 0.8)
        tenants_at = {sites[i]: [tenants[k] for k in range(n_k) if may[k, i]] for i in range(n_i)}
        by_tenant = {(tenants[k], 0, "s"): float(refused[k]) for k in range(n_k)}
        by_site = {(sites[i], 0, "s"): float(unsold[i]) for i in range(n_i)}
        want = max_flow(refused.tolist(), unsold.tolist(), may.tolist())
        for classes in (12, 0):
            got = matched_refused_gpu_hours(by_tenant, by_site, tenants_at, max_site_classes=classes)
            assert got.get((0, "s"), 0.0) == pytest.approx(want, rel=1e-9, abs=1e-9 * scale), (case, classes)
