"""Buyback by the matching rule (docs/model.md, "Buyback"): the plan's figures and the verifier.

Per quarter and scenario, buyback GPU-hours = buyback_share x (Σ_i unsold_i - M*), M* the most
refused GPU-hours placed on unsold hours at sites their tenant may use, each hour once; a site's
part of it pro rata to its unsold hours (a convention for the tables). The hand case
(`tests.planner.two_sites`, the session-26 review's): sites sa and sb each one 10-GPU rack,
tenants t1 and t2 allowed anywhere, t1 wanting 15 GPUs in s1, t2 in s2. The plan that gives each
tenant 5 GPUs at each site serves 10 and refuses 5 in each scenario: the 5 refused GPUs (10,950
GPU-h) fill half of the 10 unsold (21,900 GPU-h), so 10,950 GPU-h had no buyer, US$54,750 of
buyback per scenario at US$5/GPU-h and share 1.0 (the per-site rule of plans before 1.5 offset
each site's 5 unsold GPUs by the 5 refused: US$0). Each site had 5 unsold GPUs: US$27,375 each.

The plans here are built from those decisions (by `planner.results` on a model whose variables
are set by hand, and by `tests.planner.plan_factory`), not solved: a model that optimises another
rule would make other decisions, and its objective would disagree with the figures.
`test_the_hand_case_solved_for_the_guarantor_bills_54750_per_scenario` solves it, and passes only
with a model that optimises the matching rule (the model of plan schema 1.5; the 1.4 model's
objective disagreed with the figures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import pytest

from planner.errors import PlanFileError
from planner.files import parse_scenario, read_plan
from planner.model.build import build_model
from planner.pipeline import solve_scenario
from planner.results import attribute_pro_rata, build_plan, buyback_gpu_hours, matched_refused_gpu_hours
from planner.schema.plan import (
    PLAN_SCHEMA_VERSION,
    BuybackMatching,
    Plan,
    QuarterBuyback,
    ScenarioBuyback,
)
from planner.schema.scenario import Scenario
from planner.solve.interfaces import SolveOutcome
from planner.verify import verify_plan
from planner.verify.buyback_matching import max_flow, per_site_rule_note
from planner.verify.matching import matching_buyback_gpu_hours, pro_rata
from tests.planner.plan_factory import make_plan
from tests.planner.small_scenarios import H
from tests.planner.two_sites import BUYBACK_PRICE, two_sites_data

MATCHING_USD = 5 * H * BUYBACK_PRICE  # 54,750: half the 10 unsold GPUs had no buyer
SITE_USD = MATCHING_USD / 2  # each site had 5 of the 10 unsold GPUs
OLD_PLAN = Path(__file__).parent / "plans" / "two_sites_1_4.json"
"""The hand case as session 26's dsx solved and wrote it (schema 1.4, per-site rule, with its
`buyback_matching` record), from `two_sites_data()`."""


def as_1_4_with_agreeing_record(plan: Plan) -> Plan:
    """A one-quarter 1.5 plan whose rules agree (each tenant may use one site: no refused hour
    could go elsewhere) as the 1.4 dsx wrote it: the same figures, its record giving each rule's
    buyback as the plan's. The verifier recomputes every figure of the record."""
    (period,) = plan.periods
    (factor,) = plan.discount_factors
    gpu_hours = sum(r.expected_buyback_gpu_hours for r in plan.site_periods)
    usd = sum(r.expected_buyback_usd for r in plan.site_periods)
    expected = sum(o.probability * o.buyback_usd for o in plan.outcomes)
    record = BuybackMatching(
        quarters=[
            QuarterBuyback(
                period=period,
                expected_buyback_gpu_hours=gpu_hours,
                expected_buyback_usd=usd,
                matching_expected_buyback_gpu_hours=gpu_hours,
                matching_expected_buyback_usd=usd,
            )
        ],
        scenarios=[
            ScenarioBuyback(
                scenario=o.scenario,
                buyback_usd=o.buyback_usd,
                buyback_discounted_usd=factor * o.buyback_usd,
                matching_buyback_usd=o.buyback_usd,
                matching_buyback_discounted_usd=factor * o.buyback_usd,
            )
            for o in plan.outcomes
        ],
        expected_buyback_usd=expected,
        expected_buyback_discounted_usd=factor * expected,
        matching_expected_buyback_usd=expected,
        matching_expected_buyback_discounted_usd=factor * expected,
        cloud_expected_value_change_usd=0.0,
        guarantor_expected_value_change_usd=0.0,
    )
    return plan.model_copy(update={"schema_version": "1.4", "buyback_matching": record})


def solved_one_site_each() -> tuple[Scenario, Plan]:
    """The scenario where each tenant may use one site, and its plan solved (schema 1.5)."""
    scenario = two_sites(one_site_each=True)
    return scenario, solve_scenario(scenario, value_of_information=False)


@pytest.fixture(scope="module")
def one_site_each() -> tuple[Scenario, Plan]:
    return solved_one_site_each()


def two_sites(*, one_site_each: bool = False) -> Scenario:
    return parse_scenario(two_sites_data(one_site_each=one_site_each), "two-sites")


HAND_SERVED = {
    (s, k, i, "rack10", "2026Q1"): 5 * H for s, k in (("s1", "t1"), ("s2", "t2")) for i in ("sa", "sb")
}
HAND_QUOTAS = {(k, i, "rack10", "2026Q1"): 5.0 for k in ("t1", "t2") for i in ("sa", "sb")}


def planner_plan(scenario: Scenario) -> Plan:
    """`planner.results`' plan of the hand decisions: the model's variables set, not solved, and
    the solver's objective taken as the figures' (what an optimising model reports)."""
    m = build_model(scenario)
    for (k, i, r, _t), q in HAND_QUOTAS.items():
        m.quota_gpus[k, i, r, 0].set_value(q)
    for (s, k, i, r, _q), x in HAND_SERVED.items():
        m.served_gpu_hours[k, i, r, 0, s].set_value(x)
    outcome = SolveOutcome(
        interface="hand",
        status="Optimal",
        model_status=highspy.HighsModelStatus.kOptimal,
        has_solution=True,
        is_mip=False,
        objective_usd=0.0,
        best_bound_usd=None,
        mip_gap=None,
        rows=0,
        columns=0,
        nonzeros=0,
        integer_columns=0,
        handoff_s=0.0,
        solve_s=0.0,
        highs_version="none",
    )
    plan = build_plan(scenario, m, outcome, build_s=0.0)
    solver = plan.solver.model_copy(update={"objective_usd": plan.verification.objective_recomputed_usd})
    return plan.model_copy(update={"solver": solver})


@pytest.fixture(scope="module")
def hand_case() -> tuple[Scenario, Plan]:
    scenario = two_sites()
    return scenario, planner_plan(scenario)


@pytest.fixture(scope="module")
def old_plan() -> Plan:
    return read_plan(OLD_PLAN)


# --- the pure functions -------------------------------------------------------------------------


def test_buyback_hours_are_the_share_of_the_unsold_hours_no_refused_hour_took():
    assert buyback_gpu_hours([5 * H, 5 * H], 5 * H, 1.0) == pytest.approx(5 * H)
    assert buyback_gpu_hours([5 * H, 5 * H], 5 * H, 0.8) == pytest.approx(4 * H)
    assert buyback_gpu_hours([], 0.0, 1.0) == 0.0
    # A max flow never exceeds the unsold hours; round-off past them is no negative buyback.
    assert buyback_gpu_hours([1.0, 2.0], 3.0 + 1e-9, 1.0) == 0.0


def test_attribution_is_pro_rata_to_unsold_hours_and_sums_to_the_total():
    unsold = {
        ("a", 0, "x"): 1.0,
        ("b", 0, "x"): 3.0,
        ("c", 0, "x"): 0.0,
        ("a", 0, "y"): 0.0,
        ("b", 0, "y"): 0.0,
    }
    got = attribute_pro_rata({(0, "x"): 2.0, (0, "y"): 0.0}, unsold)
    assert got == {
        ("a", 0, "x"): 0.5,
        ("b", 0, "x"): 1.5,
        ("c", 0, "x"): 0.0,
        ("a", 0, "y"): 0.0,
        ("b", 0, "y"): 0.0,
    }
    # The verifier's own, on arrays [I, T, S].
    array = np.array([[[1.0, 0.0]], [[3.0, 0.0]], [[0.0, 0.0]]])
    assert pro_rata(np.array([[2.0, 0.0]]), array).tolist() == [[[0.5, 0.0]], [[1.5, 0.0]], [[0.0, 0.0]]]


def test_both_attributions_sum_to_the_total_and_agree_on_random_blocks():
    rng = np.random.default_rng(27)
    for case in range(200):
        n_i, n_s = int(rng.integers(1, 7)), int(rng.integers(1, 4))
        scale = 10.0 ** rng.uniform(-3, 8)
        unsold = rng.uniform(0, scale, (n_i, 1, n_s)) * (rng.random((n_i, 1, n_s)) < 0.7)
        total = unsold.sum(axis=0) * rng.uniform(0, 1, (1, n_s))  # never above the unsold hours
        by_key = {(f"i{i}", 0, f"s{s}"): float(unsold[i, 0, s]) for i in range(n_i) for s in range(n_s)}
        got = attribute_pro_rata({(0, f"s{s}"): float(total[0, s]) for s in range(n_s)}, by_key)
        verifier = pro_rata(total, unsold)
        for s in range(n_s):
            part = [got[f"i{i}", 0, f"s{s}"] for i in range(n_i)]
            assert sum(part) == pytest.approx(total[0, s], rel=1e-12, abs=1e-12 * scale), case
            assert part == pytest.approx(verifier[:, 0, s].tolist(), rel=1e-12, abs=1e-12 * scale), case
            assert all(p == 0.0 for p, u in zip(part, unsold[:, 0, s], strict=True) if u == 0.0), case


def test_the_verifiers_matching_buyback_on_the_hand_case():
    unsold = np.array([[[5 * H, 5 * H]], [[5 * H, 5 * H]]])  # [I, T, S]
    unserved = np.array([[[5 * H, 0.0]], [[0.0, 5 * H]]])  # [K, T, S]
    anywhere = np.ones((2, 2), dtype=bool)
    assert matching_buyback_gpu_hours(unsold, unserved, anywhere, 1.0).tolist() == [[5 * H, 5 * H]]
    # One site each (t1 only sa, t2 only sb): the other site's 5 unsold GPUs had no buyer too.
    one_each = np.eye(2, dtype=bool)
    assert matching_buyback_gpu_hours(unsold, unserved, one_each, 1.0).tolist() == [[5 * H, 5 * H]]
    assert matching_buyback_gpu_hours(unsold, unserved * 2, one_each, 1.0).tolist() == [[5 * H, 5 * H]]
    assert matching_buyback_gpu_hours(unsold, unserved * 2, anywhere, 1.0).tolist() == [[0.0, 0.0]]
    assert not matching_buyback_gpu_hours(unsold, unserved, anywhere, 0.0).any()


# --- the plan's figures and the verifier on the hand case --------------------------------------


def test_the_plans_figures_bill_54750_per_scenario_and_27375_per_site(hand_case):
    scenario, plan = hand_case
    assert plan.schema_version == PLAN_SCHEMA_VERSION == "1.5"
    assert plan.buyback_matching is None
    assert [o.buyback_usd for o in plan.outcomes] == pytest.approx([MATCHING_USD] * 2)
    rows = {r.site: r for r in plan.site_periods}
    for site in ("sa", "sb"):
        assert rows[site].expected_buyback_usd == pytest.approx(SITE_USD)
        assert rows[site].expected_buyback_gpu_hours == pytest.approx(2.5 * H)
    # The guarantor: revenue share 0.1 x 10 GPUs x H x US$10 = 21,900, less the buyback.
    assert [o.guarantor_value_usd for o in plan.outcomes] == pytest.approx([21_900 - MATCHING_USD] * 2)
    verification = verify_plan(scenario, plan)
    assert verification.passed, verification.violations
    assert verification.notes == []
    # The test's own plan of the same decisions, by the min-cut form over every set of sites.
    by_hand = make_plan(scenario, quotas=HAND_QUOTAS, served=HAND_SERVED)
    assert [o.buyback_usd for o in by_hand.outcomes] == pytest.approx([MATCHING_USD] * 2)
    assert [r.expected_buyback_usd for r in by_hand.site_periods] == pytest.approx([SITE_USD] * 2)
    assert verify_plan(scenario, by_hand).passed


def test_where_each_tenant_may_use_one_site_the_rules_agree_and_the_solved_plan_verifies():
    """t1 may use only sa, t2 only sb: each site keeps 10 GPUs for its tenant, and the other site's
    10 unsold GPUs had no buyer under either rule (10 x 2190 x US$5 = US$109,500 per scenario).
    Solved by the model (either rule's: they agree here)."""
    scenario = two_sites(one_site_each=True)
    plan = solve_scenario(scenario, value_of_information=False)
    assert plan.verification.passed, plan.verification.violations
    assert plan.buyback_matching is None and plan.verification.notes == []
    assert [o.buyback_usd for o in plan.outcomes] == pytest.approx([10 * H * BUYBACK_PRICE] * 2)
    # Each scenario: one site wholly unsold, the other wholly sold: the unsold site takes it all.
    rows = {r.site: r.expected_buyback_usd for r in plan.site_periods}
    assert rows == pytest.approx({"sa": 10 * H * BUYBACK_PRICE / 2, "sb": 10 * H * BUYBACK_PRICE / 2})


def edited(plan: Plan, *, outcome: dict[str, Any] | None = None, site: dict[str, Any] | None = None) -> Plan:
    """The plan with its first outcome's or first site row's fields replaced."""
    outcomes, rows = list(plan.outcomes), list(plan.site_periods)
    if outcome:
        outcomes[0] = outcomes[0].model_copy(update=outcome)
    if site:
        rows[0] = rows[0].model_copy(update=site)
    return plan.model_copy(update={"outcomes": outcomes, "site_periods": rows})


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        (
            "outcome",
            "outcome [s1] buyback_usd: the plan reports 54,751.01, recomputed 54,750.00 (difference 1.01)",
        ),
        (
            "site",
            "site_periods sa 2026Q1 expected_buyback_usd: the plan reports 27,376.01, recomputed 27,375.00 (difference 1.01)",
        ),
    ],
)
def test_a_1_5_plan_whose_buyback_is_off_by_more_than_a_dollar_is_refused(hand_case, field, shown):
    """The verifier's money tolerance is kept: US$1 (or 1e-6 relative, US$0.05 here), inclusive."""
    scenario, plan = hand_case
    name = "buyback_usd" if field == "outcome" else "expected_buyback_usd"
    base = MATCHING_USD if field == "outcome" else SITE_USD
    off = verify_plan(scenario, edited(plan, **{field: {name: base + 1.01}}))
    assert not off.passed and off.violations == [shown], off.violations
    within = verify_plan(scenario, edited(plan, **{field: {name: base - 0.99}}))
    assert within.passed, within.violations


def test_the_per_site_rules_figures_in_a_1_5_plan_are_refused(hand_case, old_plan):
    """A 1.5 plan billing the per-site rule's US$0: the old figures under the new version."""
    scenario, _ = hand_case
    relabelled = old_plan.model_copy(update={"schema_version": "1.5", "buyback_matching": None})
    found = verify_plan(scenario, relabelled)
    assert not found.passed
    said = "\n".join(found.violations)
    assert "outcome [s1] buyback_usd: the plan reports 0.00, recomputed 54,750.00" in said
    assert "site_periods sb 2026Q1 expected_buyback_usd: the plan reports 0.00, recomputed 27,375.00" in said
    assert "solver.objective_usd" in said


def test_a_1_5_plan_carrying_a_comparison_record_is_refused(hand_case, old_plan):
    scenario, plan = hand_case
    found = verify_plan(scenario, plan.model_copy(update={"buyback_matching": old_plan.buyback_matching}))
    assert not found.passed
    assert found.violations == [
        "buyback_matching: a 1.5 plan's buyback is the matching rule's, so it records no comparison, "
        "and this plan carries one (was it edited?)"
    ]


# --- plans written before 1.5 -------------------------------------------------------------------


def test_a_1_4_plan_still_verifies_by_its_per_site_rule_with_a_note(hand_case, old_plan):
    scenario, _ = hand_case
    assert old_plan.schema_version == "1.4" and old_plan.verification.notes == []
    assert [o.buyback_usd for o in old_plan.outcomes] == [0.0, 0.0]
    found = verify_plan(scenario, old_plan)
    assert found.passed, found.violations
    assert found.notes == [per_site_rule_note("1.4", 0.0, MATCHING_USD)]
    assert "would be US$54,750 (undiscounted), the plan's is US$0" in found.notes[0]
    # The same decisions billed by the per-site rule in the test's own plan agree with the file.
    by_hand = make_plan(scenario, quotas=HAND_QUOTAS, served=HAND_SERVED, per_site=True)
    assert [o.buyback_usd for o in by_hand.outcomes] == [0.0, 0.0]
    assert verify_plan(scenario, by_hand).passed


def test_a_1_4_plan_billing_the_matching_rule_is_refused(hand_case):
    """The verifier reads a plan's rule from its version: the new figures under 1.4 fail."""
    scenario, plan = hand_case
    found = verify_plan(scenario, plan.model_copy(update={"schema_version": "1.4"}))
    assert not found.passed
    assert "outcome [s1] buyback_usd: the plan reports 54,750.00, recomputed 0.00" in "\n".join(
        found.violations
    )


def test_a_1_4_plan_file_without_the_record_verifies_with_the_note(hand_case, tmp_path):
    scenario, _ = hand_case
    data = json.loads(OLD_PLAN.read_text())
    del data["buyback_matching"]
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(data))
    earlier = read_plan(path)
    assert earlier.schema_version == "1.4" and earlier.buyback_matching is None
    found = verify_plan(scenario, earlier)
    assert found.passed and found.notes == [per_site_rule_note("1.4", 0.0, MATCHING_USD)]


def test_a_plan_before_1_5_whose_rules_agree_verifies_without_a_note(one_site_each):
    """Each tenant may use one site: both rules bill US$109,500 per scenario, so the verifier has
    nothing to say of the rule (it said "would be US$109,500 ..., the plan's is US$109,500. Solve
    the scenario again"), with the record or without (a 1.3 plan)."""
    scenario, plan = one_site_each
    assert plan.outcomes[0].buyback_usd == pytest.approx(10 * H * BUYBACK_PRICE)
    older = as_1_4_with_agreeing_record(plan)
    found = verify_plan(scenario, older)
    assert found.passed and found.notes == [], (found.violations, found.notes)
    earlier = plan.model_copy(update={"schema_version": "1.3"})
    found = verify_plan(scenario, earlier)
    assert found.passed and found.notes == [], (found.violations, found.notes)


def record_edited(plan: Plan, **changes: Any) -> Plan:
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
def test_the_verifier_catches_an_edited_1_4_record_figure(hand_case, old_plan, field, shown):
    scenario, _ = hand_case
    verification = verify_plan(scenario, record_edited(old_plan, **{field: 12_345.0}))
    assert not verification.passed
    assert any(v.startswith(shown) for v in verification.violations), verification.violations


def test_the_verifier_catches_an_edited_1_4_quarter_or_scenario_row(hand_case, old_plan):
    scenario, _ = hand_case
    record = old_plan.buyback_matching
    assert record is not None
    quarter = record.quarters[0].model_copy(update={"matching_expected_buyback_usd": 0.0})
    row = record.scenarios[1].model_copy(update={"matching_buyback_usd": 1.0})
    verification = verify_plan(
        scenario, record_edited(old_plan, quarters=[quarter], scenarios=[record.scenarios[0], row])
    )
    assert not verification.passed
    said = "\n".join(verification.violations)
    assert (
        "buyback_matching 2026Q1 matching_expected_buyback_usd: the plan reports 0.00, recomputed 54,750.00"
        in said
    )
    assert "buyback_matching [s2] matching_buyback_usd: the plan reports 1.00, recomputed 54,750.00" in said


def test_the_verifier_catches_a_missing_or_doubled_1_4_row(hand_case, old_plan):
    scenario, _ = hand_case
    record = old_plan.buyback_matching
    assert record is not None
    verification = verify_plan(
        scenario, record_edited(old_plan, quarters=[], scenarios=[record.scenarios[0], record.scenarios[0]])
    )
    assert not verification.passed
    said = "\n".join(verification.violations)
    assert "buyback_matching quarters: the plan lists []" in said
    assert "buyback_matching scenarios: the plan lists ['s1', 's1']" in said


# --- solved (passes only with a model that optimises the matching rule) -------------------------


def test_the_hand_case_solved_for_the_guarantor_bills_54750_per_scenario():
    """Whatever plan is optimal, 20 GPUs against 15 wanted leave 5 GPUs no buyer in each scenario
    (every tenant may use every site): US$54,750. The guarantor's value, revenue share less that,
    is best with 10 GPUs served in expectation (quotas cap a tenant's two sites at 20 GPUs for
    both): 0.1 x US$10 x 10 x 2190 - 54,750 = -US$32,850. Before session 27's model change the
    model optimised the per-site rule, its objective (US$21,900) disagreed with the figures and
    the plan failed verification."""
    scenario = two_sites()
    plan = solve_scenario(scenario, value_of_information=False)
    assert plan.verification.passed, plan.verification.violations
    assert [o.buyback_usd for o in plan.outcomes] == pytest.approx([MATCHING_USD] * 2)
    assert plan.risk.expected_value_usd == pytest.approx(21_900 - MATCHING_USD)


# --- the max flow: three algorithms, one answer -------------------------------------------------

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


@pytest.mark.parametrize(
    ("edit", "shown"),
    [
        # a negative figure was printed by `show` as the matching rule's buyback
        (
            lambda r: r.update(matching_expected_buyback_usd=-1e9),
            "buyback_matching.matching_expected_buyback_usd is -1e+09",
        ),
        # the expected figures edited to agree made `show` silent and `compare` compare
        (
            lambda r: r.update(
                matching_expected_buyback_usd=0.0, matching_expected_buyback_discounted_usd=0.0
            ),
            "buyback_matching.matching_expected_buyback_usd: 0.00, where its scenarios' rows",
        ),
        (
            lambda r: r["scenarios"][0].update(buyback_usd=60_000.0),
            "below the plan's",
        ),
    ],
)
def test_an_edited_1_4_record_is_refused_on_reading_with_what_disagrees(tmp_path, edit, shown):
    data = json.loads(OLD_PLAN.read_text())
    edit(data["buyback_matching"])
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError) as error:
        read_plan(path)
    assert "the plan does not hold together (was it edited?)" in error.value.message
    assert any(shown in detail for detail in error.value.details), error.value.details


def test_the_genuine_1_4_plan_reads_without_a_problem():
    assert read_plan(OLD_PLAN).buyback_matching is not None
