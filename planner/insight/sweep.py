"""Parameter sweeps: a grid of overrides on one base scenario, one verified plan per point.

Reused between points (measured on the bundled example, 2 cores; see docs/insight.md):
- the base data: read once, each point is the base with the point's overrides applied and
  validated again (`planner.insight.overrides`, about 0.01 s);
- HiGHS's starting point: each point is offered the plan of the nearest solved point as a MIP
  start (`start_from_plan`; `warm=False` / `--cold` turns it and the rounded start off). With
  `solver.rounded_start` (the default) `planner.solve.rounding` weighs the neighbour's racks and
  blocks against its own rounding of the point's LP relaxation and gives HiGHS the better plan
  (the `start` column says which); without it HiGHS fixes the neighbour's racks and blocks,
  completes the rest by an LP and starts from it if feasible. On the example's 3 x 2 terms grid
  HiGHS took 15.1 s in all cold, 8.2 s from neighbours alone and 3.1 s with rounded starts
  (docs/insight.md). A started point may return another plan within the same gap.
Where the points run: `planner.engine` (here, a local Dask cluster, or a running one); with
more than one worker the first points are seeds without a neighbour's plan, and each later
point starts from its nearest solved point (`next_point`, docs/insight.md "Distributed").
Not reused: the Pyomo model. Building it and handing it to HiGHS take about 0.015 s against
0.3-5 s in HiGHS, so changing coefficients in one persistent model would save under 1%.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from planner.engine import Engine, SerialEngine
from planner.errors import ScenarioError, UserError
from planner.files import NAME_MAX_BYTES, parse_scenario
from planner.insight.overrides import apply_overrides, compose, path_location
from planner.schema.plan import Plan
from planner.schema.scenario import Scenario
from planner.solve.starts import TAKES_MIP_START, MipStart, start_from_plan

Axis = tuple[str, list[Any]]


MAX_SWEEP_POINTS = 10_000
"""Most grid points a sweep takes: each is composed and checked before the first solve (about
0.8 ms a point), and 8 million (three axes of 200 values) ran past 1.7 GB before saying anything."""


def check_axes(axes: Sequence[Axis]) -> None:
    """Refuse, before anything is built, a grid with more than `MAX_SWEEP_POINTS` points, a path
    swept twice (the last would silently win) or an axis two of whose values name one point file
    (`point_label`: the same value twice, or 'a b' and 'a-b')."""
    total = math.prod(len(values) for _, values in axes)
    if total > MAX_SWEEP_POINTS:
        sizes = " x ".join(str(len(values)) for _, values in axes)
        raise UserError(
            f"the sweep has {total:,} points ({sizes}); at most {MAX_SWEEP_POINTS:,} are taken",
            details=["Fix: sweep fewer values, or split the sweep into several runs"],
        )
    seen: set[str] = set()
    for path, values in axes:
        if path in seen:
            raise UserError(
                f"--set {path} is given more than once",
                details=[f"Fix: give all of its values in one --set, e.g. --set {path}=A,B,C"],
            )
        seen.add(path)
        first: dict[str, Any] = {}
        for value in values:
            label = point_label({path: value})
            if label in first:
                if str(first[label]) == str(value):
                    same, fix = (
                        "repeats",
                        "list each value once (values are read as YAML: 0.6 and 0.60 are one)",
                    )
                else:
                    same = f"gets the same file name as {first[label]!r}"
                    fix = (
                        "in a file name every run of characters other than letters, digits, '.', '_' "
                        "and '-' becomes '-': make the values differ elsewhere"
                    )
                raise UserError(
                    f"--set {path}: the value {value!r} {same} (point {label})", details=[f"Fix: {fix}"]
                )
            first[label] = value


def grid(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, first axis slowest."""
    if not axes:
        return [{}]
    paths = [path for path, _ in axes]
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))]


def point_label(values: Mapping[str, Any]) -> str:
    """A file-safe name for a point, e.g. 'buyback_share=0.6_revenue_share=0.1'."""
    if not values:
        return "base"
    parts = []
    for path, value in values.items():
        leaf = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.split(".")[-1])
        owner = re.search(r"\[([^\]]+)\][^\[]*$", path)
        prefix = f"{owner.group(1)}-" if owner else ""
        parts.append(f"{prefix}{leaf}={re.sub(r'[^A-Za-z0-9_.-]+', '-', str(value))}")
    return "_".join(parts)


@dataclass
class PointResult:
    """One grid point: its values and either a verified plan or the reason there is none."""

    values: dict[str, Any]
    label: str
    plan: Plan | None = None
    error: str | None = None
    exit_code: int = 0
    wall_s: float = 0.0
    start_from: str | None = None
    """Label of the solved point whose plan was offered to HiGHS as a start (None: cold)."""
    summary: dict[str, Any] = field(default_factory=dict)


def plan_summary(plan: Plan, at: str | None = None) -> dict[str, Any]:
    """The figures a sweep table shows for one plan (money in US$, expected over scenarios);
    racks, GPUs and MW at quarter `at` (default: the last of the horizon); each party's expected
    value and CVaR (at `participation.cvar_alpha`, `party_cvar_alpha`) whatever the perspective.
    Each money key names its basis: values are discounted, buyback, revenue share and credit loss
    undiscounted horizon sums, and sweep.csv's readers would otherwise compare the two."""
    last = at if at is not None else plan.periods[-1]
    out: dict[str, Any] = {
        "at": last,
        "objective_discounted_usd": plan.solver.objective_usd,
        "expected_value_discounted_usd": plan.risk.expected_value_usd,
        "cvar_discounted_usd": plan.risk.cvar_usd,
    }
    for row in plan.site_periods:
        if row.period == last:
            out[f"{row.site}_racks"] = sum(row.racks_by_type.values())
            out[f"{row.site}_gpus"] = row.gpus_installed
            out[f"{row.site}_mw"] = row.available_mw
    out["expected_buyback_undiscounted_usd"] = sum(o.probability * o.buyback_usd for o in plan.outcomes)
    out["expected_revenue_share_undiscounted_usd"] = sum(
        o.probability * o.revenue_share_usd for o in plan.outcomes
    )
    out["expected_credit_loss_undiscounted_usd"] = sum(
        o.probability * o.credit_loss_usd for o in plan.outcomes
    )
    # Each party's side, whatever the perspective: a deal team sweeps terms to see what each side
    # gets, and the perspective's columns above show one side only.
    for figures in plan.parties:
        out[f"{figures.party}_expected_discounted_usd"] = figures.expected_value_usd
        out[f"{figures.party}_cvar_discounted_usd"] = figures.cvar_usd
    if plan.parties:
        out["party_cvar_alpha"] = plan.parties[0].cvar_alpha
    if plan.walk_away is not None:  # participation.floors: walk_away (columns only then)
        out["cloud_walk_away_discounted_usd"] = plan.walk_away.cloud_value_usd
        out["guarantor_walk_away_discounted_usd"] = plan.walk_away.guarantor_value_usd
        out["no_deal_solver_status"] = plan.walk_away.status
    out["evpi_discounted_usd"] = plan.risk.evpi_usd
    out["vss_discounted_usd"] = plan.risk.vss_usd
    out["solver_status"] = plan.solver.status
    out["mip_gap"] = plan.solver.mip_gap
    out["solve_s"] = plan.solver.solve_s
    out["start"] = plan.solver.start or ""
    return out


def start_used(result: PointResult) -> str:
    """Which start HiGHS was given for this point, in words (what the plan records, not what was
    offered: with a rounded start, the rounding may beat the neighbour's plan)."""
    if result.plan is None:
        return "no plan"
    start = result.plan.solver.start
    if start == "given":
        return (
            f"started from {result.start_from}'s plan" if result.start_from else "started from a given plan"
        )
    if start == "rounded":
        return "started from its rounded LP relaxation"
    return "solved cold"


def nearest_solved(position: tuple[int, ...], solved: Sequence[tuple[int, ...]]) -> tuple[int, ...] | None:
    """The solved position fewest grid steps away (ties: the one solved last), or None."""
    if not solved:
        return None
    order = {key: n for n, key in enumerate(solved)}
    return min(
        solved, key=lambda key: (sum(abs(a - b) for a, b in zip(key, position, strict=True)), -order[key])
    )


def grid_positions(axes: Sequence[Axis]) -> list[tuple[int, ...]]:
    """Each grid point's value indices along the axes, in `grid` order."""
    return list(itertools.product(*(range(len(values)) for _, values in axes)))


StartSolver = Callable[[Scenario, MipStart | None], Plan]
"""Solves one point: `solve(scenario, start)`, start None meaning cold."""


def default_solver(*, value_of_information: bool = False) -> StartSolver:
    """`planner.pipeline.solve_scenario` with the point's start (and EVPI/VSS if asked)."""
    from planner.pipeline import solve_scenario

    def solve(scenario: Scenario, start: MipStart | None) -> Plan:
        return solve_scenario(scenario, mip_start=start, value_of_information=value_of_information)

    return solve


def next_point(
    pending: Sequence[int],
    positions: Sequence[tuple[int, ...]],
    solved: Sequence[tuple[int, ...]],
    running: Sequence[tuple[int, ...]],
) -> int:
    """Which pending point (index into `positions`) to hand to a free worker: the one nearest a
    solved point (its neighbour's plan is then the closest start; ties: grid order); with none
    solved yet, the one farthest from the points already running (seeds spread over the grid,
    so the next wave's neighbours are near); else the first."""

    def steps(a: tuple[int, ...], b: tuple[int, ...]) -> int:
        return sum(abs(x - y) for x, y in zip(a, b, strict=True))

    if solved:
        return min(pending, key=lambda n: (min(steps(positions[n], s) for s in solved), n))
    if running:
        return min(pending, key=lambda n: (-min(steps(positions[n], r) for r in running), n))
    return pending[0]


@dataclass(frozen=True)
class PointOutcome:
    """What a worker sends back for one point: the plan, or the reason in the planner's words."""

    plan: Plan | None
    error: str | None = None
    exit_code: int = 0
    wall_s: float = 0.0


def solve_point(solve: StartSolver, scenario: Scenario, start: MipStart | None) -> PointOutcome:
    """One point, where the engine runs it (a worker process, or here). A `UserError` comes back
    as its message, its fix, and its exit code (exceptions with keyword arguments do not always survive
    pickling)."""
    began = time.perf_counter()
    try:
        plan = solve(scenario, start)
    except UserError as error:
        # One line per point: the message, each requirement that fell short and by how much (with
        # walk-away floors, the party that cannot beat walking away), and the fix (a too-large
        # point's names the limit to raise).
        kept = [
            d
            for d in error.details
            if d.startswith("Fix:") or (d.startswith("participation.") and "short" in d)
        ]
        text = "; ".join([error.message, *kept])
        return PointOutcome(None, text, error.exit_code, time.perf_counter() - began)
    return PointOutcome(plan, wall_s=time.perf_counter() - began)


def _one_axis_a_field(data: Mapping[str, Any], axes: Sequence[Axis]) -> None:
    """Refuse two axes that name one field in two ways ('sites[batam]' and 'sites[0]'): the last
    would win at every point, and the files be named after values never used. (The message says
    --set, as the command's axes are; a library caller's axes are the same paths.) Axes that
    overlap without naming one field ('solver.extra' and 'solver.extra.threads') are not caught:
    the later one wins where they meet."""
    seen: dict[tuple, str] = {}
    for path, _values in axes:
        where = path_location(data, path)
        if where in seen:
            raise UserError(
                f"--set {path} and --set {seen[where]} name the same field",
                details=[f"Fix: give all of its values in one --set, e.g. --set {seen[where]}=A,B,C"],
            )
        seen[where] = path


def _labels_fit(axes: Sequence[Axis], points: Sequence[Mapping[str, Any]]) -> None:
    """Refuse, before any solve, a point whose plan file's name is longer than a file name may be
    (each point's plan is written as it finishes, and the first too long one stopped the sweep),
    naming the axis whose values make the longest part of it."""
    limit = NAME_MAX_BYTES - len(".json")  # NAME_MAX_BYTES leaves room for the temporary name
    for values in points:
        label = point_label(values)
        size = len(label.encode())
        if size > limit:
            part = {path: len(point_label({path: values[path]}).encode()) for path, _ in axes}
            longest = max(part, key=part.__getitem__)
            raise UserError(
                f"sweep point {label[:60]}…: its plan's file name would take {size} bytes; at most "
                f"{limit} fit (--set {longest} makes {part[longest]})",
                details=[
                    f"Fix: shorter values for --set {longest}, or fewer --set axes in one sweep "
                    "(split it into several runs)"
                ],
            )


def _raw_solver(data: Mapping[str, Any], *keys: str) -> Any:
    """The raw value at `solver.<keys>` in scenario data, None where absent."""
    node: Any = data.get("solver")
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _relaxes(value: Any) -> bool:
    """Whether a raw `solver.relax_integrality` asks for the LP relaxation, read as the
    scenario's validation reads a bool."""
    try:
        return TypeAdapter(bool).validate_python(value if value is not None else False) is True
    except ValidationError:
        return False


def _set_where(
    point: object, start: object, base: object, *, at_point: str, source: str, base_file: str | None
) -> str:
    """Where a value a point refuses was set, from its value at the point, after the case
    (`start`) and in the base file: the point's axis where they differ, else the base file
    where the case left it as it was, else the case (`source`, the overrides file)."""
    if point != start:
        return at_point
    return base_file or source if base == start else source


def _valid(data: Mapping[str, Any]) -> bool:
    try:
        parse_scenario(data, "")
    except ScenarioError:
        return False
    return True


def _point_scenario(
    start_data: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    base: Mapping[str, Any],
    base_changes: Mapping[str, Any],
    case: str | None,
    source: str,
    base_file: str | None,
) -> Scenario:
    """One point's scenario, or its refusal blamed where the refused value was set (a sweep
    blamed an override named after the point, in the overrides file or the base file, that
    neither holds): where the base with the case is valid alone, the point's --set values (the
    axes refused alone, else all of them together); else the case, where the base is valid
    alone; else the base file, with its own message."""
    label = point_label(values)
    named = f"{case} + " if case else ""
    where = base_file or source
    try:
        return compose(start_data, values, case=f"{named}--set point {label}", source=where)
    except ScenarioError as error:
        if not _valid(start_data):
            if base_changes and _valid(base):
                compose(base, base_changes, case=case or "base", source=source)  # raises the case's error
            parse_scenario(base, where)  # raises the base file's own error
            raise  # not reached: the base and the case are refused above
        alone = [
            path
            for path, value in values.items()
            if not _valid(apply_overrides(start_data, {path: value}, case=label, source=where))
        ]
        if len(alone) == 1 or len(values) == 1:
            path = (alone or list(values))[0]
            fix = f"Fix: change or leave out the value {values[path]!r} of --set {path}"
        else:
            given = alone or list(values)
            together = ", ".join(f"{path}={values[path]!r}" for path in given)
            fix = f"Fix: change the values of --set {' and --set '.join(given)} ({together} is refused)"
        raise ScenarioError(error.message, details=[*error.details[:-1], fix]) from None


def sweep_points(
    base: Mapping[str, Any],
    axes: Sequence[Axis],
    *,
    source: str,
    base_changes: Mapping[str, Any] | None = None,
    at: str | None = None,
    base_file: str | None = None,
    case: str | None = None,
) -> list[Scenario]:
    """Every point's scenario, in grid order, or the user error that would stop the sweep at
    every point: invalid overrides, an LP relaxation no plan can hold
    (`planner.pipeline.refuse_relaxation`), HiGHS options HiGHS refuses (`solver.extra`), two
    axes naming one field, a point's plan file name too long, `at` outside a point's horizon.
    An invalid point (`_point_scenario`), the relaxation and a refused option are named where
    they were set: the point's --set, the case (`case`, in `source`, the overrides file) or the
    base file (`base_file`). The command calls it before it starts an engine; `run_sweep`
    again, for its library callers."""
    from planner.pipeline import refuse_relaxation
    from planner.solve.interfaces import refused_option

    check_axes(axes)
    start_data = apply_overrides(base, base_changes or {}, case=case or "base", source=source)
    _one_axis_a_field(start_data, axes)
    points = grid(axes)
    _labels_fit(axes, points)
    scenarios = [
        _point_scenario(
            start_data,
            values,
            base=base,
            base_changes=base_changes or {},
            case=case,
            source=source,
            base_file=base_file,
        )
        for values in points
    ]
    # A relaxation or a refused HiGHS option is named where it was set (`_set_where`); options are
    # checked once per distinct set (a probe each).
    relaxed = [_relaxes(_raw_solver(data, "relax_integrality")) for data in (start_data, base)]
    checked: set[str] = set()
    for values, scenario in zip(points, scenarios, strict=True):
        where = functools.partial(
            _set_where, at_point=f"{source}, point {point_label(values)}", source=source, base_file=base_file
        )
        if scenario.solver.relax_integrality:
            refuse_relaxation(scenario, where(True, *relaxed))
        extra = json.dumps(scenario.solver.extra, sort_keys=True, default=str)
        if extra not in checked:
            refused = refused_option(scenario.solver)
            if refused is not None:
                key, error = refused
                mine, in_start, in_base = (
                    json.dumps(value, sort_keys=True, default=str)
                    for value in (
                        scenario.solver.extra[key],
                        *(_raw_solver(d, "extra", key) for d in (start_data, base)),
                    )
                )
                raise error.at(where(mine, in_start, in_base))
            checked.add(extra)
        quarters = scenario.periods.labels()
        if at is not None and at not in quarters:
            raise UserError(
                f"--at {at!r} is outside the horizon of point {point_label(values)} "
                f"({quarters[0]}..{quarters[-1]})",
                details=[f"Fix: use a quarter such as {quarters[-1]}"],
            )
    return scenarios


def run_sweep(
    base: Mapping[str, Any],
    axes: Sequence[Axis],
    *,
    source: str,
    base_changes: Mapping[str, Any] | None = None,
    solve: StartSolver | None = None,
    warm: bool = True,
    on_point: Callable[[int, PointResult], None] | None = None,
    at: str | None = None,
    engine: Engine | None = None,
    scenarios: Sequence[Scenario] | None = None,
    base_file: str | None = None,
) -> list[PointResult]:
    """Solve every grid point. `base_changes` (a named case) apply first; a point that has no
    plan is recorded with its reason and the sweep goes on. What `sweep_points` refuses stops
    the sweep before any solve.

    Reused between points: the base data (read and copied once; each point is only re-validated)
    and, unless `warm` is False, the plan of the nearest solved point as HiGHS's MIP start
    (`start_from_plan`); a point whose interface takes no start (`legacy`) is solved cold. A
    point without a neighbour's plan gets the rounded start (`solver.rounded_start`) unless
    `warm` is False. `solve` defaults to `default_solver()`. `at` is the quarter the summaries
    report racks at (default: each plan's last); one outside a point's horizon stops the sweep
    before any solve.

    `engine` (default: `SerialEngine`, here, one point at a time) runs the points; the sweep
    keeps `engine.slots` of them in flight. Warm, each free slot takes the pending point nearest
    a solved one (`next_point`) with that neighbour's plan as its start; the first `slots`
    points (seeds, spread over the grid) have no neighbour yet. One slot reproduces the
    sequential sweep: grid order, each point from the nearest point solved before it.
    `on_point(n, result)` is called here (the client) as each point finishes, n its grid index;
    the results come back in grid order."""
    solve_point_with = solve or default_solver()
    runner = engine or SerialEngine()
    points = grid(axes)
    positions = grid_positions(axes)
    if scenarios is None:  # else the caller's `sweep_points` of these same arguments
        scenarios = sweep_points(
            base, axes, source=source, base_changes=base_changes, at=at, base_file=base_file
        )
    if not warm:  # cold means HiGHS alone: no neighbour's plan and no rounded start either
        scenarios = [
            s.model_copy(update={"solver": s.solver.model_copy(update={"rounded_start": False})})
            for s in scenarios
        ]
    results = [PointResult(values=values, label=point_label(values)) for values in points]
    solved: dict[tuple[int, ...], Plan] = {}
    solved_labels: dict[tuple[int, ...], str] = {}
    pending = list(range(len(points)))
    running: dict[int, tuple[int, ...]] = {}

    def launch() -> None:
        n = next_point(
            pending, positions, list(solved) if warm else [], list(running.values()) if warm else []
        )
        pending.remove(n)
        near = (
            nearest_solved(positions[n], list(solved))
            if warm and scenarios[n].solver.interface in TAKES_MIP_START
            else None
        )
        start = start_from_plan(solved[near]) if near is not None else None
        if near is not None:
            results[n].start_from = solved_labels[near]
        running[n] = positions[n]
        runner.submit(n, solve_point, solve_point_with, scenarios[n], start)

    while pending and len(running) < runner.slots:
        launch()
    while running:
        key, outcome = runner.next_done()
        n = int(key)  # type: ignore[call-overload]
        del running[n]
        result = results[n]
        if isinstance(outcome, PointOutcome):
            result.wall_s = outcome.wall_s
            if outcome.plan is not None:
                result.plan = outcome.plan
                result.summary = plan_summary(outcome.plan, at)
                solved[positions[n]] = outcome.plan
                solved_labels[positions[n]] = result.label
            else:
                result.error, result.exit_code = outcome.error, outcome.exit_code
        else:  # the engine lost the task (a worker died, a result did not unpickle, ...)
            result.error = f"the point's task failed on {runner.where}: {type(outcome).__name__}: {outcome}"
            result.exit_code = 3
        while pending and len(running) < runner.slots:
            launch()
        if on_point is not None:
            on_point(n, result)
    return results


def table_rows(results: Sequence[PointResult]) -> list[dict[str, Any]]:
    """One flat row per point: the swept values, then the plan's figures (blank with no plan)."""
    summary_keys: list[str] = []
    for result in results:
        summary_keys += [k for k in result.summary if k not in summary_keys]
    rows = []
    for result in results:
        row: dict[str, Any] = dict(result.values)
        row["point"] = result.label
        for key in summary_keys:
            row[key] = result.summary.get(key)
        row["error"] = result.error or ""
        row["start_from"] = result.start_from or ""
        row["wall_s"] = round(result.wall_s, 3)
        rows.append(row)
    return rows


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()
