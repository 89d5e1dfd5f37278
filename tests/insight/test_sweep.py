"""Sweeps on the stylised boom/bust case: monotone effects that must hold, and the table."""

from __future__ import annotations

import csv
import io
import itertools

from planner.sweep import grid, point_label, run_sweep, table_rows, to_csv
from tests.insight.helpers import stylised_data


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
    values = [r.summary["objective_usd"] for r in results]
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
        "objective_usd",
        "cvar_usd",
        "alpha_racks",
        "alpha_gpus",
        "alpha_mw",
        "expected_buyback_usd",
        "expected_revenue_share_usd",
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
