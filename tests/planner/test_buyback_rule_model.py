"""The model optimises the matching buyback rule (docs/model.md, "Buyback").

Per quarter t and scenario s the buyback is share x (Sum_i unsold_i - M*), M* the most of the
tenants' refused hours that can be placed on the unsold hours of sites each may use, every unsold
hour once. These tests read the model's own optimum (`build_model` + `solve_model`, not the plan's
recomputed figures) and compute the rule independently from its served and unserved hours: a max
flow by `scipy.optimize.linprog` over sites (not the model's classes), and by brute force over
sets of sites.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pyomo.environ as pyo
import pytest
import scipy.optimize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.files import parse_scenario
from planner.model import sets
from planner.model.build import build_model, data_of
from planner.model.matching import most_without_buyer
from planner.schema.scenario import Scenario
from planner.solve.interfaces import SolveOutcome, solve_model
from tests.planner.small_scenarios import BASE, NO_REQUIREMENTS, H
from tests.planner.two_sites import two_sites_data


def hand_case(perspective: str) -> Scenario:
    """The hand case of docs/model.md "Buyback" (tests/planner/two_sites.py): one quarter, sites sa and
    sb each one existing 10-GPU rack and no room to build, tenants t1 and t2 allowed anywhere at
    US$10/GPU-h; in s1 t1 wants 15 GPUs, in s2 t2 does (probability 0.5 each); buyback US$5/GPU-h
    at share 1.0, revenue share 0.1, no party requirement (under the matching rule the
    guarantor's value is negative: see the test)."""
    data = two_sites_data()
    data["objective"] = {"perspective": perspective}
    return parse_scenario(data, "hand-case")


def _solved(scenario: Scenario, *, method: str = "extensive") -> tuple[pyo.ConcreteModel, SolveOutcome]:
    scenario = scenario.model_copy(update={"solver": scenario.solver.model_copy(update={"method": method})})
    m = build_model(scenario)
    outcome = solve_model(m, scenario.solver, "direct")
    assert outcome.has_solution, outcome
    return m, outcome


def _model_buyback_gpu_hours(m: pyo.ConcreteModel) -> dict[tuple[int, str], float]:
    """The model's buyback columns summed per (quarter, scenario)."""
    out: dict[tuple[int, str], float] = {}
    for (_c, t, s), var in m.buyback_gpu_hours.items():
        out[t, s] = out.get((t, s), 0.0) + (var.value or 0.0)
    return out


@pytest.mark.parametrize("perspective", ["guarantor", "cloud"])
def test_the_hand_case_s_optimum_bills_the_matching_rule(perspective: str) -> None:
    """Capacity is 20 GPUs and the scenario's one tenant wants 15, so whatever the quotas,
    unsold = 20 - served and refused = 15 - served: 5 GPUs had no buyer, 5 x 2,190 = 10,950 GPU-h,
    US$54,750 in each scenario (the model's old per-site rule: 0, each site's unsold offset by
    the refused at both). Quotas t1 + t2 <= 20 with probability 1/2 each: expected served is at
    most 10 GPUs (t1 = t2 = 10 attains it; more buyback cannot be bought by serving less).
    Guarantor: 0.1 x US$10 x 10 x 2,190 - 54,750 = 21,900 - 54,750 = -US$32,850.
    Cloud: 0.9 x US$10 x 10 x 2,190 + 54,750 = 197,100 + 54,750 = US$251,850 (the racks exist:
    no capex; power is free)."""
    m, outcome = _solved(hand_case(perspective))
    assert _model_buyback_gpu_hours(m) == {(0, "s1"): pytest.approx(5 * H), (0, "s2"): pytest.approx(5 * H)}
    want = {"guarantor": 21_900.0 - 54_750.0, "cloud": 197_100.0 + 54_750.0}[perspective]
    assert outcome.objective_usd == pytest.approx(want, abs=0.01)


def _site_figures(m: pyo.ConcreteModel) -> tuple[dict, dict, dict[str, list[str]]]:
    """Per (site, t, s) unsold GPU-hours and per (tenant, t, s) refused, from the solution's
    racks, served and unserved values (not the model's buyback columns), and who may use where."""
    d = data_of(m)
    unsold: dict[tuple[str, int, str], float] = {}
    for i in d.site_ids:
        for t in d.periods:
            gpus = sum(pyo.value(m.gpus_installed[i, r, t]) for r in d.rack_ids_at[i])
            for s in d.scenario_ids:
                unsold[i, t, s] = d.h * gpus
    for (_k, i, _r, t, s), var in m.served_gpu_hours.items():
        unsold[i, t, s] -= var.value or 0.0
    refused = {key: var.value or 0.0 for key, var in m.unserved_gpu_hours.items()}
    return unsold, refused, {i: list(d.tenants_at[i]) for i in d.site_ids}


def _max_flow_gpu_hours(
    refused: dict[str, float], unsold: dict[str, float], may_use: dict[str, list[str]]
) -> float:
    """The most refused hours placed on unsold hours of sites each tenant may use: an LP."""
    pairs = [(k, i) for i in unsold for k in may_use[i] if k in refused]
    if not pairs:
        return 0.0
    tenants, sites = list(refused), list(unsold)
    A = np.zeros((len(tenants) + len(sites), len(pairs)))
    for j, (k, i) in enumerate(pairs):
        A[tenants.index(k), j] = 1.0
        A[len(tenants) + sites.index(i), j] = 1.0
    caps = [max(0.0, refused[k]) for k in tenants] + [max(0.0, unsold[i]) for i in sites]
    result = scipy.optimize.linprog(-np.ones(len(pairs)), A_ub=A, b_ub=caps, bounds=(0, None), method="highs")
    assert result.status == 0
    return -float(result.fun)


def _brute_force_gpu_hours(
    refused: dict[str, float], unsold: dict[str, float], may_use: dict[str, list[str]]
) -> float:
    """max over sets T of sites of unsold(T) - refused of the tenants who may use a site of T."""
    sites = list(unsold)
    best = 0.0
    for n in range(1, len(sites) + 1):
        for T in itertools.combinations(sites, n):
            buyers = {k for i in T for k in may_use[i] if k in refused}
            best = max(best, sum(unsold[i] for i in T) - sum(refused[k] for k in buyers))
    return best


def assert_rule_holds(m: pyo.ConcreteModel) -> int:
    """Per (t, s) the model's buyback equals share x (Sum unsold - max flow), by both independent
    computations; returns how many (t, s) had a positive figure."""
    d = data_of(m)
    share = d.scenario.terms.buyback_share
    unsold, refused, may_use = _site_figures(m)
    billed = _model_buyback_gpu_hours(m)
    positive = 0
    for t in d.periods:
        for s in d.scenario_ids:
            here_unsold = {i: unsold[i, t, s] for i in d.site_ids}
            here_refused = {k: v for (k, tau, sc), v in refused.items() if tau == t and sc == s}
            flow = _max_flow_gpu_hours(here_refused, here_unsold, may_use)
            by_flow = share * (sum(max(0.0, v) for v in here_unsold.values()) - flow)
            by_cuts = share * _brute_force_gpu_hours(here_refused, here_unsold, may_use)
            tolerance = 1e-6 * max(1.0, sum(abs(v) for v in here_unsold.values())) + 1e-3
            assert by_flow == pytest.approx(by_cuts, abs=tolerance), (t, s)
            assert billed[t, s] == pytest.approx(by_flow, abs=tolerance), (t, s, billed[t, s], by_flow)
            positive += by_flow > 1.0
    return positive


@st.composite
def overlapping_scenarios(draw: st.DrawFn) -> Scenario:
    """2-3 sites in two jurisdictions (two alike: one class), 2-3 tenants each allowed anywhere
    or in one jurisdiction, so tenant sets overlap; 1-2 quarters, 1-3 scenarios; existing racks
    and a little room to build; buyback at a share of 0.5-1."""
    n_sites = draw(st.integers(2, 3))
    n_k = draw(st.integers(2, 3))
    n_t = draw(st.integers(1, 2))
    n_s = draw(st.integers(1, 3))
    cases = [f"c{j}" for j in range(n_s)]
    data = copy.deepcopy(BASE)
    base_site = data["sites"][0]
    sites = []
    for j in range(n_sites):
        site = {**base_site, "id": f"site{j}", "jurisdiction": ["AU", "ID", "AU"][j]}
        site.update(
            gpu_cap=draw(st.sampled_from([20, 40])),
            max_racks_built_per_period=draw(st.integers(0, 2)),
            max_power_blocks_per_period=0,
            existing_racks={"rack10": draw(st.integers(0, 2))},
        )
        sites.append(site)
    data["sites"] = sites
    data["rack_types"][0]["capex_usd"] = draw(st.sampled_from([20_000.0, 100_000.0]))
    data["tenants"] = [
        {
            "id": f"k{j}",
            "price_usd_per_gpu_hour": draw(st.sampled_from([3.0, 10.0])),
            "allowed_jurisdictions": draw(st.sampled_from([None, ["AU"], ["ID"]])),
            "demand_gpus": {c: [float(draw(st.integers(0, 30))) for _ in range(n_t)] for c in cases},
        }
        for j in range(n_k)
    ]
    weights = draw(st.lists(st.integers(1, 3), min_size=n_s, max_size=n_s))
    data["scenarios"] = [
        {"id": c, "probability": w / sum(weights)} for c, w in zip(cases, weights, strict=True)
    ]
    data["periods"]["count_quarters"] = n_t
    data["terms"] = {
        "buyback_price_usd_per_gpu_hour": draw(st.sampled_from([2.0, 5.0])),
        "buyback_share": draw(st.sampled_from([0.5, 1.0])),
        "revenue_share": 0.1,
        "guarantor_hardware_margin": 0.0,
    }
    data["participation"] = NO_REQUIREMENTS
    # Not 0: the decomposition closes its gap in floating point (at 0 it may stop a hair short).
    data["solver"] = {"time_limit_s": 20, "mip_rel_gap": 1e-6}
    return parse_scenario(data, "overlapping")


def _in_view(scenario: Scenario, perspective: str) -> Scenario:
    return scenario.model_copy(
        update={"objective": scenario.objective.model_copy(update={"perspective": perspective})}
    )


def _relaxed(scenario: Scenario) -> Scenario:
    return scenario.model_copy(
        update={"solver": scenario.solver.model_copy(update={"relax_integrality": True})}
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=overlapping_scenarios())
def test_at_the_optimum_each_view_bills_the_matching_rule_and_decomposes_to_it(scenario: Scenario) -> None:
    """Cloud (buyback rewarded: the binaries' min cut closes it from above) and guarantor (a
    cost: the flows' lower bound is exact at the optimum): the buyback per quarter and scenario
    is the rule's, computed from the solution, in the extensive form's plan and in the
    decomposition's. The decomposition's optimum is the extensive form's: equal for the LP
    relaxation, each plan within the other's bound for the MILP (its loop relaxes the binaries,
    so its own plan may stop short of its bound: tests/planner/solve/test_decomposition.py)."""
    for perspective in ("cloud", "guarantor"):
        view = _in_view(scenario, perspective)
        m, extensive = _solved(view)
        assert_rule_holds(m)
        m_dec, decomposed = _solved(view, method="decomposition")
        assert_rule_holds(m_dec)
        for plan, other in ((extensive, decomposed), (decomposed, extensive)):
            assert plan.objective_usd is not None and other.best_bound_usd is not None
            assert plan.objective_usd <= other.best_bound_usd + 1.0 + 1e-6 * abs(other.best_bound_usd)
        _, lp = _solved(_relaxed(view))
        _, lp_decomposed = _solved(_relaxed(view), method="decomposition")
        # Not asserted to stay decomposed: where the optimum is 0 the loop's plan (-1e-17)
        # is a relative gap of 1 below its bound (`interfaces._gap`) and it falls back.
        assert lp_decomposed.objective_usd == pytest.approx(lp.objective_usd, rel=1e-6, abs=1.0)


def test_most_without_buyer_enumerates_and_cuts_alike() -> None:
    """The rounding's choice of open classes (`planner.model.matching.most_without_buyer`): its
    subsets and its max flow give the same value, and the classes it opens attain it, on random
    graphs; the rerouting graph (t_a on both classes, t_b on c1 only) needs an augmenting path."""
    value, opened = most_without_buyer(
        np.array([1.0, 1.0]), np.array([1.0, 1.0]), np.array([[True, True], [True, False]])
    )
    assert value == 0.0 and not opened.any()
    value, opened = most_without_buyer(
        np.array([3.0, 1.0]), np.array([1.0, 0.5]), np.array([[True, False], [False, True]])
    )
    assert value == pytest.approx(2.5) and opened.tolist() == [True, True]
    rng = np.random.default_rng(27)
    for case in range(300):
        n_c, n_k = int(rng.integers(1, 8)), int(rng.integers(0, 6))
        scale = 10.0 ** rng.uniform(-2, 7)
        unsold = rng.uniform(-0.1, 1, n_c) * scale * (rng.random(n_c) < 0.85)
        refused = rng.uniform(0, 1, n_k) * scale * (rng.random(n_k) < 0.85)
        may = rng.random((n_k, n_c)) < 0.5
        values = []
        for limit in (12, 0):
            value, opened = most_without_buyer(unsold, refused, may, max_enumerated=limit)
            attained = unsold[opened].sum() - refused[may[:, opened].any(axis=1)].sum()
            assert attained == pytest.approx(value, rel=1e-9, abs=1e-9 * scale), (case, limit)
            values.append(value)
        brute = max(
            unsold[list(T)].sum() - refused[may[:, list(T)].any(axis=1)].sum() if T else 0.0
            for n in range(n_c + 1)
            for T in itertools.combinations(range(n_c), n)
        )
        assert values[0] == pytest.approx(brute, rel=1e-9, abs=1e-9 * scale), case
        assert values[1] == pytest.approx(brute, rel=1e-9, abs=1e-9 * scale), case


def test_sites_with_the_same_tenants_form_one_class_named_by_its_first_site() -> None:
    """Three sites, two alike (site0 and site2 in AU): two classes; the buyback, its binaries and
    flows are indexed by class, the flows only where a tenant may use the class and has demand."""
    data = copy.deepcopy(BASE)
    base_site = data["sites"][0]
    data["sites"] = [
        {**base_site, "id": "site0", "jurisdiction": "AU"},
        {**base_site, "id": "site1", "jurisdiction": "ID"},
        {**base_site, "id": "site2", "jurisdiction": "AU"},
    ]
    data["tenants"] = [
        {"id": "anywhere", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"only": [5.0]}},
        {
            "id": "in-id",
            "price_usd_per_gpu_hour": 10.0,
            "allowed_jurisdictions": ["ID"],
            "demand_gpus": {"only": [5.0]},
        },
        {
            "id": "idle",
            "price_usd_per_gpu_hour": 10.0,
            "allowed_jurisdictions": ["AU"],
            "demand_gpus": {"only": [0.0]},
        },
    ]
    data["terms"] = {**data["terms"], "buyback_price_usd_per_gpu_hour": 5.0, "buyback_share": 1.0}
    data["participation"] = NO_REQUIREMENTS
    m = build_model(parse_scenario(data, "classes"))
    assert sets.site_classes(data_of(m)) == {"site0": ["site0", "site2"], "site1": ["site1"]}
    assert list(m.buyback_gpu_hours) == [("site0", 0, "only"), ("site1", 0, "only")]
    assert list(m.buyback_open) == list(m.buyback_gpu_hours)  # the cloud's view: binaries
    assert sorted(m.buyback_matched_gpu_hours) == [
        ("anywhere", "site0", 0, "only"),
        ("anywhere", "site1", 0, "only"),
        ("in-id", "site1", 0, "only"),
    ]
    assert sorted(m.buyback_cut_refused_gpu_hours) == [("anywhere", 0, "only"), ("in-id", 0, "only")]


def test_asked_for_a_gap_of_0_the_decomposition_ends_at_the_extensive_optimum() -> None:
    """Found by the property above: asked for a gap of 0, the loop's LP phase reached its bound
    (0.336423 both) but, a hair short in floating point, neither stopped nor fell back: its
    plan, US$1,423.50 short of the optimum, was reported "Time limit reached" after 0.1 s. A gap
    of round-off (`decomposition.ROUNDOFF_GAP`) now closes it; the plan with its buyback binaries
    whole is below the bound, so the extensive form runs from it and finds the optimum."""
    data = copy.deepcopy(BASE)
    site = {**data["sites"][0], "max_power_blocks_per_period": 0, "existing_racks": {"rack10": 2}}
    data["sites"] = [
        {**site, "id": "site0", "jurisdiction": "AU", "gpu_cap": 20, "max_racks_built_per_period": 0},
        {**site, "id": "site1", "jurisdiction": "ID", "gpu_cap": 40, "max_racks_built_per_period": 1},
        {**site, "id": "site2", "jurisdiction": "AU", "gpu_cap": 20, "max_racks_built_per_period": 0},
    ]
    data["rack_types"][0]["capex_usd"] = 20_000.0
    data["tenants"] = [
        {
            "id": "k0",
            "price_usd_per_gpu_hour": 3.0,
            "allowed_jurisdictions": ["ID"],
            "demand_gpus": {"c0": [21.0], "c1": [6.0]},
        },
        {"id": "k1", "price_usd_per_gpu_hour": 3.0, "demand_gpus": {"c0": [11.0], "c1": [1.0]}},
        {
            "id": "k2",
            "price_usd_per_gpu_hour": 3.0,
            "allowed_jurisdictions": ["ID"],
            "demand_gpus": {"c0": [17.0], "c1": [26.0]},
        },
    ]
    data["scenarios"] = [{"id": "c0", "probability": 0.5}, {"id": "c1", "probability": 0.5}]
    data["terms"] = {
        "buyback_price_usd_per_gpu_hour": 2.0,
        "buyback_share": 1.0,
        "revenue_share": 0.1,
        "guarantor_hardware_margin": 0.0,
    }
    data["participation"] = NO_REQUIREMENTS
    scenario = parse_scenario(data, "gap-0")
    _, extensive = _solved(scenario)
    m, decomposed = _solved(scenario, method="decomposition")
    assert extensive.objective_usd == pytest.approx(322_516.0, abs=0.01)
    assert decomposed.status == "Optimal", decomposed.method_note
    assert decomposed.objective_usd == pytest.approx(322_516.0, abs=0.01)
    assert_rule_holds(m)
