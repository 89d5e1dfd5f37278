"""The rounded start: whole increments near the LP, repaired to meet every first-stage row,
verified as a plan by the independent verifier, and folded honestly into HiGHS's outcome."""

from __future__ import annotations

import dataclasses
import itertools

import highspy
import numpy as np
import pytest

from bench.scenarios import synthetic_scenario
from planner.model.build import build_model
from planner.model.objective import MONEY_SCALE_USD
from planner.results import build_plan
from planner.solve import direct as highs_direct
from planner.solve.interfaces import _with_rounding, solve_model
from planner.solve.rounding import FIRST_STAGE_ROWS, _excess, repair, round_cumulative, rounded_start
from planner.verify import verify_plan
from tests.planner.small_scenarios import uncertain


def test_cumulative_rounding_of_halves_by_hand():
    halves = [0.5, 0.5, 0.5, 0.5]
    assert round_cumulative(halves, "floor") == [0, 1, 0, 1]
    assert round_cumulative(halves, "ceil") == [1, 0, 1, 0]
    assert round_cumulative(halves, "nearest") == [1, 0, 1, 0]
    assert round_cumulative([0.999_999_9, 2.0], "floor") == [1, 2]  # within tolerance of whole


@pytest.mark.parametrize("how", ["floor", "ceil", "nearest"])
def test_cumulative_rounding_stays_within_one_unit_of_the_running_sum(how):
    rng = np.random.default_rng(7)
    for _ in range(200):
        values = rng.uniform(0, 3, size=12) * (rng.uniform(size=12) < 0.6)
        out = round_cumulative(values.tolist(), how)
        assert all(isinstance(x, int) and x >= 0 for x in out)
        gaps = np.cumsum(out) - np.cumsum(values)
        assert np.all(np.abs(gaps) <= 1 + 1e-9)
        if how == "floor":
            assert np.all(gaps <= 1e-6)  # never more than the LP built by then
        if how == "ceil":
            assert np.all(gaps >= -1e-6)


def test_repair_only_lowers_builds_until_every_first_stage_row_holds():
    m = build_model(synthetic_scenario(2, 2, 4, 3, 3, seed=1))
    for var in m.racks_built.values():
        var.set_value(var.ub)  # every quarter at its own bound: cumulative caps are broken
    before = {name: var.value for name, var in m.racks_built.items()}
    for var in m.blocks_ordered.values():
        var.set_value(0)
    rows = [con for name in FIRST_STAGE_ROWS if hasattr(m, name) for con in getattr(m, name).values()]
    assert any(_excess(con) > 1e-6 for con in rows)
    rounds = repair(m, FIRST_STAGE_ROWS, [m.racks_built])
    assert rounds >= 1
    assert all(_excess(con) <= 1e-6 for con in rows)
    values = [var.value for var in m.racks_built.values()]
    assert all(v >= 0 and v == int(v) for v in values)
    assert all(var.value <= before[name] for name, var in m.racks_built.items())
    assert sum(values) > 0  # it lowers what the rows need, not everything


def test_repair_ends_on_an_excess_far_below_one_unit():
    # A cap broken by 2e-5 MW with 40 MW blocks: the excess rounds to 0 blocks; one is lowered.
    m = build_model(synthetic_scenario(2, 2, 4, 3, 3, seed=1))
    site, t = next(iter(m.power_cap.keys()))
    arrived = [tau for (i, tau) in m.blocks_ordered if i == site and tau <= t - m._dsx_data.lead(site)]
    for var in m.blocks_ordered.values():
        var.set_value(0)
    m.blocks_ordered[site, arrived[0]].set_value(1)
    existing = m._dsx_data.scenario.site(site).existing_mw
    block = m._dsx_data.scenario.site(site).power_block_mw
    m.power_cap[site, t].set_value((None, m.power_cap[site, t].body, existing + block - 2e-5))
    assert 1e-6 < _excess(m.power_cap[site, t]) < block * 1e-6
    assert repair(m, ("power_cap",), [m.blocks_ordered]) == 1
    assert m.blocks_ordered[site, arrived[0]].value == 0


def test_repair_refuses_a_row_that_no_lowering_can_meet():
    m = build_model(synthetic_scenario(2, 2, 4, 3, 3, seed=1))
    for var in itertools.chain(m.racks_built.values(), m.blocks_ordered.values()):
        var.set_value(var.ub)
    with pytest.raises(ValueError, match="cannot be met"):
        repair(m, FIRST_STAGE_ROWS, [m.blocks_ordered])  # racks may not move: power stays short


REFERENCE_RUN_S = 3.0
REFERENCE_GAP = 0.05


def test_the_rounded_start_is_a_plan_the_verifier_accepts():
    # 24 quarters with 20-quarter rack lives: installed racks are window sums, not running ones.
    scenario = synthetic_scenario(3, 2, 24, 3, 3, seed=2)
    # A loose gap is enough: the reference only brackets the optimum (its bound and incumbent).
    loose = scenario.solver.model_copy(update={"mip_rel_gap": REFERENCE_GAP})
    reference = solve_model(build_model(scenario), loose, "direct")
    m = build_model(scenario)
    direct = highs_direct.pass_to_highs(m)
    report = rounded_start(m, direct, time_limit_s=60.0)
    assert report.solution is not None, report.note
    assert report.lp_solves >= 3
    # The LP bound is above every plan; the start is one plan; the MIP's optimum lies between.
    assert report.relaxation_bound * MONEY_SCALE_USD >= reference.best_bound_usd - 1e-6 * abs(
        reference.best_bound_usd
    )
    assert report.start_objective * MONEY_SCALE_USD <= reference.objective_usd * (1 + 1e-6)
    # HiGHS holds the MIP again: integrality and bounds as passed.
    lp = direct.highs.getLp()
    kinds = [lp.integrality_[j] for j in direct.integer_index]
    assert set(kinds) == {highspy.HighsVarType.kInteger}
    assert np.array_equal(np.asarray(lp.col_upper_)[direct.integer_index], direct.integer_upper)
    highs_direct.load_solution(direct, report.solution)
    assert all(v.value == round(v.value) for v in m.racks_built.values())
    outcome = dataclasses.replace(reference, objective_usd=report.start_objective * MONEY_SCALE_USD)
    verification = verify_plan(scenario, build_plan(scenario, m, outcome, build_s=0.0))
    assert verification.passed, verification.violations[:5]


def test_the_rounded_start_reaches_the_hand_optimum():
    # One rack worth 6,600 (tests/planner/model/test_hand_optima.py); the LP may build a fraction, the start rounds.
    scenario = uncertain(buyback_price=8.0)
    outcome = solve_model(build_model(scenario), scenario.solver, "direct")
    assert outcome.objective_usd == pytest.approx(6_600.0, rel=1e-9)
    assert outcome.start == "rounded"
    assert outcome.start_usd == pytest.approx(6_600.0, rel=1e-9)


def _outcome(**changes):
    scenario = uncertain(buyback_price=8.0)
    base = solve_model(
        build_model(scenario), scenario.solver.model_copy(update={"rounded_start": False}), "direct"
    )
    return dataclasses.replace(base, **changes)


def test_when_highs_ends_without_a_plan_the_start_is_the_plan_and_the_lp_bounds_the_gap():
    from planner.solve.rounding import RoundingReport

    outcome = _outcome(has_solution=False, objective_usd=None, best_bound_usd=None, mip_gap=None, solve_s=1.0)
    solution = np.arange(3, dtype=float)
    rounding = RoundingReport(relaxation_bound=0.0101, start_objective=0.0100, seconds=2.0, solution=solution)
    loaded = _with_rounding(outcome, rounding, maximize=True)
    assert loaded is solution
    assert outcome.has_solution
    assert outcome.objective_usd == pytest.approx(10_000.0)
    assert outcome.best_bound_usd == pytest.approx(10_100.0)
    assert outcome.mip_gap == pytest.approx(0.01)
    assert outcome.solve_s == pytest.approx(3.0) and outcome.start_s == 2.0


def test_a_better_highs_plan_is_kept_and_only_a_tighter_bound_is_taken():
    from planner.solve.rounding import RoundingReport

    outcome = _outcome(objective_usd=10_050.0, best_bound_usd=10_080.0, mip_gap=0.003)
    rounding = RoundingReport(
        relaxation_bound=0.0101, start_objective=0.0100, seconds=1.0, solution=np.zeros(3)
    )
    assert _with_rounding(outcome, rounding, maximize=True) is None
    assert outcome.objective_usd == 10_050.0
    assert outcome.best_bound_usd == 10_080.0  # HiGHS's is tighter than the LP's 10,100
    assert outcome.mip_gap == pytest.approx(30.0 / 10_050.0)


def test_a_given_start_is_weighed_and_the_better_plan_is_offered():
    scenario = synthetic_scenario(3, 2, 8, 3, 3, seed=4)
    exact = scenario.solver.model_copy(update={"mip_rel_gap": 1e-9, "rounded_start": False})
    m_ref = build_model(scenario)
    reference = solve_model(m_ref, exact, "direct")
    m = build_model(scenario)
    direct = highs_direct.pass_to_highs(m)
    ints = [v for comp in (m.racks_built, m.blocks_ordered) for v in comp.values()]
    optimum = {v.name: round(m_ref.find_component(v.name).value) for v in ints}
    given = (direct.numbers(ints).astype(np.int32), np.array([optimum[v.name] for v in ints], dtype=float))
    report = rounded_start(m, direct, 60.0, given=given)
    # The optimum's integers, re-solved, give the optimum; the start is never worse than it.
    assert report.given_objective * MONEY_SCALE_USD == pytest.approx(reference.objective_usd, rel=1e-6)
    assert report.start_objective >= report.given_objective - 1e-9
    assert report.source in ("rounded", "given")
    if report.source == "given":
        assert report.start_objective == report.given_objective


def test_the_lp_re_solves_get_the_time_left_although_highs_clock_runs_on():
    # HiGHS checks time_limit against its clock since the object was made; a rounding that
    # passed the time left as the limit failed every re-solve once that clock had run longer.
    scenario = synthetic_scenario(4, 2, 8, 4, 10, seed=0)
    m = build_model(scenario)
    direct = highs_direct.pass_to_highs(m)
    direct.highs.setOptionValue("mip_rel_gap", 0.0)
    direct.highs.setOptionValue("time_limit", REFERENCE_RUN_S)  # long enough for the clock to run on
    direct.highs.run()
    spent_s = direct.highs.getRunTime()
    limit_s = spent_s / 2
    report = rounded_start(m, direct, time_limit_s=limit_s)
    assert report.solution is not None, report.note
    assert report.seconds < limit_s


def test_settling_the_cvar_level_raises_the_reported_objective_and_gap():
    from planner.solve.interfaces import _settle_cvar

    m = build_model(uncertain(buyback_price=8.0, cvar_weight=0.5))
    m.scenario_value["bust"].set_value(10.0)
    m.scenario_value["boom"].set_value(30.0)
    m.cvar_eta.set_value(4.0)
    for s in ("boom", "bust"):
        m.cvar_shortfall[s].set_value(0.0)
    outcome = _outcome(objective_usd=1e6, best_bound_usd=5e6, mip_gap=4.0, is_mip=True)
    _settle_cvar(m, outcome)
    assert outcome.objective_usd == pytest.approx(1e6 + 0.5 * 6.0 * MONEY_SCALE_USD)
    assert outcome.mip_gap == pytest.approx((5e6 - 4e6) / 4e6)
