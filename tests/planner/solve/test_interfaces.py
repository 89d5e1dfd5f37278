"""The three ways of reaching HiGHS agree, report what HiGHS says, and fail in domain words."""

from __future__ import annotations

import time

import pytest

from bench.scenarios import synthetic_scenario
from planner.errors import NoPlanError, ScenarioError
from planner.model.build import build_model
from planner.pipeline import solve_scenario
from planner.solve.interfaces import INTERFACES, highs_options, solve_model
from tests.planner.small_scenarios import tiny, uncertain


def small_synthetic():
    scenario = synthetic_scenario(2, 2, 4, 3, 3, seed=1)
    exact = scenario.solver.model_copy(update={"mip_rel_gap": 1e-9, "time_limit_s": 30.0})
    return scenario.model_copy(update={"solver": exact})


@pytest.mark.parametrize("interface", INTERFACES)
def test_every_interface_finds_the_hand_optimum_with_cvar_and_integers(interface):
    # See tests/planner/model/test_hand_optima.py: the CVaR-averse optimum builds nothing (value 0) and the
    # risk-neutral one builds one rack (value 6,600).
    averse = uncertain(buyback_price=8.0, cvar_weight=0.5)
    outcome = solve_model(build_model(averse), averse.solver, interface)
    assert outcome.status == "Optimal"
    assert outcome.objective_usd == pytest.approx(0.0, abs=1e-3)
    neutral = uncertain(buyback_price=8.0)
    m = build_model(neutral)
    outcome = solve_model(m, neutral.solver, interface)
    assert outcome.objective_usd == pytest.approx(6_600.0, rel=1e-9)
    assert m.racks_built["alpha", "rack10", 0].value == pytest.approx(1.0)
    # One rack count, and the cloud's buyback binary per site and scenario (docs/model.md).
    assert outcome.integer_columns == 1 + 2
    assert outcome.interface == interface


@pytest.mark.parametrize("interface", INTERFACES)
def test_every_interface_says_when_it_handed_off_ran_highs_and_read_back(interface):
    scenario = uncertain(buyback_price=8.0)
    before = time.monotonic()
    outcome = solve_model(build_model(scenario), scenario.solver, interface)
    after = time.monotonic()
    windows = [outcome.phases[name] for name in ("handoff", "highs", "readback")]
    assert list(outcome.phases) == ["handoff", "highs", "readback"]
    assert before <= windows[0][0] and windows[-1][1] <= after
    assert all(start <= end for start, end in windows)
    assert windows[0][1] == windows[1][0] and windows[1][1] == windows[2][0]  # one after another
    assert outcome.wall_s == pytest.approx(windows[-1][1] - windows[0][0])
    assert outcome.handoff_s <= outcome.wall_s


def test_interfaces_agree_on_a_synthetic_mip_with_cvar():
    scenario = small_synthetic()
    results = {}
    for interface in INTERFACES:
        m = build_model(scenario)
        outcome = solve_model(m, scenario.solver, interface)
        assert outcome.has_solution, interface
        results[interface] = outcome
    objectives = [o.objective_usd for o in results.values()]
    assert max(objectives) == pytest.approx(min(objectives), rel=1e-6)
    sizes = {(o.rows, o.columns, o.nonzeros, o.integer_columns) for o in results.values()}
    assert len(sizes) == 1, sizes


def test_the_rounded_start_keeps_the_optimum_and_is_reported():
    scenario = small_synthetic()
    cold_options = scenario.solver.model_copy(update={"rounded_start": False})
    cold = solve_model(build_model(scenario), cold_options, "direct")
    started = solve_model(build_model(scenario), scenario.solver, "direct")
    assert started.objective_usd == pytest.approx(cold.objective_usd, rel=1e-6)
    assert cold.start_usd is None and cold.start_s == 0.0
    assert started.start_usd is not None
    assert started.start_usd <= started.objective_usd + 1e-6
    assert 0 < started.start_s <= started.solve_s
    assert started.mip_start_values == started.columns


def test_solver_report_has_gap_bound_size_and_times():
    scenario = small_synthetic()
    outcome = solve_model(build_model(scenario), scenario.solver, "direct")
    assert outcome.is_mip and outcome.integer_columns > 0
    assert outcome.mip_gap is not None and outcome.mip_gap <= 1e-6
    assert outcome.best_bound_usd == pytest.approx(outcome.objective_usd, rel=1e-6)
    assert outcome.rows > 0 and outcome.columns > 0 and outcome.nonzeros > outcome.columns
    assert outcome.solve_s > 0 and outcome.handoff_s > 0
    assert outcome.highs_version.count(".") == 2


def test_unknown_raw_highs_option_is_a_user_error():
    def extra(data):
        data["solver"]["extra"] = {"no_such_option": 1}

    scenario = tiny(extra)
    with pytest.raises(ScenarioError, match="no_such_option"):
        solve_model(build_model(scenario), scenario.solver)


def test_raw_highs_options_are_passed():
    def extra(data):
        data["solver"]["extra"] = {"presolve": "off"}
        data["solver"]["threads"] = 1

    scenario = tiny(extra)
    assert solve_model(build_model(scenario), scenario.solver).objective_usd == pytest.approx(604_500.0)


def infeasible_scenario():
    # 20 existing racks hold 200 GPUs at a site capped at 100 GPUs (the power fits, 2 MW of 10):
    # gpu_cap cannot hold in any quarter, whatever is decided.
    def change(data):
        data["sites"][0]["existing_racks"] = {"rack10": 20}
        data["sites"][0]["gpu_cap"] = 100

    return tiny(change)


@pytest.mark.parametrize("interface", INTERFACES)
def test_infeasible_input_raises_no_plan_error_in_domain_words(interface):
    with pytest.raises(NoPlanError, match="no plan meets every constraint") as caught:
        solve_scenario(infeasible_scenario(), interface=interface)
    assert caught.value.exit_code != 0
    assert "existing_racks" in caught.value.render()


def test_pipeline_reports_its_phases():
    phases: list[str] = []
    with pytest.raises(NoPlanError):
        solve_scenario(infeasible_scenario(), progress=phases.append)
    assert phases[0] == "building model"
    assert phases[1].startswith("solving")


@pytest.mark.parametrize("algorithm", ["simplex", "ipm", "auto"])
def test_every_lp_algorithm_reaches_the_same_lp_optimum(algorithm):
    scenario = small_synthetic()
    lp = scenario.solver.model_copy(update={"relax_integrality": True, "lp_algorithm": "simplex"})
    reference = solve_model(build_model(scenario.model_copy(update={"solver": lp})), lp, "direct")
    chosen = lp.model_copy(update={"lp_algorithm": algorithm})
    assert highs_options(chosen)["solver"] == ("ipm" if algorithm == "auto" else algorithm)
    outcome = solve_model(build_model(scenario.model_copy(update={"solver": chosen})), chosen, "direct")
    assert outcome.status == "Optimal"
    assert outcome.objective_usd == pytest.approx(reference.objective_usd, rel=1e-7)


def test_a_mips_rounded_start_takes_the_lp_algorithm_and_keeps_the_optimum():
    scenario = small_synthetic()
    simplex = scenario.solver.model_copy(update={"lp_algorithm": "simplex"})
    assert "solver" not in highs_options(scenario.solver)  # branch and bound: HiGHS's own choice
    by_simplex = solve_model(build_model(scenario), simplex, "direct")
    by_ipm = solve_model(build_model(scenario), scenario.solver, "direct")
    assert by_ipm.start == "rounded" and by_ipm.has_solution
    gap = scenario.solver.mip_rel_gap
    assert by_ipm.objective_usd == pytest.approx(by_simplex.objective_usd, rel=2 * gap)
