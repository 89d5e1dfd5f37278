"""Scenario data the model needs, precomputed once in plain Python (no Pyomo).

Every coefficient here is in the units docs/model.md states (US$, GPU-hours, MW); the money
scaling to US$ millions happens only in `planner.model.objective`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner.schema.scenario import Scenario

EPS = 1e-9


@dataclass
class ModelData:
    scenario: Scenario
    n: int
    h: float
    discount: list[float]
    site_ids: list[str]
    rack_ids_at: dict[str, list[str]]
    scenario_ids: list[str]
    probability: dict[str, float]
    tenants_at: dict[str, list[str]] = field(default_factory=dict)
    """Tenants that may use each site (jurisdiction rule)."""
    demand: dict[tuple[str, int, str], float] = field(default_factory=dict)
    """(tenant, t, scenario) -> average GPUs demanded."""
    existing_racks: dict[tuple[str, str], int] = field(default_factory=dict)
    elastic: bool = False
    """Requirements may fall short (each by a `requirement_shortfall`, minimised): used only to
    say which participation requirement cannot be met and by how much."""
    # Worked out once each: nothing they read changes after `model_data` returns (`elastic`,
    # set after, is not read by either). Not part of what two ModelData compare on.
    _peak: dict[tuple[str, int], float] = field(default_factory=dict, init=False, repr=False, compare=False)
    _racks_bound: dict[tuple[str, str, int], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def periods(self) -> range:
        return range(self.n)

    def lead(self, site_id: str) -> int:
        return self.scenario.site(site_id).power_lead_time_periods

    def energy_usd_per_gpu_hour(self, site_id: str, rack_id: str) -> float:
        site, rack = self.scenario.site(site_id), self.scenario.rack_type(rack_id)
        return site.power_price_usd_per_mwh * site.pue * rack.kw_per_rack / 1000.0 / rack.gpus_per_rack

    def max_available_mw(self, site_id: str, t: int) -> float:
        """Most power the site can have energised in quarter t (rate, lead time and cap allow)."""
        site = self.scenario.site(site_id)
        orderable_quarters = max(0, t - site.power_lead_time_periods + 1)
        reachable = (
            site.existing_mw + site.power_block_mw * site.max_power_blocks_per_period * orderable_quarters
        )
        return min(site.power_cap_mw, reachable)

    def existing_draw_mw(self, site_id: str) -> float:
        site = self.scenario.site(site_id)
        return sum(
            count * self.scenario.rack_type(r).kw_per_rack / 1000.0 * site.pue
            for (i, r), count in self.existing_racks.items()
            if i == site_id
        )

    def racks_built_bound(self, site_id: str, rack_id: str, t: int) -> int:
        """Most racks of a type worth building in quarter t: build rate, GPU cap and the power
        that can be energised by then all bound it (every bound follows from a constraint).
        Kept once worked out: the buyback's big-M reads each one over every rack's life."""
        key = (site_id, rack_id, t)
        if key not in self._racks_bound:
            self._racks_bound[key] = self._racks_built_bound(site_id, rack_id, t)
        return self._racks_bound[key]

    def _racks_built_bound(self, site_id: str, rack_id: str, t: int) -> int:
        site, rack = self.scenario.site(site_id), self.scenario.rack_type(rack_id)
        existing_gpus = sum(
            c * self.scenario.rack_type(r).gpus_per_rack
            for (i, r), c in self.existing_racks.items()
            if i == site_id
        )
        by_gpus = (site.gpu_cap - existing_gpus) // rack.gpus_per_rack
        mw_per_rack = rack.kw_per_rack / 1000.0 * site.pue
        by_power = math.floor(
            (self.max_available_mw(site_id, t) - self.existing_draw_mw(site_id)) / mw_per_rack + EPS
        )
        return max(0, min(site.max_racks_built_per_period, by_gpus, by_power))

    def blocks_bound(self, site_id: str) -> int:
        site = self.scenario.site(site_id)
        by_cap = math.floor((site.power_cap_mw - site.existing_mw) / site.power_block_mw + EPS)
        return max(0, min(site.max_power_blocks_per_period, by_cap))

    def term_start(self, t: int) -> int:
        """First quarter of the quota contract term holding quarter t."""
        term = self.scenario.contracts.quota_term_periods
        return t - t % term

    def term_peak_demand(self, tenant_id: str, t: int) -> float:
        """Peak demand over the quota contract term holding quarter t (any scenario)."""
        start = self.term_start(t)
        end = min(self.n, start + self.scenario.contracts.quota_term_periods)
        return max(self.peak_demand(tenant_id, tau) for tau in range(start, end))

    def quota_drop_allowance_gpus(self, tenant_id: str, t: int) -> float:
        """How far a tenant's quota on a pool may fall from quarter t - 1 to t: nothing within a
        contract term; at a renewal, the fall in the tenant's peak demand from the last term to
        the new one (so rising demand never lowers a quota)."""
        if t == 0 or t != self.term_start(t):
            return 0.0
        return max(0.0, self.term_peak_demand(tenant_id, t - 1) - self.term_peak_demand(tenant_id, t))

    @property
    def has_buyback(self) -> bool:
        """Buyback moves money only when some share is covered at a positive price."""
        terms = self.scenario.terms
        return terms.buyback_share > 0 and terms.buyback_price_usd_per_gpu_hour > 0

    @property
    def cloud_rewarded(self) -> bool:
        """The cloud's value is maximised or bounded below: more buyback then looks better, so the
        rule's max(0, ...) needs a binary to hold exactly (it is a convex function)."""
        # In the syndicate's value buyback cancels, in the guarantor's it is a cost: only the
        # cloud perspective or a cloud requirement rewards it.
        need = self.scenario.participation.cloud
        has_requirement = need.min_expected_value_usd is not None or need.min_cvar_usd is not None
        return self.scenario.objective.perspective == "cloud" or has_requirement

    @property
    def buyback_needs_binary(self) -> bool:
        return self.has_buyback and self.cloud_rewarded

    @property
    def parties_with_cvar_requirement(self) -> list[str]:
        participation = self.scenario.participation
        return [
            p
            for p, need in (("cloud", participation.cloud), ("guarantor", participation.guarantor))
            if need.min_cvar_usd is not None
        ]

    def site_demand_gpus(self, site_id: str, t: int, s: str) -> float:
        """Demand (average GPUs) of the tenants that may use a site, in quarter t and scenario s."""
        return sum(self.demand[k, t, s] for k in self.tenants_at[site_id])

    def site_max_gpus(self, site_id: str) -> int:
        return self.scenario.site(site_id).gpu_cap

    def peak_demand(self, tenant_id: str, t: int) -> float:
        if not self._peak:
            for (k, tau, _s), gpus in self.demand.items():
                self._peak[k, tau] = max(gpus, self._peak.get((k, tau), 0.0))
        return self._peak.get((tenant_id, t), 0.0)


def model_data(scenario: Scenario) -> ModelData:
    n = scenario.periods.count_quarters
    data = ModelData(
        scenario=scenario,
        n=n,
        h=scenario.periods.hours_per_period,
        discount=scenario.periods.discount_factors(),
        site_ids=[s.id for s in scenario.sites],
        rack_ids_at={s.id: [r.id for r in scenario.site_rack_types(s)] for s in scenario.sites},
        scenario_ids=[c.id for c in scenario.scenarios],
        probability={c.id: c.probability for c in scenario.scenarios},
    )
    for site in scenario.sites:
        data.tenants_at[site.id] = [k.id for k in scenario.tenants if scenario.tenant_may_use(k, site)]
        for r, count in site.existing_racks.items():
            data.existing_racks[site.id, r] = count
    for k in scenario.tenants:
        for s in data.scenario_ids:
            for t, gpus in enumerate(k.demand_gpus[s]):
                data.demand[k.id, t, s] = gpus
    return data
