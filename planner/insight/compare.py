"""What changed between two plans, per site and quarter, and why it matters in money and risk.

Pure functions on `Plan` objects: no files, no solver. The first plan is the reference; figures
are reported as (reference, other, other - reference). A figure is compared only where both plans
define it alike (same perspective, CVaR level, horizon and discounting, scenarios and
probabilities); otherwise its row says which definition differs and no change or conclusion is
drawn from it. A site or quarter one plan does not cover is absent there (None), not zero.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from planner.schema.plan import PER_SITE_BUYBACK_VERSIONS, Plan
from planner.verify.buyback_matching import bills_buyback, rules_may_differ

MUSD = 1e6
TOL = 1e-6
NOTE_MIN_USD = 1_000.0
"""Least change a note reports: US$ 0.001 M, the finest digit `_m` writes, so no note says a
figure moved "by US$ 0.000 M"."""
EXACT = 1e-9
"""Probabilities and discount factors a plan copies from its scenario agree within this."""


@dataclass
class SitePeriodChange:
    """Racks, GPUs and MW at one site in one quarter; None where a plan does not cover that site
    or quarter (outside its horizon), which is not the same as building nothing."""

    site: str
    period: str
    racks_before: int | None
    racks_after: int | None
    gpus_before: int | None
    gpus_after: int | None
    mw_before: float | None
    mw_after: float | None


@dataclass
class QuotaChange:
    """A tenant's GPUs at one site in one quarter; None where a plan does not cover them."""

    tenant: str
    site: str
    period: str
    quota_gpus_before: float | None
    quota_gpus_after: float | None


@dataclass
class MoneyDelta:
    figure: str
    before_usd: float | None
    after_usd: float | None
    not_comparable: list[str] = field(default_factory=list)
    """The definitions this figure depends on that differ between the plans (e.g. 'CVaR level
    0.75 vs 0.5'): the two numbers measure different things, so no change is given."""

    @property
    def delta_usd(self) -> float | None:
        if self.before_usd is None or self.after_usd is None or self.not_comparable:
            return None
        return self.after_usd - self.before_usd


@dataclass
class PlanComparison:
    before: str
    after: str
    site_periods: list[SitePeriodChange] = field(default_factory=list)
    quotas: list[QuotaChange] = field(default_factory=list)
    money: list[MoneyDelta] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, delta in zip(out["money"], self.money, strict=True):
            row["delta_usd"] = delta.delta_usd
        return out


EXPECTED_VALUE = "expected value, discounted"
CVAR = "CVaR, discounted"
BUYBACK = "expected buyback, undiscounted"
REVENUE_SHARE = "expected revenue share, undiscounted"


def _money(plan: Plan) -> dict[str, float | None]:
    """Each figure named with its basis: values are discounted, the payments undiscounted sums
    over the horizon (docs/model.md, "Reported figures"), and a reader must not compare the two."""
    expected = lambda attr: sum(o.probability * getattr(o, attr) for o in plan.outcomes)  # noqa: E731
    return {
        EXPECTED_VALUE: plan.risk.expected_value_usd,
        CVAR: plan.risk.cvar_usd,
        "worst scenario, discounted": plan.risk.worst_case_value_usd,
        BUYBACK: expected("buyback_usd"),
        REVENUE_SHARE: expected("revenue_share_usd"),
        "expected credit loss, undiscounted": expected("credit_loss_usd"),
        "expected cloud value, discounted": expected("cloud_value_usd"),
        "expected guarantor value, discounted": expected("guarantor_value_usd"),
    }


DEPENDS_ON: dict[str, tuple[str, ...]] = {
    # "buyback rule" counts for the perspective's value only where it is not the syndicate's.
    "expected value": ("perspective", "horizon", "discounting", "scenarios", "probabilities", "buyback rule"),
    "CVaR": (
        "perspective",
        "CVaR level",
        "horizon",
        "discounting",
        "scenarios",
        "probabilities",
        "buyback rule",
    ),
    "worst scenario": ("perspective", "horizon", "discounting", "scenarios", "buyback rule"),
    # Undiscounted sums over the horizon, expected over the scenarios; the same for any perspective.
    "expected buyback": ("horizon", "scenarios", "probabilities", "buyback rule"),
    "expected revenue share": ("horizon", "scenarios", "probabilities"),
    "expected credit loss": ("horizon", "scenarios", "probabilities"),
    "expected cloud value": ("horizon", "discounting", "scenarios", "probabilities", "buyback rule"),
    "expected guarantor value": ("horizon", "discounting", "scenarios", "probabilities", "buyback rule"),
}
"""What each money figure's meaning depends on: where two plans differ in one of these, their
figures measure different things (a CVaR over the worst 25% against one over the worst 50%)."""
PERSPECTIVE_FIGURES = ("expected value", "CVaR", "worst scenario")
"""The figures valued for the plan's perspective: the syndicate's holds no buyback (a transfer)."""


def _rule(plan: Plan) -> str:
    """The plan's buyback rule by its schema version (docs/model.md, "Buyback")."""
    return "per-site" if plan.schema_version in PER_SITE_BUYBACK_VERSIONS else "matching"


def _older(before: Plan, after: Plan) -> Plan | None:
    """Of two plans billing buyback by different rules, the one by the per-site rule; None where
    both bill by one rule."""
    if _rule(before) == _rule(after):
        return None
    return before if _rule(before) == "per-site" else after


def _rule_note(older: Plan) -> str:
    """What is known of a per-site plan's buyback by the matching rule: its record's figures, or
    that it records none (the per-site rule never bills more, and bills less only where a refused
    tenant may use several sites with unsold hours, which the plan alone does not tell)."""
    record = older.buyback_matching
    if record is None:
        return (
            f"the schema {older.schema_version} plan records no comparison with the matching rule, which "
            "bills no less than its per-site rule, and more where a refused tenant may use several sites "
            "with unsold hours"
        )
    return (
        f"by the matching rule the schema {older.schema_version} plan's expected buyback would be "
        f"{_m(record.matching_expected_buyback_usd)} (undiscounted), not the "
        f"{_m(record.expected_buyback_usd)} it bills"
    )


def _base(figure: str) -> str:
    """A money figure's name without its basis ("CVaR, discounted" -> "CVaR"): `DEPENDS_ON`'s key."""
    return figure.split(", ")[0]


def _span(periods: list[str]) -> str:
    return f"{periods[0]}-{periods[-1]}" if periods else "none"


def _definitions(before: Plan, after: Plan) -> dict[str, str]:
    """The definitions in `DEPENDS_ON` that differ between the plans, each with how."""
    out: dict[str, str] = {}
    if before.perspective != after.perspective:
        out["perspective"] = f"perspective {before.perspective} vs {after.perspective}"
    if before.risk.cvar_alpha != after.risk.cvar_alpha:
        out["CVaR level"] = f"CVaR level (alpha) {before.risk.cvar_alpha} vs {after.risk.cvar_alpha}"
    if before.periods != after.periods:
        out["horizon"] = f"horizon {_span(before.periods)} vs {_span(after.periods)}"
    elif any(
        not math.isclose(a, b, rel_tol=EXACT, abs_tol=EXACT)
        for a, b in zip(before.discount_factors, after.discount_factors, strict=False)
    ):
        out["discounting"] = (
            f"discount rate (factor in {before.periods[-1]} {before.discount_factors[-1]:.4f} vs "
            f"{after.discount_factors[-1]:.4f})"
        )
    older = _older(before, after)
    if older is not None and rules_may_differ(older):
        out["buyback rule"] = (
            f"buyback rule {_rule(before)} (schema {before.schema_version}) vs {_rule(after)} "
            f"(schema {after.schema_version})"
        )
    pa, pb = before.scenario_probabilities, after.scenario_probabilities
    if set(pa) != set(pb):
        out["scenarios"] = f"scenarios {', '.join(pa)} vs {', '.join(pb)}"
    elif any(not math.isclose(pa[s], pb[s], rel_tol=EXACT, abs_tol=EXACT) for s in pa):
        out["probabilities"] = "scenario probabilities " + ", ".join(
            f"{s} {pa[s]:g} vs {pb[s]:g}" for s in pa if not math.isclose(pa[s], pb[s], abs_tol=EXACT)
        )
    return out


def _quota_totals(plan: Plan) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for q in plan.quotas:
        out[q.tenant, q.site, q.period] += q.quota_gpus
    return out


def _m(value: float) -> str:
    """A change in US$ M with three decimals (US$ 1,000), as every table prints US$ M
    (dsx/commands/numbers.py): a note said "rises by US$ 1.5 M" beside the table's +1.523."""
    return f"US$ {abs(value) / MUSD:,.3f} M"


def _why(before: Plan, after: Plan, cmp: PlanComparison, differ: dict[str, str]) -> list[str]:
    notes = []
    if before.scenario_hash == after.scenario_hash:
        notes.append("both plans were solved from the same planning case")
    if "perspective" in differ:
        notes.append(
            f"the plans value different parties ({before.perspective} vs {after.perspective}): "
            "their values are not comparable, their decisions are"
        )
    if "CVaR level" in differ:
        notes.append(
            f"the plans measure CVaR over different tails (alpha {before.risk.cvar_alpha} vs "
            f"{after.risk.cvar_alpha}): their CVaR figures are not comparable"
        )
    if before.cvar_weight != after.cvar_weight:
        notes.append(
            f"the plans weigh CVaR differently in their objectives ({before.cvar_weight:g} vs "
            f"{after.cvar_weight:g}): each is best for a different trade of expected value against risk"
        )
    if "horizon" in differ:
        notes.append(
            f"the plans cover different quarters ({_span(before.periods)} vs {_span(after.periods)}): "
            "a quarter outside a plan's horizon is shown as absent (-), not as nothing built, and "
            "figures summed over the horizon are not comparable"
        )
    floors = ["walk_away" if p.walk_away is not None else "given" for p in (before, after)]
    if floors[0] != floors[1]:
        notes.append(
            f"the plans were solved with different participation floors ({floors[0]} vs {floors[1]}): "
            "walk_away floors each party at least at its value with no deal, given at the numbers as "
            "written, so a party's value may differ for that alone"
        )
    older = _older(before, after)
    if "buyback rule" in differ and older is not None:
        notes.append(
            f"the plans bill buyback by different rules ({differ['buyback rule']}): {_rule_note(older)} "
            '(docs/model.md, "Buyback"); the buyback and the values that hold it are not compared. '
            "Fix: solve the older plan's scenario again"
        )
    elif older is not None and not bills_buyback(older):
        notes.append(
            f"the schema {older.schema_version} plan's terms bill no buyback, by either rule: its "
            "figures are compared"
        )
    elif older is not None:
        notes.append(
            f"the schema {older.schema_version} plan bills buyback by the per-site rule, and its "
            "buyback_matching record shows the matching rule bills the same buyback: its figures "
            "are compared"
        )
    for name in ("discounting", "scenarios", "probabilities"):
        if name in differ:
            notes.append(
                f"the plans differ in {differ[name]}: the figures that depend on it are not compared"
            )
    covered = set(before.periods)
    common = [p for p in after.periods if p in covered]
    if common:
        last = common[-1]
        end = [
            c
            for c in cmp.site_periods
            if c.period == last and c.racks_before is not None and c.racks_after is not None
        ]
        d_racks = sum((c.racks_after or 0) - (c.racks_before or 0) for c in end)
        d_gpus = sum((c.gpus_after or 0) - (c.gpus_before or 0) for c in end)
        if d_racks:
            verb = "more" if d_racks > 0 else "fewer"
            if "horizon" in differ:
                # The same quarter sits at different points of each plan (one's end is the other's
                # middle): the difference is a fact, not a sign of more or less capital at risk.
                notes.append(
                    f"in {last}, the last quarter both plans cover, the second plan holds "
                    f"{_count(d_racks, verb + ' rack')} ({_count(d_gpus, 'GPU')})"
                )
            else:
                notes.append(
                    f"by {last} the second plan holds {_count(d_racks, verb + ' rack')} ({_count(d_gpus, 'GPU')}): "
                    f"{'more capital committed before demand is known' if d_racks > 0 else 'less capital at risk, less demand served in good scenarios'}"
                )
    money = {m.figure: m for m in cmp.money}

    def moved(figure: str) -> float | None:
        delta = money[figure].delta_usd
        return delta if delta is not None and abs(delta) >= NOTE_MIN_USD else None

    ev, cvar = moved(EXPECTED_VALUE), moved(CVAR)
    if ev is not None:
        notes.append(f"expected value {'rises' if ev > 0 else 'falls'} by {_m(ev)}, discounted")
    if cvar is not None:
        notes.append(
            f"CVaR (the mean of the worst tail) {'rises' if cvar > 0 else 'falls'} by {_m(cvar)}, discounted: "
            f"downside risk is {'smaller' if cvar > 0 else 'larger'}"
        )
    bb = moved(BUYBACK)
    if bb is not None:
        notes.append(
            f"expected buyback payments {'grow' if bb > 0 else 'shrink'} by {_m(bb)}, undiscounted: the cloud leans "
            f"{'more' if bb > 0 else 'less'} on the guarantor's cover of unsold GPU-hours"
        )
    rs = moved(REVENUE_SHARE)
    if rs is not None:
        notes.append(
            f"revenue share paid to the guarantor {'grows' if rs > 0 else 'shrinks'} by {_m(rs)}, undiscounted"
        )
    if not cmp.site_periods and not cmp.quotas:
        notes.append("no build, power or quota decision differs")
    return notes


def _covered(plan: Plan) -> tuple[set[str], set[str], set[str]]:
    """The plan's sites, quarters and tenants: what it says anything about."""
    return {s.id for s in plan.sites}, set(plan.periods), {t.id for t in plan.tenants}


def compare_plans(
    before: Plan, after: Plan, *, before_name: str = "A", after_name: str = "B"
) -> PlanComparison:
    """Changes from `before` to `after`; only rows that differ are listed, a site and quarter one
    plan does not cover with None on its side."""
    cmp = PlanComparison(before=before_name, after=after_name)
    a_rows = {(r.site, r.period): r for r in before.site_periods}
    b_rows = {(r.site, r.period): r for r in after.site_periods}
    site_order = {site: n for n, site in enumerate(dict.fromkeys(site for site, _ in [*a_rows, *b_rows]))}
    # Per site, its quarters in time order (labels such as 2026Q3 sort so), whichever plan has them.
    for key in sorted({*a_rows, *b_rows}, key=lambda k: (site_order[k[0]], k[1])):
        a, b = a_rows.get(key), b_rows.get(key)
        change = SitePeriodChange(
            key[0],
            key[1],
            sum(a.racks_by_type.values()) if a else None,
            sum(b.racks_by_type.values()) if b else None,
            a.gpus_installed if a else None,
            b.gpus_installed if b else None,
            a.available_mw if a else None,
            b.available_mw if b else None,
        )
        if (
            a is None
            or b is None
            or change.racks_before != change.racks_after
            or a.gpus_installed != b.gpus_installed
            or abs(a.available_mw - b.available_mw) > TOL
        ):
            cmp.site_periods.append(change)
    qa, qb = _quota_totals(before), _quota_totals(after)
    (sa, pa, ta), (sb, pb, tb) = _covered(before), _covered(after)
    pairs: dict[tuple[str, str], int] = {
        pair: n for n, pair in enumerate(dict.fromkeys((k[0], k[1]) for k in [*qa, *qb]))
    }
    for tenant, site, period in sorted({*qa, *qb}, key=lambda k: (pairs[k[0], k[1]], k[2])):
        x = qa.get((tenant, site, period), 0.0) if site in sa and period in pa and tenant in ta else None
        y = qb.get((tenant, site, period), 0.0) if site in sb and period in pb and tenant in tb else None
        if x is None or y is None or abs(x - y) > 1e-3:
            cmp.quotas.append(QuotaChange(tenant, site, period, x, y))
    differ = _definitions(before, after)
    ma, mb = _money(before), _money(after)
    syndicate = before.perspective == after.perspective == "syndicate"

    def depends(figure: str) -> list[str]:
        names = DEPENDS_ON[_base(figure)]
        if syndicate and _base(figure) in PERSPECTIVE_FIGURES:
            names = tuple(d for d in names if d != "buyback rule")
        return [differ[d] for d in names if d in differ]

    cmp.money = [MoneyDelta(name, ma[name], mb[name], depends(name)) for name in ma]
    cmp.notes = _why(before, after, cmp, differ)
    return cmp


def _count(number: int, noun: str) -> str:
    """'1 more rack', '2 more racks': the size of a change, with its noun in the right number."""
    return f"{abs(number):,} {noun}{'' if abs(number) == 1 else 's'}"
