"""The plan's buyback rule, by its schema version (docs/model.md, "Buyback").

A 1.5 plan bills the matching rule (each refused hour placed on one site's unsold hour, once;
`planner.verify.money` recomputes it with `planner.verify.matching`'s own max-flow) and records no
comparison. A plan before 1.5 was solved and billed under the per-site rule, which subtracts a
refused tenant's hours at every site it may use; it is verified by that rule, with a note giving
the matching rule's figure where the two differ, and a 1.4 plan's `buyback_matching` record (its buyback beside the
matching rule's) is checked figure by figure.
"""

from __future__ import annotations

import numpy as np

from planner.schema.plan import PER_SITE_BUYBACK_VERSIONS, Plan
from planner.schema.scenario import Scenario
from planner.verify.data import ScenarioArrays
from planner.verify.figures import check_money
from planner.verify.log import ABS_TOL_QUANTITY, ABS_TOL_USD, Log, close, usd
from planner.verify.matching import matching_buyback_gpu_hours, max_flow
from planner.verify.money import Money

__all__ = [
    "bills_per_site",
    "check_buyback_rule",
    "max_flow",
    "per_site_rule_note",
    "record_shows_rules_agree",
]


def per_site_rule_note(version: str, plan_usd: float, matching_usd: float) -> str:
    """What the verifier says of a plan before 1.5: which rule its buyback was checked by, and the
    matching rule's expected buyback (undiscounted) beside the plan's."""
    return (
        f"plan schema {version}: its buyback was billed, and is verified, by the per-site rule it was "
        "solved under, which counts a refused tenant's hours against every site it may use; by the "
        'matching rule this dsx bills (schema 1.5, docs/model.md "Buyback") its expected buyback would '
        f"be {usd(matching_usd)} (undiscounted), the plan's is {usd(plan_usd)}. Solve the scenario "
        "again for figures by the matching rule"
    )


def record_shows_rules_agree(plan: Plan) -> bool:
    """Whether the plan's `buyback_matching` record shows both rules bill the same expected buyback,
    undiscounted and discounted, within the verifier's money tolerance: then, the per-site rule
    never billing more in any quarter and scenario, they agree everywhere, and the plan's figures
    are the matching rule's. False without a record (a 1.5 plan, or one before 1.4's record)."""
    record = plan.buyback_matching
    return record is not None and _same_buyback(
        (record.expected_buyback_usd, record.expected_buyback_discounted_usd),
        (record.matching_expected_buyback_usd, record.matching_expected_buyback_discounted_usd),
    )


def _same_buyback(plans: tuple[float, float], matching: tuple[float, float]) -> bool:
    """Whether the two rules' expected buyback, (undiscounted, discounted), agree within the money
    tolerance: the per-site rule never billing more in any quarter and scenario, they then agree
    everywhere."""
    return all(close(a, b, ABS_TOL_USD) for a, b in zip(plans, matching, strict=True))


def bills_per_site(plan: Plan) -> bool:
    """Whether the plan's buyback is billed by the per-site rule (a plan before schema 1.5)."""
    return plan.schema_version in PER_SITE_BUYBACK_VERSIONS


def bills_buyback(plan: Plan) -> bool:
    """Whether the plan's terms cover anything: some GPU under exposure, or some buyback billed.
    Without either, both rules bill nothing."""
    return any(r.buyback_exposure_usd > 0.0 for r in plan.site_periods) or any(
        o.buyback_usd > 0.0 for o in plan.outcomes
    )


def rules_may_differ(plan: Plan) -> bool:
    """Whether the plan's buyback may differ from the matching rule's: billed by the per-site rule,
    with buyback in its terms, and no record showing the two agree. `show` warns of it and
    `compare` does not compare its buyback across rules."""
    return bills_per_site(plan) and bills_buyback(plan) and not record_shows_rules_agree(plan)


def check_buyback_rule(
    scenario: Scenario, data: ScenarioArrays, plan: Plan, money: Money, unserved: np.ndarray, log: Log
) -> list[str]:
    """A 1.5 plan records no `buyback_matching`. A plan before 1.5 (`money` recomputed by its
    per-site rule): every figure of its record, the matching rule's recomputed here; returns the
    note saying which rule it was verified by, only where the two rules' buyback differ (within
    the money tolerance; never where the terms have no buyback)."""
    record = plan.buyback_matching
    if not bills_per_site(plan):
        if not log.ok(record is None):
            log.say(
                f"buyback_matching: a {plan.schema_version} plan's buyback is the matching rule's, so it "
                "records no comparison, and this plan carries one (was it edited?)"
            )
        return []
    price = scenario.terms.buyback_price_usd_per_gpu_hour
    plan_usd = money.bb_by_quarter  # [T, S] undiscounted, by the per-site rule
    matching_gh = matching_buyback_gpu_hours(
        money.unsold_gpu_hours, unserved, data.may_use, scenario.terms.buyback_share
    )
    matching_usd = price * matching_gh
    p, d = data.prob, data.discount
    plan_expected, matching_expected = float(plan_usd.sum(axis=0) @ p), float(matching_usd.sum(axis=0) @ p)
    plan_disc, matching_disc = float(d @ plan_usd @ p), float(d @ matching_usd @ p)
    # Equal expected figures (undiscounted and discounted) mean equal everywhere: nothing to say.
    rules_differ = not _same_buyback((plan_expected, plan_disc), (matching_expected, matching_disc))
    notes = (
        [per_site_rule_note(plan.schema_version, plan_expected, matching_expected)] if rules_differ else []
    )
    if record is None:
        return notes

    quarters = [q.period for q in record.quarters]
    if not log.ok(quarters == data.labels):
        log.say(
            f"buyback_matching quarters: the plan lists {quarters}, the scenario's quarters are {data.labels}"
        )
    for q in record.quarters:
        t = data.t_of.get(q.period)
        if t is None:
            continue
        where = f"buyback_matching {q.period}"
        for name, got, want in (
            (
                "expected_buyback_gpu_hours",
                q.expected_buyback_gpu_hours,
                money.site_buyback_gpu_hours[:, t].sum(),
            ),
            (
                "matching_expected_buyback_gpu_hours",
                q.matching_expected_buyback_gpu_hours,
                matching_gh[t] @ p,
            ),
        ):
            if not log.ok(close(got, float(want), ABS_TOL_QUANTITY)):
                log.say(f"{where} {name}: the plan reports {got:,.3f}, recomputed {float(want):,.3f}")
        check_money(log, f"{where} expected_buyback_usd", q.expected_buyback_usd, float(plan_usd[t] @ p))
        check_money(
            log,
            f"{where} matching_expected_buyback_usd",
            q.matching_expected_buyback_usd,
            float(matching_usd[t] @ p),
        )

    cases = [row.scenario for row in record.scenarios]
    if not log.ok(cases == data.cases):
        log.say(f"buyback_matching scenarios: the plan lists {cases}, the scenario file {data.cases}")
    for row in record.scenarios:
        j = data.cases.index(row.scenario) if row.scenario in data.cases else None
        if j is None:
            continue
        where = f"buyback_matching [{row.scenario}]"
        for name, got, want in (
            ("buyback_usd", row.buyback_usd, plan_usd[:, j].sum()),
            ("buyback_discounted_usd", row.buyback_discounted_usd, d @ plan_usd[:, j]),
            ("matching_buyback_usd", row.matching_buyback_usd, matching_usd[:, j].sum()),
            ("matching_buyback_discounted_usd", row.matching_buyback_discounted_usd, d @ matching_usd[:, j]),
        ):
            check_money(log, f"{where} {name}", got, float(want))

    for name, got, want in (
        ("expected_buyback_usd", record.expected_buyback_usd, plan_expected),
        ("expected_buyback_discounted_usd", record.expected_buyback_discounted_usd, plan_disc),
        ("matching_expected_buyback_usd", record.matching_expected_buyback_usd, matching_expected),
        (
            "matching_expected_buyback_discounted_usd",
            record.matching_expected_buyback_discounted_usd,
            matching_disc,
        ),
        (
            "cloud_expected_value_change_usd",
            record.cloud_expected_value_change_usd,
            matching_disc - plan_disc,
        ),
        (
            "guarantor_expected_value_change_usd",
            record.guarantor_expected_value_change_usd,
            plan_disc - matching_disc,
        ),
    ):
        check_money(log, f"buyback_matching {name}", got, float(want))
    return notes
