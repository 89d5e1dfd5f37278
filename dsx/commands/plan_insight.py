"""`dsx plan sweep | batch | compare | plot | value-of-information | diagnose`: the planner's insight tools.

Thin edges over `planner.insight.sweep`, `planner.insight.compare`, `planner.insight.plots`, `planner.value_of_information` and
`planner.insight.diagnose`. Exit codes scripts can rely on:

- 0: done (every sweep point has a verified plan; a diagnosed scenario has a plan);
- 2: user error (a bad file, path, override or value; the message names it and the fix);
- 3: no plan (the scenario is infeasible, or no sweep point has a plan);
- 4: partial sweep or batch (some points have no plan; they are listed in sweep.csv, or the
  batch's table, with the reason, and every other point's plan is written).

Sweeps, batches and EVPI/VSS run their solves on `planner.engine`: a local Dask cluster by
default (one worker process per CPU; `--workers 1` solves here), or a running cluster given by
`--cluster ADDRESS` or `DSX_CLUSTER`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dsx.commands.json_out import echo_json
from dsx.commands.notices import gap_text, gap_warning, no_deal_gap_warning
from dsx.commands.numbers import (
    DISCOUNTED,
    UNDISCOUNTED,
    decimals_for,
    fixed,
    money_header,
    musd,
    signed_musd,
)
from dsx.commands.results_dir import BATCH_INDEX, SWEEP_INDEX, ResultsDir, claim
from planner.engine import ENV_CLUSTER, Engine, open_engine
from planner.errors import NoPlanError, UserError
from planner.files import (
    NAME_MAX_BYTES,
    check_output_path,
    load_scenario,
    read_plan,
    read_yaml,
    refuse_overwriting_inputs,
    write_atomic,
)
from planner.insight.overrides import load_overrides, parse_assignment, pick_case
from planner.schema.scenario import Scenario


class PartialSweepError(UserError):
    """Some sweep points have no plan; the others were written."""

    exit_code = 4


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _usd(value: Any) -> float | None:
    """A sweep row's money figure, or None where the point has no plan."""
    return None if value is None or value == "" else float(value)


ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help=f"A running Dask scheduler's address, e.g. tcp://10.0.0.5:8786 (or set {ENV_CLUSTER}); "
        "default: a local cluster, no set-up.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help=f"Local worker processes (default: one per CPU, or {ENV_CLUSTER}'s cluster where set); "
        "1 solves here, one at a time.",
    ),
]


@dataclass
class SweepInputs:
    """What the sweep command parsed: the base, the named case's changes and the grid."""

    base: Path
    data: dict[str, Any]
    changes: dict[str, Any]
    axes: list[Any]
    source: str

    @property
    def points(self) -> int:
        return math.prod(len(values) for _, values in self.axes)  # as `grid` would make them

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.axes]


def parse_sweep_inputs(
    base: Path, assignments: list[str], overrides: Path | None, case: str | None
) -> SweepInputs:
    """Read the base file and the named case and parse the --set axes (user errors here)."""
    base_data = read_yaml(base)
    if not isinstance(base_data, dict):
        load_scenario(base)  # raises the loader's message for a file that is not a mapping
    base_changes: dict[str, Any] = {}
    if case is not None or overrides is not None:
        if case is None or overrides is None:
            raise UserError("--overrides and --case go together", details=["Fix: give both, or neither"])
        base_changes = pick_case(load_overrides(overrides), case, str(overrides))
    axes = [parse_assignment(text) for text in assignments]
    from planner.insight.sweep import check_axes

    check_axes(axes)
    return SweepInputs(base, base_data, base_changes, axes, str(overrides or base))


def run_sweep_with_progress(
    inputs: SweepInputs,
    output: ResultsDir,
    *,
    engine: Engine,
    cold: bool,
    value_of_information: bool,
    at: str | None,
    quiet: bool,
    scenarios: list[Scenario] | None = None,
) -> list[Any]:
    """Solve the grid on `engine` with a progress bar; each verified plan is written here, by
    the client, atomically, as its point finishes. A plan that cannot be written (a full disk)
    fails its point alone, with the reason: the sweep goes on."""
    from planner.insight import sweep

    err = Console(stderr=True)
    with Progress(
        TextColumn("[bold]sweep[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        disable=quiet and not err.is_terminal,
    ) as progress:
        task = progress.add_task(f"on {engine.where}", total=inputs.points)

        def done(_n: int, result: sweep.PointResult) -> None:
            if result.plan is not None:  # only verified plans reach here with a plan
                _write_or_fail(output, f"{result.label}.json", result)
            progress.update(task, advance=1, description=f"{result.label}: {sweep.start_used(result)}")

        return sweep.run_sweep(
            inputs.data,
            inputs.axes,
            source=inputs.source,
            base_changes=inputs.changes,
            base_file=str(inputs.base),
            solve=sweep.default_solver(value_of_information=value_of_information),
            warm=not cold,
            on_point=done,
            at=at,
            engine=engine,
            scenarios=scenarios,
        )


def _write_or_fail(output: ResultsDir, name: str, result: Any) -> None:
    """Write a sweep point's or a batch file's plan; where it cannot be, the result has no plan
    and says why (its exit code 2), and the run goes on."""
    try:
        output.write(name, result.plan.model_dump_json(indent=1) + "\n")
    except UserError as error:
        result.plan, result.exit_code = None, error.exit_code
        result.error = "; ".join([f"its plan was solved but not written: {error.message}", *error.details])
        if hasattr(result, "summary"):
            result.summary = {}


def column_names(paths: Sequence[str]) -> list[str]:
    """The sweep table's column for each swept path: its last segment, or as many more of them
    as tell it from the other paths (two columns both read "pue" for sites[batam].pue and
    sites[narvik].pue)."""
    parts = [path.split(".") for path in paths]
    names = []
    for mine in parts:
        size = 1
        while size < len(mine) and sum(1 for other in parts if other[-size:] == mine[-size:]) > 1:
            size += 1
        names.append(".".join(mine[-size:]))
    return names


def sweep_summary(
    inputs: SweepInputs,
    results: list[Any],
    rows: list[dict[str, Any]],
    output: Path,
    heatmap: Any,
    *,
    engine: Engine,
    at: str | None,
    value_of_information: bool,
    removed: Sequence[Path] = (),
) -> dict[str, Any]:
    """The --json document."""
    return {
        "points": rows,
        "engine": {"where": engine.where, "slots": engine.slots},
        "reused": {
            "base_parsed_once": True,
            "points_offered_a_neighbours_plan": sum(1 for r in results if r.start_from),
            "points_started_from_a_neighbours_plan": sum(
                1 for r in results if r.plan and r.plan.solver.start == "given"
            ),
            "points_started_from_their_rounded_relaxation": sum(
                1 for r in results if r.plan and r.plan.solver.start == "rounded"
            ),
        },
        "at": at or "last quarter",
        "highs_s_total": sum(r.plan.solver.solve_s for r in results if r.plan),
        "value_of_information_computed": value_of_information,
        "csv_path": str(output / "sweep.csv"),
        "heatmap_path": str(heatmap.path) if heatmap else None,
        "plans": {r.label: str(output / f"{r.label}.json") for r in results if r.plan},
        "removed": [str(path) for path in removed],
    }


def sweep_table(inputs: SweepInputs, results: list[Any], rows: list[dict[str, Any]], at: str | None) -> Table:
    """One row per point: its values, money (each column naming its basis), racks and status."""
    quarter = at or "the last quarter"
    table = Table(
        title=escape(f"Sweep of {inputs.base} ({inputs.points} points; US$ M; racks at {quarter})"),
        title_justify="left",
    )
    for name in column_names(inputs.paths):
        table.add_column(escape(name))
    sites = [s["id"] for s in inputs.data.get("sites", []) if isinstance(s, dict)]
    for name in (
        money_header("objective", DISCOUNTED),
        money_header("expected", DISCOUNTED),
        money_header("CVaR", DISCOUNTED),
        *(f"{s} racks {at}" if at else f"{s} racks" for s in sites),
        money_header("buyback", UNDISCOUNTED),
        money_header("rev share", UNDISCOUNTED),
        money_header("EVPI", DISCOUNTED),
        money_header("VSS", DISCOUNTED),
        "status, gap, HiGHS",
    ):
        table.add_column(name, justify="right")
    money_keys = (
        "objective_discounted_usd",
        "expected_value_discounted_usd",
        "cvar_discounted_usd",
        "expected_buyback_undiscounted_usd",
        "expected_revenue_share_undiscounted_usd",
        "evpi_discounted_usd",
        "vss_discounted_usd",
    )
    for row, result in zip(rows, results, strict=True):
        racks = [str(row.get(f"{s}_racks", "-")) for s in sites]
        status = (
            f"{row['solver_status']} {gap_text(row['mip_gap'])} {row['solve_s']:.1f}s"
            if result.plan
            else f"[red]no plan[/]: {escape(result.error or '')}"
        )
        table.add_row(
            *(escape(str(row[p])) for p in inputs.paths),
            *(musd(_usd(row.get(key))) for key in money_keys[:3]),
            *racks,
            *(musd(_usd(row.get(key))) for key in money_keys[3:]),
            status,
        )
    return table


PARTIES = ("cloud", "guarantor", "syndicate")


def sweep_parties_table(inputs: SweepInputs, rows: list[dict[str, Any]]) -> Table:
    """One row per point: each party's expected value and CVaR, whatever the perspective. A deal
    team sweeps terms to see both sides; the sweep table's value columns are the perspective's
    alone. Its own table: beside the sweep table's columns they squeezed every header to '…'."""
    alphas = {row["party_cvar_alpha"] for row in rows if row.get("party_cvar_alpha") is not None}
    alpha = f" at alpha {alphas.pop():g}" if len(alphas) == 1 else ""
    table = Table(
        title=escape(f"Each party per point (US$ M, {DISCOUNTED}; CVaR{alpha})"), title_justify="left"
    )
    for name in column_names(inputs.paths):
        table.add_column(escape(name))
    for party in PARTIES:
        table.add_column(money_header(f"{party}\nexpected", DISCOUNTED), justify="right")
        table.add_column(money_header(f"{party}\nCVaR", DISCOUNTED), justify="right")
    for row in rows:
        table.add_row(
            *(escape(str(row[p])) for p in inputs.paths),
            *(
                musd(_usd(row.get(f"{party}_{figure}_discounted_usd")))
                for party in PARTIES
                for figure in ("expected", "cvar")
            ),
        )
    return table


def render_sweep(
    inputs: SweepInputs,
    results: list[Any],
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    output: Path,
    *,
    at: str | None,
    cold: bool,
) -> None:
    """The terminal table and the reuse line."""
    console = _console()
    console.print(sweep_table(inputs, results, rows, at))
    console.print(sweep_parties_table(inputs, rows))
    extras = ", sweep.png" if summary["heatmap_path"] else ""
    removed = summary["removed"]
    gone = (
        f"; removed {_files(len(removed))} the last sweep wrote there and this one did not" if removed else ""
    )
    console.print(f"written to [bold]{escape(str(output))}[/] (sweep.csv{extras}){gone}")
    reused = summary["reused"]
    if cold:
        reuse = "every point solved cold (--cold)"
    else:
        reuse = (
            f"{reused['points_started_from_a_neighbours_plan']} of {inputs.points} points started HiGHS "
            f"from the nearest solved point's plan, "
            f"{reused['points_started_from_their_rounded_relaxation']} from their own rounded LP relaxation"
        )
    console.print(
        f"reused: the base file, read once; {reuse}; HiGHS {summary['highs_s_total']:.1f} s in all; "
        f"ran on {escape(summary['engine']['where'])}"
    )


def _files(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")


def finish_sweep(
    results: list[Any], scenarios: Sequence[Scenario], output: Path, *, value_of_information: bool
) -> None:
    """Warnings on stderr, then the exit code: 3 if no point has a plan, 4 if some have none.
    `scenarios`: the points', in the results' order."""
    err = Console(stderr=True)
    if not value_of_information:
        err.print(
            "EVPI and VSS skipped (--no-value-of-information); to get them, sweep without the flag "
            "(or run dsx plan value-of-information on one scenario file)",
            soft_wrap=True,
        )
    else:
        from planner.value_of_information import EEV_INFEASIBLE

        for r in results:
            if r.plan and (r.plan.risk.evpi_usd is None or r.plan.risk.vss_usd is None):
                note = r.plan.risk.value_of_information_note or ""
                # No time limit gives an EEV whose build meets no plan under the requirements.
                fix = "" if EEV_INFEASIBLE in note else ". Fix: raise solver.time_limit_s"
                err.print(f"[yellow]warning[/] {escape(r.label)}: {escape(note)}{fix}", soft_wrap=True)
    for r, point in zip(results, scenarios, strict=True):
        warnings = [gap_warning(r.plan, point.solver), no_deal_gap_warning(r.plan)] if r.plan else []
        for warning in filter(None, warnings):
            err.print(f"[yellow]warning[/] {escape(r.label)}: {escape(warning)}", soft_wrap=True)
    if not any(r.plan for r in results):
        raise NoPlanError("no point of the sweep has a plan", details=[r.error or "" for r in results][:5])
    if not all(r.plan for r in results):
        failed = [r.label for r in results if not r.plan]
        raise PartialSweepError(
            f"partial sweep: {len(failed)} of {len(results)} points have no plan; the other plans are written",
            details=[
                *(f"{r.label}: {r.error}" for r in results if not r.plan),
                f"Fix: see {output / 'sweep.csv'} for every point's reason",
            ],
        )


def sweep_command(
    base: Annotated[Path, typer.Argument(help="Base scenario file (YAML).")],
    assignments: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="PATH=V1,V2,... (repeat for a grid), e.g. terms.buyback_share=0.6,0.8; a comma inside "
            "[...], {...} or quotes is part of its value.",
        ),
    ],
    overrides: Annotated[
        Path | None, typer.Option("--overrides", help="Named overrides file (YAML).")
    ] = None,
    case: Annotated[
        str | None, typer.Option("--case", help="Override case applied before the sweep.")
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Directory for plans, CSV and heat-map.")
    ] = Path("sweep"),
    cold: Annotated[
        bool,
        typer.Option(
            "--cold",
            help="Solve every point from scratch, without the nearest solved point's plan as a MIP start "
            "(to compare times).",
        ),
    ] = False,
    value_of_information: Annotated[
        bool,
        typer.Option(
            "--value-of-information/--no-value-of-information",
            help="Fill each plan's EVPI and VSS (S + 2 more solves per point; more where floors bind across scenarios).",
        ),
    ] = True,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Quarter the table and CSV report racks at, e.g. 2027Q4 (default: the last)."
        ),
    ] = None,
    cluster: ClusterOption = None,
    workers: WorkersOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Solve a grid of overrides; write one verified plan per point, sweep.csv and a heat-map.
    Points run side by side on a local Dask cluster (one worker per CPU), or on a running one
    (--cluster).

    Every point, and every file the sweep writes, is checked before the first solve. The
    directory is kept to one sweep: the files the last sweep wrote there (recorded in
    DIR/.dsx-sweep) that this one does not write again are removed at the end, if unchanged;
    files no sweep wrote are left; anything but a regular file where one of its files goes is
    refused. Exit 0: every point has a plan; 2: a bad file, path, value or output (nothing
    solved or written); 3: no point has a plan; 4: some points have none (sweep.csv says why),
    every other plan is written."""
    from planner.insight import sweep
    from planner.insight.plots import plot_sweep_heatmap

    check_output_path(output, directory=True)
    inputs = parse_sweep_inputs(base, assignments, overrides, case)
    # Refused before an engine starts (a local cluster, or a connection to --cluster's).
    scenarios = sweep.sweep_points(
        inputs.data,
        inputs.axes,
        source=inputs.source,
        base_changes=inputs.changes,
        at=at,
        base_file=str(inputs.base),
        case=case,
    )
    names = [f"{sweep.point_label(values)}.json" for values in sweep.grid(inputs.axes)]
    results_dir = claim(
        output,
        [*names, "sweep.csv", "sweep.png"],
        SWEEP_INDEX,
        [("the base scenario file", base), ("the overrides file", overrides)],
    )
    try:
        with open_engine(cluster, workers, tasks=inputs.points) as engine:
            results = run_sweep_with_progress(
                inputs,
                results_dir,
                scenarios=scenarios,
                engine=engine,
                cold=cold,
                value_of_information=value_of_information,
                at=at,
                quiet=as_json,
            )
        rows = sweep.table_rows(results)
        results_dir.write("sweep.csv", sweep.to_csv(rows))
        heatmap = None
        paths = inputs.paths
        if 1 <= len(paths) <= 2 and any(r.plan for r in results):
            heatmap = plot_sweep_heatmap(
                rows, paths[-1], paths[0] if len(paths) == 2 else None, output / "sweep.png"
            )
            results_dir.record("sweep.png")
    except BaseException:
        results_dir.stopped()
        raise
    removed = results_dir.finish()
    summary = sweep_summary(
        inputs,
        results,
        rows,
        output,
        heatmap,
        engine=engine,
        at=at,
        value_of_information=value_of_information,
        removed=removed,
    )
    if as_json:
        echo_json(summary)
    else:
        render_sweep(inputs, results, rows, summary, output, at=at, cold=cold)
    finish_sweep(results, scenarios, output, value_of_information=value_of_information)


def _change(before: float | None, after: float | None, decimals: int = 0) -> str:
    """'16 -> 25', with '-' on the side of a plan that does not cover the site or quarter."""
    shown = lambda v: "-" if v is None else fixed(v, decimals)  # noqa: E731
    return f"{shown(before)} -> {shown(after)}"


def compare_command(
    plans: Annotated[list[Path], typer.Argument(help="Plan files; the first is the reference.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable comparison.")] = False,
) -> None:
    """What changed from the first plan to each other plan, and why it matters."""
    from planner.insight.compare import compare_plans

    if len(plans) < 2:
        raise UserError(
            "compare needs at least two plan files", details=["Fix: dsx plan compare A.json B.json"]
        )
    loaded = [read_plan(p) for p in plans]
    comparisons = [
        compare_plans(loaded[0], other, before_name=str(plans[0]), after_name=str(path))
        for path, other in zip(plans[1:], loaded[1:], strict=True)
    ]
    if as_json:
        echo_json([c.to_dict() for c in comparisons])
        return
    console = _console()
    for cmp in comparisons:
        console.print(f"[bold]{escape(cmp.before)}[/] -> [bold]{escape(cmp.after)}[/]")
        if cmp.site_periods:
            table = Table(title="Build-out changes (site, quarter)", title_justify="left")
            for name in ("site", "quarter", "racks", "GPUs", "facility MW available"):
                table.add_column(name, justify="left" if name in ("site", "quarter") else "right")
            mw = decimals_for((x for c in cmp.site_periods for x in (c.mw_before, c.mw_after)), most=3)
            for c in cmp.site_periods:
                table.add_row(
                    escape(c.site),
                    escape(c.period),
                    _change(c.racks_before, c.racks_after),
                    _change(c.gpus_before, c.gpus_after),
                    _change(c.mw_before, c.mw_after, mw),
                )
            console.print(table)
        if cmp.quotas:
            table = Table(title="Quota changes (GPUs)", title_justify="left")
            for name in ("tenant", "site", "quarter", "quota"):
                table.add_column(name)
            gpus = decimals_for(
                (x for q in cmp.quotas for x in (q.quota_gpus_before, q.quota_gpus_after)), least=0, most=2
            )
            for q in cmp.quotas:
                table.add_row(
                    escape(q.tenant),
                    escape(q.site),
                    escape(q.period),
                    _change(q.quota_gpus_before, q.quota_gpus_after, gpus),
                )
            console.print(table)
        table = Table(title="Money and risk (US$ M; each figure names its basis)", title_justify="left")
        for name in ("figure", "before", "after", "change"):
            table.add_column(name, justify="left" if name == "figure" else "right")
        for mny in cmp.money:
            delta = mny.delta_usd
            table.add_row(
                mny.figure,
                musd(mny.before_usd),
                musd(mny.after_usd),
                "not comparable" if mny.not_comparable else "-" if delta is None else signed_musd(delta),
            )
        console.print(table)
        for note in cmp.notes:
            console.print(f"- {escape(note)}")


def plot_command(
    plan_path: Annotated[Path, typer.Argument(help="Plan file (JSON).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the PNGs.")] = Path("plots"),
    scenario: Annotated[
        Path | None,
        typer.Option(
            "--scenario", help="The plan's scenario file, for the capex row (prices are not in a plan)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the written paths as JSON.")] = False,
) -> None:
    """Draw the build-out (racks, GPUs, power, capex), demand against served and unserved, and
    the value in each scenario."""
    from planner.insight.plots import plot_plan

    check_output_path(output, directory=True)
    plan = read_plan(plan_path)
    priced = None
    if scenario is not None:
        priced = load_scenario(scenario)
        if priced.content_hash() != plan.scenario_hash:
            raise UserError(
                f"--scenario {scenario}: not the scenario {plan_path} was solved from (content hash differs)",
                details=["Fix: pass the scenario file the plan was solved from, or leave --scenario out"],
            )
    figures = plot_plan(plan, output, priced)
    if priced is None:
        Console(stderr=True).print(
            "buildout.png has no capex row: a plan carries no prices; add --scenario SCENARIO.yaml "
            "(the file the plan was solved from) to draw it",
            soft_wrap=True,
            highlight=False,
        )
    if as_json:
        echo_json({"figures": [str(f.path) for f in figures]})
        return
    for figure in figures:
        typer.echo(str(figure.path))


def value_of_information_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    cluster: ClusterOption = None,
    workers: WorkersOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """EVPI and VSS: what perfect foresight would be worth, and what planning for uncertainty earns.
    The S + 3 solves run side by side on a local Dask cluster, or on a running one (--cluster)."""
    from planner.pipeline import refuse_unsolvable
    from planner.value_of_information import compute

    loaded = load_scenario(scenario)
    # Before an engine starts: value of information would print the LP's figures as the plan's.
    refuse_unsolvable(loaded, scenario)
    solves = len(loaded.scenarios) + 3
    err = Console(stderr=True)
    with open_engine(cluster, workers, tasks=solves - 1) as engine, err.status(f"solving {solves} problems"):
        try:
            figures = compute(loaded, engine=engine)
        except NoPlanError as error:
            raise error.at(scenario) from None
    if as_json:
        echo_json(figures.to_dict())
        return
    table = Table(
        title=f"Value of information, {loaded.name} (US$ M {DISCOUNTED}, objective of the scenario)",
        title_justify="left",
    )
    table.add_column("figure")
    table.add_column(money_header("US$ M", DISCOUNTED), justify="right")

    def cell(value_usd: float | None) -> str:
        return "not computed" if value_usd is None else musd(value_usd)

    table.add_row("recourse problem (the plan)", musd(figures.rp_usd))
    table.add_row("wait-and-see (perfect foresight)", cell(figures.ws_usd))
    table.add_row("expected-value build, evaluated (EEV)", cell(figures.eev_usd))
    table.add_row("[bold]EVPI[/] = WS - RP", cell(figures.evpi_usd))
    table.add_row("[bold]VSS[/] = RP - EEV", cell(figures.vss_usd))
    console = _console()
    console.print(table)
    console.print(
        "EVPI: the most a perfect demand forecast is worth. VSS: what planning the build (racks, power) "
        "with scenarios earns over planning it for average demand; EEV keeps the expected-value plan's "
        "build and chooses its quotas for the scenarios."
    )
    for name, why in (("EVPI", figures.evpi_note), ("VSS", figures.vss_note)):
        if why:
            Console(stderr=True).print(
                f"[yellow]warning[/]: {name} not computed: {escape(why)}", soft_wrap=True
            )


SHOWN_IIS_ROWS = 12
"""IIS rows printed by `dsx plan diagnose`; `--iis-out` and `--json` hold them all (an IIS found by
HiGHS's elastic LP ran to 131 rows on a 4-quarter case)."""


def diagnose_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    iis_out: Annotated[
        Path | None, typer.Option("--iis-out", help="Write the conflicting constraints here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diagnosis as JSON.")] = False,
) -> None:
    """Say whether a scenario has a plan and, if not, why (exit 3 if it has none, 0 if it has one).
    An infeasible LP relaxation proves there is none; a feasible one is confirmed by the
    participation requirements' check that dsx plan solve runs (docs/insight.md)."""
    from planner.insight.diagnose import diagnose, iis_text

    if iis_out is not None:
        check_output_path(iis_out, option="--iis-out", example="conflict.txt")
        refuse_overwriting_inputs(iis_out, [iis_out], [("the scenario file", scenario)], option="--iis-out")
    loaded = load_scenario(scenario)
    try:
        result = diagnose(loaded)
    except UserError as error:  # too large to build (planner.model.size), a HiGHS option refused
        raise error.at(scenario) from None
    if iis_out is not None:
        write_atomic(iis_out, iis_text(result))
    if as_json:
        echo_json(result.to_dict())
    else:
        _print_diagnosis(result)
    if not result.feasible:
        # An error, not typer.Exit: `dsx.cli.main` runs click with standalone_mode=False, where a
        # typer.Exit code is returned and lost; UserError codes are what main() exits with.
        above = f" ({len(result.conflicts)} conflict(s) above)" if result.conflicts and not as_json else ""
        fixes = [f"Fix: {c.fix}" for c in result.conflicts if c.fix][:5]
        if result.fix:
            fixes.append(f"Fix: {result.fix}")
        verdict = "has no plan" if result.proven else "has no plan found (none proven impossible)"
        raise NoPlanError(
            f"{scenario}: scenario '{result.scenario}' {verdict}: {result.finding}{above}", details=fixes
        )


def _print_diagnosis(result: Any) -> None:
    """`dsx plan diagnose`'s text: a plan and how it was established, or the conflicts and the IIS."""
    console = _console()
    if result.feasible:
        console.print(f"scenario '{result.scenario}' has a plan: {escape(result.finding)}")
    for c in result.conflicts:
        where = f"[bold]{c.site or '-'} {c.period or ''}[/] " if c.site or c.period else ""
        console.print(f"- {where}{escape(c.limit)}: {escape(c.explanation)}")
        if c.fix:
            console.print(f"  Fix: {escape(c.fix)}")
    if result.iis_constraints:
        shown = result.iis_constraints[:SHOWN_IIS_ROWS]
        more = len(result.iis_constraints) - len(shown)
        rest = f" and {more} more (--iis-out writes them all)" if more else ""
        console.print(f"conflicting constraints (HiGHS IIS): {escape(', '.join(shown))}{rest}")


def reduce_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    keep: Annotated[int, typer.Option("--scenarios", min=1, help="How many scenarios to keep.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the reduced scenario (YAML).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was kept as JSON.")] = False,
) -> None:
    """Keep the scenarios that best stand for all of them (fast forward selection), each left out
    giving its probability to its nearest kept one: a scenario too large to solve made smaller."""
    import yaml

    from planner.insight.reduce import reduce_scenarios

    check_output_path(output, example="reduced.yaml")
    refuse_overwriting_inputs(
        output, [output], [("the scenario file being reduced", scenario)], example="reduced.yaml"
    )
    loaded = load_scenario(scenario)
    try:
        reduced, reduction = reduce_scenarios(loaded, keep)
    except UserError as error:
        raise error.at(scenario) from None
    # Defaults left out (they read back the same), so the file is about as long as the one reduced.
    body = yaml.safe_dump(
        reduced.model_dump(mode="json", exclude_defaults=True), sort_keys=False, allow_unicode=True
    )
    header = f"# {len(reduction.kept)} of the {len(loaded.scenarios)} scenarios of {scenario}, by dsx plan reduce\n"
    write_atomic(output, header + body)
    summary = {
        "scenario": str(scenario),
        "output": str(output),
        "kept": reduction.kept,
        "probability": reduction.probability,
        "stands_for": reduction.stands_for,
        "distance_usd": reduction.distance_usd,
        "spread_usd": reduction.spread_usd,
    }
    if as_json:
        echo_json(summary)
        return
    console = _console()
    table = Table(
        title=f"{len(reduction.kept)} of {len(loaded.scenarios)} scenarios kept", title_justify="left"
    )
    for column in ("scenario", "probability", "stands for"):
        table.add_column(column, justify="right" if column == "probability" else "left")
    for kept in reduction.kept:
        others = reduction.stands_for[kept]
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "") or "-"
        table.add_row(escape(kept), f"{reduction.probability[kept]:.4f}", escape(shown))
    console.print(table)
    share = reduction.distance_usd / reduction.spread_usd if reduction.spread_usd > 0 else 0.0
    console.print(
        f"distance from the full set: US$ {musd(reduction.distance_usd)} M "
        f"of {DISCOUNTED} demand value "
        f"({share:.1%} of the full set's spread about its mean)"
    )
    console.print(f"written to [bold]{escape(str(output))}[/]")


def batch_command(
    scenarios: Annotated[list[Path], typer.Argument(help="Scenario files (YAML); each gets one plan.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Directory for the plans (one NAME.json per file).")
    ] = Path("batch"),
    value_of_information: Annotated[
        bool,
        typer.Option(
            "--value-of-information/--no-value-of-information",
            help="Fill each plan's EVPI and VSS (S + 2 more solves per scenario file; more where floors bind across scenarios).",
        ),
    ] = False,
    cluster: ClusterOption = None,
    workers: WorkersOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Solve several scenario files side by side (a local Dask cluster, or --cluster); write one
    verified plan per file, NAME.json.

    Every file, and every plan's path, is checked before the first solve. The directory is kept
    to one batch: the plans the last batch wrote there (recorded in DIR/.dsx-batch) that this one
    does not write again are removed at the end, if unchanged; files no batch wrote are left;
    anything but a regular file where a plan goes is refused. Exit 0: every file has a plan; 2:
    a bad file or output (nothing solved or written); 3: no file has a plan; 4: some have none
    (the table says why), every other plan is written."""
    from planner.insight.batch import BatchResult, run_batch
    from planner.pipeline import refuse_unsolvable

    check_output_path(output, directory=True)
    names = [path.stem for path in scenarios]
    if len(set(names)) != len(names):
        raise UserError(
            "batch: two scenario files share a name, so their plans would overwrite each other",
            details=["Fix: rename one of the files (plans are written as NAME.json)"],
        )
    for path in scenarios:
        size = len(os.fsencode(f"{path.stem}.json"))
        if size > NAME_MAX_BYTES:  # the first such plan stopped the batch, after its solve
            raise UserError(
                f"{str(path)[:80]}…: its plan's file name would take {size} bytes; at most "
                f"{NAME_MAX_BYTES} fit",
                details=[
                    "Fix: give the scenario file a shorter name (a batch names each plan after its file)"
                ],
            )
    results_dir = claim(
        output,
        [f"{name}.json" for name in names],
        BATCH_INDEX,
        [("the scenario file", path) for path in scenarios],
    )
    loaded = [(path.stem, load_scenario(path)) for path in scenarios]
    for (_name, one), path in zip(loaded, scenarios, strict=True):
        refuse_unsolvable(one, path)  # before an engine starts, not each file after its solve
    err = Console(stderr=True)
    try:
        with (
            open_engine(cluster, workers, tasks=len(loaded)) as engine,
            Progress(
                TextColumn("[bold]batch[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=err,
                disable=as_json and not err.is_terminal,
            ) as progress,
        ):
            task = progress.add_task(f"on {escape(engine.where)}", total=len(loaded))

            def done(_n: int, result: BatchResult) -> None:
                if result.plan is not None:
                    _write_or_fail(results_dir, f"{result.name}.json", result)
                progress.update(
                    task,
                    advance=1,
                    description=f"{escape(result.name)}: {'plan' if result.plan else 'no plan'}",
                )

            results = run_batch(
                loaded, engine=engine, value_of_information=value_of_information, on_done=done
            )
            where = engine.where
    except BaseException:
        results_dir.stopped()
        raise
    removed = results_dir.finish()
    summary = {
        "engine": where,
        "removed": [str(path) for path in removed],
        "scenarios": [
            {
                "name": r.name,
                "plan": str(output / f"{r.name}.json") if r.plan else None,
                "objective_usd": r.plan.solver.objective_usd if r.plan else None,
                "mip_gap": r.plan.solver.mip_gap if r.plan else None,
                "wall_s": round(r.wall_s, 3),
                "error": r.error,
            }
            for r in results
        ],
    }
    if as_json:
        echo_json(summary)
    else:
        table = Table(
            title=escape(f"Batch of {len(results)} scenarios on {where} (US$ M)"), title_justify="left"
        )
        for name in ("scenario", money_header("objective", DISCOUNTED), "gap", "wall s", "plan"):
            table.add_column(name, justify="left" if name in ("scenario", "plan") else "right")
        for r in results:
            table.add_row(
                escape(r.name),
                musd(r.plan.solver.objective_usd if r.plan else None),
                gap_text(r.plan.solver.mip_gap) if r.plan else "-",
                f"{r.wall_s:.1f}",
                escape(str(output / f"{r.name}.json"))
                if r.plan
                else f"[red]no plan[/]: {escape(r.error or '')}",
            )
        console = _console()
        console.print(table)
        if removed:
            console.print(
                f"removed {_files(len(removed))} the last batch wrote in {escape(str(output))} and this one did not"
            )
    for (_name, scenario_of), r in zip(loaded, results, strict=True):
        warnings = [gap_warning(r.plan, scenario_of.solver), no_deal_gap_warning(r.plan)] if r.plan else []
        for warning in filter(None, warnings):
            err.print(f"[yellow]warning[/] {escape(r.name)}: {escape(warning)}", soft_wrap=True)
    if not any(r.plan for r in results):
        raise NoPlanError("no scenario of the batch has a plan", details=[r.error or "" for r in results][:5])
    if not all(r.plan for r in results):
        raise PartialSweepError(
            f"partial batch: {sum(1 for r in results if not r.plan)} of {len(results)} scenarios have no plan; "
            "the other plans are written",
            details=[f"{r.name}: {r.error}" for r in results if not r.plan],
        )


def register(app: typer.Typer, plan_app: typer.Typer) -> None:
    plan_app.command("batch")(batch_command)
    plan_app.command("sweep")(sweep_command)
    plan_app.command("compare")(compare_command)
    plan_app.command("plot")(plot_command)
    plan_app.command("value-of-information")(value_of_information_command)
    plan_app.command("diagnose")(diagnose_command)
    plan_app.command("reduce")(reduce_command)
