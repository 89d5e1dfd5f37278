"""Figures a planner would rather look at than read, drawn from a plan file (PNG, matplotlib Agg).

Each function draws one figure, writes it, and returns a `Figure` record with the path and the
series it plotted, so tests (and curious readers) can check what the picture shows.
Figures are built on `matplotlib.figure.Figure` directly: no pyplot global state, no display.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from planner.schema.plan import Plan

MUSD = 1e6


@dataclass
class Figure:
    path: Path
    series: dict[str, Any] = field(default_factory=dict)


def _save(fig: MplFigure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def buildout_series(plan: Plan) -> dict[str, dict[str, list[float]]]:
    """Per site: available MW, IT load MW and the power cap per quarter."""
    cap = {s.id: s.power_cap_mw for s in plan.sites}
    out: dict[str, dict[str, list[float]]] = {
        s.id: {"available_mw": [], "it_load_mw": [], "power_cap_mw": [], "gpus_installed": []}
        for s in plan.sites
    }
    for row in plan.site_periods:
        series = out[row.site]
        series["available_mw"].append(row.available_mw)
        series["it_load_mw"].append(row.it_load_mw)
        series["power_cap_mw"].append(cap[row.site])
        series["gpus_installed"].append(float(row.gpus_installed))
    return out


def plot_buildout(plan: Plan, out_dir: str | Path) -> Figure:
    """Capacity build-out per site over time against its power cap (MW)."""
    series = buildout_series(plan)
    fig = MplFigure(figsize=(4.0 * len(series), 3.4))
    x = list(range(len(plan.periods)))
    for n, (site, s) in enumerate(series.items()):
        ax = fig.add_subplot(1, len(series), n + 1)
        ax.plot(x, s["available_mw"], drawstyle="steps-mid", label="energised MW")
        ax.plot(x, s["it_load_mw"], marker="o", markersize=3, linestyle="none", label="racks' facility MW")
        ax.plot(x, s["power_cap_mw"], linestyle="--", color="red", label="power cap")
        ax.set_title(site)
        ax.set_xticks(x[:: max(1, len(x) // 4)], [plan.periods[t] for t in x[:: max(1, len(x) // 4)]])
        ax.set_ylabel("MW")
        ax.set_ylim(bottom=0)
        if n == 0:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{plan.scenario_name}: power build-out per site")
    return Figure(_save(fig, Path(out_dir) / "buildout.png"), {"periods": plan.periods, "sites": series})


def demand_series(plan: Plan) -> dict[str, Any]:
    """Total demand (average GPUs) per scenario and quarter, and installed GPUs per quarter."""
    h = plan.hours_per_period
    index = {p: t for t, p in enumerate(plan.periods)}
    demand: dict[str, list[float]] = {s: [0.0] * len(plan.periods) for s in plan.scenario_probabilities}
    served: dict[str, list[float]] = {s: [0.0] * len(plan.periods) for s in plan.scenario_probabilities}
    for rec in plan.served:
        demand[rec.scenario][index[rec.period]] += rec.served_gpu_hours / h
        served[rec.scenario][index[rec.period]] += rec.served_gpu_hours / h
    for rec in plan.unserved:
        demand[rec.scenario][index[rec.period]] += rec.unserved_gpu_hours / h
    installed = [0.0] * len(plan.periods)
    for row in plan.site_periods:
        installed[index[row.period]] += row.gpus_installed
    return {
        "periods": plan.periods,
        "demand_gpus": demand,
        "served_gpus": served,
        "installed_gpus": installed,
    }


def plot_demand(plan: Plan, out_dir: str | Path) -> Figure:
    """Demand per scenario against the GPUs installed (the same in every scenario)."""
    series = demand_series(plan)
    fig = MplFigure(figsize=(6.4, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    x = list(range(len(plan.periods)))
    for scenario, values in series["demand_gpus"].items():
        p = plan.scenario_probabilities[scenario]
        ax.plot(x, values, marker="o", markersize=3, label=f"demand, {scenario} (p={p:.2f})")
    ax.step(x, series["installed_gpus"], where="post", color="black", linewidth=2, label="GPUs installed")
    ax.set_xticks(x[:: max(1, len(x) // 6)], [plan.periods[t] for t in x[:: max(1, len(x) // 6)]])
    ax.set_ylabel("GPUs (quarterly average)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title(f"{plan.scenario_name}: demand per scenario vs installed GPUs")
    return Figure(_save(fig, Path(out_dir) / "demand.png"), series)


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


def plot_value_distribution(plan: Plan, out_dir: str | Path) -> Figure:
    """Value in each scenario (one bar each, worst at the bottom, probability in the label),
    with the expected value and CVaR marked: the spread is the risk the build takes."""
    series = value_series(plan)
    values = [v / MUSD for v in series["value_usd"]]
    labels = [f"{s} (p={p:.2f})" for s, p in zip(series["scenarios"], series["probabilities"], strict=True)]
    fig = MplFigure(figsize=(6.4, 1.6 + 0.35 * len(values)))
    ax = fig.add_subplot(1, 1, 1)
    y = list(range(len(values)))
    colours = ["tab:red" if v < 0 else "tab:blue" for v in values]
    ax.barh(y, values, color=colours, alpha=0.75, height=0.6)
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.axvline(series["expected_value_usd"] / MUSD, color="green", label="expected value")
    if series["cvar_usd"] is not None:
        ax.axvline(
            series["cvar_usd"] / MUSD,
            color="red",
            linestyle="--",
            label=f"CVaR (alpha {series['cvar_alpha']:g})",
        )
    ax.set_xlabel(f"discounted value, US$ M ({plan.perspective})")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{plan.scenario_name}: value across scenarios")
    return Figure(_save(fig, Path(out_dir) / "value.png"), series)


def plot_plan(plan: Plan, out_dir: str | Path) -> list[Figure]:
    return [plot_buildout(plan, out_dir), plot_demand(plan, out_dir), plot_value_distribution(plan, out_dir)]


def heatmap_series(
    rows: Sequence[Mapping[str, Any]], x_path: str, y_path: str | None, metric: str
) -> dict[str, Any]:
    """A metric on the grid of two swept paths (or one path and a single row); None where no plan."""
    xs: list[Any] = []
    ys: list[Any] = []
    cell: dict[tuple[Any, Any], float | None] = defaultdict(lambda: None)
    for row in rows:
        x, y = row[x_path], (row[y_path] if y_path else "")
        if x not in xs:
            xs.append(x)
        if y not in ys:
            ys.append(y)
        cell[x, y] = row.get(metric)
    matrix = [[cell[x, y] for x in xs] for y in ys]
    return {"x_path": x_path, "y_path": y_path, "metric": metric, "x": xs, "y": ys, "values": matrix}


def plot_sweep_heatmap(
    rows: Sequence[Mapping[str, Any]],
    x_path: str,
    y_path: str | None,
    out_path: str | Path,
    metric: str = "expected_value_usd",
) -> Figure:
    """Heat-map of a money metric (US$ M) over the swept values; blank cells had no plan."""
    series = heatmap_series(rows, x_path, y_path, metric)
    data = [[float("nan") if v is None else v / MUSD for v in row] for row in series["values"]]
    fig = MplFigure(figsize=(1.2 * len(series["x"]) + 2.5, 0.8 * len(series["y"]) + 1.8))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(series["x"])), [str(v) for v in series["x"]])
    ax.set_yticks(range(len(series["y"])), [str(v) for v in series["y"]])
    ax.set_xlabel(x_path)
    ax.set_ylabel(y_path or "")
    for yi, row in enumerate(data):
        for xi, v in enumerate(row):
            if v == v:  # not NaN
                ax.text(xi, yi, f"{v:,.0f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label=f"{metric.removesuffix('_usd')} (US$ M)")
    ax.set_title("sweep")
    return Figure(_save(fig, Path(out_path)), series)
