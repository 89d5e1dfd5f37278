"""`dsx plan solve` and `dsx plan show`: scenario file -> verified plan file, and a plan's tables.

A thin edge: check the output path, load (with `--overrides/--case` and `--set` applied as in a
sweep), override solver options from flags, run `planner.pipeline.solve_scenario` under a spinner
(with EVPI and VSS unless `--no-value-of-information`), write the plan only once it is verified,
then print tables (or `--json`). `show` prints the same tables from a plan file, optionally for
one site or quarter.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dsx.commands.json_out import echo_json
from dsx.commands.notices import (
    gap_warning,
    no_deal_gap_warning,
    no_deal_slack_usd,
    plan_notices,
    plan_warnings,
)
from dsx.commands.numbers import (
    DISCOUNTED,
    MUSD,
    MUSD_DECIMALS,
    UNDISCOUNTED,
    decimals_for,
    fixed,
    money_header,
    musd,
    probability_decimals,
    share,
)
from planner.errors import NoPlanError, ScenarioError, UserError
from planner.files import (
    check_output_path,
    load_scenario,
    read_plan,
    read_yaml,
    refuse_overwriting_inputs,
    write_plan,
)
from planner.insight.overrides import compose, load_overrides, parse_assignment, pick_case
from planner.pipeline import refuse_unsolvable, solve_scenario
from planner.schema.plan import PartyFigures, Plan
from planner.schema.scenario import Scenario, SolverOptions
from planner.value_of_information import EEV_INFEASIBLE


class InterfaceChoice(StrEnum):
    direct = "direct"
    appsi = "appsi"
    legacy = "legacy"


def _with_solver_overrides(
    scenario: Scenario, interface: InterfaceChoice | None, time_limit: float | None, gap: float | None
) -> Scenario:
    changes: dict[str, object] = {}
    if interface is not None:
        changes["interface"] = interface.value
    if time_limit is not None:
        changes["time_limit_s"] = time_limit
    if gap is not None:
        changes["mip_rel_gap"] = gap
    if not changes:
        return scenario
    # Validated as a file's values are (a copy alone would take --time-limit inf).
    try:
        solver = SolverOptions.model_validate({**scenario.solver.model_dump(), **changes})
    except ValidationError as error:
        first = error.errors()[0]
        option = {"time_limit_s": "--time-limit", "mip_rel_gap": "--gap"}.get(
            str(first["loc"][0]), "--interface"
        )
        raise UserError(
            f"{option}: {first['msg']}",
            details=[f"Fix: give {option} a finite value the scenario's field takes"],
        ) from None
    return scenario.model_copy(update={"solver": solver})


def load_with_overrides(
    path: Path, overrides: Path | None, case: str | None, assignments: list[str]
) -> Scenario:
    """The scenario file with a named case (`--overrides FILE --case NAME`) and then each
    `--set PATH=VALUE` applied, validated again; errors name the file, the path and the fix."""
    if case is None and overrides is None and not assignments:
        return load_scenario(path)
    if (case is None) != (overrides is None):
        raise UserError(
            "--overrides and --case go together",
            details=["Fix: give both (--overrides FILE --case NAME), or neither"],
        )
    base = read_yaml(path)
    changes: dict[str, object] = {}
    names = []
    if case is not None and overrides is not None:
        changes.update(pick_case(load_overrides(overrides), case, str(overrides)))
        names.append(case)
    for text in assignments:
        key, values = parse_assignment(text)
        if len(values) != 1:
            raise ScenarioError(
                f"--set {text!r}: solve takes one value per path",
                details=[f"Fix: --set {key}={values[0]} (for several values, use dsx plan sweep)"],
            )
        changes[key] = values[0]
    if assignments:
        names.append("--set")
    if not isinstance(base, dict):
        return load_scenario(path)  # the loader's message for a file that is not a mapping
    given = [f"--case {case} ({overrides})"] if case is not None else []
    given += [f"--set {a}" for a in assignments]
    return compose(
        base,
        changes,
        case=" + ".join(names),
        source=str(path),
        fix=f"Fix: change {' and '.join(given)}",
    )


def _options_checked(scenario: Scenario, path: Path) -> Scenario:
    """HiGHS options the scenario names, and a relaxation no plan can hold, are checked before
    any solve, naming the file."""
    refuse_unsolvable(scenario, path)
    return scenario


def _why_no_plan(error: NoPlanError, scenario: Scenario, path: Path) -> NoPlanError:
    """The solver's reason, what the data alone shows, and the command that explains the rest."""
    from planner.insight.diagnose import check_domain

    if "no plan meets every constraint" not in error.message:
        return error.at(path)
    named = [f"{c.explanation}. Fix: {c.fix}" for c in check_domain(scenario)]
    return NoPlanError(
        f"{path}: {error.message}",
        details=[
            *(named or error.details),
            f"Fix: run `dsx plan diagnose {path}` to see which site, quarter and limit conflict",
        ],
    )


def _in_plan(plan: Plan, site: str | None, period: str | None, plan_path: Path) -> None:
    sites = [s.id for s in plan.sites]
    if site is not None and site not in sites:
        raise UserError(
            f"--site {site!r} is not a site in {plan_path}", details=[f"Fix: use one of {', '.join(sites)}"]
        )
    if period is not None and period not in plan.periods:
        raise UserError(
            f"--period {period!r} is outside the horizon of {plan_path} "
            f"({plan.periods[0]}..{plan.periods[-1]})",
            details=[f"Fix: use a quarter such as {plan.periods[-1]}"],
        )


def _shown_rows_exist(scenario: Scenario, site: str | None, period: str | None, path: Path) -> None:
    """`solve --site/--period` are checked before solving, not after."""
    sites = [s.id for s in scenario.sites]
    quarters = scenario.periods.labels()
    if site is not None and site not in sites:
        raise UserError(
            f"--site {site!r} is not a site in {path}", details=[f"Fix: use one of {', '.join(sites)}"]
        )
    if period is not None and period not in quarters:
        raise UserError(
            f"--period {period!r} is outside the horizon of {path} ({quarters[0]}..{quarters[-1]})",
            details=[f"Fix: use a quarter such as {quarters[-1]}"],
        )


def site_period_table(plan: Plan, site: str | None = None, period: str | None = None) -> Table:
    """Racks, power and expected money per site and quarter. Both power columns are facility MW
    (the racks' need includes PUE), printed alike so that load <= available reads so."""
    title = f"Per site and quarter (expected; US$ M, {UNDISCOUNTED})"
    table = Table(title=title, title_justify="left")
    rack_ids = [r.id for r in plan.rack_types]
    table.add_column("site")
    table.add_column("quarter")
    for rack_id in rack_ids:
        table.add_column(f"racks {rack_id}", justify="right")
    for name in (
        "facility MW\navailable",
        "facility MW\nracks need",
        "GPUs",
        "util",
        money_header("buyback", UNDISCOUNTED),
        money_header("rev share", UNDISCOUNTED),
    ):
        table.add_column(name, justify="right")
    rows = [
        row
        for row in plan.site_periods
        if (site is None or row.site == site) and (period is None or row.period == period)
    ]
    mw = decimals_for([x for row in rows for x in (row.available_mw, row.it_load_mw)], least=1, most=3)
    for row in rows:
        racks = [str(row.racks_by_type[r]) if r in row.racks_by_type else "-" for r in rack_ids]
        table.add_row(
            row.site,
            row.period,
            *racks,
            fixed(row.available_mw, mw),
            fixed(row.it_load_mw, mw),
            f"{row.gpus_installed:,}",
            share(row.expected_utilisation),
            musd(row.expected_buyback_usd),
            musd(row.expected_revenue_share_usd),
        )
    return table


def outcome_table(plan: Plan) -> Table:
    """Each scenario's party values (discounted) beside the horizon sums they are made of
    (undiscounted): revenue, and the transfers between the parties (buyback, revenue share, credit
    loss), so the cloud's and the guarantor's columns differ between scenarios as these do. The
    caption says what else each value holds that a plan does not record (docs/insight.md)."""
    table = Table(
        title=f"Per scenario (US$ M; perspective {plan.perspective})",
        title_justify="left",
        caption=OUTCOME_CAPTION,
        caption_justify="left",
    )
    table.add_column("scenario", justify="left")
    for name in (
        "p",
        money_header("cloud", DISCOUNTED),
        money_header("guarantor", DISCOUNTED),
        money_header("syndicate", DISCOUNTED),
        money_header("revenue", UNDISCOUNTED),
        money_header("buyback", UNDISCOUNTED),
        money_header("rev share", UNDISCOUNTED),
        money_header("credit loss", UNDISCOUNTED),
        "served\nM GPU-h",
        "unserved\nM GPU-h",
    ):
        table.add_column(name, justify="right")
    hours = decimals_for(
        (h / 1e6 for o in plan.outcomes for h in (o.served_gpu_hours, o.unserved_gpu_hours)), least=1, most=3
    )
    p = probability_decimals(o.probability for o in plan.outcomes)
    for o in plan.outcomes:
        table.add_row(
            o.scenario,
            fixed(o.probability, p),
            musd(o.cloud_value_usd),
            musd(o.guarantor_value_usd),
            musd(o.syndicate_value_usd),
            musd(o.rental_revenue_usd),
            musd(o.buyback_usd),
            musd(o.revenue_share_usd),
            musd(o.credit_loss_usd),
            fixed(o.served_gpu_hours / 1e6, hours),
            fixed(o.unserved_gpu_hours / 1e6, hours),
        )
    return table


OUTCOME_CAPTION = (
    "Values sum each quarter's discounted money: cloud = revenue - rev share + buyback - energy - capex "
    "- opex; guarantor = hardware margin + rev share - buyback - credit loss; syndicate = both. A plan "
    'records no energy, capex, opex or margin (docs/insight.md, "Reading the tables").'
)


def risk_table(plan: Plan) -> Table:
    risk, solver = plan.risk, plan.solver
    table = Table(title="Risk and solver", show_header=False, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    unit = f"US$ M, {DISCOUNTED}"
    table.add_row(f"expected value ({unit})", musd(risk.expected_value_usd))
    if risk.cvar_usd is not None:
        table.add_row(f"CVaR at alpha {risk.cvar_alpha:g} ({unit})", musd(risk.cvar_usd))
    table.add_row(
        f"worst / best scenario ({unit})",
        f"{musd(risk.worst_case_value_usd)} / {musd(risk.best_case_value_usd)}",
    )
    table.add_row(f"objective ({unit})", musd(solver.objective_usd))
    # Each figure on its own row: one can be computed where the other is not (planner.value_of_information).
    if risk.evpi_usd is not None:
        table.add_row(f"EVPI: perfect foresight is worth ({unit})", musd(risk.evpi_usd))
    if risk.vss_usd is not None:
        table.add_row(f"VSS: planning with scenarios earns ({unit})", musd(risk.vss_usd))
    if risk.evpi_usd is None or risk.vss_usd is None:
        table.add_row("value of information", escape(risk.value_of_information_note or "not computed"))
    gap = "-" if solver.mip_gap is None else f"{solver.mip_gap:.3%}"
    method = f", {solver.method}" if solver.method else ""  # a 1.1 plan does not record it
    table.add_row(
        "solver",
        escape(f"HiGHS {solver.highs_version} via {solver.interface}{method}: {solver.status}, gap {gap}"),
    )
    if solver.method_note:
        table.add_row("method", escape(solver.method_note))
    if plan.walk_away is not None:
        nd = plan.walk_away
        nd_gap = "-" if nd.mip_gap is None else f"{nd.mip_gap:.3%}"
        to = "" if nd.mip_rel_gap is None else f" (solved to {nd.mip_rel_gap:g})"
        dropped = "; without the cloud's CVaR floor" if nd.cloud_cvar_floor_dropped else ""
        table.add_row(
            "no-deal plan", escape(f"{nd.status}, gap {nd_gap}{to}, {nd.racks_built:,} racks{dropped}")
        )
    table.add_row(
        "size",
        f"{solver.rows:,} rows, {solver.columns:,} columns ({solver.integer_columns:,} integer), "
        f"{solver.nonzeros:,} non-zeros",
    )
    table.add_row(
        "time",
        f"build {solver.build_s:.2f} s, hand-off {solver.handoff_s:.2f} s, HiGHS {solver.solve_s:.2f} s",
    )
    v = plan.verification
    table.add_row("verification", f"passed ({v.checks_run:,} checks)" if v.passed else "FAILED")
    return table


def parties_table(plan: Plan) -> Table:
    """Each party's value whatever the perspective, and what it required (participation); where
    the plan was solved with walk-away floors, each party's walk-away value (what it makes with no
    deal) and its surplus over it."""
    table = Table(title=f"Each party (US$ M, {DISCOUNTED})", title_justify="left")
    table.add_column("party", justify="left")
    walk_away = plan.walk_away is not None
    columns = ["expected", "CVaR", "worst", "required expected", "required CVaR"]
    if walk_away:
        columns += ["walk-away (no deal)", "over walk-away"]
    for column in columns:
        table.add_column(money_header(column, DISCOUNTED), justify="right")

    def walk_away_of(f: PartyFigures) -> float | None:
        # The syndicate's value is the sum of the two parties', with the deal or without: exact.
        if f.party == "syndicate" and plan.walk_away is not None:
            return plan.walk_away.cloud_value_usd + plan.walk_away.guarantor_value_usd
        return f.walk_away_value_usd

    def surplus(f: PartyFigures) -> float | None:
        value = walk_away_of(f)
        return None if value is None else f.expected_value_usd - value

    def walk_away_cell(f: PartyFigures) -> str:
        """The walk-away value; the cloud's with "<= bound" where its best alone may be more."""
        text = musd(walk_away_of(f))
        slack = no_deal_slack_usd(plan)
        if f.party == "cloud" and slack is not None and plan.walk_away is not None:
            # a bound shown rounded up, so it never reads below HiGHS's own
            scale = 10**MUSD_DECIMALS
            bound_musd = math.ceil((plan.walk_away.cloud_value_usd + slack) / MUSD * scale) / scale
            text += f" <= {fixed(bound_musd, MUSD_DECIMALS)}"
        return text

    for f in plan.parties:
        cells = [
            musd(f.expected_value_usd),
            f"{musd(f.cvar_usd)} (alpha {f.cvar_alpha:g})",
            musd(f.worst_case_value_usd),
            musd(f.min_expected_value_usd),
            musd(f.min_cvar_usd),
        ]
        if walk_away:
            cells += [walk_away_cell(f), musd(surplus(f))]
        table.add_row(f"{f.party}{' (objective)' if f.party == plan.perspective else ''}", *cells)
    return table


def json_summary(plan: Plan, output: Path, site: str | None = None, period: str | None = None) -> dict:
    rows = [
        r
        for r in plan.site_periods
        if (site is None or r.site == site) and (period is None or r.period == period)
    ]
    return {
        "plan_path": str(output),
        "scenario": plan.scenario_name,
        "scenario_hash": plan.scenario_hash,
        "perspective": plan.perspective,
        "solver": plan.solver.model_dump(mode="json"),
        "risk": plan.risk.model_dump(mode="json"),
        "parties": [f.model_dump(mode="json") for f in plan.parties],
        "walk_away": None if plan.walk_away is None else plan.walk_away.model_dump(mode="json"),
        "value_of_information_computed": plan.risk.evpi_usd is not None and plan.risk.vss_usd is not None,
        "evpi_computed": plan.risk.evpi_usd is not None,
        "vss_computed": plan.risk.vss_usd is not None,
        "verification": {
            "passed": plan.verification.passed,
            "checks_run": plan.verification.checks_run,
            "notes": list(plan.verification.notes),
        },
        "warnings": plan_warnings(plan),
        "notices": plan_notices(plan),
        "buyback_matching": None
        if plan.buyback_matching is None
        else plan.buyback_matching.model_dump(mode="json"),
        "outcomes": [o.model_dump(mode="json") for o in plan.outcomes],
        "site_periods": [row.model_dump(mode="json") for row in rows],
    }


def _terminal() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=140)  # piped: do not squeeze the tables


def print_plan_warnings(plan: Plan, console: Console) -> None:
    """The warnings the plan alone raises (`plan_warnings`), on stderr: `solve` and `show` alike."""
    for warning in plan_warnings(plan):
        console.print(f"[yellow]warning[/]: {escape(warning)}", soft_wrap=True)


def print_notices(plan: Plan, console: Console) -> None:
    """Notices on stderr, beside the warnings: what the tables show but do not say."""
    for notice in plan_notices(plan):
        console.print(f"[cyan]notice[/]: {escape(notice)}", soft_wrap=True)


def print_plan(plan: Plan, site: str | None = None, period: str | None = None) -> None:
    """The tables `solve` prints after solving and `show` prints from a file."""
    console = _terminal()
    console.print(site_period_table(plan, site, period))
    console.print(outcome_table(plan))
    console.print(parties_table(plan))
    console.print(risk_table(plan))


def solve_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the plan (JSON).")],
    interface: Annotated[
        InterfaceChoice | None, typer.Option(help="How the model reaches HiGHS (default: the scenario's).")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", min=0.001, help="HiGHS time limit, s.")
    ] = None,
    gap: Annotated[
        float | None, typer.Option("--gap", min=0.0, max=1.0, help="Relative MIP gap to stop at.")
    ] = None,
    value_of_information: Annotated[
        bool,
        typer.Option(
            "--value-of-information/--no-value-of-information",
            help="Fill the plan's EVPI and VSS (S + 2 more solves, S = number of scenarios; more where floors bind across scenarios: docs/insight.md).",
        ),
    ] = True,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="PATH=VALUE applied to the scenario (repeatable), e.g. terms.buyback_share=0.6"
        ),
    ] = None,
    overrides: Annotated[
        Path | None, typer.Option("--overrides", help="Named overrides file (YAML), with --case.")
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="Override case to apply (before --set).")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Print only this site's rows.")] = None,
    period: Annotated[
        str | None, typer.Option("--period", help="Print only this quarter's rows, e.g. 2027Q4.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Solve a scenario and write its verified plan, with EVPI and VSS unless asked not to."""
    check_output_path(output)
    refuse_overwriting_inputs(
        output,
        [output],
        [("the scenario file", scenario), ("the overrides file", overrides)],
        example="plan.json",
    )
    loaded = load_with_overrides(scenario, overrides, case, assignments or [])
    _shown_rows_exist(loaded, site, period, scenario)
    loaded = _options_checked(_with_solver_overrides(loaded, interface, time_limit, gap), scenario)
    status_console = Console(stderr=True)
    with status_console.status("loading", spinner="dots") as status:
        try:
            plan = solve_scenario(
                loaded,
                progress=lambda phase: status.update(f"[bold]{phase}[/] {escape(str(scenario))}"),
                value_of_information=value_of_information,
            )
        except NoPlanError as error:
            raise _why_no_plan(error, loaded, scenario) from None
        status.update(f"[bold]writing[/] {escape(str(output))}")
        write_plan(plan, output)
    if not value_of_information:
        status_console.print(
            f"EVPI and VSS skipped (--no-value-of-information); to get them, solve without the flag "
            f"or run: dsx plan value-of-information {escape(str(scenario))}",
            soft_wrap=True,
        )
    elif plan.risk.evpi_usd is None or plan.risk.vss_usd is None:
        note = plan.risk.value_of_information_note or ""
        fix = (
            "The plan itself is verified; VSS needs an expected-value plan that can meet the requirements"
            if EEV_INFEASIBLE in note
            else "Fix: raise solver.time_limit_s (or --time-limit), or run dsx plan value-of-information on the file"
        )
        status_console.print(f"[yellow]warning[/]: {escape(note)}. {fix}", soft_wrap=True)
    for warning in (gap_warning(plan, loaded.solver), no_deal_gap_warning(plan)):
        if warning is not None:
            status_console.print(f"[yellow]warning[/]: {escape(warning)}", soft_wrap=True)
    print_plan_warnings(plan, status_console)
    if as_json:
        print_notices(plan, status_console)
        echo_json(json_summary(plan, output, site, period))
        return
    print_plan(plan, site, period)
    print_notices(plan, status_console)
    _terminal().print(f"written to [bold]{escape(str(output))}[/]")


def show_command(
    plan_path: Annotated[Path, typer.Argument(help="Plan file (JSON) from `dsx plan solve`.")],
    site: Annotated[str | None, typer.Option("--site", help="Only this site's rows.")] = None,
    period: Annotated[
        str | None, typer.Option("--period", help="Only this quarter's rows, e.g. 2027Q4.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Print a plan's tables again (as `solve` did), optionally for one site or quarter."""
    plan = read_plan(plan_path)
    _in_plan(plan, site, period, plan_path)
    print_plan_warnings(plan, Console(stderr=True))
    if as_json:
        print_notices(plan, Console(stderr=True))
        echo_json(json_summary(plan, plan_path, site, period))
        return
    print_plan(plan, site, period)
    print_notices(plan, Console(stderr=True))


def register(app: typer.Typer, plan_app: typer.Typer) -> None:
    plan_app.command("solve")(solve_command)
    plan_app.command("show")(show_command)
