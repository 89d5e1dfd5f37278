"""Plots are written, non-empty PNGs, whole or not at all, and plot the series the plan holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from matplotlib.figure import Figure as MplFigure

from planner.errors import UserError
from planner.insight.plots import (
    buildout_series,
    plot_buildout,
    plot_demand,
    plot_plan,
    plot_sweep_heatmap,
    plot_value_distribution,
    write_files_atomically,
)
from tests.planner.insight.helpers import solved, three_quarters

PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def plan():
    return solved(three_quarters())


def _is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:4] == PNG


def test_buildout_plots_power_against_the_cap(plan, tmp_path):
    figure = plot_buildout(plan, tmp_path)
    assert _is_png(figure.path)
    alpha = figure.series["sites"]["alpha"]
    assert alpha["power_cap_mw"] == [10.0, 10.0, 10.0]
    assert alpha["available_mw"] == [10.0, 10.0, 10.0]
    assert all(
        load <= cap + 1e-9 for load, cap in zip(alpha["it_load_mw"], alpha["power_cap_mw"], strict=True)
    )


def test_demand_plot_has_each_scenarios_demand_and_the_installed_gpus(plan, tmp_path):
    figure = plot_demand(plan, tmp_path)
    assert _is_png(figure.path)
    assert figure.series["demand_gpus"]["low"] == pytest.approx([20.0, 30.0, 40.0])
    assert figure.series["demand_gpus"]["high"] == pytest.approx([40.0, 60.0, 80.0])
    assert figure.series["installed_gpus"] == [r.gpus_installed for r in plan.site_periods]


def test_value_plot_marks_expected_value_and_cvar(plan, tmp_path):
    figure = plot_value_distribution(plan, tmp_path)
    assert _is_png(figure.path)
    s = figure.series
    assert s["value_usd"] == sorted(o.objective_value_usd for o in plan.outcomes)
    assert s["expected_value_usd"] == plan.risk.expected_value_usd
    assert s["cvar_usd"] == plan.risk.cvar_usd == pytest.approx(min(s["value_usd"]))


def test_sweep_heatmap_places_each_point_and_leaves_failed_cells_blank(tmp_path):
    rows = [
        {"a": 1, "b": 10, "expected_value_discounted_usd": 1e6},
        {"a": 1, "b": 20, "expected_value_discounted_usd": 2e6},
        {"a": 2, "b": 10, "expected_value_discounted_usd": 3e6},
        {"a": 2, "b": 20, "expected_value_discounted_usd": None},
    ]
    figure = plot_sweep_heatmap(rows, "b", "a", tmp_path / "sweep.png")
    assert _is_png(figure.path)
    assert figure.series["x"] == [10, 20] and figure.series["y"] == [1, 2]
    assert figure.series["values"] == [[1e6, 2e6], [3e6, None]]


def test_sweep_heatmap_takes_list_and_mapping_values(tmp_path):
    # A sweep of a site's rack types (a list) crashed here after every point was solved.
    rows = [
        {"types": ["a"], "solver": {"x": 1}, "expected_value_discounted_usd": 1e6},
        {"types": ["a", "b"], "solver": {"x": 1}, "expected_value_discounted_usd": 2e6},
    ]
    figure = plot_sweep_heatmap(rows, "types", "solver", tmp_path / "sweep.png")
    assert _is_png(figure.path)
    assert figure.series["x"] == [["a"], ["a", "b"]] and figure.series["y"] == [{"x": 1}]
    assert figure.series["values"] == [[1e6, 2e6]]


def test_buildout_shows_racks_by_type_gpus_and_capex_from_the_scenarios_prices(plan, tmp_path):
    scenario = three_quarters()
    figure = plot_buildout(plan, tmp_path, scenario)
    assert _is_png(figure.path)
    alpha = figure.series["sites"]["alpha"]
    racks = [sum(r.racks_installed for r in plan.racks if r.period == p) for p in plan.periods]
    assert alpha["racks_by_type"]["rack10"] == racks
    assert alpha["gpus_installed"] == [10.0 * n for n in racks]  # 10 GPUs a rack
    built = [sum(r.racks_built for r in plan.racks if r.period == p) for p in plan.periods]
    # US$150,000 a rack in this scenario; no power blocks are bought (10 MW energised, cap 10 MW)
    assert figure.series["capex_usd"]["alpha"]["racks_usd"] == [150_000.0 * n for n in built]
    assert figure.series["capex_total_usd"] == {"alpha": 150_000.0 * sum(built)}


def test_buildout_without_the_scenario_leaves_capex_out(plan, tmp_path):
    assert plot_buildout(plan, tmp_path).series["capex_usd"] is None


def test_demand_is_served_plus_unserved_in_expectation(plan, tmp_path):
    s = plot_demand(plan, tmp_path).series
    # low and high equally likely: expected demand 30, 45, 60
    assert s["expected_demand_gpus"] == pytest.approx([30.0, 45.0, 60.0])
    served = s["expected_served_gpus_by_site"]["alpha"]
    for t in range(3):
        assert served[t] + s["expected_unserved_gpus"][t] == pytest.approx(s["expected_demand_gpus"][t])
        assert served[t] <= s["installed_gpus_by_site"]["alpha"][t] + 1e-6


def test_value_bars_carry_their_figures(plan, tmp_path):
    s = plot_value_distribution(plan, tmp_path).series
    assert s["bar_labels"] == [f"{v / 1e6:,.0f}" for v in s["value_usd"]]


def test_sweep_heatmap_names_its_axes_in_words_and_paths(tmp_path):
    from planner.insight.plots import axis_name

    assert axis_name("terms.buyback_share") == "buyback share"
    assert axis_name("sites[batam].power_cap_mw") == "batam power cap (MW)"
    rows = [{"terms.buyback_share": 0.6, "expected_value_discounted_usd": 1e6}]
    figure = plot_sweep_heatmap(rows, "terms.buyback_share", None, tmp_path / "one.png")
    assert _is_png(figure.path)


def test_buildout_series_follow_the_quarters_not_the_file_order(plan):
    # Rows in another order (as an edited file may hold them) plotted every series backwards.
    racks = [sum(r.racks_installed for r in plan.racks if r.period == p) for p in plan.periods]
    assert racks != racks[::-1]  # so that backwards shows
    shuffled = plan.model_copy(update={"site_periods": list(reversed(plan.site_periods))})
    alpha = buildout_series(shuffled)["alpha"]
    assert alpha["racks_by_type"]["rack10"] == racks
    assert alpha["gpus_installed"] == [10.0 * n for n in racks]
    assert buildout_series(shuffled) == buildout_series(plan)


def test_plot_writes_all_three_figures_or_none(plan, tmp_path):
    # A directory named value.png stopped the run after buildout.png and demand.png were written.
    (tmp_path / "plots" / "value.png").mkdir(parents=True)
    with pytest.raises(UserError) as caught:
        plot_plan(plan, tmp_path / "plots")
    assert "value.png: is a directory" in caught.value.render() and "Fix:" in caught.value.render()
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["value.png"]


def test_a_figure_that_cannot_be_moved_into_place_takes_the_others_back(plan, tmp_path, monkeypatch):
    # The last rename failing (a full disk, a race) leaves neither new figures, nor the directory
    # made for them, nor temporary files.
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        plot_plan(plan, tmp_path / "new" / "plots")
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_a_figure_that_fails_while_drawn_leaves_the_file_it_would_replace(tmp_path, monkeypatch):
    # savefig to the path wrote the file as it drew: a failure left half a sweep.png.
    old = tmp_path / "sweep.png"
    old.write_bytes(b"the last sweep's heat-map")

    def half_written(self, fname, *args, **kwargs):
        if isinstance(fname, (str, os.PathLike)):
            Path(fname).write_bytes(PNG + b"half")
        else:
            fname.write(PNG + b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MplFigure, "savefig", half_written)
    rows = [{"a": 1, "expected_value_usd": 1e6}]
    with pytest.raises(OSError):
        plot_sweep_heatmap(rows, "a", None, old)
    assert old.read_bytes() == b"the last sweep's heat-map"
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.png"]


def test_a_figure_is_written_through_a_link_to_a_file_and_never_over_a_dangling_one(tmp_path):
    # As every other output (planner.files.write_atomic): the file a link names is replaced and
    # the link stays; a link to nothing is refused. The figures' own check replaced the link.
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"old")
    link = tmp_path / "buildout.png"
    link.symlink_to(kept)
    assert write_files_atomically({link: b"new"}) == [link]
    assert link.is_symlink() and kept.read_bytes() == b"new"
    dangling = tmp_path / "value.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(UserError, match="which does not exist, not a figure; no figure was written"):
        write_files_atomically({dangling: b"x", tmp_path / "demand.png": b"y"})
    assert dangling.is_symlink() and not (tmp_path / "demand.png").exists()
