"""The plan file: the versioned contract between planning and provisioning.

A plan is self-contained: it repeats the inputs provisioning needs (sites, rack types, tenants)
so that `infra/` and any reader can use it without the scenario file, the model or a solver.
Every figure it reports is recomputable from its own decisions (see `planner.verify`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from planner.schema.scenario import Id

PLAN_SCHEMA_VERSION: Final = "1.5"  # Final: typed Literal["1.5"], one of Plan.schema_version's
"""1.5: buyback by the matching rule (docs/model.md, "Buyback"): each refused GPU-hour placed once
on one site's unsold hour, per quarter and scenario; a site's figures its pro-rata part. The
figures' meaning changed (`outcomes[*].buyback_usd`, `site_periods[*].expected_buyback_*`, and the
values through them); `buyback_matching` is null (one rule: nothing to compare). 1.4: the no-deal plan's first stage (`walk_away.racks`, `.power`, `.quotas`), so the verifier
checks the walk-away values it records, the verifier's notes (`verification.notes`), and the
plan's buyback against the matching rule (`buyback_matching`; null in a 1.4 plan written before it). 1.3: each party's walk-away value (`parties[*].walk_away_value_usd`) and the no-deal plan it
comes from (`walk_away`), both null unless the scenario asked for walk-away floors. 1.2: how the plan was found (`solver.method`, `solver.method_note`). 1.1: each party's figures
(`parties`), buyback exposure per site and quarter; quotas follow the contract rule (never shrink
within a term). Readers of earlier fields need no change of code (1.5 changes what the buyback
figures mean, not their form)."""
PER_SITE_BUYBACK_VERSIONS: Final = ("1.1", "1.2", "1.3", "1.4")
"""Plan versions whose buyback is billed by the per-site rule: max(0, unsold at a site - refused
hours of every tenant that may use it), which understates buyback where a refused tenant may use
several sites (docs/model.md, "Buyback"). The verifier checks such a plan by that rule."""
READABLE_PLAN_VERSIONS: Final = ("1.1", "1.2", "1.3", "1.4", PLAN_SCHEMA_VERSION)
"""Versions this dsx reads: a plan before 1.5 bills buyback by the per-site rule it was solved
under, and the verifier checks it by that rule (with a note); a 1.1 plan lacks the method, read as not recorded (null); a 1.1 or 1.2
plan lacks the walk-away values, read as not computed (null: its floors were the given ones); a
1.3 plan's walk-away record lacks the no-deal decisions, read as not recorded (null: the verifier
says it could not check the values)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(_Record):
    id: str
    name: str = ""
    jurisdiction: str
    power_cap_mw: float
    pue: float
    gpu_cap: int


class RackTypeInfo(_Record):
    id: str
    gpu_product: str
    gpus_per_rack: int
    nodes_per_rack: int
    gpus_per_node: int
    kw_per_rack: float


class TenantInfo(_Record):
    id: str
    display_name: str = ""
    owners: list[str] = Field(default_factory=list)
    allowed_jurisdictions: list[str] | None = None


class RackDecision(_Record):
    """Racks of one type at one site in one quarter (first stage)."""

    site: str
    rack_type: str
    period: str
    racks_built: int
    racks_installed: int
    gpus_installed: int
    nodes_installed: int


class PowerDecision(_Record):
    """Power at one site in one quarter (first stage)."""

    site: str
    period: str
    blocks_ordered: int
    available_mw: float = Field(
        description="Energised facility power (existing + blocks past their lead time)."
    )
    it_load_mw: float = Field(description="Installed racks x kW x PUE: the facility power the racks need.")


class QuotaDecision(_Record):
    """GPUs committed to a tenant on one pool (site x rack type) in one quarter (first stage)."""

    tenant: str
    site: str
    rack_type: str
    period: str
    quota_gpus: float


class ServedRecord(_Record):
    """Second-stage decision: GPU-hours served, per scenario."""

    scenario: str
    tenant: str
    site: str
    rack_type: str
    period: str
    served_gpu_hours: float


class UnservedRecord(_Record):
    scenario: str
    tenant: str
    period: str
    unserved_gpu_hours: float


class SitePeriodSummary(_Record):
    """What a planner reads per site and quarter; expectations are probability-weighted."""

    site: str
    period: str
    racks_by_type: dict[str, int]
    gpus_installed: int
    available_mw: float = Field(description="Energised facility power, as in `power`.")
    it_load_mw: float = Field(
        description="Installed racks x kW x PUE: the facility power the racks need, PUE included "
        "despite the name (compare it with available_mw; the racks' own IT draw is this / PUE)."
    )
    expected_utilisation: float = Field(description="Expected served / installed GPU-hours (0..1).")
    expected_buyback_gpu_hours: float
    expected_buyback_usd: float = Field(
        description="Undiscounted buyback payments in this quarter, expected."
    )
    expected_revenue_share_usd: float = Field(
        description="Undiscounted revenue share paid to the guarantor, expected."
    )
    buyback_exposure_usd: float = Field(
        0.0,
        description="Most buyback the guarantor could owe here this quarter if no covered GPU-hour "
        "sold: buyback_share x price x hours x installed GPUs (undiscounted).",
    )


class ScenarioOutcome(_Record):
    """The plan in one scenario: each party's value, discounted; revenue, buyback, revenue share
    and credit loss as undiscounted sums over the horizon, like the GPU-hours."""

    scenario: str
    probability: float
    cloud_value_usd: float
    guarantor_value_usd: float
    syndicate_value_usd: float
    objective_value_usd: float = Field(description="Value for the plan's perspective in this scenario.")
    rental_revenue_usd: float
    buyback_usd: float
    revenue_share_usd: float
    credit_loss_usd: float
    served_gpu_hours: float
    unserved_gpu_hours: float


class RiskFigures(_Record):
    expected_value_usd: float
    cvar_alpha: float | None = None
    cvar_usd: float | None = Field(
        None, description="Mean value over the worst (1 - alpha) probability mass."
    )
    worst_case_value_usd: float
    best_case_value_usd: float
    evpi_usd: float | None = Field(
        None, description="Expected value of perfect information, WS - RP (null: not computed)."
    )
    vss_usd: float | None = Field(
        None,
        description="Value of the stochastic solution, RP - EEV, EEV keeping the expected-value plan's "
        "racks and power blocks and choosing its quotas afresh (null: not computed).",
    )
    value_of_information_note: str | None = Field(
        None, description="Why evpi_usd and vss_usd are null, when they are."
    )


class PartyFigures(_Record):
    """One party's value under the plan, whatever the perspective, and what it required."""

    party: Literal["cloud", "guarantor", "syndicate"]
    expected_value_usd: float
    cvar_alpha: float
    cvar_usd: float = Field(description="Mean value over the worst (1 - cvar_alpha) probability mass.")
    worst_case_value_usd: float
    min_expected_value_usd: float | None = Field(
        None,
        description="The floor the plan was solved with (null: none): the scenario's "
        "participation.<party>.min_expected_value_usd, or with participation.floors: walk_away the "
        "larger of that and walk_away_value_usd.",
    )
    min_cvar_usd: float | None = Field(None, description="The party's requirement (null: none).")
    walk_away_value_usd: float | None = Field(
        None,
        description="The party's expected (discounted) value in the plan the cloud would make with no "
        "deal (`Plan.walk_away`); null: not computed (participation.floors: given, or the syndicate).",
    )


_QUARTER_LABEL = re.compile(r"[0-9]{4}Q[1-4]")


def _quarter_label(value: str) -> str:
    if not _QUARTER_LABEL.fullmatch(value):
        raise PydanticCustomError("quarter_label", "should be a quarter label such as 2026Q3")
    return value


Quarter = Annotated[str, AfterValidator(_quarter_label)]
"""A quarter label as the scenario's horizon writes them (2026Q3): no other text reaches a message."""


class NoDealRacks(_Record):
    """Racks of one type built at one site in one quarter of the no-deal plan (only where > 0).
    Why: the racks installed follow from them, and with them the cloud's capex and opex, the
    guarantor's hardware margin (its whole walk-away value), the GPUs its quotas may take and the
    power they need."""

    site: Id
    rack_type: Id
    period: Quarter
    racks_built: int = Field(gt=0)


class NoDealPower(_Record):
    """Power blocks ordered at one site in one quarter of the no-deal plan (only where > 0). Why:
    the MW available follow from them, which the racks must fit in, and the cloud's power capex."""

    site: Id
    period: Quarter
    blocks_ordered: int = Field(gt=0)


class NoDealQuota(_Record):
    """GPUs committed to a tenant on one pool in one quarter of the no-deal plan (only where > 0).
    Why: given the racks, the quotas bound what each tenant can be served in every scenario, and
    so the cloud's revenue and energy; they are not implied by the racks (never shrinking within
    a term, they are chosen before demand is known)."""

    tenant: Id
    site: Id
    rack_type: Id
    period: Quarter
    quota_gpus: float = Field(gt=0)


class WalkAway(_Record):
    """The no-deal plan behind the walk-away floors: the cloud's best plan alone, solved on expected
    value (docs/model.md, Conventions, states its terms). Its first stage (`racks`, `power`,
    `quotas`) is recorded so the verifier can check it keeps the no-deal rules and recompute both
    values from it (each scenario's serving given the first stage is a fractional knapsack, solved
    greedily); it cannot re-solve the plan, so whether a better one exists rests on HiGHS's bound."""

    cloud_value_usd: float = Field(
        description="The cloud's expected value with no deal: its walk-away value, one it surely makes alone."
    )
    guarantor_value_usd: float = Field(
        description="The guarantor's expected value with no deal: its hardware margin on the racks of the "
        "no-deal plan HiGHS returned (another plan as good for the cloud may buy other racks)."
    )
    racks_built: int = Field(description="Racks the cloud builds alone over the horizon, in that plan.")
    status: str = Field(description="HiGHS's status of the no-deal solve.")
    mip_gap: float | None = Field(
        None,
        description="Its relative gap: the cloud's best alone is at most this much above cloud_value_usd.",
    )
    cloud_bound_usd: float | None = Field(
        None,
        description="HiGHS's bound: the cloud's best alone is at most this (null: no finite bound). "
        "Above cloud_value_usd by more than round-off, the cloud may make up to the difference more alone.",
    )
    mip_rel_gap: float | None = Field(
        None, description="The gap the no-deal plan was solved to: 1e-3, or the scenario's if tighter."
    )
    reached_gap: bool | None = Field(
        None,
        description="False where HiGHS stopped at a limit (time, solution, node) before mip_rel_gap "
        "(null: not recorded; read as reached only where status is Optimal).",
    )

    @property
    def gap_reached(self) -> bool:
        """Whether the no-deal plan reached its gap; a record without `reached_gap` by its status."""
        return self.reached_gap if self.reached_gap is not None else self.status == "Optimal"

    cloud_cvar_floor_dropped: bool = Field(
        False,
        description="True where the cloud's CVaR floor left no no-deal plan (proven infeasible) and it "
        "was solved without it: not signing is always possible.",
    )
    racks: list[NoDealRacks] | None = Field(
        None,
        description="The no-deal plan's racks built, where > 0 (null: not recorded, a plan written "
        "before schema 1.4; its values then cannot be checked).",
    )
    power: list[NoDealPower] | None = Field(
        None, description="The no-deal plan's power blocks ordered, where > 0 (null: not recorded)."
    )
    quotas: list[NoDealQuota] | None = Field(
        None, description="The no-deal plan's quotas, where > 0 (null: not recorded)."
    )

    @property
    def has_decisions(self) -> bool:
        """Whether the record holds the no-deal plan's first stage (1.4 on), so its values can be checked."""
        return self.racks is not None and self.power is not None and self.quotas is not None


class QuarterBuyback(_Record):
    """One quarter's expected buyback (undiscounted, all sites) under the plan's rule and the
    matching rule (`BuybackMatching`)."""

    period: Quarter
    expected_buyback_gpu_hours: float = Field(description="The plan's rule: Σ site_periods' of this quarter.")
    expected_buyback_usd: float = Field(description="The plan's rule: Σ site_periods' of this quarter.")
    matching_expected_buyback_gpu_hours: float = Field(
        description="The matching rule: buyback_share x (unsold hours - refused hours matched to them)."
    )
    matching_expected_buyback_usd: float = Field(description="The same x the buyback price.")


class ScenarioBuyback(_Record):
    """One scenario's buyback over the horizon under the plan's rule and the matching rule."""

    scenario: str
    buyback_usd: float = Field(description="The plan's rule, undiscounted (as outcomes[*].buyback_usd).")
    buyback_discounted_usd: float = Field(description="The plan's rule, discounted as the values are.")
    matching_buyback_usd: float = Field(description="The matching rule, undiscounted.")
    matching_buyback_discounted_usd: float = Field(description="The matching rule, discounted.")


class BuybackMatching(_Record):
    """A 1.4 plan's buyback measured against the contract's rule (docs/model.md, "Buyback"); a 1.5
    plan has none: its buyback is the matching rule's, and the record would repeat it.

    The 1.4 model subtracted a refused tenant's hours at every site it may use, though they could fill
    only one site's unsold hours once, so where a tenant may use several sites with unsold hours
    its buyback is understated. The matching rule, per quarter and scenario: buyback hours =
    buyback_share x (Σ_i unsold_i - M*), unsold_i = h x GPUs_i - served_i, M* the most refused
    hours that can be placed on unsold hours at sites their tenant may use, each hour once (a
    bipartite max-flow). Figures of the plan as solved (its served and refused hours); the
    matching rule's are never below the plan's. Buyback moves money from the guarantor to the
    cloud, so the syndicate's value is the same under either."""

    quarters: list[QuarterBuyback]
    scenarios: list[ScenarioBuyback]
    expected_buyback_usd: float = Field(description="The plan's rule, expected, undiscounted.")
    expected_buyback_discounted_usd: float = Field(description="The plan's rule, expected, discounted.")
    matching_expected_buyback_usd: float = Field(description="The matching rule, expected, undiscounted.")
    matching_expected_buyback_discounted_usd: float = Field(
        description="The matching rule, expected, discounted."
    )
    cloud_expected_value_change_usd: float = Field(
        description="The cloud's expected value under the matching rule less the plan's (discounted; >= 0)."
    )
    guarantor_expected_value_change_usd: float = Field(
        description="The guarantor's expected value under the matching rule less the plan's (discounted; <= 0)."
    )


class SolverReport(_Record):
    interface: str
    status: str = Field(description="HiGHS model status, e.g. Optimal, Time limit reached.")
    mip_gap: float | None
    objective_usd: float
    best_bound_usd: float | None
    rows: int
    columns: int
    nonzeros: int
    integer_columns: int
    build_s: float
    handoff_s: float
    solve_s: float = Field(
        description="HiGHS's own run time as it reports it, plus the rounded start's time if any."
    )
    start: Literal["rounded", "given"] | None = Field(
        None,
        description="HiGHS's MIP start: the rounded LP relaxation (planner.solve.rounding), a given plan "
        "(a sweep neighbour's; decomposed, the plan its Benders loop started from), or null (none).",
    )
    start_s: float = Field(
        0.0,
        description="Time spent building the start (LP relaxation, rounding, re-solves); part of solve_s.",
    )
    start_usd: float | None = Field(
        None, description="Objective of the start the rounding offered HiGHS (null: none was made)."
    )
    highs_version: str
    method: Literal["extensive", "decomposition"] | None = Field(
        None,
        description="How the plan was found: extensive = one HiGHS model of every scenario; "
        "decomposition = Benders by scenario (planner.solve.decomposition). null: not recorded (a 1.1 plan).",
    )
    method_note: str | None = Field(
        None,
        description="Why a decomposition asked for ended as the extensive form, or the decomposition's "
        "summary (master solves, cuts, how its plan was completed); null for the extensive form as asked.",
    )


class Verification(_Record):
    passed: bool
    checks_run: int
    violations: list[str] = Field(default_factory=list)
    objective_recomputed_usd: float
    notes: list[str] = Field(
        default_factory=list,
        description="What the verifier could not check, and why (e.g. a 1.3 walk-away record without "
        "the no-deal decisions); not violations.",
    )


class Plan(BaseModel):
    """A solved, verified capacity plan."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1.1", "1.2", "1.3", "1.4", "1.5"] = PLAN_SCHEMA_VERSION
    scenario_name: str
    scenario_hash: str
    created_at: datetime
    perspective: Literal["cloud", "guarantor", "syndicate"]
    cvar_weight: float
    hours_per_period: float
    periods: list[str]
    discount_factors: list[float]
    sites: list[SiteInfo]
    rack_types: list[RackTypeInfo]
    tenants: list[TenantInfo]
    scenario_probabilities: dict[str, float]
    racks: list[RackDecision]
    power: list[PowerDecision]
    quotas: list[QuotaDecision]
    served: list[ServedRecord]
    unserved: list[UnservedRecord]
    site_periods: list[SitePeriodSummary]
    outcomes: list[ScenarioOutcome]
    risk: RiskFigures
    parties: list[PartyFigures] = Field(
        default_factory=list, description="Cloud, guarantor and syndicate figures (participation)."
    )
    walk_away: WalkAway | None = Field(
        None, description="The no-deal plan of the walk-away floors (null: floors as given)."
    )
    buyback_matching: BuybackMatching | None = Field(
        None,
        description="A 1.4 plan's buyback (by the per-site rule) against the matching rule; null in a "
        "1.5 plan, whose buyback is the matching rule's, and in a 1.4 plan written before the record.",
    )
    solver: SolverReport
    verification: Verification

    def racks_at(self, site: str, period: str) -> dict[str, int]:
        return {r.rack_type: r.racks_installed for r in self.racks if r.site == site and r.period == period}

    def quotas_at(self, site: str, period: str) -> list[QuotaDecision]:
        return [q for q in self.quotas if q.site == site and q.period == period]

    def rack_type(self, rack_id: str) -> RackTypeInfo:
        return next(r for r in self.rack_types if r.id == rack_id)


def tail_mean(values: list[float], probabilities: list[float], alpha: float) -> float:
    """Mean value over the worst (1 - alpha) probability mass of discrete outcomes, by sorting:
    how a plan's `cvar_usd` figures are defined (the planner's report and `read_plan`'s check of
    a plan both read it; the verifier keeps its own)."""
    remaining = tail = 1.0 - alpha
    total = 0.0
    for value, p in sorted(zip(values, probabilities, strict=True)):
        take = min(p, remaining)
        total += take * value
        remaining -= take
        if remaining <= 1e-12:
            break
    return total / tail
