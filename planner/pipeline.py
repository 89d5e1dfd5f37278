"""Scenario -> verified plan: build, solve, report, verify. No file I/O here.

Anything short of a verified plan ends in `NoPlanError`, in the planner's words, so the CLI
writes nothing and exits non-zero.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import highspy

from planner.engine import available_memory_bytes
from planner.errors import NoPlanError, RequirementsShortError, ScenarioError
from planner.model.build import MONEY_SCALE_USD, build_model, data_of
from planner.model.constraints import requirement_names
from planner.model.size import check_fits
from planner.results import build_plan
from planner.schema.plan import Plan, Verification
from planner.schema.scenario import Scenario
from planner.solve.interfaces import Interface, SolveOutcome, check_options, solve_model
from planner.solve.starts import MipStart
from planner.value_of_information import with_value_of_information
from planner.verify import verify_plan
from planner.walk_away import (
    asks_walk_away,
    cannot_beat_walking_away,
    record,
    solve_no_deal,
    with_floors,
)

SHORTFALL_NOISE_USD = 1.0
"""Requirement shortfalls below this (US$) are solver round-off."""

Progress = Callable[[str], None]
Verifier = Callable[[Scenario, Plan], Verification]


def _no_plan_message(scenario: Scenario, outcome: SolveOutcome) -> NoPlanError:
    name = scenario.name
    if outcome.infeasible:
        return NoPlanError(
            f"scenario '{name}': no plan meets every constraint (HiGHS: {outcome.status})",
            details=[
                "existing racks may need more power or GPUs than the site caps allow, or a build-rate, "
                "power-cap or lead-time limit cannot be met",
                "Fix: check sites[*].existing_racks against existing_mw, power_cap_mw and gpu_cap",
            ],
        )
    if outcome.unbounded:
        return NoPlanError(
            f"scenario '{name}': the value can grow without limit (HiGHS: {outcome.status})",
            details=["Fix: check that every site has a finite power cap, GPU cap and build rate"],
        )
    fix = (
        f"Fix: raise solver.time_limit_s (now {scenario.solver.time_limit_s} s) or loosen solver.mip_rel_gap"
    )
    if scenario.solver.first_lp_solver() == "pdlp" and not scenario.solver.relax_integrality:
        # The rounded start's relaxation by PDLP ran out the bundled example's 30 s limit (0.15-0.17 s
        # by the default), leaving HiGHS's MIP no time (bench/README.md, session 22).
        fix = (
            "Fix: set solver.lp_algorithm to auto (PDLP, a first-order method, may not solve the rounded "
            "start's relaxation within the limit, and that leaves HiGHS no time), or raise "
            f"solver.time_limit_s (now {scenario.solver.time_limit_s} s)"
        )
    return NoPlanError(
        f"scenario '{name}': HiGHS found no plan within the limits (HiGHS: {outcome.status})", details=[fix]
    )


class Shortfalls(NamedTuple):
    """The elastic model's outcome and each requirement's shortfall at the plan HiGHS returned
    (US$, round-off left out: {} when that plan meets them all). What HiGHS proved is apart from
    what its plan shows: stopped by `solver.time_limit_s` (or a limit in `solver.extra`), its
    plan may fall shorter than the closest one, or short where another plan meets them all."""

    outcome: SolveOutcome
    short_usd: dict[str, float]

    @property
    def least_usd(self) -> float:
        """The total shortfall HiGHS's dual bound proves every whole plan has (0: none proven).
        Positive proves that no whole plan meets every requirement."""
        bound = self.outcome.best_bound_usd  # of -(total shortfall), maximised
        if bound is None or not math.isfinite(bound) or -bound <= SHORTFALL_NOISE_USD:
            return 0.0
        return -bound

    @property
    def proven(self) -> bool:
        """Whether HiGHS proved that no whole plan meets every requirement."""
        return self.least_usd > 0

    @property
    def closest(self) -> bool:
        """Whether the plan's shortfalls are the least (HiGHS's optimum, to `solver.mip_rel_gap`,
        with a shortfall proven): only then is moving each requirement to what that plan reaches
        the least change that lets a plan meet them."""
        return self.proven and self.outcome.model_status == highspy.HighsModelStatus.kOptimal


def requirement_shortfalls(scenario: Scenario, interface: Interface | None = None) -> Shortfalls | None:
    """The elastic model solved as `scenario.solver` says: every participation requirement may
    fall short and the total shortfall is minimised. Returns HiGHS's outcome and each
    requirement's shortfall at its plan (`Shortfalls`: what is proven, what is not), or None if
    the model would not fit in memory. `unmet_requirements` and `dsx plan diagnose` read it."""
    try:
        check_fits(scenario, available_memory_bytes())
    except NoPlanError:
        return None  # the caller's own message stands
    m = build_model(scenario, elastic=True)
    outcome = solve_model(m, scenario.solver, interface)
    if not outcome.has_solution:
        return Shortfalls(outcome, {})
    short = {
        name: float(var.value or 0.0) * MONEY_SCALE_USD
        for name, var in m.requirement_shortfall.items()
        if (var.value or 0.0) * MONEY_SCALE_USD > SHORTFALL_NOISE_USD
    }
    return Shortfalls(outcome, short)


def unmet_requirements(
    scenario: Scenario, interface: Interface | None = None
) -> RequirementsShortError | None:
    """Which participation requirements fall short, and by how much (the elastic model,
    `requirement_shortfalls`, saying where its plan is not proven the closest), once the MIP is
    infeasible. None if even that finds no plan (then a requirement is not the
    cause), or it would not fit in memory."""
    found = requirement_shortfalls(scenario, interface)
    if found is None or not found.short_usd:
        return None
    if found.closest:
        details = [
            f"{name}: the closest plan falls short of it by US${gap:,.0f}"
            for name, gap in found.short_usd.items()
        ]
        details.append(
            "Fix: relax these requirements in the scenario's participation section (null removes one), "
            "or change the terms so the other party can meet them"
        )
    else:
        # The MIP's infeasibility proves that no plan meets them all; the elastic model, stopped
        # early, does not prove its plan's shortfalls the least.
        details = [
            f"{name}: the best plan found falls short of it by US${gap:,.0f} (HiGHS: "
            f"{found.outcome.status}; not proven the closest)"
            for name, gap in found.short_usd.items()
        ]
        by_extra = scenario.solver.extra and found.outcome.model_status != highspy.HighsModelStatus.kTimeLimit
        extra = " (or remove the limit in solver.extra that stopped HiGHS)" if by_extra else ""
        details.append(
            f"Fix: raise solver.time_limit_s (now {scenario.solver.time_limit_s} s){extra} to find the "
            "closest plan, and so how far to relax these requirements; or change the terms so the "
            "other party can meet them"
        )
    return RequirementsShortError(
        f"scenario '{scenario.name}': no plan meets every party's participation requirement",
        details=details,
        short_usd=dict(found.short_usd),
        closest=found.closest,
    )


def refuse_relaxation(scenario: Scenario, where: object | None = None) -> None:
    """A plan holds whole racks and power blocks, and the LP relaxation's are fractional: read
    as whole, they break the power and GPU rows (51 violations on the bundled example), so
    verification would refuse the plan only after the solve. Refused before anything is built,
    with `where` (a file, a sweep's point) before the message when given. The relaxation stays
    for `solve_model`'s callers (the benchmark's LP runs, the tests)."""
    if scenario.solver.relax_integrality:
        error = ScenarioError(
            f"scenario '{scenario.name}': solver.relax_integrality asks for the LP relaxation, whose "
            "racks and power blocks are fractional; a plan holds whole ones",
            details=[
                "solver.relax_integrality: true",
                "Fix: remove solver.relax_integrality (from the file, or from --set); a plan's "
                "solver.best_bound_usd is an upper bound on any plan's value (the extensive form's, "
                "with its rounded start, at least as tight as the relaxation's); the relaxation "
                "itself is for library callers of planner.solve.interfaces.solve_model",
            ],
        )
        raise error if where is None else error.at(where)


def refuse_unsolvable(scenario: Scenario, where: object | None = None) -> None:
    """What stops every solve of a scenario, refused before anything is built or any engine
    starts, with `where` (a file, a sweep's point) before the message: HiGHS options it refuses
    (`solver.extra`; a sweep, batch or value of information failed each solve with exit 3, and
    named no file) and the LP relaxation (`refuse_relaxation`)."""
    try:
        check_options(scenario.solver)
    except ScenarioError as error:
        raise error if where is None else error.at(where) from None
    refuse_relaxation(scenario, where)


def solve_scenario(
    scenario: Scenario,
    *,
    progress: Progress | None = None,
    interface: Interface | None = None,
    mip_start: MipStart | None = None,
    value_of_information: bool = False,
    verifier: Verifier | None = None,
) -> Plan:
    """Build, solve, report and verify; return the verified plan or raise `NoPlanError` (also
    before anything is built, where the model would not fit in memory: `planner.model.size`).

    With `participation.floors: walk_away` the no-deal plan is solved first and the deal with each
    party's floor at its walk-away value (`planner.walk_away`); the plan records both.
    `mip_start` offers given values, e.g. `planner.solve.starts.start_from_plan` of a neighbour's plan
    (`planner.solve.interfaces` says what HiGHS does with them). `value_of_information` fills the plan's
    `risk.evpi_usd` and `risk.vss_usd` once it is verified, at the cost of S + 2 more solves (with
    floors, a joined wait-and-see solve of S times the time limit: `planner.value_of_information`).
    `verifier` replaces `planner.verify.verify_plan` (tests only).
    """
    say = progress or (lambda _phase: None)
    refuse_relaxation(scenario)
    check_fits(scenario, available_memory_bytes())
    walk_away = None
    deal = scenario  # what the model solves: with walk-away floors, the scenario with those floors
    if asks_walk_away(scenario):
        say("solving the no-deal plan (each party's walk-away value)")
        walk_away = solve_no_deal(scenario, interface)
        deal = with_floors(scenario, walk_away)
        gc.collect()
    say("building model")
    start = time.perf_counter()
    m = build_model(deal)
    build_s = time.perf_counter() - start
    chosen = interface or scenario.solver.interface
    say(f"solving with HiGHS ({chosen}{', from a MIP start' if mip_start else ''})")
    outcome = solve_model(m, scenario.solver, interface, mip_start=mip_start)
    if not outcome.has_solution:
        has_requirements = bool(requirement_names(data_of(m)))
        if outcome.infeasible and has_requirements:
            # The next model has the memory to itself: Pyomo's components hold reference
            # cycles, so the first goes only with a collection.
            del m
            gc.collect()
            say("finding which participation requirement cannot be met")
            unmet = unmet_requirements(deal, interface)
            if unmet is not None:
                raise unmet if walk_away is None else cannot_beat_walking_away(scenario, unmet, walk_away)
        raise _no_plan_message(scenario, outcome)
    say("reporting")
    plan = build_plan(deal, m, outcome, build_s=build_s)
    if walk_away is not None:
        plan = record(scenario, plan, walk_away)
    del m  # value of information builds more models of this size (collected below, before them)
    say("verifying")
    verification = (verifier or verify_plan)(scenario, plan)
    plan = plan.model_copy(update={"verification": verification})
    if not verification.passed:
        raise NoPlanError(
            f"scenario '{scenario.name}': the solved plan failed independent verification "
            f"({len(verification.violations)} violation(s)); nothing was written",
            details=verification.violations[:20],
        )
    if not value_of_information:
        return _without_value_of_information(plan, "skipped on request")
    gc.collect()
    say(f"value of information ({len(scenario.scenarios) + 2} more solves)")
    try:
        # Each figure where its own solves succeed; the note names one missing (planner.value_of_information).
        return with_value_of_information(scenario, plan, interface=chosen, walk_away=walk_away)
    except NoPlanError as error:
        # Neither figure: the plan itself is verified, and missing side figures should not cost it.
        return _without_value_of_information(plan, "; ".join([error.message, *error.details]))


def _without_value_of_information(plan: Plan, why: str) -> Plan:
    note = f"EVPI and VSS not computed: {why}"
    return plan.model_copy(update={"risk": plan.risk.model_copy(update={"value_of_information_note": note})})
