"""What changed between two plans, per site and quarter, and why it matters in money and risk.

Pure functions on `Plan` objects: no files, no solver. The first plan is the reference; figures
are reported as (reference, other, other - reference).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from planner.schema.plan import Plan

MUSD = 1e6
TOL = 1e-6


@dataclass
class SitePeriodChange:
    site: str
    period: str
    racks_before: int
    racks_after: int
    gpus_before: int
    gpus_after: int
    mw_before: float
    mw_after: float


@dataclass
class QuotaChange:
    tenant: str
    site: str
    period: str
    quota_gpus_before: float
    quota_gpus_after: float


@dataclass
class MoneyDelta:
    figure: str
    before_usd: float | None
    after_usd: float | None

    @property
    def delta_usd(self) -> float | None:
        if self.before_usd is None or self.after_usd is None:
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


def _quota_totals(plan: Plan) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for q in plan.quotas:
        out[q.tenant, q.site, q.period] += q.quota_gpus
    return out


def _m(value: float) -> str:
    """A change in US$ M with two significant digits under US$ 1 M (to US$ 1,000): one decimal
    printed a US$ 28,500 rise as 'rises by US$ 0.0 M'."""
    millions = abs(value) / MUSD
    decimals = 1 if millions >= 1 or millions == 0 else min(3, 1 - math.floor(math.log10(millions)))
    return f"US$ {millions:,.{decimals}f} M"


def _why(before: Plan, after: Plan, cmp: PlanComparison) -> list[str]:
    notes = []
    if before.scenario_hash == after.scenario_hash:
        notes.append("both plans were solved from the same planning case")
    if before.perspective != after.perspective:
        notes.append(
            f"the plans value different parties ({before.perspective} vs {after.perspective}): "
            "their values are not comparable, their decisions are"
        )
    last = after.periods[-1]
    end = [c for c in cmp.site_periods if c.period == last]
    d_racks = sum(c.racks_after - c.racks_before for c in end)
    d_gpus = sum(c.gpus_after - c.gpus_before for c in end)
    if d_racks:
        verb = "more" if d_racks > 0 else "fewer"
        notes.append(
            f"by {last} the second plan holds {abs(d_racks):,} {verb} racks ({abs(d_gpus):,} GPUs): "
            f"{'more capital committed before demand is known' if d_racks > 0 else 'less capital at risk, less demand served in good scenarios'}"
        )
    money = {m.figure: m for m in cmp.money}
    ev, cvar = money[EXPECTED_VALUE].delta_usd, money[CVAR].delta_usd
    if ev is not None and abs(ev) > 1.0:
        notes.append(f"expected value {'rises' if ev > 0 else 'falls'} by {_m(ev)}, discounted")
    if cvar is not None and abs(cvar) > 1.0:
        notes.append(
            f"CVaR (the mean of the worst tail) {'rises' if cvar > 0 else 'falls'} by {_m(cvar)}, discounted: "
            f"downside risk is {'smaller' if cvar > 0 else 'larger'}"
        )
    bb = money[BUYBACK].delta_usd
    if bb is not None and abs(bb) > 1.0:
        notes.append(
            f"expected buyback payments {'grow' if bb > 0 else 'shrink'} by {_m(bb)}, undiscounted: the cloud leans "
            f"{'more' if bb > 0 else 'less'} on the guarantor's cover of unsold GPU-hours"
        )
    rs = money[REVENUE_SHARE].delta_usd
    if rs is not None and abs(rs) > 1.0:
        notes.append(
            f"revenue share paid to the guarantor {'grows' if rs > 0 else 'shrinks'} by {_m(rs)}, undiscounted"
        )
    if not cmp.site_periods and not cmp.quotas:
        notes.append("no build, power or quota decision differs")
    return notes


def compare_plans(
    before: Plan, after: Plan, *, before_name: str = "A", after_name: str = "B"
) -> PlanComparison:
    """Changes from `before` to `after`; only rows that differ are listed."""
    cmp = PlanComparison(before=before_name, after=after_name)
    a_rows = {(r.site, r.period): r for r in before.site_periods}
    b_rows = {(r.site, r.period): r for r in after.site_periods}
    for key in [*a_rows, *(k for k in b_rows if k not in a_rows)]:
        a, b = a_rows.get(key), b_rows.get(key)
        racks = (sum(a.racks_by_type.values()) if a else 0, sum(b.racks_by_type.values()) if b else 0)
        gpus = (a.gpus_installed if a else 0, b.gpus_installed if b else 0)
        mw = (a.available_mw if a else 0.0, b.available_mw if b else 0.0)
        if racks[0] != racks[1] or gpus[0] != gpus[1] or abs(mw[0] - mw[1]) > TOL:
            cmp.site_periods.append(SitePeriodChange(key[0], key[1], *racks, *gpus, *mw))
    qa, qb = _quota_totals(before), _quota_totals(after)
    for tenant, site, period in [*qa, *(k for k in qb if k not in qa)]:
        x, y = qa.get((tenant, site, period), 0.0), qb.get((tenant, site, period), 0.0)
        if abs(x - y) > 1e-3:
            cmp.quotas.append(QuotaChange(tenant, site, period, x, y))
    ma, mb = _money(before), _money(after)
    cmp.money = [MoneyDelta(name, ma[name], mb[name]) for name in ma]
    cmp.notes = _why(before, after, cmp)
    return cmp
