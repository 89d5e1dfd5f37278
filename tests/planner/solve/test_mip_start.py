"""MIP starts reach HiGHS: what it logs and returns with a start, per interface, and the cleaning."""

from __future__ import annotations

import re

import pytest

from planner.model.build import build_model
from planner.pipeline import solve_scenario
from planner.solve.interfaces import solve_model
from planner.solve.starts import START_COMPONENTS, start_from_plan, start_values
from tests.planner.insight.helpers import solved, three_quarters

START_LINE = re.compile(r"MIP start solution is feasible, objective value is (\S+)")


def logged(log_file, mutate=None):
    """three_quarters with HiGHS's log written to `log_file` (HiGHS says there what it did with a
    start), and no rounded start, so a given start reaches HiGHS as it is."""

    def change(data):
        if mutate is not None:
            mutate(data)
        data["solver"]["extra"] = {"output_flag": True, "log_to_console": False, "log_file": str(log_file)}
        data["solver"]["rounded_start"] = False

    return three_quarters(change)


def start_value_in_log(log_file) -> float | None:
    """HiGHS's objective of the start it accepted, in US$ (its log is in the model's US$ M)."""
    found = START_LINE.search(log_file.read_text())
    return float(found.group(1)) * 1e6 if found else None


@pytest.mark.parametrize("interface", ["direct", "appsi"])
def test_highs_accepts_an_optimal_start_at_the_plans_value(tmp_path, interface):
    plan = solved(three_quarters())
    log = tmp_path / "highs.log"
    scenario = logged(log)
    outcome = solve_model(build_model(scenario), scenario.solver, interface, mip_start=start_from_plan(plan))
    assert outcome.mip_start_values > 0
    assert start_value_in_log(log) == pytest.approx(plan.solver.objective_usd, rel=1e-9)
    assert outcome.objective_usd == pytest.approx(plan.solver.objective_usd, rel=1e-9)


EIGHT_AT_ONCE = {("alpha", "rack10", 0): 8.0, ("alpha", "rack10", 1): 0.0, ("alpha", "rack10", 2): 0.0}


def value_of_eight_at_once(scenario) -> float:
    """The plan's value with all eight racks built at once, recourse optimised (found directly)."""
    fixed = build_model(scenario)
    for idx, value in EIGHT_AT_ONCE.items():
        fixed.racks_built[idx].fix(value)
    return solve_model(fixed, scenario.solver).objective_usd


def test_highs_completes_a_given_first_stage_with_the_best_recourse(tmp_path):
    # HiGHS fixes the start's integer values and solves the LP over the rest, so the value it
    # reports for the start is that first stage's value, found here independently.
    scenario = three_quarters()
    first_stage_value = value_of_eight_at_once(scenario)
    optimum = solved(scenario).solver.objective_usd
    assert first_stage_value < optimum - 1.0  # not this scenario's best build

    log = tmp_path / "highs.log"
    started = logged(log)
    outcome = solve_model(
        build_model(started), started.solver, "direct", mip_start={"racks_built": EIGHT_AT_ONCE}
    )
    assert outcome.mip_start_values == 3
    assert start_value_in_log(log) == pytest.approx(first_stage_value, rel=1e-9)
    assert outcome.objective_usd == pytest.approx(optimum, rel=1e-9)


def test_with_the_rounded_start_a_given_start_is_weighed_not_taken_blindly(monkeypatch):
    import planner.solve.rounding

    weighed = []
    weigh = planner.solve.rounding._weigh_given

    def spy(m, direct, lp, report, *args):
        weigh(m, direct, lp, report, *args)
        weighed.append(report.given_objective)

    monkeypatch.setattr(planner.solve.rounding, "_weigh_given", spy)
    scenario = three_quarters()
    first_stage_value = value_of_eight_at_once(scenario)
    outcome = solve_model(
        build_model(scenario), scenario.solver, "direct", mip_start={"racks_built": EIGHT_AT_ONCE}
    )
    assert outcome.start in ("rounded", "given")
    assert outcome.start_usd >= first_stage_value - 1e-6  # never worse than the given build
    assert len(weighed) == 1 and weighed[0] * 1e6 == pytest.approx(first_stage_value, rel=1e-9)
    assert outcome.objective_usd == pytest.approx(solved(scenario).solver.objective_usd, rel=1e-9)


def test_with_a_given_start_the_rounding_keeps_half_the_time_for_highs(monkeypatch):
    # A decomposition's fallback gives its plan as start; the (10,3,20,6,50) LP relaxation of
    # the rounding outlasted the whole limit, and HiGHS, left 1 ms, never took the plan.
    import planner.solve.interfaces

    limits = []
    rounded = planner.solve.interfaces.rounded_start

    def spy(m, direct, time_limit_s, **kwargs):
        limits.append(time_limit_s)
        return rounded(m, direct, time_limit_s, **kwargs)

    monkeypatch.setattr(planner.solve.interfaces, "rounded_start", spy)
    scenario = three_quarters()
    solve_model(build_model(scenario), scenario.solver, "direct")
    solve_model(build_model(scenario), scenario.solver, "direct", mip_start={"racks_built": EIGHT_AT_ONCE})
    assert limits == [scenario.solver.time_limit_s, 0.5 * scenario.solver.time_limit_s]


def test_a_start_that_breaks_a_limit_is_dropped_and_the_solve_goes_on(tmp_path):
    log = tmp_path / "highs.log"
    scenario = logged(log)
    too_many = {
        "racks_built": {("alpha", "rack10", 0): 100.0, ("alpha", "rack10", 1): 100.0}
    }  # 2,000 GPUs > cap
    outcome = solve_model(build_model(scenario), scenario.solver, "direct", mip_start=too_many)
    assert start_value_in_log(log) is None
    assert outcome.objective_usd == pytest.approx(solved(three_quarters()).solver.objective_usd, rel=1e-9)


def test_start_values_fill_absent_indices_round_integers_and_keep_within_bounds():
    m = build_model(three_quarters())
    start = {
        "racks_built": {("alpha", "rack10", 0): 2.6, ("alpha", "rack10", 1): 500.0},
        "served_gpu_hours": {("acme", "alpha", "rack10", 0, "low"): -3.0},
    }
    values = {var.name: value for var, value in start_values(m, start)}
    assert values["racks_built[alpha,rack10,0]"] == 3.0
    assert values["racks_built[alpha,rack10,1]"] == m.racks_built["alpha", "rack10", 1].ub == 100
    assert values["racks_built[alpha,rack10,2]"] == 0.0  # absent: 0
    assert values["served_gpu_hours[acme,alpha,rack10,0,low]"] == 0.0  # below its lower bound 0
    assert len(values) == len(m.racks_built) + len(m.served_gpu_hours)  # the rest is left to HiGHS


def test_a_start_naming_no_variable_of_the_model_is_refused():
    with pytest.raises(ValueError, match="racks_build"):
        list(start_values(build_model(three_quarters()), {"racks_build": {}}))


def test_legacy_refuses_a_start():
    scenario = three_quarters()
    start = start_from_plan(solved(scenario))
    with pytest.raises(ValueError, match="legacy interface takes no MIP start"):
        solve_model(build_model(scenario), scenario.solver, "legacy", mip_start=start)


def test_the_pipeline_passes_the_start_and_verifies_the_plan(tmp_path):
    plan = solved(three_quarters())
    log = tmp_path / "highs.log"
    started = solve_scenario(logged(log), mip_start=start_from_plan(plan))
    assert started.verification.passed
    assert start_value_in_log(log) == pytest.approx(plan.solver.objective_usd, rel=1e-9)


def test_start_from_a_plan_names_the_models_own_variables():
    scenario = three_quarters()
    plan = solved(scenario)
    start = start_from_plan(plan)
    m = build_model(scenario)
    assert set(start) == set(START_COMPONENTS)
    for name, values in start.items():
        # A plan lists power for every site and quarter; the model has blocks_ordered only where
        # a block can still arrive, so entries outside its index must be "no block ordered".
        index = set(getattr(m, name).index_set())
        assert all(value == 0 for key, value in values.items() if key not in index), name
        assert name == "blocks_ordered" or set(values) <= index, name
    assert start["served_gpu_hours"] and start["quota_gpus"]
    built = {idx: v for idx, v in start["racks_built"].items() if v}
    assert built == {
        (r.site, r.rack_type, plan.periods.index(r.period)): r.racks_built
        for r in plan.racks
        if r.racks_built
    }
