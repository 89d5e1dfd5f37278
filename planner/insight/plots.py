"""Figures a planner would rather look at than read, drawn from a plan file (PNG, matplotlib Agg).

Each `draw_*` function draws one figure in memory; each `plot_*` writes it and returns a `Figure`
record with the path and the series it plotted, so tests (and curious readers) can check what the
picture shows. Files are written whole or not at all (`save_figure`, `write_files_atomically`):
`plot_plan` writes its three figures together or none of them.
Figures are built on `matplotlib.figure.Figure` directly: no pyplot global state, no display.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter
from matplotlib.typing import RcKeyType

from planner.errors import UserError
from planner.files import not_regular, temporary_beside
from planner.schema.plan import Plan
from planner.schema.scenario import Scenario

MUSD = 1e6
P = ParamSpec("P")
R = TypeVar("R")
Drawn = tuple[MplFigure, dict[str, Any]]
"""A figure drawn in memory, with the series it plots; written by `save_figure` or, with others,
by `write_files_atomically`."""
THOUSANDS = FuncFormatter(lambda value, _pos: f"{value:,.0f}")


@dataclass
class Figure:
    path: Path
    series: dict[str, Any] = field(default_factory=dict)


DPI = 150
"""Written at 150 dpi with 8-10 pt text: legible when shown at the size written."""
FONT: dict[RcKeyType, Any] = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8}


def _figure(width_in: float, height_in: float) -> MplFigure:
    return MplFigure(figsize=(width_in, height_in), layout="constrained")


def _fonts(draw: Callable[P, R]) -> Callable[P, R]:
    """Draw with FONT's sizes, without touching matplotlib's global settings for anyone else."""

    @functools.wraps(draw)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(FONT):
            return draw(*args, **kwargs)

    return wrapped


def figure_png(fig: MplFigure) -> bytes:
    """The figure as PNG bytes, drawn in memory: nothing is written until every figure is drawn."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    with matplotlib.rc_context(FONT), warnings.catch_warnings():
        # Very long labels (an edited plan's ids) squeeze the axes: draw them anyway.
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _new_directories(directory: Path) -> list[Path]:
    """`directory` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


def write_files_atomically(files: Mapping[Path, bytes]) -> list[Path]:
    """Write every file or none: each target is checked first (a directory where a PNG goes is
    refused before anything is written), each file is written in full beside its target
    (`planner.files.temporary_beside`) and only then are they renamed into place. `savefig` to a
    path is not atomic: a failing run left a half-written figure, or some figures and not others.
    Directories made for them are removed again if writing fails."""
    for path in files:
        odd = not_regular(path)
        if odd is not None:
            raise UserError(
                f"{path}: {odd}, not a figure; no figure was written",
                details=["Fix: move it away, or write the figures to another directory (-o)"],
            )
    given = list(files)
    # As `write_atomic`: where a target is a symbolic link to a regular file, that file is
    # replaced and the link stays.
    files = {path.resolve() if path.is_symlink() else path: data for path, data in files.items()}
    made = sorted({d for path in files for d in _new_directories(path.parent)}, key=lambda d: -len(d.parts))
    staged: list[tuple[Path, Path, bool]] = []
    moved: list[Path] = []
    try:
        for path in files:
            path.parent.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            try:
                like: os.stat_result | None = os.stat(path)
            except FileNotFoundError:
                like = None
            staged.append((temporary_beside(path, data, like), path, like is not None))
        for tmp, path, existed in staged:
            os.replace(tmp, path)
            if not existed:
                moved.append(path)
    except BaseException:
        for tmp, _path, _existed in staged:
            tmp.unlink(missing_ok=True)
        for path in moved:
            path.unlink(missing_ok=True)
        for directory in made:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return given


def save_figure(fig: MplFigure, path: str | Path) -> Path:
    """Write one figure atomically (a failed run leaves the file as it was): the sweep's heat-map
    and any single figure."""
    path = Path(path)
    write_files_atomically({path: figure_png(fig)})
    return path


def _quarter_ticks(ax: Any, periods: Sequence[str], most: int = 6) -> None:
    step = max(1, -(-len(periods) // most))
    ticks = list(range(0, len(periods), step))
    ax.set_xticks(ticks, [periods[t] for t in ticks])


def capex_series(plan: Plan, scenario: Scenario) -> dict[str, dict[str, list[float]]]:
    """Per site: purchase capex per quarter, US$ (racks bought x their price, and power blocks
    ordered x block MW x power capex per MW), from the plan's decisions and the scenario's prices."""
    index = {p: t for t, p in enumerate(plan.periods)}
    rack_price = {r.id: r.capex_usd for r in scenario.rack_types}
    out = {
        s.id: {"racks_usd": [0.0] * len(plan.periods), "power_usd": [0.0] * len(plan.periods)}
        for s in plan.sites
    }
    for r in plan.racks:
        out[r.site]["racks_usd"][index[r.period]] += r.racks_built * rack_price[r.rack_type]
    for p in plan.power:
        site = scenario.site(p.site)
        cost = p.blocks_ordered * site.power_block_mw * site.power_capex_usd_per_mw
        out[p.site]["power_usd"][index[p.period]] += cost
    return out


def buildout_series(plan: Plan) -> dict[str, dict[str, Any]]:
    """Per site and quarter: racks installed by type, GPUs installed, energised MW, the racks'
    facility MW and the power cap. Each row goes to its quarter's place, whatever the file's order
    (`read_plan` ensures one row per site and quarter)."""
    index = {p: t for t, p in enumerate(plan.periods)}
    periods = len(plan.periods)
    cap = {s.id: s.power_cap_mw for s in plan.sites}
    out: dict[str, dict[str, Any]] = {
        s.id: {
            "available_mw": [0.0] * periods,
            "it_load_mw": [0.0] * periods,
            "power_cap_mw": [cap[s.id]] * periods,
            "gpus_installed": [0.0] * periods,
            "racks_by_type": {r.id: [0] * periods for r in plan.rack_types},
        }
        for s in plan.sites
    }
    for row in plan.site_periods:
        series, t = out[row.site], index[row.period]
        series["available_mw"][t] = row.available_mw
        series["it_load_mw"][t] = row.it_load_mw
        series["gpus_installed"][t] = float(row.gpus_installed)
        for rack_id, racks in series["racks_by_type"].items():
            racks[t] = row.racks_by_type.get(rack_id, 0)
    return out


@_fonts
def draw_buildout(plan: Plan, scenario: Scenario | None = None) -> Drawn:
    """Per site (one column each): racks installed by type with the GPUs they hold, power
    energised against the racks' need and the site's cap, and (given the scenario, whose prices
    the plan does not carry) the capex spent each quarter."""
    series = buildout_series(plan)
    capex = capex_series(plan, scenario) if scenario is not None else None
    rows = 3 if capex else 2
    fig = _figure(3.6 * len(series) + 0.6, 2.5 * rows + 0.6)
    axes = fig.subplots(rows, len(series), sharex=True, squeeze=False)
    x = list(range(len(plan.periods)))
    colours = ["tab:green", "tab:olive", "tab:cyan", "tab:purple", "tab:brown"]
    totals: dict[str, float] = {}
    for n, (site, s) in enumerate(series.items()):
        ax = axes[0][n]
        bottom = [0.0] * len(x)
        for k, (rack_id, racks) in enumerate(s["racks_by_type"].items()):
            if any(racks):
                ax.bar(x, racks, bottom=bottom, color=colours[k % len(colours)], label=rack_id, width=0.8)
                bottom = [b + r for b, r in zip(bottom, racks, strict=True)]
        gpus = s["gpus_installed"][-1] if s["gpus_installed"] else 0
        ax.set_title(f"{site}: racks installed ({gpus:,.0f} GPUs at the end)")
        ax.set_ylabel("racks")
        ax.legend(loc="upper left")
        gpu_ax = ax.twinx()
        gpu_ax.plot(x, s["gpus_installed"], color="black", linewidth=1.5, label="GPUs")
        gpu_ax.set_ylabel("GPUs (black line)")
        gpu_ax.set_ylim(bottom=0)
        gpu_ax.yaxis.set_major_formatter(THOUSANDS)
        ax = axes[1][n]
        ax.step(x, s["available_mw"], where="mid", label="energised MW")
        ax.plot(x, s["it_load_mw"], marker="o", markersize=3, linestyle="none", label="racks' facility MW")
        ax.plot(x, s["power_cap_mw"], linestyle="--", color="red", label="power cap")
        ax.set_title(f"{site}: power (cap {s['power_cap_mw'][0]:,.0f} MW)")
        ax.set_ylabel("MW")
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right")
        if capex:
            c = capex[site]
            racks_m = [v / MUSD for v in c["racks_usd"]]
            power_m = [v / MUSD for v in c["power_usd"]]
            totals[site] = sum(c["racks_usd"]) + sum(c["power_usd"])
            ax = axes[2][n]
            ax.bar(x, racks_m, color="tab:green", label="racks", width=0.8)
            ax.bar(x, power_m, bottom=racks_m, color="tab:orange", label="power blocks", width=0.8)
            ax.set_title(f"{site}: capex, US$ {totals[site] / MUSD:,.0f} M in all, undiscounted")
            ax.set_ylabel("US$ M per quarter, undiscounted")
            tallest = max((r + p for r, p in zip(racks_m, power_m, strict=True)), default=0.0)
            ax.set_ylim(0, max(tallest, 1.0) * 1.3)  # head room for the legend
            ax.legend(loc="upper right")
        _quarter_ticks(axes[-1][n], plan.periods, most=4)
    total = f"; capex US$ {sum(totals.values()) / MUSD:,.0f} M undiscounted" if capex else ""
    fig.suptitle(f"{plan.scenario_name}: build-out per site{total}", fontsize=11)
    out = {"periods": plan.periods, "sites": series, "capex_usd": capex, "capex_total_usd": totals or None}
    return fig, out


def plot_buildout(plan: Plan, out_dir: str | Path, scenario: Scenario | None = None) -> Figure:
    """`draw_buildout`, written to OUT_DIR/buildout.png."""
    fig, series = draw_buildout(plan, scenario)
    return Figure(save_figure(fig, Path(out_dir) / "buildout.png"), series)


def demand_series(plan: Plan) -> dict[str, Any]:
    """Average GPUs per quarter: demand per scenario; and, expected over scenarios, demand,
    served (per site), unserved, and installed (per site and in all)."""
    h = plan.hours_per_period
    periods = len(plan.periods)
    index = {p: t for t, p in enumerate(plan.periods)}
    prob = plan.scenario_probabilities
    demand: dict[str, list[float]] = {s: [0.0] * periods for s in prob}
    served: dict[str, list[float]] = {s: [0.0] * periods for s in prob}
    served_by_site: dict[str, list[float]] = {s.id: [0.0] * periods for s in plan.sites}
    unserved = [0.0] * periods
    for rec in plan.served:
        t = index[rec.period]
        demand[rec.scenario][t] += rec.served_gpu_hours / h
        served[rec.scenario][t] += rec.served_gpu_hours / h
        served_by_site[rec.site][t] += prob[rec.scenario] * rec.served_gpu_hours / h
    for short in plan.unserved:
        t = index[short.period]
        demand[short.scenario][t] += short.unserved_gpu_hours / h
        unserved[t] += prob[short.scenario] * short.unserved_gpu_hours / h
    installed = [0.0] * periods
    installed_by_site: dict[str, list[float]] = {s.id: [0.0] * periods for s in plan.sites}
    for row in plan.site_periods:
        installed[index[row.period]] += row.gpus_installed
        installed_by_site[row.site][index[row.period]] += row.gpus_installed
    expected_demand = [sum(prob[s] * demand[s][t] for s in prob) for t in range(periods)]
    return {
        "periods": plan.periods,
        "demand_gpus": demand,
        "served_gpus": served,
        "installed_gpus": installed,
        "expected_demand_gpus": expected_demand,
        "expected_served_gpus_by_site": served_by_site,
        "expected_unserved_gpus": unserved,
        "installed_gpus_by_site": installed_by_site,
    }


@_fonts
def draw_demand(plan: Plan) -> Drawn:
    """Per site: GPUs installed against the GPUs expected to be served there; then all sites
    together: demand (per scenario and expected) against served plus unserved. Unserved demand
    belongs to a tenant, not a site, so it is shown only for all sites together."""
    series = demand_series(plan)
    sites = list(series["installed_gpus_by_site"])
    columns = min(2, len(sites) + 1)
    rows = -(-(len(sites) + 1) // columns)
    fig = _figure(4.2 * columns + 0.4, 3.2 * rows + 0.5)
    grid = fig.subplots(rows, columns, sharex=True, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for spare in axes[len(sites) + 1 :]:
        spare.set_visible(False)
    axes = axes[: len(sites) + 1]
    x = list(range(len(plan.periods)))
    k = 1e3
    for ax, site in zip(axes, sites, strict=False):
        served = [v / k for v in series["expected_served_gpus_by_site"][site]]
        ax.fill_between(x, served, step="mid", alpha=0.5, color="tab:blue", label="served (expected)")
        ax.step(
            x,
            [v / k for v in series["installed_gpus_by_site"][site]],
            where="mid",
            color="black",
            label="installed",
        )
        ax.set_title(f"{site}: GPUs installed vs served")
        ax.set_ylabel("thousand GPUs (quarterly avg)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        _quarter_ticks(ax, plan.periods, most=4)
    ax = axes[-1]
    served_all = [sum(series["expected_served_gpus_by_site"][s][t] for s in sites) / k for t in x]
    unserved = [v / k for v in series["expected_unserved_gpus"]]
    demand_all = [a + b for a, b in zip(served_all, unserved, strict=True)]
    ax.fill_between(x, served_all, step="mid", color="tab:blue", alpha=0.5, label="served (expected)")
    ax.fill_between(
        x, served_all, demand_all, step="mid", color="tab:red", alpha=0.5, label="unserved (expected)"
    )
    for scenario, values in series["demand_gpus"].items():
        p = plan.scenario_probabilities[scenario]
        ax.plot(
            x, [v / k for v in values], linestyle=":", linewidth=1.2, label=f"demand, {scenario} (p={p:.2f})"
        )
    ax.step(x, [v / k for v in series["installed_gpus"]], where="mid", color="black", label="installed")
    ax.set_title("all sites: demand vs served and unserved")
    ax.set_ylabel("thousand GPUs (quarterly avg)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    _quarter_ticks(ax, plan.periods, most=4)
    fig.suptitle(f"{plan.scenario_name}: demand, served and unserved GPUs", fontsize=11)
    return fig, series


def plot_demand(plan: Plan, out_dir: str | Path) -> Figure:
    """`draw_demand`, written to OUT_DIR/demand.png."""
    fig, series = draw_demand(plan)
    return Figure(save_figure(fig, Path(out_dir) / "demand.png"), series)


def value_series(plan: Plan) -> dict[str, Any]:
    outcomes = sorted(plan.outcomes, key=lambda o: o.objective_value_usd)
    return {
        "scenarios": [o.scenario for o in outcomes],
        "probabilities": [o.probability for o in outcomes],
        "value_usd": [o.objective_value_usd for o in outcomes],
        "expected_value_usd": plan.risk.expected_value_usd,
        "cvar_usd": plan.risk.cvar_usd,
        "cvar_alpha": plan.risk.cvar_alpha,
    }


@_fonts
def draw_value_distribution(plan: Plan) -> Drawn:
    """Value in each scenario (one bar each, worst at the bottom, its figure on the bar and its
    probability in the label), with the expected value and CVaR marked and written: the spread
    is the risk the build takes."""
    series = value_series(plan)
    values = [v / MUSD for v in series["value_usd"]]
    labels = [f"{s}\n(p={p:.2f})" for s, p in zip(series["scenarios"], series["probabilities"], strict=True)]
    fig = _figure(6.4, 1.8 + 0.55 * len(values))
    ax = fig.add_subplot(1, 1, 1)
    y = list(range(len(values)))
    colours = ["tab:red" if v < 0 else "tab:blue" for v in values]
    bars = ax.barh(y, values, color=colours, alpha=0.75, height=0.6)
    bar_labels = [f"{v:,.0f}" for v in values]
    ax.bar_label(bars, labels=bar_labels, padding=3, fontsize=9)
    ax.set_yticks(y, labels)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ev = series["expected_value_usd"] / MUSD
    ax.axvline(ev, color="green", linewidth=2, label=f"expected value {ev:,.0f}")
    if series["cvar_usd"] is not None:
        cvar = series["cvar_usd"] / MUSD
        ax.axvline(
            cvar,
            color="red",
            linestyle="--",
            linewidth=2,
            label=f"CVaR (alpha {series['cvar_alpha']:g}) {cvar:,.0f}",
        )
    low, high = min([0.0, *values]), max([0.0, *values])
    ax.set_xlim(low - 0.05 * (high - low or 1), high + 0.25 * (high - low or 1))  # room for the figures
    ax.set_xlabel(f"discounted value, US$ M ({plan.perspective}'s view)")
    ax.legend(loc="lower right")
    ax.set_title(f"{plan.scenario_name}: value in each scenario")
    return fig, {**series, "bar_labels": bar_labels}


def plot_value_distribution(plan: Plan, out_dir: str | Path) -> Figure:
    """`draw_value_distribution`, written to OUT_DIR/value.png."""
    fig, series = draw_value_distribution(plan)
    return Figure(save_figure(fig, Path(out_dir) / "value.png"), series)


MAX_PLOT_SITES = 64
"""Most sites drawn: the build-out gives each a column 3.6 inches wide (2,000 sites ran past 19 s)."""
MAX_PLOT_SCENARIOS = 500
"""Most scenarios drawn: the value distribution gives each a bar 0.55 inches high."""


def plot_plan(plan: Plan, out_dir: str | Path, scenario: Scenario | None = None) -> list[Figure]:
    """The three figures, written all or none; a plan with more sites or scenarios than a figure can show legibly is
    refused before any is drawn (its numbers are in `dsx plan show --json`)."""
    for what, count, most in (
        ("sites", len(plan.sites), MAX_PLOT_SITES),
        ("scenarios", len(plan.scenario_probabilities), MAX_PLOT_SCENARIOS),
    ):
        if count > most:
            raise UserError(
                f"the plan has {count:,} {what}; the figures show at most {most}",
                details=["Fix: read its figures with dsx plan show PLAN --json"],
            )
    if scenario is not None:
        sites, racks = {s.id for s in scenario.sites}, {r.id for r in scenario.rack_types}
        missing = [s.id for s in plan.sites if s.id not in sites] + [
            r.id for r in plan.rack_types if r.id not in racks
        ]
        if missing:
            raise UserError(
                f"the scenario has no site or rack type {missing[0]!r} that the plan names (was the plan edited?)",
                details=["Fix: pass the scenario file the plan was solved from, or leave --scenario out"],
            )
    out = Path(out_dir)
    drawn = {
        out / "buildout.png": draw_buildout(plan, scenario),
        out / "demand.png": draw_demand(plan),
        out / "value.png": draw_value_distribution(plan),
    }
    # All three drawn before any is written, and written all or none (a directory named value.png
    # once stopped the run after buildout.png and demand.png were written).
    write_files_atomically({path: figure_png(fig) for path, (fig, _series) in drawn.items()})
    return [Figure(path, series) for path, (_fig, series) in drawn.items()]


def axis_name(path: str) -> str:
    """'sites[batam].power_cap_mw' -> 'batam power cap (MW)'; 'terms.buyback_share' -> 'buyback share'."""
    import re

    leaf = path.split(".")[-1]
    owner = re.search(r"\[([^\]]+)\][^\[]*$", path)
    unit = ""
    for suffix, shown in (("_mw", "MW"), ("_usd", "US$"), ("_per_gpu_hour", "per GPU-hour"), ("_s", "s")):
        if leaf.endswith(suffix):
            leaf, unit = leaf.removesuffix(suffix), shown
            break
    words = leaf.replace("_", " ")
    return f"{owner.group(1) + ' ' if owner else ''}{words}{f' ({unit})' if unit else ''}"


def _cell_key(value: Any) -> Any:
    """A swept value as a grid key: a list or mapping (e.g. a site's rack types) by its JSON."""
    import json

    try:
        hash(value)
    except TypeError:
        return ("json", json.dumps(value, sort_keys=True, default=str))
    return value


def heatmap_series(
    rows: Sequence[Mapping[str, Any]], x_path: str, y_path: str | None, metric: str
) -> dict[str, Any]:
    """A metric on the grid of two swept paths (or one path and a single row); None where no plan."""
    x_of: dict[Any, Any] = {}
    y_of: dict[Any, Any] = {}
    cell: dict[tuple[Any, Any], float | None] = defaultdict(lambda: None)
    for row in rows:
        x, y = row[x_path], (row[y_path] if y_path else "")
        kx, ky = _cell_key(x), _cell_key(y)
        x_of.setdefault(kx, x)
        y_of.setdefault(ky, y)
        cell[kx, ky] = row.get(metric)
    matrix = [[cell[x, y] for x in x_of] for y in y_of]
    xs, ys = list(x_of.values()), list(y_of.values())
    return {"x_path": x_path, "y_path": y_path, "metric": metric, "x": xs, "y": ys, "values": matrix}


METRIC_NAMES = {
    "expected_value_discounted_usd": "expected value, discounted",
    "objective_discounted_usd": "objective, discounted",
    "cvar_discounted_usd": "CVaR, discounted",
    "expected_buyback_undiscounted_usd": "expected buyback, undiscounted",
    "expected_revenue_share_undiscounted_usd": "expected revenue share, undiscounted",
}


@_fonts
def plot_sweep_heatmap(
    rows: Sequence[Mapping[str, Any]],
    x_path: str,
    y_path: str | None,
    out_path: str | Path,
    metric: str = "expected_value_discounted_usd",
    title: str | None = None,
) -> Figure:
    """Heat-map of a money metric (US$ M) over the swept values, each cell with its figure;
    blank cells had no plan. Axes are named in words with the swept path below."""
    series = heatmap_series(rows, x_path, y_path, metric)
    data = [[float("nan") if v is None else v / MUSD for v in row] for row in series["values"]]
    fig = _figure(1.3 * len(series["x"]) + 3.2, 0.7 * len(series["y"]) + 2.4)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(series["x"])), [str(v) for v in series["x"]])
    ax.set_yticks(range(len(series["y"])), [str(v) for v in series["y"]])
    ax.set_xlabel(f"{axis_name(x_path)}\n[{x_path}]")
    ax.set_ylabel(f"{axis_name(y_path)}\n[{y_path}]" if y_path else "")
    finite = [v for row in data for v in row if v == v]
    middle = (min(finite) + max(finite)) / 2 if finite else 0.0
    for yi, row in enumerate(data):
        for xi, v in enumerate(row):
            if v == v:  # not NaN
                colour = "black" if v > middle else "white"  # viridis is light at the top
                ax.text(xi, yi, f"{v:,.0f}", ha="center", va="center", color=colour, fontsize=9)
            else:
                ax.text(xi, yi, "no plan", ha="center", va="center", color="grey", fontsize=8)
    name = METRIC_NAMES.get(metric, metric.removesuffix("_usd").replace("_", " "))
    fig.colorbar(image, ax=ax, label=f"{name} (US$ M)")
    by = axis_name(x_path) + (f" and {axis_name(y_path)}" if y_path else "")
    ax.set_title(title or f"{name.capitalize()} (US$ M) by {by}")
    return Figure(save_figure(fig, out_path), series)
