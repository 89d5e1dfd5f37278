"""Whether a scenario has a plan and, where it has none, why, in domain words: which site,
quarter and limit conflict, or which participation requirement falls short and by how much.

What each step establishes:

1. domain checks on the scenario (pure, no solver) name the conflicts visible in the data alone
   (existing racks holding more GPUs than the site's cap);
2. the LP relaxation of the compiled model: every plan is one of its solutions, so an infeasible
   relaxation proves there is no plan, and HiGHS's irreducible infeasible subsystem (IIS) names
   the rows that cannot hold together, mapped back to Pyomo component names (`gpu_cap[batam,0]`)
   and explained per family;
3. a feasible relaxation does not prove a plan: whole racks can leave a participation
   requirement out of every plan's reach while fractional ones meet it (a 4-quarter, two-site
   case with the cloud's expected value at least US$40.5 M: the relaxation meets it, every whole
   plan falls US$0.69 M short). So where the scenario states requirements, the elastic model is
   solved first, as `dsx plan solve` solves it (`planner.pipeline.requirement_shortfalls`): a
   whole plan meets them all, or each requirement that falls short is named with its shortfall;
   only where it has no plan at all does the relaxation's IIS explain. Without requirements a
   feasible relaxation is enough: building nothing beyond the existing racks is then a whole
   plan.

A shortfall proves nothing by itself: HiGHS stopped by `solver.time_limit_s` (or a limit in
`solver.extra`) returns the best plan it found, which may fall short where another plan meets
every requirement. So no plan is said to exist only where HiGHS's bound proves a positive total
shortfall, and the fix of moving a requirement to what the plan reaches is given only where
HiGHS proved that plan the closest (status Optimal); otherwise the diagnosis says what is not
proven and to let HiGHS run further (`Diagnosis.proven`, `least_shortfall_usd`).
"""

from __future__ import annotations

import gc
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import highspy
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from pyomo.repn.util import FileDeterminism

from planner.engine import available_memory_bytes
from planner.model.build import build_model
from planner.model.constraints import stated_requirements
from planner.model.size import check_fits
from planner.schema.scenario import Scenario
from planner.solve.interfaces import Interface
from planner.walk_away import (
    PARTIES_WITH_FLOORS,
    NoDealPlanError,
    WalkAwayFloors,
    asks_walk_away,
    from_walk_away,
    short_past_walk_away,
    solve_no_deal,
    usd,
    with_floors,
)

FAMILY_WORDS = {
    "power_fits": "the racks installed need more facility power than is energised",
    "power_cap": "energised power cannot exceed the site's power cap",
    "gpu_cap": "GPUs installed cannot exceed the site's GPU cap",
    "build_rate": "racks built per quarter cannot exceed the build rate",
    "block_rate": "power blocks ordered per quarter cannot exceed the order rate",
    "quota_fits": "quotas cannot exceed the GPUs of their pool",
    "serve_within_capacity": "served GPU-hours cannot exceed installed GPU-hours",
    "serve_within_quota": "served GPU-hours cannot exceed the tenant's quota",
    "demand_balance": "served plus unserved GPU-hours must equal demand",
    "cvar_shortfall_def": "CVaR shortfall definition",
    "participation_expected_value": "a party's expected value must reach its participation requirement",
    "participation_cvar": "a party's CVaR must reach its participation requirement",
    "buyback_exposure_per_period": "the guarantor's buyback exposure in a quarter cannot exceed its cap",
    "buyback_exposure_total": "the guarantor's buyback exposure over the horizon cannot exceed its cap",
}

DEEP_IIS_STRATEGY = 2
"""HiGHS's `iis_strategy` "try elastic LP", run where its default light test names no row: the
light test finds only rows infeasible on their own or by their bounds, and a requirement out of
reach involves the value rows of the whole model (the 4-quarter case above with the cloud's
expected value at least US$1,000 M: light test empty, elastic LP 131 rows in 0.04 s)."""


@dataclass
class Conflict:
    site: str | None
    period: str | None
    limit: str
    explanation: str
    fix: str = ""
    shortfall_usd: float | None = None
    """For a participation requirement: by how much the elastic model's plan falls short of it,
    the closest whole plan's only where HiGHS's status is Optimal (`Diagnosis.proven`)."""


@dataclass
class Diagnosis:
    scenario: str
    feasible: bool
    status: str
    """HiGHS's status of the model that settled it: the elastic model where the scenario states
    participation requirements and that model has a plan, else the LP relaxation."""
    conflicts: list[Conflict] = field(default_factory=list)
    iis_constraints: list[str] = field(default_factory=list)
    iis_bounds: list[str] = field(default_factory=list)
    finding: str = ""
    """What the diagnosis established, and how: the relaxation, its IIS, the elastic model."""
    fix: str = ""
    """What to do where no conflict carries a fix (a solve that ran out of time, say)."""
    proven: bool = True
    """False where HiGHS stopped (`solver.time_limit_s`, a limit in `solver.extra`) before
    proving whether a plan exists: then `feasible` False means none was found, not that none
    exists."""
    least_shortfall_usd: float | None = None
    """Where the elastic model's plan falls short: the total shortfall HiGHS's bound proves every
    whole plan has (0: none proven, a plan meeting every requirement may exist)."""
    walk_away_value_usd: dict[str, float] | None = None
    """With `participation.floors: walk_away`: each party's expected value in the no-deal plan."""
    floor_usd: dict[str, float] | None = None
    """With `participation.floors: walk_away`: each party's expected-value floor checked, the
    larger of its given floor and its walk-away value (as `dsx plan solve` floors the deal)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_domain(scenario: Scenario) -> list[Conflict]:
    """Conflicts visible in the data alone (no solver)."""
    out = []
    first = scenario.periods.labels()[0]
    for site in scenario.sites:
        existing_gpus = sum(
            count * scenario.rack_type(r).gpus_per_rack for r, count in site.existing_racks.items()
        )
        if existing_gpus > site.gpu_cap:
            out.append(
                Conflict(
                    site=site.id,
                    period=first,
                    limit="gpu_cap",
                    explanation=(
                        f"site {site.id}: existing racks hold {existing_gpus:,} GPUs from {first} on, "
                        f"above its GPU cap of {site.gpu_cap:,} (existing racks stay for the whole horizon)"
                    ),
                    fix=f"raise sites[{site.id}].gpu_cap to at least {existing_gpus:,} or lower sites[{site.id}].existing_racks",
                )
            )
    return out


_NAME_RE = re.compile(r"^(?P<family>[A-Za-z_]+)\[(?P<index>.*)\]$")


def _explain_row(name: str, scenario: Scenario) -> Conflict:
    labels = scenario.periods.labels()
    match = _NAME_RE.match(name)
    family = match.group("family") if match else name
    parts = [p.strip() for p in match.group("index").split(",")] if match else []
    site_ids = {s.id for s in scenario.sites}
    site = next((p for p in parts if p in site_ids), None)
    period = None
    for p in parts:
        if p.isdigit() and int(p) < len(labels):
            period = labels[int(p)]
    words = FAMILY_WORDS.get(family, family)
    where = ", ".join(x for x in (f"site {site}" if site else "", period or "") if x)
    return Conflict(
        site=site,
        period=period,
        limit=family,
        explanation=f"{name}: {words}" + (f" ({where})" if where else ""),
    )


def diagnose(scenario: Scenario, interface: Interface | None = None) -> Diagnosis:
    """Whether `scenario` has a plan, established as the module docstring says, and if not, why.
    `interface` solves the elastic model (default: the scenario's), as `solve_scenario`'s does.

    With `participation.floors: walk_away` the requirements checked are those `dsx plan solve`
    solves: the no-deal plan goes first (`planner.walk_away.solve_no_deal`, the pipeline's own)
    and each party's floor is the larger of its given floor and its walk-away value; the
    diagnosis names those values and, for a floor that falls short, which of the two binds.

    With requirements the elastic model goes first: where it finds a whole plan meeting them
    all, or names those that fall short, the relaxation would add nothing (on the bundled
    example it was half of the diagnosis's time)."""
    # Its own solve: the extensive form's relaxation by HiGHS's defaults, whatever `solver` says.
    extensive = scenario.solver.model_copy(
        update={"method": "extensive", "relax_integrality": False, "rounded_start": False}
    )
    check_fits(scenario.model_copy(update={"solver": extensive}), available_memory_bytes())
    if not asks_walk_away(scenario):
        return _diagnose(scenario, interface)
    try:
        walk_away = solve_no_deal(scenario, interface)
    except NoDealPlanError as error:
        return _without_no_deal_plan(scenario, error)
    gc.collect()  # the no-deal model goes before the deal's are built (its cycles)
    diagnosis = _diagnose(with_floors(scenario, walk_away), interface)
    _name_walk_away(scenario, walk_away, diagnosis)
    return diagnosis


def _without_no_deal_plan(scenario: Scenario, error: NoDealPlanError) -> Diagnosis:
    """The diagnosis where the no-deal plan behind the walk-away floors has none: the floors, and
    so the deal `dsx plan solve` would solve, are unknown (solve refuses it too)."""
    found = "no plan" if error.proven else "no plan found"
    return Diagnosis(
        scenario=scenario.name,
        feasible=False,
        status=f"no-deal plan: {found}",
        finding=(
            f"the walk-away floors cannot be set: {error.message.removeprefix(f'scenario {scenario.name!r}: ')}"
            + "".join(f"; {d}" for d in error.details if not d.startswith("Fix:"))
        ),
        fix="; ".join(d.removeprefix("Fix: ") for d in error.details if d.startswith("Fix:")),
        proven=error.proven,
    )


def _name_walk_away(scenario: Scenario, walk_away: WalkAwayFloors, diagnosis: Diagnosis) -> None:
    """Each party's walk-away value in the finding and, on a short expected-value floor, which
    floor binds (given or walk-away) and the fix that can help: lowering a given floor does not
    where the walk-away value binds; the deal's terms do."""
    values = {party: walk_away.value_usd(party) for party in PARTIES_WITH_FLOORS}
    diagnosis.walk_away_value_usd = values
    diagnosis.floor_usd = dict(walk_away.floors_usd)
    said = ", ".join(f"the {party}'s {usd(value)}" for party, value in values.items())
    diagnosis.finding += (
        f"; participation.floors: walk_away floors each party at the larger of its given floor and its "
        f"walk-away value (its expected value in the plan the cloud would make with no deal): {said}"
    )
    if walk_away.record.cloud_cvar_floor_dropped:
        diagnosis.finding += (
            " (the no-deal plan without the cloud's CVaR floor, participation.cloud.min_cvar_usd: HiGHS "
            "proved no plan alone meets it, and not signing is always possible)"
        )
    for conflict in diagnosis.conflicts:
        party = next(
            (p for p in PARTIES_WITH_FLOORS if conflict.limit == f"participation.{p}.min_expected_value_usd"),
            None,
        )
        if party is None or conflict.shortfall_usd is None:
            continue
        given = getattr(scenario.participation, party).min_expected_value_usd
        value = values[party]
        given_words = "none given" if given is None else f"given {usd(given)}"
        if from_walk_away(scenario, walk_away, party):
            conflict.explanation += (
                f"; the walk-away value binds: the {party}'s floor is its walk-away value {usd(value)} "
                f"({given_words})"
            )
            if not conflict.fix:  # its plan is not proven the closest: the diagnosis's own fix stands
                continue
            conflict.fix = (
                f"change the deal's terms so it beats walking away for the {party} (revenue share, buyback, "
                f"the tenants' credits); lowering participation.{party}.min_expected_value_usd does not help, "
                f"the walk-away value {usd(value)} binds; or set participation.floors: given and the floors "
                "by hand"
            )
            continue
        conflict.explanation += (
            f"; the given floor binds: {given_words}, above the {party}'s walk-away value {usd(value)}"
        )
        # Null floors the party at its walk-away value here, not at none.
        conflict.fix = conflict.fix.replace(
            "(null removes it)", f"(null floors it at its walk-away value {usd(value)}, not none)"
        )
        if conflict.fix and short_past_walk_away(scenario, walk_away, party, conflict.shortfall_usd):
            # Lowering the given floor helps only down to the walk-away value, which the plan misses too.
            conflict.fix = (
                f"lowering participation.{party}.min_expected_value_usd helps only down to the {party}'s "
                f"walk-away value {usd(value)}, which the closest whole plan misses too: change the "
                f"deal's terms so it beats walking away for the {party}"
            )


def _diagnose(scenario: Scenario, interface: Interface | None) -> Diagnosis:
    """`diagnose` of the scenario whose requirements are the ones to check (given floors)."""
    diagnosis = Diagnosis(scenario=scenario.name, feasible=True, status="")
    domain = check_domain(scenario)
    diagnosis.conflicts = list(domain)
    unsettled = ""
    if stated_requirements(scenario) and not domain:
        settled, unsettled = _check_requirements(scenario, diagnosis, interface)
        if settled:
            return diagnosis
        gc.collect()  # the elastic model goes before the relaxation's is built (its cycles)
    if not _relaxation(scenario, diagnosis):  # a row of constants that cannot hold
        return diagnosis
    if domain:
        diagnosis.feasible = False
        diagnosis.finding = (
            "the data alone rule out every plan: existing racks hold more GPUs than a GPU cap allows"
        )
    elif not diagnosis.feasible:
        diagnosis.fix = ""  # the relaxation's account replaces the elastic model's
        _explain_lp_infeasible(diagnosis)
    elif unsettled:
        diagnosis.feasible = False
        diagnosis.proven = False
        diagnosis.finding = unsettled
    else:
        diagnosis.finding = (
            f"its LP relaxation is feasible (HiGHS: {diagnosis.status}) and, with no participation "
            "requirement, building nothing beyond the existing racks is a whole plan"
        )
    return diagnosis


def _relaxation(scenario: Scenario, diagnosis: Diagnosis) -> bool:
    """Solve the LP relaxation into `diagnosis` (status; if infeasible, its IIS, by
    `DEEP_IIS_STRATEGY` where the light test names nothing, and the rows' conflicts). False if
    the model does not compile: a row of constants cannot hold (`diagnosis` says which)."""
    m = build_model(scenario)
    # Pyomo's compiler (used here for its row list) does not apply the scaling suffix and warns
    # about it; the IIS is about which rows conflict, not their units.
    m.del_component("scaling_factor")
    try:
        info = LinearStandardFormCompiler().write(
            m, mixed_form=True, set_sense=None, file_determinism=FileDeterminism.NONE
        )
    except Exception as error:  # pyomo raises on a row that is infeasible on its own (all constants)
        diagnosis.feasible = False
        diagnosis.status = f"trivially infeasible: {error}"
        diagnosis.finding = f"a row of the model cannot hold, whatever is built ({error})"
        return False
    highs = _pass(info)
    highs.setOptionValue("solve_relaxation", True)
    highs.run()
    status = highs.getModelStatus()
    diagnosis.status = highs.modelStatusToString(status)
    if status != highspy.HighsModelStatus.kInfeasible:
        return True
    diagnosis.feasible = False
    _, iis = highs.getIis()
    if not len(iis.row_index_) and not len(iis.col_index_):
        highs.setOptionValue("iis_strategy", DEEP_IIS_STRATEGY)
        highs.setOptionValue("iis_time_limit", float(scenario.solver.time_limit_s))
        _, iis = highs.getIis()
    rows = [info.rows[i][0].name for i in iis.row_index_]
    diagnosis.iis_constraints = rows
    diagnosis.iis_bounds = [info.columns[j].name for j in iis.col_index_]
    named = {(c.site, c.period, c.limit) for c in diagnosis.conflicts}
    for row in rows:
        conflict = _explain_row(row, scenario)
        if (conflict.site, conflict.period, conflict.limit) not in named:
            diagnosis.conflicts.append(conflict)
            named.add((conflict.site, conflict.period, conflict.limit))
    return True


def _explain_lp_infeasible(diagnosis: Diagnosis) -> None:
    """The finding of an infeasible relaxation, saying what its IIS held, even when nothing."""
    found = f"the LP relaxation is infeasible (HiGHS: {diagnosis.status}), so no plan exists"
    size = len(diagnosis.iis_constraints) + len(diagnosis.iis_bounds)
    if size:
        diagnosis.finding = f"{found}; HiGHS's IIS names {size} row(s) and bound(s) that cannot hold together"
        return
    diagnosis.finding = f"{found}, but HiGHS's IIS names no row or bound that conflicts"
    diagnosis.fix = (
        "check each site's existing racks, power and caps against its limits, and each participation "
        "requirement; dsx plan solve gives HiGHS's own account"
    )


def _check_requirements(
    scenario: Scenario, diagnosis: Diagnosis, interface: Interface | None
) -> tuple[bool, str]:
    """Check the participation requirements as `dsx plan solve` does (the elastic model, a MIP).
    Returns whether that settled the diagnosis and, where it did not, what to report should the
    relaxation be feasible (empty where the elastic model has no plan at all: then the
    requirements are not the cause, and the relaxation's IIS says what is)."""
    from planner.pipeline import requirement_shortfalls  # the pipeline's imports reach far

    # Whole plans are the question, whatever `solver.relax_integrality` says (solve refuses it).
    whole = scenario.model_copy(
        update={"solver": scenario.solver.model_copy(update={"relax_integrality": False})}
    )
    found = requirement_shortfalls(whole, interface)
    if found is None:  # would not fit in memory: the relaxation's own size check passed, so rare
        diagnosis.fix = "free memory, or reduce the scenarios (dsx plan reduce)"
        return False, (
            "the LP relaxation is feasible, but the elastic model that checks the participation "
            "requirements would not fit in memory, so whether a whole plan meets them is unknown"
        )
    outcome, short = found
    elastic = f"the elastic model, as dsx plan solve runs it; HiGHS: {outcome.status}"
    by_extra = scenario.solver.extra and outcome.model_status != highspy.HighsModelStatus.kTimeLimit
    further = f"raise solver.time_limit_s (now {scenario.solver.time_limit_s} s)" + (
        ", or remove the limit in solver.extra that stopped HiGHS," if by_extra else ""
    )
    if not outcome.has_solution:
        if outcome.infeasible:
            return False, ""
        diagnosis.fix = f"{further} and diagnose again"
        return False, (
            f"the LP relaxation is feasible, but HiGHS found no whole plan within solver.time_limit_s "
            f"({elastic}), so whether one meets every participation requirement is unknown"
        )
    diagnosis.status = outcome.status
    if not short:
        diagnosis.finding = f"a whole-rack plan meets every participation requirement ({elastic})"
        return True, ""
    diagnosis.feasible = False
    diagnosis.least_shortfall_usd = least_usd = found.least_usd
    found_usd = sum(short.values())
    if not found.proven:
        diagnosis.proven = False
        diagnosis.finding = (
            f"no plan meeting every participation requirement was found: the best whole-rack plan "
            f"found falls short by US${found_usd:,.0f} in total; not proven, as HiGHS stopped with its "
            f"bound still allowing a plan that meets them all ({elastic})"
        )
        diagnosis.fix = f"{further} and diagnose again"
    else:
        diagnosis.finding = (
            f"no whole-rack plan meets every participation requirement: proven by HiGHS's bound, every "
            f"whole plan falls short by at least US${least_usd:,.0f} in total ({elastic})"
        )
        if not found.closest:
            diagnosis.finding += (
                f"; the best plan found falls short by US${found_usd:,.0f}, and the closest is not known"
            )
            diagnosis.fix = (
                f"{further} and diagnose again: the closest plan gives the least change to the requirements"
            )
    diagnosis.conflicts.extend(
        _requirement_conflict(scenario, name, gap, closest=found.closest) for name, gap in short.items()
    )
    return True, ""


def _requirement_conflict(scenario: Scenario, name: str, gap_usd: float, *, closest: bool) -> Conflict:
    """A requirement (`participation.<party>.<field>`) the elastic model's plan misses by
    `gap_usd`, with the value that plan reaches. Where that plan is the `closest` (HiGHS's
    optimum), moving the requirement there is the fix (the other requirements as it meets
    them); a plan HiGHS stopped at may not be, so it gets no fix (`Diagnosis.fix` says how to
    find the closest).

    In cents, each figure the one shown: what the plan reaches is rounded toward the requirement
    (down for a floor, up for a cap), so "reaches" never overstates it and the fix's value is one
    the plan meets; the shortfall is then the requirement as shown less that, so the line adds up
    by hand. Whole dollars floored HiGHS's US$39,420.00000000004 short of US$319,530 to "reaches
    US$280,109"; the cent absorbs such noise (`_cents`)."""
    _, party, name_field = name.split(".")
    required = float(getattr(getattr(scenario.participation, party), name_field))
    plan = "the closest whole plan" if closest else "the best plan found"
    required_c = round(required * 100)
    if name_field.startswith("max_"):
        reached_c = math.ceil(_cents(required + gap_usd))
        short_c = reached_c - required_c
        how = f"a cap of {_usd_cents(required_c)}; {plan} exposes {_usd_cents(reached_c)}"
        fix = f"raise {name} to at least {_plain(reached_c)}"
    else:
        reached_c = math.floor(_cents(required - gap_usd))
        short_c = required_c - reached_c
        how = f"{_usd_cents(required_c)} required; {plan} reaches {_usd_cents(reached_c)}"
        fix = f"lower {name} to at most {_plain(reached_c)}"
    return Conflict(
        site=None,
        period=None,
        limit=name,
        explanation=f"{plan} falls short of it by {_usd_cents(short_c)} ({how})",
        fix=f"{fix} (null removes it), or change the terms so the parties can meet it" if closest else "",
        shortfall_usd=gap_usd,
    )


def _cents(value_usd: float) -> float:
    """US$ in cents, rid of float noise far below a cent (1e-6 cents) before it is floored or ceiled."""
    return round(value_usd * 100, 6)


def _usd_cents(cents: int) -> str:
    """Whole cents as US$ with two decimals, a negative one as -US$1.50."""
    text = f"US${abs(cents) / 100:,.2f}"
    return f"-{text}" if cents < 0 else text


def _plain(cents: int) -> str:
    """Whole cents as a YAML number a scenario takes: 280110, or 280109.87."""
    return f"{cents / 100:.2f}".removesuffix(".00")


def _pass(info: Any) -> highspy.Highs:
    """Hand the compiled arrays to HiGHS (as planner.solve.direct does, but keeping the row list)."""
    import numpy as np

    inf = highspy.kHighsInf
    A = info.A.tocsc()
    num_row, num_col = A.shape
    lp = highspy.HighsLp()
    lp.num_col_ = num_col
    lp.num_row_ = num_row
    lp.col_cost_ = np.asarray(info.c.toarray()[0], dtype=np.float64) if num_col else np.zeros(0)
    lower, upper = [], []
    for var in info.columns:
        lb, ub = var.bounds
        lower.append(-inf if lb is None else lb)
        upper.append(inf if ub is None else ub)
    lp.col_lower_ = np.asarray(lower, dtype=np.float64)
    lp.col_upper_ = np.asarray(upper, dtype=np.float64)
    kinds = np.fromiter((row[1] for row in info.rows), dtype=np.int8, count=num_row)
    rhs = np.asarray(info.rhs, dtype=np.float64)
    lp.row_lower_ = np.where(kinds >= 0, np.where(kinds == 0, rhs, -inf), rhs)
    lp.row_upper_ = np.where(kinds <= 0, np.where(kinds == 0, rhs, inf), rhs)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.sense_ = highspy.ObjSense.kMaximize
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(lp)
    return highs


def iis_text(diagnosis: Diagnosis) -> str:
    """The conflicting constraints and bounds, one per line, for `--iis-out`."""
    lines = [f"# IIS of scenario {diagnosis.scenario} (HiGHS: {diagnosis.status})"]
    lines += [
        f"# {'has a plan' if diagnosis.feasible else 'has no plan'}: {diagnosis.finding}",
        "# constraints",
    ]
    lines += diagnosis.iis_constraints or ["(none)"]
    lines += ["# variable bounds"]
    lines += diagnosis.iis_bounds or ["(none)"]
    return "\n".join(lines) + "\n"
