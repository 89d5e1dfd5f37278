"""Walk-away floors: what each party gets without the deal, solved first (docs/model.md, Conventions).

A plan for one party that leaves the other less than it would make by not signing is a plan
nobody signs. With `participation.floors: walk_away` the pipeline first solves the **no-deal
plan**, the cloud's best plan alone (`no_deal_scenario`; docs/model.md, "Conventions", is the one
full statement of its terms and why), and floors each party in the deal at the larger of its
given `min_expected_value_usd` and its expected value there, its walk-away value (a null given
floor: the walk-away value). How those values err:

- the no-deal plan is solved to `NO_DEAL_MIP_REL_GAP` (or the scenario's gap, if tighter): the
  cloud's value is one it can surely make alone, its best alone at most HiGHS's bound
  (`WalkAway.cloud_bound_usd`); where HiGHS stopped at a limit first, the record says so;
- the guarantor's value is its margin on the racks of the no-deal plan HiGHS returns; where the
  cloud has several plans alone as good (or within the gap), it depends on which (no tie-break:
  a second solve taking the guarantor's least ran the bundled example's 30 s limit and found none
  better);
- where the cloud's CVaR floor leaves no no-deal plan (proven infeasible), the no-deal plan is
  solved without it, and the record says so: not signing is always possible.

The record holds the no-deal plan's first stage (`first_stage`), so the verifier checks the
values with its own code (`planner.verify.no_deal`); `solve_no_deal` runs those checks on the
record it makes, so a record the verifier would refuse fails here, as the no-deal plan's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import highspy

from planner.engine import available_memory_bytes
from planner.errors import NoPlanError, RequirementsShortError
from planner.files import parse_scenario
from planner.model.build import MONEY_SCALE_USD, build_model
from planner.model.size import check_fits
from planner.results import build_plan
from planner.schema.plan import NoDealPower, NoDealQuota, NoDealRacks, Plan, WalkAway
from planner.schema.scenario import FLOORS_GIVEN, FLOORS_WALK_AWAY, Scenario
from planner.solve.interfaces import Interface, SolveOutcome, solve_model
from planner.verify import verify_plan, walk_away_record_violations
from planner.verify.log import usd

PARTIES_WITH_FLOORS = ("cloud", "guarantor")


@dataclass(frozen=True)
class WalkAwayFloors:
    """The no-deal plan's record and each party's floor in the deal (US$, expected value)."""

    record: WalkAway
    floors_usd: dict[str, float]

    def value_usd(self, party: str) -> float:
        return self.record.cloud_value_usd if party == "cloud" else self.record.guarantor_value_usd


class NoDealPlanError(NoPlanError):
    """No no-deal plan: HiGHS found none alone, or the verifier refused it. `proven` where HiGHS
    proved there is none (infeasible), not stopped by a limit (`dsx plan diagnose` says which)."""

    proven: bool = False


def asks_walk_away(scenario: Scenario) -> bool:
    return scenario.participation.floors == FLOORS_WALK_AWAY


NO_DEAL_MIP_REL_GAP = 1e-3
"""The no-deal plan's relative gap, or the scenario's `solver.mip_rel_gap` if tighter. Why
tighter than the deal's: the cloud's walk-away value is a floor both parties sign over, and a
plan HiGHS stops at a 1% gap can understate it by 1% of the cloud's whole value (US$ 120 M on the
bundled example), more than the deal's surplus for some terms. Not 1e-4: the bundled example's
no-deal solve then ran its 30 s limit (stopping at 0.098%), against 11 s to reach 1e-3."""

ROUND_OFF_USD = 1.0
"""Below this (US$), a difference between two values is solver round-off."""


def _within_gap(value_usd: float, bound_usd: float | None, gap: float) -> bool:
    """Whether the cloud's no-deal value is within `gap` of HiGHS's bound, as the record claims
    with `reached_gap` and the verifier checks. HiGHS's "optimal" alone is not enough: the
    decomposition keeps that status where its loop ran out of time (the status text says so), and
    `solver.extra` may hold a looser `mip_rel_gap` or `mip_abs_gap` than the record's."""
    if bound_usd is None:
        return False
    # HiGHS's objective is in US$ M; its gap is measured on no less than one unit.
    scale = max(abs(bound_usd), abs(value_usd), MONEY_SCALE_USD)
    return bound_usd - value_usd <= gap * scale + 1.0


def no_deal_scenario(scenario: Scenario, *, keep_cvar_floor: bool = True) -> Scenario:
    """The scenario the cloud would plan alone (docs/model.md, Conventions: which terms go and
    why); `keep_cvar_floor=False` drops the cloud's CVaR floor too (`solve_no_deal` says when)."""
    data = scenario.model_dump(mode="json")
    data["terms"].update(buyback_price_usd_per_gpu_hour=0.0, buyback_share=0.0, revenue_share=0.0)
    for tenant in data["tenants"]:
        cash_share = 1.0 - tenant["token_credit_share"]
        tenant["demand_gpus"] = {s: [cash_share * x for x in row] for s, row in tenant["demand_gpus"].items()}
        tenant.update(
            token_credit_share=0.0, credit_repayment_share=1.0, credit_repayment_share_by_scenario={}
        )
    data["objective"] = {"perspective": "cloud", "cvar_alpha": None, "cvar_weight": 0.0}
    data["solver"]["mip_rel_gap"] = min(scenario.solver.mip_rel_gap, NO_DEAL_MIP_REL_GAP)
    participation = data["participation"]
    participation["floors"] = FLOORS_GIVEN
    participation["cloud"] = {
        "min_expected_value_usd": None,
        "min_cvar_usd": participation["cloud"]["min_cvar_usd"] if keep_cvar_floor else None,
    }
    participation["guarantor"] = {"min_expected_value_usd": None, "min_cvar_usd": None}
    return parse_scenario(data, f"{scenario.name} (no deal)")


def _no_no_deal_plan(scenario: Scenario, outcome: SolveOutcome, dropped_cvar_floor: bool) -> NoDealPlanError:
    """HiGHS found no no-deal plan: proven (infeasible) or stopped by a limit, each with its fix."""
    if outcome.infeasible:
        why = (
            "HiGHS proved that the cloud has no plan alone, even without its CVaR floor"
            if dropped_cvar_floor
            else "HiGHS proved that the cloud has no plan alone"
        )
        fix = (
            "Fix: check the scenario's sites, racks and power (the cloud alone must be able to build "
            "nothing), or set participation.floors: given and each floor by hand"
        )
    else:
        cvar_floor = scenario.participation.cloud.min_cvar_usd
        why = "HiGHS stopped before it found one" + (
            f" (with the cloud's CVaR floor, participation.cloud.min_cvar_usd {usd(cvar_floor)}, which "
            "is dropped from the no-deal plan only where HiGHS proves no plan alone meets it)"
            if cvar_floor is not None and not dropped_cvar_floor
            else ""
        )
        extra = " (or remove the limit in solver.extra that stopped HiGHS)" if scenario.solver.extra else ""
        fix = (
            f"Fix: raise solver.time_limit_s (now {scenario.solver.time_limit_s} s){extra}, or set "
            "participation.floors: given and each floor by hand"
        )
    error = NoDealPlanError(
        f"scenario '{scenario.name}': participation.floors: walk_away needs the plan the cloud would "
        f"make with no deal, and HiGHS found none (HiGHS: {outcome.status})",
        details=[why, fix],
    )
    error.proven = outcome.infeasible
    return error


def _solve_verified(
    alone: Scenario, scenario: Scenario, interface: Interface | None
) -> tuple[Plan | None, SolveOutcome]:
    """`alone` solved and verified (None: HiGHS found no plan); `NoDealPlanError` where refused."""
    check_fits(alone, available_memory_bytes())
    m = build_model(alone)
    outcome = solve_model(m, alone.solver, interface)
    if not outcome.has_solution:
        return None, outcome
    plan = build_plan(alone, m, outcome, build_s=0.0)
    del m
    verification = verify_plan(alone, plan)
    if not verification.passed:
        raise NoDealPlanError(
            f"scenario '{scenario.name}': the no-deal plan behind the walk-away floors failed independent "
            f"verification ({len(verification.violations)} violation(s)); nothing was written",
            details=verification.violations[:20],
        )
    return plan, outcome


def first_stage(plan: Plan) -> dict[str, Any]:
    """The no-deal plan's first stage as its record holds it (`WalkAway.racks`, `.power`,
    `.quotas`): every decision its values depend on, so the verifier can check them and recompute
    the values. Only the non-zero ones (zero where not listed), to keep the plan file small; the
    quotas are the plan's own (the least schedule covering its serving, `planner.results`)."""
    return {
        "racks": [
            NoDealRacks(site=r.site, rack_type=r.rack_type, period=r.period, racks_built=r.racks_built)
            for r in plan.racks
            if r.racks_built > 0
        ],
        "power": [
            NoDealPower(site=p.site, period=p.period, blocks_ordered=p.blocks_ordered)
            for p in plan.power
            if p.blocks_ordered > 0
        ],
        "quotas": [
            NoDealQuota(
                tenant=q.tenant, site=q.site, rack_type=q.rack_type, period=q.period, quota_gpus=q.quota_gpus
            )
            for q in plan.quotas
            if q.quota_gpus > 0
        ],
    }


def solve_no_deal(scenario: Scenario, interface: Interface | None = None) -> WalkAwayFloors:
    """Solve the no-deal plan, verify it, and return the walk-away values and the deal's floors;
    `NoDealPlanError` where HiGHS finds no plan alone or the verifier refuses it. `solve`,
    value of information and `dsx plan diagnose` all floor the deal with it.

    Where the cloud's CVaR floor leaves no plan alone (proven), it is solved again without it:
    not signing is always possible, and the record says the floor was dropped."""
    alone = no_deal_scenario(scenario)
    plan, outcome = _solve_verified(alone, scenario, interface)
    dropped = False
    if plan is None and outcome.infeasible and alone.participation.cloud.min_cvar_usd is not None:
        dropped = True
        alone = no_deal_scenario(scenario, keep_cvar_floor=False)
        plan, outcome = _solve_verified(alone, scenario, interface)
    if plan is None:
        raise _no_no_deal_plan(scenario, outcome, dropped)
    value: dict[str, float] = {f.party: f.expected_value_usd for f in plan.parties}
    bound = outcome.best_bound_usd
    bound = bound if bound is not None and math.isfinite(bound) else None
    record = WalkAway(
        cloud_value_usd=value["cloud"],
        guarantor_value_usd=value["guarantor"],
        racks_built=sum(r.racks_built for r in plan.racks),
        status=plan.solver.status,
        mip_gap=plan.solver.mip_gap,
        cloud_bound_usd=bound,
        reached_gap=outcome.model_status == highspy.HighsModelStatus.kOptimal
        and _within_gap(value["cloud"], bound, alone.solver.mip_rel_gap),
        mip_rel_gap=alone.solver.mip_rel_gap,
        cloud_cvar_floor_dropped=dropped,
        **first_stage(plan),
    )
    refused = walk_away_record_violations(scenario, record)
    if refused:
        raise NoDealPlanError(
            f"scenario '{scenario.name}': the record of the no-deal plan behind the walk-away floors failed "
            f"independent verification ({len(refused)} violation(s)); nothing was written",
            details=refused[:20],
        )
    participation = scenario.participation
    floors = {}
    for party, need in (("cloud", participation.cloud), ("guarantor", participation.guarantor)):
        given = need.min_expected_value_usd
        floors[party] = value[party] if given is None else max(given, value[party])
    return WalkAwayFloors(record=record, floors_usd=floors)


def with_floors(scenario: Scenario, walk_away: WalkAwayFloors) -> Scenario:
    """The deal as the model solves it: each party's expected-value floor set to the one found, as
    given floors. Its hash is not the scenario's (`record` puts the scenario's back)."""
    data = scenario.model_dump(mode="json")
    for party, floor in walk_away.floors_usd.items():
        data["participation"][party]["min_expected_value_usd"] = floor
    data["participation"]["floors"] = FLOORS_GIVEN  # found: solving it asks for no second no-deal plan
    return parse_scenario(data, scenario.name)


def record(scenario: Scenario, plan: Plan, walk_away: WalkAwayFloors) -> Plan:
    """The deal's plan, solved from `with_floors(scenario, ...)`, recorded as `scenario`'s: its
    hash, the no-deal plan, and each party's walk-away value beside the floor it met."""
    parties = [
        f.model_copy(update={"walk_away_value_usd": walk_away.value_usd(f.party)})
        if f.party in PARTIES_WITH_FLOORS
        else f
        for f in plan.parties
    ]
    return plan.model_copy(
        update={"scenario_hash": scenario.content_hash(), "parties": parties, "walk_away": walk_away.record}
    )


def _shortfall_details(walk_away: WalkAwayFloors) -> list[str]:
    """What the deal's floors were, for a message saying they cannot be met."""
    return [
        f"participation.{party}.min_expected_value_usd was {usd(floor)}: the larger of the given floor "
        f"and the {party}'s walk-away value, {usd(walk_away.value_usd(party))} (its expected value "
        "in the plan the cloud would make with no deal)"
        for party, floor in walk_away.floors_usd.items()
    ]


def from_walk_away(scenario: Scenario, walk_away: WalkAwayFloors, party: str) -> bool:
    """The party's walk-away value binds its floor: no given floor, or one no higher (within
    round-off). Where they are equal, lowering the given floor alone changes nothing."""
    given = getattr(scenario.participation, party).min_expected_value_usd
    return given is None or walk_away.value_usd(party) >= given - ROUND_OFF_USD


def short_past_walk_away(scenario: Scenario, walk_away: WalkAwayFloors, party: str, gap_usd: float) -> bool:
    """A given floor above the party's walk-away value, missed by more than the difference:
    lowered to the walk-away value, it would still be missed (by the same plan)."""
    given = getattr(scenario.participation, party).min_expected_value_usd
    return given is not None and gap_usd > given - walk_away.value_usd(party) + ROUND_OFF_USD


EXPECTED_VALUE_NOTE = (
    "the floors compare expected values (docs/model.md, Conventions): a party that weighs risk "
    "(objective.cvar_weight, or a CVaR floor) may prefer a deal below its walk-away value on expected "
    "value; for that, set participation.floors: given and each party's floor by hand"
)

RELAX_UNDER_WALK_AWAY = (
    "Fix: lower these requirements in the scenario's participation section (with participation.floors: "
    "walk_away a null or lower min_expected_value_usd floors the party at its walk-away value, not at "
    "none), change the terms so the other party can meet them, or set participation.floors: given and "
    "each floor by hand"
)


def cannot_beat_walking_away(
    scenario: Scenario, error: RequirementsShortError, walk_away: WalkAwayFloors
) -> NoPlanError:
    """`error` (no plan meets the participation requirements) said as what it means here, where a
    floor set by a walk-away value is among those short: the deal cannot give each party what it
    would get by walking away. Otherwise `error` with its fix said for walk-away floors (a given
    floor, a CVaR or exposure requirement is the cause; relaxing a given floor helps only down to
    the walk-away value)."""

    def walk_away_binds(party: str) -> bool:
        """Short, and its floor the walk-away value, or a given floor so far short (in the plan
        HiGHS proved the closest) that lowering it to the walk-away value would not be enough."""
        gap = error.short_usd.get(f"participation.{party}.min_expected_value_usd")
        if gap is None:
            return False
        return from_walk_away(scenario, walk_away, party) or (
            error.closest and short_past_walk_away(scenario, walk_away, party, gap)
        )

    short = [party for party in PARTIES_WITH_FLOORS if walk_away_binds(party)]
    details = [d for d in error.details if not d.startswith("Fix:")]
    fixes = [d for d in error.details if d.startswith("Fix:")]
    # The MIP's infeasibility proves that no plan meets every floor; which party falls short, and by
    # how much, comes from the elastic model, proven only where HiGHS proved its plan the closest.
    unproven = not error.closest
    all_walk_away = all(from_walk_away(scenario, walk_away, party) for party in PARTIES_WITH_FLOORS)
    if not short or (unproven and not all_walk_away):
        # The elastic model's fix says "null removes one", which a walk-away floor does not.
        relax = [RELAX_UNDER_WALK_AWAY if "(null removes one)" in d else d for d in fixes]
        return NoPlanError(error.message, details=[*details, *_shortfall_details(walk_away), *relax])
    return NoPlanError(
        f"scenario '{scenario.name}': the deal cannot beat walking away: no plan gives each party its "
        "walk-away value (participation.floors: walk_away)",
        details=[
            *details,
            *_shortfall_details(walk_away),
            f"Note: {EXPECTED_VALUE_NOTE}",
            *(
                ["Note: the party named short is the best plan found's, not proven the closest", *fixes]
                if unproven
                else []
            ),
            "Fix: change the terms so the deal is worth signing for both (revenue share, buyback, the "
            "tenants' credits), or set participation.floors: given and the floors by hand",
        ],
    )
