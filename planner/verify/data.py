"""The scenario as index maps and arrays, so every check is a lookup or a vector operation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.schema.scenario import Scenario


@dataclass(frozen=True)
class ScenarioArrays:
    """The scenario's inputs as index maps and arrays: sites i, rack types r, quarters t, tenants k,
    scenarios s (each in scenario-file order)."""

    labels: list[str]
    t_of: dict[str, int]
    sites: list[str]
    racks: list[str]
    tenants: list[str]
    cases: list[str]
    i_of: dict[str, int]
    r_of: dict[str, int]
    k_of: dict[str, int]
    s_of: dict[str, int]
    jurisdiction: list[str]
    allowed: np.ndarray  # [I, R] rack type allowed at site
    may_use: np.ndarray  # [K, I] tenant may be served at site
    h: float
    discount: np.ndarray  # [T]
    prob: np.ndarray  # [S]
    gpus_per_rack: np.ndarray  # [R]
    nodes_per_rack: np.ndarray
    kw_per_rack: np.ndarray
    capex: np.ndarray
    lifetime: np.ndarray
    opex: np.ndarray
    pue: np.ndarray  # [I]
    existing_mw: np.ndarray
    block_mw: np.ndarray
    lead: np.ndarray
    cap_mw: np.ndarray
    gpu_cap: np.ndarray
    max_built: np.ndarray
    max_blocks: np.ndarray
    power_price: np.ndarray
    power_capex: np.ndarray
    power_life: np.ndarray
    existing_racks: np.ndarray  # [I, R]
    price: np.ndarray  # [K]
    demand: np.ndarray  # [K, T, S] average GPUs
    credit_loss_rate: np.ndarray  # [K, S] token_credit_share * (1 - repayment share)

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return len(self.sites), len(self.racks), len(self.labels), len(self.tenants), len(self.cases)


def scenario_arrays(scenario: Scenario) -> ScenarioArrays:
    """Index maps and arrays of the scenario, so every check below is a lookup or a vector op."""
    labels = scenario.periods.labels()
    sites, racks, tenants = scenario.sites, scenario.rack_types, scenario.tenants
    cases = [c.id for c in scenario.scenarios]
    rack_ids = [r.id for r in racks]
    allowed = np.array(
        [[s.rack_types is None or r in s.rack_types for r in rack_ids] for s in sites], dtype=bool
    )
    may_use = np.array(
        [
            [k.allowed_jurisdictions is None or s.jurisdiction in k.allowed_jurisdictions for s in sites]
            for k in tenants
        ],
        dtype=bool,
    )
    demand = np.array(
        [[[k.demand_gpus[c][t] for c in cases] for t in range(len(labels))] for k in tenants], dtype=float
    )
    credit = np.array([[k.token_credit_share * (1.0 - k.repayment_share(c)) for c in cases] for k in tenants])

    def per_site(name: str) -> np.ndarray:
        return np.array([float(getattr(s, name)) for s in sites])

    def per_rack(name: str) -> np.ndarray:
        return np.array([float(getattr(r, name)) for r in racks])

    return ScenarioArrays(
        labels=labels,
        t_of={label: t for t, label in enumerate(labels)},
        sites=[s.id for s in sites],
        racks=rack_ids,
        tenants=[k.id for k in tenants],
        cases=cases,
        i_of={s.id: i for i, s in enumerate(sites)},
        r_of={r: j for j, r in enumerate(rack_ids)},
        k_of={k.id: j for j, k in enumerate(tenants)},
        s_of={c: j for j, c in enumerate(cases)},
        jurisdiction=[s.jurisdiction for s in sites],
        allowed=allowed,
        may_use=may_use,
        h=scenario.periods.hours_per_period,
        discount=np.array(scenario.periods.discount_factors()),
        prob=np.array([c.probability for c in scenario.scenarios]),
        gpus_per_rack=per_rack("gpus_per_rack"),
        nodes_per_rack=per_rack("nodes_per_rack"),
        kw_per_rack=per_rack("kw_per_rack"),
        capex=per_rack("capex_usd"),
        lifetime=per_rack("lifetime_periods"),
        opex=per_rack("opex_usd_per_rack_period"),
        pue=per_site("pue"),
        existing_mw=per_site("existing_mw"),
        block_mw=per_site("power_block_mw"),
        lead=np.array([s.power_lead_time_periods for s in sites], dtype=int),
        cap_mw=per_site("power_cap_mw"),
        gpu_cap=per_site("gpu_cap"),
        max_built=per_site("max_racks_built_per_period"),
        max_blocks=per_site("max_power_blocks_per_period"),
        power_price=per_site("power_price_usd_per_mwh"),
        power_capex=per_site("power_capex_usd_per_mw"),
        power_life=per_site("power_asset_lifetime_periods"),
        existing_racks=np.array([[float(s.existing_racks.get(r, 0)) for r in rack_ids] for s in sites]),
        price=np.array([k.price_usd_per_gpu_hour for k in tenants]),
        demand=demand.reshape(len(tenants), len(labels), len(cases)),
        credit_loss_rate=credit.reshape(len(tenants), len(cases)),
    )
