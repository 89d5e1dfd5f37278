"""Walk-away floors: what each party gets without the deal, solved first (docs/model.md, Conventions).

A plan for one party that leaves the other less than it would make by not signing is a plan
nobody signs. With `participation.floors: walk_away` the pipeline first solves the **no-deal
plan**: the cloud's best plan alone, on the same horizon, sites, demand scenarios and solver
settings, with

- no buyback, no revenue share and no token credits (the guarantee is the deal);
- the guarantor's hardware margin kept: the GPU vendor still sells the racks the cloud buys
  alone, so the guarantor's walk-away value is its margin on the cloud's stand-alone build;
- credit-funded demand dropped: a tenant's `token_credit_share` is the share of its bill paid
  with credits the guarantor advances, so without the deal that money, and the demand it pays
  for, is not there; the tenant rents (1 - share) of its demand, paid in cash. Keeping the demand
  whole would count the guarantor's credits in the cloud's alternative to the guarantor's deal;
- the cloud's expected value maximised (no CVaR weight): the floors bound expected values, and
  the cloud's best alternative in those terms is the plan of highest expected value alone;
- no participation requirement but the cloud's CVaR floor (`participation.cloud.min_cvar_usd`):
  the guarantor signs nothing, and the cloud takes alone no more risk than it would sign for (a
  plan its own risk floor refuses is no alternative it would take).

Each party's walk-away value is its expected value in that plan; its floor in the deal is the
larger of its given `min_expected_value_usd` and that value (a null given floor: the walk-away
value). The no-deal plan is HiGHS's within `solver.mip_rel_gap`, so the cloud's value is one it
can surely make alone (its best may be up to the gap higher), a floor it would sign over.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.engine import available_memory_bytes
from planner.errors import NoPlanError
from planner.files import parse_scenario
from planner.model.build import build_model
from planner.model.size import check_fits
from planner.results import build_plan
from planner.schema.plan import Plan, WalkAway
from planner.schema.scenario import FLOORS_GIVEN, FLOORS_WALK_AWAY, Scenario
from planner.solve.interfaces import Interface, solve_model
from planner.verify import verify_plan

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


def no_deal_scenario(scenario: Scenario) -> Scenario:
    """The scenario the cloud would plan alone (module docstring: which terms go and why)."""
    data = scenario.model_dump(mode="json")
    data["terms"].update(buyback_price_usd_per_gpu_hour=0.0, buyback_share=0.0, revenue_share=0.0)
    for tenant in data["tenants"]:
        cash_share = 1.0 - tenant["token_credit_share"]
        tenant["demand_gpus"] = {s: [cash_share * x for x in row] for s, row in tenant["demand_gpus"].items()}
        tenant.update(
            token_credit_share=0.0, credit_repayment_share=1.0, credit_repayment_share_by_scenario={}
        )
    data["objective"] = {"perspective": "cloud", "cvar_alpha": None, "cvar_weight": 0.0}
    participation = data["participation"]
    participation["floors"] = FLOORS_GIVEN
    participation["cloud"] = {
        "min_expected_value_usd": None,
        "min_cvar_usd": participation["cloud"]["min_cvar_usd"],
    }
    participation["guarantor"] = {"min_expected_value_usd": None, "min_cvar_usd": None}
    return parse_scenario(data, f"{scenario.name} (no deal)")


def solve_no_deal(scenario: Scenario, interface: Interface | None = None) -> WalkAwayFloors:
    """Solve the no-deal plan, verify it, and return the walk-away values and the deal's floors;
    `NoDealPlanError` where HiGHS finds no plan alone or the verifier refuses it. `solve`,
    value of information and `dsx plan diagnose` all floor the deal with it."""
    alone = no_deal_scenario(scenario)
    check_fits(alone, available_memory_bytes())
    m = build_model(alone)
    outcome = solve_model(m, alone.solver, interface)
    if not outcome.has_solution:
        cvar_floor = alone.participation.cloud.min_cvar_usd
        why = (
            [
                f"the cloud alone may have no plan whose CVaR meets participation.cloud.min_cvar_usd "
                f"(US${cvar_floor:,.0f}), which the no-deal plan keeps"
            ]
            if outcome.infeasible and cvar_floor is not None
            else []
        )
        error = NoDealPlanError(
            f"scenario '{scenario.name}': participation.floors: walk_away needs the plan the cloud would "
            f"make with no deal, and HiGHS found none (HiGHS: {outcome.status})",
            details=[
                *why,
                f"Fix: raise solver.time_limit_s (now {scenario.solver.time_limit_s} s), lower "
                "participation.cloud.min_cvar_usd, or set participation.floors: given and each floor by hand",
            ],
        )
        error.proven = outcome.infeasible
        raise error
    plan = build_plan(alone, m, outcome, build_s=0.0)
    del m
    verification = verify_plan(alone, plan)
    if not verification.passed:
        raise NoDealPlanError(
            f"scenario '{scenario.name}': the no-deal plan behind the walk-away floors failed independent "
            f"verification ({len(verification.violations)} violation(s)); nothing was written",
            details=verification.violations[:20],
        )
    value: dict[str, float] = {f.party: f.expected_value_usd for f in plan.parties}
    record = WalkAway(
        cloud_value_usd=value["cloud"],
        guarantor_value_usd=value["guarantor"],
        racks_built=sum(r.racks_built for r in plan.racks),
        status=plan.solver.status,
        mip_gap=plan.solver.mip_gap,
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
        f"participation.{party}.min_expected_value_usd was US${floor:,.0f}: the larger of the given floor "
        f"and the {party}'s walk-away value, US${walk_away.value_usd(party):,.0f} (its expected value "
        "in the plan the cloud would make with no deal)"
        for party, floor in walk_away.floors_usd.items()
    ]


def from_walk_away(scenario: Scenario, walk_away: WalkAwayFloors, party: str) -> bool:
    """The party's floor is its walk-away value, not a larger given one."""
    given = getattr(scenario.participation, party).min_expected_value_usd
    return given is None or walk_away.value_usd(party) > given


def cannot_beat_walking_away(
    scenario: Scenario, error: NoPlanError, walk_away: WalkAwayFloors
) -> NoPlanError:
    """`error` (no plan meets the participation requirements) said as what it means here, where a
    floor set by a walk-away value is among those short: the deal cannot give each party what it
    would get by walking away. Otherwise `error` as it is (a given floor, a CVaR or exposure
    requirement is the cause)."""
    short = [
        party
        for party in PARTIES_WITH_FLOORS
        if from_walk_away(scenario, walk_away, party)
        and any(d.startswith(f"participation.{party}.min_expected_value_usd:") for d in error.details)
    ]
    if not short:
        return error
    details = [d for d in error.details if not d.startswith("Fix:")]
    return NoPlanError(
        f"scenario '{scenario.name}': the deal cannot beat walking away: no plan gives each party its "
        "walk-away value (participation.floors: walk_away)",
        details=[
            *details,
            *_shortfall_details(walk_away),
            "Fix: change the terms so the deal is worth signing for both (revenue share, buyback, the "
            "tenants' credits), or set participation.floors: given and the floors by hand",
        ],
    )
