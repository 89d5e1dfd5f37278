"""Sweeps on the stylised boom/bust case: monotone effects that must hold, and the table."""

from __future__ import annotations

import csv
import io
import itertools

import pytest

from planner.errors import ScenarioError, UserError
from planner.insight.sweep import (
    default_solver,
    grid,
    grid_positions,
    nearest_solved,
    plan_summary,
    point_label,
    run_sweep,
    sweep_points,
    table_rows,
    to_csv,
)
from planner.pipeline import solve_scenario
from planner.solve import decomposition, interfaces
from planner.solve.starts import start_from_plan
from tests.planner.insight.helpers import solved, stylised_data, three_quarters


def test_grid_is_the_cross_product_first_axis_slowest():
    points = grid([("a", [1, 2]), ("b", ["x", "y"])])
    assert points == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert point_label({"sites[batam].power_cap_mw": 300}) == "batam-power_cap_mw=300"


def test_higher_covered_share_never_lowers_the_clouds_build():
    # Building pays exactly when the share exceeds 0.74 (see helpers.stylised_data).
    shares = [0.0, 0.5, 0.7, 0.8, 1.0]
    results = run_sweep(stylised_data(), [("terms.buyback_share", shares)], source="test")
    built = [r.summary["alpha_racks"] for r in results]
    assert built == sorted(built)
    assert built[0] == 0 and built[-1] == 1


def test_higher_revenue_share_never_raises_the_clouds_value():
    results = run_sweep(stylised_data(), [("terms.revenue_share", [0.0, 0.1, 0.2, 0.4])], source="test")
    values = [r.summary["objective_discounted_usd"] for r in results]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(values))
    assert values[0] > values[-1]


def test_table_has_one_row_per_point_with_swept_values():
    results = run_sweep(
        stylised_data(),
        [("terms.buyback_share", [0.5, 1.0]), ("terms.revenue_share", [0.0, 0.1])],
        source="test",
    )
    rows = table_rows(results)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(parsed) == 4
    assert {
        "terms.buyback_share",
        "terms.revenue_share",
        "objective_discounted_usd",
        "cvar_discounted_usd",
        "alpha_racks",
        "alpha_gpus",
        "alpha_mw",
        "expected_buyback_undiscounted_usd",
        "expected_revenue_share_undiscounted_usd",
        "solver_status",
        "mip_gap",
        "solve_s",
    } <= set(parsed[0])
    assert [r["terms.buyback_share"] for r in parsed] == ["0.5", "0.5", "1.0", "1.0"]


def test_a_point_without_a_plan_is_recorded_and_the_sweep_goes_on():
    data = stylised_data()
    data["sites"][0]["existing_racks"] = {"rack10": 5}
    results = run_sweep(data, [("sites[alpha].gpu_cap", [10, 100])], source="test")
    assert results[0].plan is None and results[0].exit_code == 3 and results[0].error
    assert results[1].plan is not None


def test_each_point_starts_from_the_nearest_solved_point():
    assert grid_positions([("a", [1, 2]), ("b", [3, 4, 5])])[:4] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert nearest_solved((1, 0), []) is None
    assert nearest_solved((1, 0), [(0, 0), (0, 1), (0, 2)]) == (0, 0)
    assert nearest_solved((1, 1), [(0, 0), (0, 1), (1, 0)]) == (1, 0)  # tie: the last solved

    offered = []

    def solve(scenario, start):
        offered.append(start)
        return solve_scenario(scenario)

    results = run_sweep(
        stylised_data(),
        [("terms.buyback_share", [0.5, 1.0]), ("terms.revenue_share", [0.0, 0.1])],
        source="test",
        solve=solve,
    )
    assert offered[0] is None and all(s is not None for s in offered[1:])
    assert [r.start_from for r in results] == [
        None,
        "buyback_share=0.5_revenue_share=0.0",
        "buyback_share=0.5_revenue_share=0.0",
        "buyback_share=1.0_revenue_share=0.0",
    ]
    assert offered[3]["racks_built"] == start_from_plan(results[2].plan)["racks_built"]
    assert table_rows(results)[1]["start_from"] == "buyback_share=0.5_revenue_share=0.0"


def test_a_start_from_a_neighbours_plan_keeps_the_optimum():
    neighbour = solved(three_quarters())
    scenario = three_quarters(lambda data: data["terms"].update(revenue_share=0.2))
    cold = solve_scenario(scenario)
    warm = solve_scenario(scenario, mip_start=start_from_plan(neighbour))
    assert warm.verification.passed
    assert warm.solver.objective_usd == pytest.approx(cold.solver.objective_usd, rel=0.011)


def test_a_cold_sweep_offers_no_start():
    offered = []

    def solve(scenario, start):
        offered.append((start, scenario.solver.rounded_start))
        return solve_scenario(scenario)

    results = run_sweep(
        stylised_data(), [("terms.revenue_share", [0.0, 0.1, 0.2])], source="test", solve=solve, warm=False
    )
    assert offered == [(None, False)] * 3  # neither a neighbour's plan nor a rounded start
    assert [r.start_from for r in results] == [None, None, None]
    assert all(r.plan.solver.start_usd is None for r in results)


def test_points_on_the_legacy_interface_are_solved_cold():
    data = stylised_data()
    data["solver"]["interface"] = "legacy"
    results = run_sweep(data, [("terms.revenue_share", [0.0, 0.1])], source="test")
    assert all(r.plan is not None and r.plan.solver.interface == "legacy" for r in results)
    assert [r.start_from for r in results] == [None, None]


def test_the_default_sweep_starts_each_point_and_fills_value_of_information_when_asked():
    results = run_sweep(
        stylised_data(),
        [("terms.revenue_share", [0.0, 0.1])],
        source="test",
        solve=default_solver(value_of_information=True),
    )
    assert results[1].start_from == "revenue_share=0.0"
    for result in results:
        assert result.summary["evpi_discounted_usd"] >= 0.0 and result.summary["vss_discounted_usd"] >= 0.0


def test_a_decomposed_sweep_starts_each_point_s_loop_from_its_neighbour_s_plan(monkeypatch):
    # A MIP start used to send a decomposed solve to the extensive form: every point after the
    # first. Each point's Benders loop now starts from its neighbour's racks, blocks and quotas.
    data = stylised_data()
    data["solver"]["method"] = "decomposition"
    starts = []
    decompose = decomposition.decompose

    def kept(*args, **kwargs):
        starts.append(kwargs.get("start"))
        return decompose(*args, **kwargs)

    def no_fallback(*args, **kwargs):
        raise AssertionError("the decomposition fell back to the extensive form")

    monkeypatch.setattr(decomposition, "decompose", kept)
    monkeypatch.setattr(interfaces, "_fallback", no_fallback)
    results = run_sweep(data, [("terms.revenue_share", [0.0, 0.1])], source="test")
    assert starts[0] is None and starts[1]
    assert results[1].start_from == "revenue_share=0.0" and results[1].plan.solver.start == "given"
    assert all(r.plan.verification.passed for r in results)


def test_a_sweep_varying_solver_threads_gets_a_plan_at_every_point():
    # HiGHS sizes a thread's scheduler at its first run: the second count's points failed
    # ("Not Set", reported as out of time) in a sweep run here.
    results = run_sweep(
        stylised_data(), [("solver.threads", [1, 2]), ("terms.buyback_share", [0.6, 0.9])], source="t"
    )
    assert [r.error for r in results] == [None] * 4
    assert all(r.plan is not None for r in results)


def test_two_spellings_of_one_field_are_refused_before_any_solve():
    # 'sites[alpha]' and 'sites[0]' name one site: the last axis won at every point and the
    # files were named after values never used.
    data = stylised_data()
    for axes in (
        [("sites[alpha].gpu_cap", [10, 100]), ("sites[0].gpu_cap", [20, 200])],
        [("terms.buyback_share", [0.6, 0.9]), ("terms. buyback_share", [0.7])],
    ):
        with pytest.raises(UserError, match="name the same field"):
            sweep_points(data, axes, source="t")


def test_a_point_whose_file_name_would_be_too_long_is_refused_before_any_solve():
    data = stylised_data()
    axes = [("terms.revenue_share", [0.1]), ("name", ["x" * 240])]
    with pytest.raises(UserError, match=r"file name would take 263 bytes.*--set name makes 245") as refused:
        sweep_points(data, axes, source="t")
    assert "shorter values for --set name" in refused.value.details[0]


def test_bad_highs_options_at_a_point_are_refused_naming_the_point():
    data = stylised_data()
    with pytest.raises(ScenarioError, match=r"point extra=.*solver.extra.no_such_option"):
        sweep_points(data, [("solver.extra", [{}, {"no_such_option": 1}])], source="t")


def test_every_money_column_of_a_sweep_names_its_basis():
    # sweep.csv had expected_buyback_usd (undiscounted) beside expected_value_usd (discounted).
    from tests.infra.plan_factory import make_plan

    money = [key for key in plan_summary(make_plan()) if key.endswith("_usd")]
    assert sorted(money) == [
        "cloud_cvar_discounted_usd",
        "cloud_expected_discounted_usd",
        "cvar_discounted_usd",
        "evpi_discounted_usd",
        "expected_buyback_undiscounted_usd",
        "expected_credit_loss_undiscounted_usd",
        "expected_revenue_share_undiscounted_usd",
        "expected_value_discounted_usd",
        "guarantor_cvar_discounted_usd",
        "guarantor_expected_discounted_usd",
        "objective_discounted_usd",
        "syndicate_cvar_discounted_usd",
        "syndicate_expected_discounted_usd",
        "vss_discounted_usd",
    ]
