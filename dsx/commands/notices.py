"""What the commands say about a plan besides its tables: its gap as text, a warning where the
gap cannot be measured, and a notice where a party's participation floor holds the plan."""

from __future__ import annotations

import math

from dsx.commands.numbers import fixed, signed
from planner.refusals import expected_refused_gpu_hours, refusals_within_quota
from planner.schema.plan import Plan
from planner.schema.scenario import SolverOptions
from planner.verify.buyback_matching import rules_may_differ
from planner.walk_away import ROUND_OFF_USD

MUSD = 1e6
AT_FLOOR_REL = 1e-6
AT_FLOOR_ABS_USD = 1.0
"""A party sits at its floor within 1e-6 of its value or floor, or US$1: the verifier's
tolerance, so solver round-off counts as at the floor and a real margin does not."""
REFUSALS_NAMED = 3
"""Refusals a notice names before it counts the rest."""


def gap_text(gap: float | None) -> str:
    """A MIP gap for a table: '-' where HiGHS gave none (shown as 0.00% before, as if proven)."""
    if gap is None:
        return "-"
    return "inf" if not math.isfinite(gap) else f"{gap:.2%}"


def gap_warning(plan: Plan, options: SolverOptions) -> str | None:
    """Why a MIP plan's gap cannot be measured, with the fix, or None where it can: HiGHS stopped
    with no bound, or with a plan worth nothing against one (lp_algorithm pdlp, 5 s on the
    bundled example: the all-zero plan, its rounded start having run out the limit). Such a plan
    is verified, but of unknown quality. `options`: the scenario's, whose first LP may have run by PDLP."""
    solver = plan.solver
    if not solver.integer_columns or (solver.mip_gap is not None and math.isfinite(solver.mip_gap)):
        return None
    why = (
        "with no bound on this plan"
        if solver.best_bound_usd is None
        else f"with a plan worth US$ {solver.objective_usd / MUSD:,.3f} M against a bound of "
        f"US$ {solver.best_bound_usd / MUSD:,.3f} M"
    )
    return (
        f"HiGHS stopped ({solver.status}) {why}, so how far the plan is from the best is unknown. "
        "Fix: raise solver.time_limit_s (or --time-limit)"
        + (", and set solver.lp_algorithm to auto" if options.first_lp_solver() == "pdlp" else "")
    )


def older_buyback_rule_warning(plan: Plan) -> str | None:
    """Where a plan before 1.5 bills buyback by the per-site rule it was solved under, and the
    terms have buyback: that its figures are that rule's, with both rules' figures where its
    `buyback_matching` record (1.4) gives them, and what each party's expected value would be by
    the matching rule; None for a 1.5 plan, without buyback, or where the record shows the two
    rules agree (the verifier's money tolerance). No dsx command verifies a plan file, so this is
    all `show` of an old plan says of its rule."""
    if not rules_may_differ(plan):
        return None
    rule = (
        f"this plan (schema {plan.schema_version}) bills buyback by the per-site rule it was solved "
        "under, which counts a refused tenant's hours against every site it may use"
    )
    record = plan.buyback_matching
    if record is None:
        expected_usd = sum(o.probability * o.buyback_usd for o in plan.outcomes)
        return (
            f"{rule}: its expected buyback is US$ {fixed(expected_usd, 0)} (undiscounted), no more than by "
            "the matching rule this dsx bills, each refused hour placed once on one site's unsold hour, "
            "and less where a refused tenant may use several sites; the plan records no comparison "
            '(docs/model.md, "Buyback"). Fix: solve the scenario again'
        )
    value = {f.party: f.expected_value_usd for f in plan.parties}
    change = {
        "cloud": record.cloud_expected_value_change_usd,
        "guarantor": record.guarantor_expected_value_change_usd,
    }
    parties = " and ".join(
        f"the {party}'s{' expected value would be' if party == 'cloud' else ''} "
        f"US$ {fixed(value[party] + change[party], 0)} ({signed(change[party], 0)})"
        for party in ("cloud", "guarantor")
        if party in value
    )
    return (
        f"{rule}: its expected "
        f"buyback is US$ {fixed(record.expected_buyback_usd, 0)} (undiscounted; "
        f"US$ {fixed(record.expected_buyback_discounted_usd, 0)} discounted). By the matching rule this "
        "dsx bills, each refused hour placed once on one site's unsold hour, it is "
        f"US$ {fixed(record.matching_expected_buyback_usd, 0)} (undiscounted; "
        f"US$ {fixed(record.matching_expected_buyback_discounted_usd, 0)} discounted), and {parties}; "
        'the syndicate\'s is the same (docs/model.md, "Buyback"). Fix: solve the scenario again'
    )


def plan_warnings(plan: Plan) -> list[str]:
    """Warnings `solve` and `show` print from the plan alone (and list under `warnings`)."""
    warning = older_buyback_rule_warning(plan)
    return [] if warning is None else [warning]


def no_deal_slack_usd(plan: Plan) -> float | None:
    """How much more than its walk-away value the cloud may make alone (HiGHS's bound on the
    no-deal plan less its value, US$), where more than round-off; None otherwise or unknown."""
    nd = plan.walk_away
    if nd is None or nd.cloud_bound_usd is None:
        return None
    slack = nd.cloud_bound_usd - nd.cloud_value_usd
    return slack if slack > ROUND_OFF_USD else None


def no_deal_gap_warning(plan: Plan) -> str | None:
    """The solve's warning where HiGHS stopped the no-deal plan at a limit before its gap (the
    notice, `walk_away_notices`, says what that means for the floors)."""
    nd = plan.walk_away
    if nd is None or nd.gap_reached:
        return None
    gap = "-" if nd.mip_gap is None else f"{nd.mip_gap:.3%}"
    return (
        f"HiGHS stopped the no-deal plan behind the walk-away floors ({nd.status}, gap {gap}) before its "
        f"gap of {nd.mip_rel_gap:g}. Fix: raise solver.time_limit_s (or --time-limit), or remove the "
        "limit in solver.extra that stopped HiGHS"
    )


def walk_away_notices(plan: Plan) -> list[str]:
    """What the no-deal plan behind walk-away floors leaves uncertain or out: a plan HiGHS stopped
    before its gap (the cloud's best alone may be more), the cloud's CVaR floor where it left the
    cloud no plan alone."""
    nd = plan.walk_away
    if nd is None:
        return []
    notices = []
    if not nd.gap_reached:
        slack = no_deal_slack_usd(plan)
        how = (
            "by how much is unknown (HiGHS gave no bound)"
            if nd.cloud_bound_usd is None
            else f"by up to US$ {fixed(slack or 0.0, 0)} (HiGHS's bound: US$ {fixed(nd.cloud_bound_usd, 0)})"
        )
        notices.append(
            f"HiGHS stopped the no-deal plan before its gap ({nd.status}): the cloud's walk-away value "
            f"US$ {fixed(nd.cloud_value_usd, 0)} is one it surely makes alone, but its best alone may be "
            f"higher, {how}, and the deal floors the cloud only at the lower value"
        )
    if nd.cloud_cvar_floor_dropped:
        notices.append(
            "the no-deal plan was solved without the cloud's CVaR floor (participation.cloud.min_cvar_usd): "
            "HiGHS proved that no plan alone meets it, and not signing is always possible, so the "
            "walk-away values are those of the cloud's best plan alone without it (docs/model.md, Conventions)"
        )
    return notices


def floor_notices(plan: Plan) -> list[str]:
    """A notice for each party other than the perspective whose expected value sits at its
    participation floor. Not signing is worth zero by default (docs/model.md, "Conventions"), so a
    plan for one party may leave the other exactly its floor; it is the best that party would
    accept only if its alternative is worth no more, which the planner knows only where the plan
    was solved with walk-away floors: the notice then says the party gains nothing by signing."""
    notices = []
    for f in plan.parties:
        floor = f.min_expected_value_usd
        if f.party == plan.perspective or floor is None:
            continue
        # The verifier's rule: relative to the figures compared, not the plan's largest value (a
        # guarantor US$ 10,000 above its floor beside a US$ 10 bn cloud is not at its floor).
        tolerance = max(AT_FLOOR_REL * max(abs(f.expected_value_usd), abs(floor)), AT_FLOOR_ABS_USD)
        if abs(f.expected_value_usd - floor) > tolerance:
            continue
        field = f"participation.{f.party}.min_expected_value_usd"
        walk_away = f.walk_away_value_usd
        if walk_away is not None and floor <= walk_away + tolerance:
            notices.append(
                f"the {f.party} sits at its walk-away value: expected value US$ {fixed(f.expected_value_usd, 0)} "
                f"against US$ {fixed(walk_away, 0)}, its expected value in the plan the cloud would make with "
                f"no deal (participation.floors: walk_away). The deal gives the {f.party} nothing over "
                "walking away: it is the best plan for the "
                f"{plan.perspective} that the {f.party} would not refuse, and whatever the deal earns over "
                f"walking away goes to the {plan.perspective}"
            )
            continue
        default = " (the default, which says not signing is worth zero)" if floor == 0.0 else ""
        if walk_away is not None:
            notices.append(
                f"the {f.party} sits at its participation floor: expected value "
                f"US$ {fixed(f.expected_value_usd, 0)} against {field} = US$ {fixed(floor, 0)}, above its "
                f"walk-away value of US$ {fixed(walk_away, 0)} (participation.floors: walk_away)"
            )
            continue
        notices.append(
            f"the {f.party} sits at its participation floor: expected value "
            f"US$ {fixed(f.expected_value_usd, 0)} against {field} = US$ {fixed(floor, 0)}{default}. "
            f"This is the {plan.perspective}'s best plan among those the {f.party} would sign, and "
            f"the {f.party} would sign it only if it would make no more than that otherwise. Fix: if "
            f"it would make more, set {field} in the scenario to that, or set participation.floors: "
            "walk_away to floor each party at its expected value in the plan the cloud would make "
            "with no deal (a second solve)"
        )
    return notices


def refusal_notices(plan: Plan) -> list[str]:
    """A notice where the plan refuses demand its own quotas had room for
    (`planner.refusals`): the operator admits a tenant's jobs up to its quota, so the
    site will serve those hours and the plan's figures, each party's included, assume less."""
    refusals = refusals_within_quota(plan)
    if not refusals:
        return []
    shown = ", ".join(f"{r.tenant} {r.period} in {r.scenario}" for r in refusals[:REFUSALS_NAMED])
    more = f" and {len(refusals) - REFUSALS_NAMED} more" if len(refusals) > REFUSALS_NAMED else ""
    return [
        f"the plan refuses demand its own quotas had room for: {fixed(expected_refused_gpu_hours(plan, refusals), 0)} "
        f"expected GPU-hours ({shown}{more}). The operator admits a tenant's jobs up to its quota, so "
        "the site will serve them, and every value in the plan assumes it does not: a participation "
        'requirement is then met only on paper (docs/model.md, "Quotas are what tenants run"). '
        "Fix: read it as a sign the requirements cannot be met with this demand served; lower the "
        "requirement, or change the terms (revenue share, the tenants' credits) and solve again"
    ]


def plan_notices(plan: Plan) -> list[str]:
    """Every notice `solve` and `show` print after the tables (and list under `notices`)."""
    return walk_away_notices(plan) + floor_notices(plan) + refusal_notices(plan) + verification_notices(plan)


def verification_notices(plan: Plan) -> list[str]:
    """What the verifier passed without being able to check (`verification.notes`): a plan
    verified "passed" says so only for what it checked."""
    return [f"Verification could not check everything: {note}" for note in plan.verification.notes]
