"""Each party's reported figures and its participation requirements (docs/model.md,
"Participation"): least expected value and CVaR, and the guarantor's buyback exposure caps."""

from __future__ import annotations

import numpy as np

from planner.schema.plan import PartyFigures, Plan
from planner.schema.scenario import FLOORS_WALK_AWAY, Scenario
from planner.verify.data import ScenarioArrays
from planner.verify.derived import gpus_installed
from planner.verify.figures import check_money
from planner.verify.log import ABS_TOL_USD, EXACT_TOL, Log, close, exceeds, tolerance
from planner.verify.money import Money, cvar_by_sorting


def check_parties(
    scenario: Scenario, data: ScenarioArrays, plan: Plan, money: Money, installed: np.ndarray, log: Log
) -> None:
    """Each party's expected value, CVaR (by sorting) and worst value, as reported; and every
    participation requirement met: the cloud's and guarantor's least expected value and CVaR,
    the guarantor's most buyback exposure per quarter and in total."""
    participation = scenario.participation
    alpha = participation.cvar_alpha
    probabilities = {c: float(p) for c, p in zip(data.cases, data.prob, strict=True)}
    values = {
        "cloud": money.cloud,
        "guarantor": money.guarantor,
        "syndicate": money.cloud + money.guarantor,
    }
    needs = {"cloud": participation.cloud, "guarantor": participation.guarantor}
    reported: dict[str, PartyFigures] = {f.party: f for f in plan.parties}
    if not log.ok(sorted(reported) == sorted(values) and len(plan.parties) == len(values)):
        log.say(
            f"parties: the plan lists {[f.party for f in plan.parties]}, expected one each of {list(values)}"
        )
    for party, v in values.items():
        expected = float(v @ data.prob)
        cvar = cvar_by_sorting(
            {c: float(x) for c, x in zip(data.cases, v, strict=True)}, probabilities, alpha
        )
        figures = reported.get(party)
        if figures is not None:
            check_money(log, f"parties {party} expected_value_usd", figures.expected_value_usd, expected)
            check_money(log, f"parties {party} cvar_usd (alpha {alpha})", figures.cvar_usd, cvar)
            check_money(
                log, f"parties {party} worst_case_value_usd", figures.worst_case_value_usd, float(v.min())
            )
            if not log.ok(close(figures.cvar_alpha, alpha, EXACT_TOL)):
                log.say(
                    f"parties {party} cvar_alpha: the plan reports {figures.cvar_alpha}, the scenario {alpha}"
                )
        need = needs.get(party)
        if need is None:
            continue
        for requirement, got in (("min_expected_value_usd", expected), ("min_cvar_usd", cvar)):
            least = getattr(need, requirement)
            if least is not None and not log.ok(got >= least - tolerance(got, least, ABS_TOL_USD)):
                log.say(
                    f"participation.{party}.{requirement}: the plan gives the {party} US${got:,.0f}, "
                    f"below its requirement of US${least:,.0f} (short by US${least - got:,.0f})"
                )
    check_walk_away_floors(scenario, plan, {p: float(v @ data.prob) for p, v in values.items()}, log)
    terms = scenario.terms
    exposure = (
        terms.buyback_share
        * terms.buyback_price_usd_per_gpu_hour
        * data.h
        * gpus_installed(data, installed).sum(axis=1)
    )  # [I, T]
    guarantor = participation.guarantor
    per_period = exposure.sum(axis=0)
    cap = guarantor.max_buyback_exposure_usd_per_period
    if cap is not None:
        log.check_array(
            exceeds(per_period, np.full_like(per_period, cap), ABS_TOL_USD),
            lambda x: (
                f"participation.guarantor.max_buyback_exposure_usd_per_period {data.labels[x[0]]}: "
                f"exposure US${per_period[x]:,.0f} above the cap of US${cap:,.0f}"
            ),
        )
    total = guarantor.max_buyback_exposure_usd_total
    if total is not None and not log.ok(
        bool(~exceeds(np.array([per_period.sum()]), np.array([total]), ABS_TOL_USD)[0])
    ):
        log.say(
            f"participation.guarantor.max_buyback_exposure_usd_total: exposure US${per_period.sum():,.0f} "
            f"above the cap of US${total:,.0f}"
        )
    for row in plan.site_periods:
        i, t = data.i_of.get(row.site), data.t_of.get(row.period)
        if i is not None and t is not None:
            check_money(
                log,
                f"site_periods {row.site} {row.period} buyback_exposure_usd",
                row.buyback_exposure_usd,
                float(exposure[i, t]),
            )


def check_walk_away_floors(scenario: Scenario, plan: Plan, expected: dict[str, float], log: Log) -> None:
    """With `participation.floors: walk_away`, the floors the plan records follow from the walk-away
    values it records (each the larger of the given floor and the value; a null given floor: the
    value) and the plan meets them. The values themselves are checked against the no-deal plan's
    decisions by `planner.verify.no_deal`. With given floors, a plan records no walk-away value."""
    reported: dict[str, PartyFigures] = {f.party: f for f in plan.parties}
    if scenario.participation.floors != FLOORS_WALK_AWAY:
        recorded = [f.party for f in plan.parties if f.walk_away_value_usd is not None]
        if not log.ok(plan.walk_away is None and not recorded):
            log.say(
                "walk_away: the plan records walk-away values, but the scenario's participation.floors is "
                f"{scenario.participation.floors!r}"
            )
        return
    record = plan.walk_away
    if not log.ok(record is not None):
        log.say("walk_away: participation.floors is 'walk_away', but the plan records no no-deal plan")
        return
    assert record is not None
    walk_away = {"cloud": record.cloud_value_usd, "guarantor": record.guarantor_value_usd}
    needs = {"cloud": scenario.participation.cloud, "guarantor": scenario.participation.guarantor}
    for party, need in needs.items():
        figures = reported.get(party)
        if figures is None:
            continue  # check_parties names the missing party
        value = walk_away[party]
        if not log.ok(figures.walk_away_value_usd is not None):
            log.say(
                f"parties {party} walk_away_value_usd: null, where the plan's walk_away says {value:,.2f}"
            )
            continue
        assert figures.walk_away_value_usd is not None
        check_money(log, f"parties {party} walk_away_value_usd", figures.walk_away_value_usd, value)
        given = need.min_expected_value_usd
        floor = value if given is None else max(given, value)
        recorded_floor = figures.min_expected_value_usd
        if not log.ok(recorded_floor is not None):
            log.say(
                f"parties {party} min_expected_value_usd: null, where the walk-away floor is US${floor:,.0f}"
            )
            continue
        assert recorded_floor is not None
        check_money(log, f"parties {party} min_expected_value_usd (walk-away floor)", recorded_floor, floor)
        got = expected[party]
        if not log.ok(bool(got >= recorded_floor - tolerance(got, recorded_floor, ABS_TOL_USD))):
            log.say(
                f"participation.{party}: the plan gives the {party} US${got:,.0f}, below its walk-away "
                f"floor of US${recorded_floor:,.0f} (short by US${recorded_floor - got:,.0f})"
            )
