"""Independent verification of a plan against its scenario (docs/model.md).

This module shares no code with the optimisation model (`planner/model/`, `planner/results.py`):
it reads only the scenario and the plan's own decisions (racks, power, quotas, served, unserved),
recomputes every derived quantity and money figure by plain array arithmetic, checks every
constraint of docs/model.md, and compares the plan's reported figures with the recomputed ones.
A plan that fails is never written as a success.

Tolerances: a constraint `lhs <= rhs` holds when lhs - rhs <= max(1e-6 * max(|lhs|, |rhs|), abs),
with abs = 1e-3 on GPU-hours, GPUs and MW; money agrees when |reported - recomputed| <=
max(1e-6 * max(|reported|, |recomputed|), US$1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from planner.schema.plan import Plan, Verification
from planner.schema.scenario import Scenario

REL_TOL = 1e-6
ABS_TOL_QUANTITY = 1e-3  # GPU-hours, GPUs, MW, racks
ABS_TOL_USD = 1.0
EXACT_TOL = 1e-9  # inputs copied from the scenario (probabilities, discount factors, hours)
MAX_MESSAGES = 50


# ---------------------------------------------------------------------------------------------
# Tolerances and the violation log


def _tol(a: np.ndarray | float, b: np.ndarray | float, abs_tol: float) -> np.ndarray | float:
    return np.maximum(REL_TOL * np.maximum(np.abs(a), np.abs(b)), abs_tol)


def _close(a: float, b: float, abs_tol: float) -> bool:
    """Equal within max(1e-6 relative, abs_tol)."""
    return bool(abs(a - b) <= _tol(a, b, abs_tol))


def _exceeds(lhs: np.ndarray, rhs: np.ndarray, abs_tol: float = ABS_TOL_QUANTITY) -> np.ndarray:
    """Element-wise: `lhs <= rhs` is violated beyond tolerance (NaN counts as violated)."""
    return ~(lhs - rhs <= _tol(lhs, rhs, abs_tol))


@dataclass
class _Log:
    """Counts checks and violations; formats at most MAX_MESSAGES messages (plans can be huge)."""

    checks_run: int = 0
    failures: int = 0
    messages: list[str] = field(default_factory=list)

    def ran(self, count: int) -> None:
        self.checks_run += count

    def fail(self, message: str) -> None:
        self.failures += 1
        self.say(message)

    def ok(self, condition: bool) -> bool:
        """Count one check; return the condition so the caller formats a message only on failure."""
        self.checks_run += 1
        if not condition:
            self.failures += 1
        return condition

    def say(self, message: str) -> None:
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)

    def check_array(self, failed: np.ndarray, describe: Callable[[tuple[int, ...]], str]) -> None:
        """One check per element of `failed`; `describe(index)` is called only for shown failures."""
        self.checks_run += int(failed.size)
        where = np.argwhere(failed)
        self.failures += len(where)
        for index in where[: max(0, MAX_MESSAGES - len(self.messages))]:
            self.messages.append(describe(tuple(int(x) for x in index)))

    def result(self) -> list[str]:
        hidden = self.failures - len(self.messages)
        return [*self.messages, f"and {hidden} more"] if hidden > 0 else list(self.messages)


# ---------------------------------------------------------------------------------------------
# The scenario as arrays


@dataclass(frozen=True)
class _Data:
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


def scenario_arrays(scenario: Scenario) -> _Data:
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

    return _Data(
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


# ---------------------------------------------------------------------------------------------
# Identity: is this plan a plan of this scenario?


def check_identity(scenario: Scenario, plan: Plan, log: _Log) -> None:
    """Hash, horizon, hours, discounting, probabilities and objective must be the scenario's own:
    figures recomputed from another scenario's inputs would prove nothing."""
    expected_hash = scenario.content_hash()
    if not log.ok(plan.scenario_hash == expected_hash):
        log.say(
            f"scenario_hash: the plan was solved from {plan.scenario_hash}, "
            f"but this scenario is {expected_hash}"
        )
    if not log.ok(plan.scenario_name == scenario.name):
        log.say(f"scenario_name: the plan says '{plan.scenario_name}', the scenario is '{scenario.name}'")
    labels = scenario.periods.labels()
    if not log.ok(plan.periods == labels):
        log.say(f"periods: the plan covers {_span(plan.periods)}, the scenario {_span(labels)}")
    h = scenario.periods.hours_per_period
    if not log.ok(_close(plan.hours_per_period, h, EXACT_TOL)):
        log.say(f"hours_per_period: the plan uses {plan.hours_per_period} h, the scenario {h} h")
    factors = scenario.periods.discount_factors()
    if not log.ok(
        len(plan.discount_factors) == len(factors)
        and all(_close(a, b, EXACT_TOL) for a, b in zip(plan.discount_factors, factors, strict=True))
    ):
        log.say(
            "discount_factors: the plan's factors do not follow from discount_rate_annual = "
            f"{scenario.periods.discount_rate_annual}"
        )
    probabilities = {c.id: c.probability for c in scenario.scenarios}
    if not log.ok(
        plan.scenario_probabilities.keys() == probabilities.keys()
        and all(_close(plan.scenario_probabilities[s], p, EXACT_TOL) for s, p in probabilities.items())
    ):
        log.say(
            f"scenario_probabilities: the plan has {plan.scenario_probabilities}, the scenario {probabilities}"
        )
    objective = scenario.objective
    if not log.ok(plan.perspective == objective.perspective):
        log.say(
            f"perspective: the plan maximises the {plan.perspective} value, the scenario asks for "
            f"the {objective.perspective} value"
        )
    if not log.ok(_close(plan.cvar_weight, objective.cvar_weight, EXACT_TOL)):
        log.say(f"cvar_weight: the plan uses {plan.cvar_weight}, the scenario {objective.cvar_weight}")


def check_catalogue(scenario: Scenario, plan: Plan, log: _Log) -> None:
    """The sites, rack types and tenants the plan repeats for provisioning must be the scenario's:
    infra/ sizes node pools and tenants from these copies, not from the scenario."""
    sites = {s.id: s for s in scenario.sites}
    if not log.ok([s.id for s in plan.sites] == list(sites)):
        log.say(f"sites: the plan lists {[s.id for s in plan.sites]}, the scenario {list(sites)}")
    for info in plan.sites:
        site = sites.get(info.id)
        if site is None:
            continue
        got = (info.name, info.jurisdiction, info.power_cap_mw, info.pue, info.gpu_cap)
        want = (site.name, site.jurisdiction, site.power_cap_mw, site.pue, site.gpu_cap)
        if not log.ok(got == want):
            log.say(
                f"sites {info.id}: the plan copies (name, jurisdiction, cap MW, PUE, GPU cap) "
                f"as {got}, the scenario has {want}"
            )
    racks = {r.id: r for r in scenario.rack_types}
    if not log.ok([r.id for r in plan.rack_types] == list(racks)):
        log.say(f"rack_types: the plan lists {[r.id for r in plan.rack_types]}, the scenario {list(racks)}")
    for info in plan.rack_types:
        rack = racks.get(info.id)
        if rack is None:
            continue
        got_r = (
            info.gpu_product,
            info.gpus_per_rack,
            info.nodes_per_rack,
            info.gpus_per_node,
            info.kw_per_rack,
        )
        want_r = (
            rack.gpu_product,
            rack.gpus_per_rack,
            rack.nodes_per_rack,
            rack.gpus_per_node,
            rack.kw_per_rack,
        )
        if not log.ok(got_r == want_r):
            log.say(
                f"rack_types {info.id}: the plan copies (product, GPUs, nodes, GPUs/node, "
                f"kW) as {got_r}, the scenario has {want_r}"
            )
    tenants = {k.id: k for k in scenario.tenants}
    if not log.ok([k.id for k in plan.tenants] == list(tenants)):
        log.say(f"tenants: the plan lists {[k.id for k in plan.tenants]}, the scenario {list(tenants)}")
    for info in plan.tenants:
        tenant = tenants.get(info.id)
        if tenant is None:
            continue
        if not log.ok(info.allowed_jurisdictions == tenant.allowed_jurisdictions):
            log.say(
                f"tenants {info.id}: the plan copies allowed jurisdictions {info.allowed_jurisdictions}, "
                f"the scenario has {tenant.allowed_jurisdictions}"
            )
        # Provisioning grants namespace access from these owners: a wrong copy is a wrong RBAC.
        if not log.ok((info.display_name, info.owners) == (tenant.display_name, tenant.owners)):
            log.say(
                f"tenants {info.id}: the plan copies (display name, owners) as "
                f"{(info.display_name, info.owners)}, the scenario has {(tenant.display_name, tenant.owners)}"
            )


def _span(labels: Sequence[str]) -> str:
    return f"{labels[0]}..{labels[-1]} ({len(labels)} quarters)" if labels else "no quarters"


# ---------------------------------------------------------------------------------------------
# First-stage decisions: read, check references, integrality, sign and timing


def _whole(value: float) -> bool:
    return float(value).is_integer()


def read_racks_built(data: _Data, plan: Plan, log: _Log) -> np.ndarray:
    """racks_built[i, r, t]: whole, ≥ 0, known ids, a rack type allowed at the site, one record each,
    and a record for every index (docs/model.md lists every first-stage index)."""
    n_i, n_r, n_t, _, _ = data.shape
    built = np.zeros((n_i, n_r, n_t))
    seen = np.zeros((n_i, n_r, n_t), dtype=bool)
    for rec in plan.racks:
        where = f"{rec.site}/{rec.rack_type} {rec.period}"
        i, r, t = data.i_of.get(rec.site), data.r_of.get(rec.rack_type), data.t_of.get(rec.period)
        if not log.ok(None not in (i, r, t)):
            log.say(f"racks {where}: unknown site, rack type or quarter")
        if i is None or r is None or t is None:
            continue
        if not log.ok(bool(data.allowed[i, r])):
            log.say(
                f"rack_types_allowed {where}: rack type '{rec.rack_type}' is not allowed at site '{rec.site}'"
            )
        if not log.ok(rec.racks_built >= 0 and _whole(rec.racks_built)):
            log.say(f"integrality {where}: racks_built = {rec.racks_built} must be a whole number ≥ 0")
        if not log.ok(not seen[i, r, t]):
            log.say(f"racks {where}: listed more than once")
        seen[i, r, t] = True
        built[i, r, t] += rec.racks_built
    missing = data.allowed[:, :, None] & ~seen
    log.check_array(
        missing,
        lambda x: (
            f"racks {data.sites[x[0]]}/{data.racks[x[1]]} {data.labels[x[2]]}: no record "
            "(the plan must list racks for every site, allowed rack type and quarter)"
        ),
    )
    return built


def read_blocks_ordered(data: _Data, plan: Plan, log: _Log) -> np.ndarray:
    """blocks_ordered[i, t]: whole, ≥ 0, known ids, one record per index, and ordered only where
    t + lead ≤ n − 1 (a block that cannot arrive inside the horizon is not a decision)."""
    n_i, _, n_t, _, _ = data.shape
    blocks = np.zeros((n_i, n_t))
    seen = np.zeros((n_i, n_t), dtype=bool)
    for rec in plan.power:
        where = f"{rec.site} {rec.period}"
        i, t = data.i_of.get(rec.site), data.t_of.get(rec.period)
        if not log.ok(i is not None and t is not None):
            log.say(f"power {where}: unknown site or quarter")
        if i is None or t is None:
            continue
        if not log.ok(rec.blocks_ordered >= 0 and _whole(rec.blocks_ordered)):
            log.say(f"integrality {where}: blocks_ordered = {rec.blocks_ordered} must be a whole number ≥ 0")
        lead = int(data.lead[i])
        if not log.ok(rec.blocks_ordered <= 0 or t + lead <= n_t - 1):
            log.say(
                f"block_arrival {where}: {rec.blocks_ordered:g} power block(s) ordered that cannot arrive "
                f"within the horizon (lead time {lead} quarters, the horizon ends {data.labels[-1]})"
            )
        if not log.ok(not seen[i, t]):
            log.say(f"power {where}: listed more than once")
        seen[i, t] = True
        blocks[i, t] += rec.blocks_ordered
    log.check_array(
        ~seen,
        lambda x: (
            f"power {data.sites[x[0]]} {data.labels[x[1]]}: no record "
            "(the plan must list power for every site and quarter)"
        ),
    )
    return blocks


def read_quotas(data: _Data, plan: Plan, log: _Log) -> np.ndarray:
    """quota_gpus[k, i, r, t] ≥ 0, known ids, one record each, and none where the tenant may not
    be served (jurisdiction) or the rack type is not allowed at the site."""
    n_i, n_r, n_t, n_k, _ = data.shape
    quota = np.zeros((n_k, n_i, n_r, n_t))
    seen = np.zeros((n_k, n_i, n_r, n_t), dtype=bool)
    for rec in plan.quotas:
        where = f"{rec.tenant}@{rec.site}/{rec.rack_type} {rec.period}"
        k, i = data.k_of.get(rec.tenant), data.i_of.get(rec.site)
        r, t = data.r_of.get(rec.rack_type), data.t_of.get(rec.period)
        if not log.ok(None not in (k, i, r, t)):
            log.say(f"quota {where}: unknown tenant, site, rack type or quarter")
        if k is None or i is None or r is None or t is None:
            continue
        q = rec.quota_gpus
        if not log.ok(q >= -ABS_TOL_QUANTITY):
            log.say(f"quota {where}: {q:,.3f} GPUs must be a number ≥ 0")
        if not log.ok(q <= ABS_TOL_QUANTITY or bool(data.may_use[k, i])):
            log.say(
                f"jurisdiction {where}: quota of {q:,.1f} GPUs at a site in {data.jurisdiction[i]}, "
                f"outside the tenant's allowed jurisdictions"
            )
        if not log.ok(q <= ABS_TOL_QUANTITY or bool(data.allowed[i, r])):
            log.say(
                f"rack_types_allowed {where}: quota of {q:,.1f} GPUs on rack type '{rec.rack_type}', "
                f"which is not allowed at site '{rec.site}'"
            )
        if not log.ok(not seen[k, i, r, t]):
            log.say(f"quota {where}: listed more than once")
        seen[k, i, r, t] = True
        quota[k, i, r, t] += q
    return quota


@dataclass(frozen=True)
class _Served:
    """Served GPU-hours, one entry per distinct (k, i, r, t, s), as parallel arrays."""

    k: np.ndarray
    i: np.ndarray
    r: np.ndarray
    t: np.ndarray
    s: np.ndarray
    gpu_hours: np.ndarray


def read_served(data: _Data, plan: Plan, log: _Log) -> _Served:
    """served_gpu_hours[k, i, r, t, s] ≥ 0 with known ids, never where the tenant may not be served
    (jurisdiction) or on a rack type not allowed at the site; duplicates are named and summed."""
    n = len(plan.served)
    codes = np.empty((5, n), dtype=np.int64)
    amounts = np.empty(n)
    k_of, i_of, r_of, t_of, s_of = data.k_of, data.i_of, data.r_of, data.t_of, data.s_of
    kept = 0
    for rec in plan.served:
        k, i, r = k_of.get(rec.tenant), i_of.get(rec.site), r_of.get(rec.rack_type)
        t, s = t_of.get(rec.period), s_of.get(rec.scenario)
        if k is None or i is None or r is None or t is None or s is None:
            log.fail(
                f"served {rec.tenant}@{rec.site}/{rec.rack_type} {rec.period} [{rec.scenario}]: "
                "unknown tenant, site, rack type, quarter or scenario"
            )
            continue
        codes[0, kept], codes[1, kept], codes[2, kept], codes[3, kept], codes[4, kept] = k, i, r, t, s
        amounts[kept] = rec.served_gpu_hours
        kept += 1
    log.ran(n)
    codes, amounts = codes[:, :kept], amounts[:kept]
    k, i, r, t, s = codes

    def where(x: int) -> str:
        return f"{data.tenants[k[x]]}@{data.sites[i[x]]}/{data.racks[r[x]]} {data.labels[t[x]]} [{data.cases[s[x]]}]"

    log.check_array(
        ~(amounts >= -ABS_TOL_QUANTITY),
        lambda x: f"served {where(x[0])}: {amounts[x[0]]:,.3f} GPU-hours must be a number ≥ 0",
    )
    positive = amounts > ABS_TOL_QUANTITY
    log.check_array(
        positive & ~data.may_use[k, i],
        lambda x: (
            f"jurisdiction {where(x[0])}: {amounts[x[0]]:,.0f} GPU-hours served in "
            f"{data.jurisdiction[i[x[0]]]}, outside the tenant's allowed jurisdictions"
        ),
    )
    log.check_array(
        positive & ~data.allowed[i, r],
        lambda x: (
            f"rack_types_allowed {where(x[0])}: {amounts[x[0]]:,.0f} GPU-hours served on a rack type "
            "not allowed at the site"
        ),
    )
    n_i, n_r, n_t, _, n_s = data.shape
    flat = (((k * n_i + i) * n_r + r) * n_t + t) * n_s + s
    unique, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    if len(unique) < kept:
        counts = np.bincount(inverse)
        log.check_array(
            counts > 1, lambda x: f"served {where(int(first[x[0]]))}: listed {counts[x[0]]} times"
        )
        amounts = np.bincount(inverse, weights=amounts)
        k, i, r, t, s = (c[first] for c in (k, i, r, t, s))
    return _Served(k, i, r, t, s, amounts)


def read_unserved(data: _Data, plan: Plan, log: _Log) -> np.ndarray:
    """unserved_gpu_hours[k, t, s] ≥ 0 with known ids, one record each."""
    _, _, n_t, n_k, n_s = data.shape
    unserved = np.zeros((n_k, n_t, n_s))
    seen = np.zeros((n_k, n_t, n_s), dtype=bool)
    for rec in plan.unserved:
        where = f"{rec.tenant} {rec.period} [{rec.scenario}]"
        k, t, s = data.k_of.get(rec.tenant), data.t_of.get(rec.period), data.s_of.get(rec.scenario)
        if not log.ok(None not in (k, t, s)):
            log.say(f"unserved {where}: unknown tenant, quarter or scenario")
        if k is None or t is None or s is None:
            continue
        amount = rec.unserved_gpu_hours
        if not log.ok(amount >= -ABS_TOL_QUANTITY):
            log.say(f"unserved {where}: {amount:,.3f} GPU-hours must be a number ≥ 0")
        if not log.ok(not seen[k, t, s]):
            log.say(f"unserved {where}: listed more than once")
        seen[k, t, s] = True
        unserved[k, t, s] += amount
    return unserved


# ---------------------------------------------------------------------------------------------
# Derived first-stage quantities (docs/model.md, "Derived")


def racks_installed(data: _Data, built: np.ndarray) -> np.ndarray:
    """existing + racks built in the last L_r quarters (existing racks stay for the whole horizon)."""
    n_t = built.shape[2]
    cumulative = np.concatenate([np.zeros((*built.shape[:2], 1)), np.cumsum(built, axis=2)], axis=2)
    t = np.arange(n_t)
    start = np.maximum(0, t[None, :] - data.lifetime.astype(int)[:, None] + 1)  # [R, T]
    window = cumulative[:, :, t + 1] - np.take_along_axis(
        cumulative, np.broadcast_to(start[None, :, :], built.shape), axis=2
    )
    return data.existing_racks[:, :, None] + window


def available_mw(data: _Data, blocks: np.ndarray) -> np.ndarray:
    """existing MW + block MW x blocks ordered at least `lead` quarters earlier."""
    n_i, n_t = blocks.shape
    arrived = np.zeros((n_i, n_t))
    for i in range(n_i):
        lead = int(data.lead[i])
        if lead < n_t:
            arrived[i, lead:] = np.cumsum(blocks[i, : n_t - lead])
    return data.existing_mw[:, None] + data.block_mw[:, None] * arrived


def facility_load_mw(data: _Data, installed: np.ndarray) -> np.ndarray:
    """Σ_r racks x kW / 1000 x PUE per site and quarter: what power_fits compares with available MW."""
    return np.einsum("irt,r->it", installed, data.kw_per_rack / 1000.0) * data.pue[:, None]


def gpus_installed(data: _Data, installed: np.ndarray) -> np.ndarray:
    return installed * data.gpus_per_rack[None, :, None]


def check_reported_first_stage(
    data: _Data, plan: Plan, installed: np.ndarray, available: np.ndarray, log: _Log
) -> None:
    """The plan's racks_installed, GPUs, nodes, available MW and IT load must follow from its
    decisions; provisioning sizes node pools from these reported numbers."""
    load = facility_load_mw(data, installed)
    for rec in plan.racks:
        i, r, t = data.i_of.get(rec.site), data.r_of.get(rec.rack_type), data.t_of.get(rec.period)
        if i is None or r is None or t is None:
            continue
        n = float(installed[i, r, t])
        got = (rec.racks_installed, rec.gpus_installed, rec.nodes_installed)
        want = (n, n * data.gpus_per_rack[r], n * data.nodes_per_rack[r])
        if not log.ok(all(_close(a, b, ABS_TOL_QUANTITY) for a, b in zip(got, want, strict=True))):
            log.say(
                f"reported racks {rec.site}/{rec.rack_type} {rec.period}: the plan says {got[0]} racks, "
                f"{got[1]} GPUs, {got[2]} nodes; its racks_built and the existing racks give {want[0]:g} racks, "
                f"{want[1]:g} GPUs, {want[2]:g} nodes"
            )
    for rec in plan.power:
        i, t = data.i_of.get(rec.site), data.t_of.get(rec.period)
        if i is None or t is None:
            continue
        mw, it = float(available[i, t]), float(load[i, t])
        if not log.ok(_close(rec.available_mw, mw, ABS_TOL_QUANTITY)):
            log.say(
                f"reported available_mw {rec.site} {rec.period}: the plan says {rec.available_mw:,.3f} MW, "
                f"its blocks give {mw:,.3f} MW"
            )
        if not log.ok(_close(rec.it_load_mw, it, ABS_TOL_QUANTITY)):
            log.say(
                f"reported it_load_mw {rec.site} {rec.period}: the plan says {rec.it_load_mw:,.3f} MW, "
                f"its racks need {it:,.3f} MW"
            )


# ---------------------------------------------------------------------------------------------
# First-stage constraints


def check_power_fits(data: _Data, installed: np.ndarray, available: np.ndarray, log: _Log) -> None:
    """Σ_r racks x kW x PUE ≤ available MW: racks cannot run on power that is not energised."""
    need = facility_load_mw(data, installed)
    log.check_array(
        _exceeds(need, available),
        lambda x: (
            f"power_fits {data.sites[x[0]]} {data.labels[x[1]]}: racks need {need[x]:,.1f} MW but "
            f"{available[x]:,.1f} MW is available (excess {need[x] - available[x]:,.1f} MW)"
        ),
    )


def check_power_cap(data: _Data, available: np.ndarray, log: _Log) -> None:
    """available MW ≤ the site's power cap."""
    cap = np.broadcast_to(data.cap_mw[:, None], available.shape)
    log.check_array(
        _exceeds(available, cap),
        lambda x: (
            f"power_cap {data.sites[x[0]]} {data.labels[x[1]]}: {available[x]:,.1f} MW energised but "
            f"the cap is {cap[x]:,.1f} MW (excess {available[x] - cap[x]:,.1f} MW)"
        ),
    )


def check_gpu_cap(data: _Data, installed: np.ndarray, log: _Log) -> None:
    """Σ_r GPUs installed ≤ the site's GPU cap."""
    gpus = gpus_installed(data, installed).sum(axis=1)
    cap = np.broadcast_to(data.gpu_cap[:, None], gpus.shape)
    log.check_array(
        _exceeds(gpus, cap),
        lambda x: (
            f"gpu_cap {data.sites[x[0]]} {data.labels[x[1]]}: {gpus[x]:,.0f} GPUs installed but the cap "
            f"is {cap[x]:,.0f} (excess {gpus[x] - cap[x]:,.0f} GPUs)"
        ),
    )


def check_build_rate(data: _Data, built: np.ndarray, log: _Log) -> None:
    """Σ_r racks built in a quarter ≤ the site's build rate."""
    per_site = built.sum(axis=1)
    limit = np.broadcast_to(data.max_built[:, None], per_site.shape)
    log.check_array(
        _exceeds(per_site, limit),
        lambda x: (
            f"build_rate {data.sites[x[0]]} {data.labels[x[1]]}: {per_site[x]:,.0f} racks built but at "
            f"most {limit[x]:,.0f} may be built per quarter (excess {per_site[x] - limit[x]:,.0f} racks)"
        ),
    )


def check_block_rate(data: _Data, blocks: np.ndarray, log: _Log) -> None:
    """blocks ordered in a quarter ≤ the site's block rate."""
    limit = np.broadcast_to(data.max_blocks[:, None], blocks.shape)
    log.check_array(
        _exceeds(blocks, limit),
        lambda x: (
            f"block_rate {data.sites[x[0]]} {data.labels[x[1]]}: {blocks[x]:,.0f} power blocks ordered "
            f"but at most {limit[x]:,.0f} may be ordered per quarter (excess {blocks[x] - limit[x]:,.0f})"
        ),
    )


def check_quota_fits(data: _Data, quota: np.ndarray, installed: np.ndarray, log: _Log) -> None:
    """Σ_k quota ≤ GPUs of the pool (site x rack type): quotas must never overcommit a pool."""
    granted = quota.sum(axis=0)
    pool = gpus_installed(data, installed)
    log.check_array(
        (_exceeds(granted, pool) & data.allowed[:, :, None])
        | ((granted > ABS_TOL_QUANTITY) & ~data.allowed[:, :, None]),
        lambda x: (
            f"quota_fits {data.sites[x[0]]}/{data.racks[x[1]]} {data.labels[x[2]]}: tenant quotas total "
            f"{granted[x]:,.1f} GPUs but the pool has {pool[x]:,.0f} GPUs (overcommit {granted[x] - pool[x]:,.1f} GPUs)"
        ),
    )


# ---------------------------------------------------------------------------------------------
# Second-stage constraints


def quota_drop_allowance(scenario: Scenario, data: _Data) -> np.ndarray:
    """[K, T]: how far a tenant's quota on a pool may fall into quarter t. Nothing within a
    contract term; at a renewal (t a multiple of the term), the fall of the tenant's peak demand
    (any scenario, any quarter of the term) from the last term to the new one; 0 at t = 0."""
    term = scenario.contracts.quota_term_periods
    n_t = len(data.labels)
    peak_by_quarter = data.demand.max(axis=2)  # [K, T]
    term_peak = np.zeros_like(peak_by_quarter)
    for start in range(0, n_t, term):
        term_peak[:, start : start + term] = peak_by_quarter[:, start : start + term].max(
            axis=1, keepdims=True
        )
    allowance = np.zeros_like(peak_by_quarter)
    for t in range(term, n_t, term):
        allowance[:, t] = np.maximum(0.0, term_peak[:, t - 1] - term_peak[:, t])
    return allowance


def check_quota_never_shrinks(scenario: Scenario, data: _Data, quota: np.ndarray, log: _Log) -> None:
    """quota[k, i, r, t] ≥ quota[k, i, r, t − 1] − allowance[k, t]: no quota shrinks within a
    contract term, and at a renewal by no more than the tenant's peak demand fell."""
    allowance = quota_drop_allowance(scenario, data)[:, None, None, 1:]  # [K, 1, 1, T-1]
    floor = quota[..., :-1] - allowance
    failed = _exceeds(floor, quota[..., 1:])

    def describe(x: tuple[int, ...]) -> str:
        k, i, r, t = x
        return (
            f"quota_never_shrinks {data.tenants[k]}@{data.sites[i]}/{data.racks[r]} {data.labels[t + 1]}: "
            f"quota falls from {quota[k, i, r, t]:,.1f} to {quota[k, i, r, t + 1]:,.1f} GPUs, more than the "
            f"{allowance[k, 0, 0, t]:,.1f} the contract rule allows"
        )

    log.check_array(failed, describe)


def served_per_pool(data: _Data, served: _Served) -> np.ndarray:
    """Σ_k served[k, i, r, t, s] as an [I, R, T, S] array."""
    n_i, n_r, n_t, _, n_s = data.shape
    flat = ((served.i * n_r + served.r) * n_t + served.t) * n_s + served.s
    return np.bincount(flat, weights=served.gpu_hours, minlength=n_i * n_r * n_t * n_s).reshape(
        n_i, n_r, n_t, n_s
    )


def check_serve_within_capacity(
    data: _Data, pool_served: np.ndarray, installed: np.ndarray, log: _Log
) -> None:
    """Σ_k served ≤ h x GPUs installed, per pool, quarter and scenario."""
    capacity = np.broadcast_to((data.h * gpus_installed(data, installed))[..., None], pool_served.shape)
    log.check_array(
        _exceeds(pool_served, capacity),
        lambda x: (
            f"serve_within_capacity {data.sites[x[0]]}/{data.racks[x[1]]} {data.labels[x[2]]} "
            f"[{data.cases[x[3]]}]: {pool_served[x]:,.0f} GPU-hours served but the pool's "
            f"{capacity[x] / data.h:,.0f} GPUs give {capacity[x]:,.0f} (excess {pool_served[x] - capacity[x]:,.0f} GPU-hours)"
        ),
    )


def check_serve_within_quota(data: _Data, served: _Served, quota: np.ndarray, log: _Log) -> None:
    """served[k, i, r, t, s] ≤ h x quota[k, i, r, t]: a tenant cannot use GPUs it was not granted."""
    allowance = data.h * quota[served.k, served.i, served.r, served.t]
    amounts = served.gpu_hours

    def describe(x: tuple[int, ...]) -> str:
        n = x[0]
        where = (
            f"{data.tenants[served.k[n]]}@{data.sites[served.i[n]]}/{data.racks[served.r[n]]} "
            f"{data.labels[served.t[n]]} [{data.cases[served.s[n]]}]"
        )
        return (
            f"serve_within_quota {where}: {amounts[n]:,.0f} GPU-hours served but the quota of "
            f"{allowance[n] / data.h:,.1f} GPUs allows {allowance[n]:,.0f} (excess {amounts[n] - allowance[n]:,.0f} GPU-hours)"
        )

    log.check_array(_exceeds(amounts, allowance), describe)


def served_per_tenant(data: _Data, served: _Served) -> np.ndarray:
    """Σ_{i,r} served[k, i, r, t, s] as a [K, T, S] array."""
    _, _, n_t, n_k, n_s = data.shape
    flat = (served.k * n_t + served.t) * n_s + served.s
    return np.bincount(flat, weights=served.gpu_hours, minlength=n_k * n_t * n_s).reshape(n_k, n_t, n_s)


def check_demand_balance(data: _Data, tenant_served: np.ndarray, unserved: np.ndarray, log: _Log) -> None:
    """served + unserved = h x D for every tenant, quarter and scenario: demand is never invented or lost."""
    demand = data.h * data.demand
    got = tenant_served + unserved
    gap = np.abs(got - demand)
    log.check_array(
        ~(gap <= _tol(got, demand, ABS_TOL_QUANTITY)),
        lambda x: (
            f"demand_balance {data.tenants[x[0]]} {data.labels[x[1]]} [{data.cases[x[2]]}]: served "
            f"{tenant_served[x]:,.0f} + unserved {unserved[x]:,.0f} = {got[x]:,.0f} GPU-hours but demand is "
            f"{data.demand[x]:,.3f} GPUs x {data.h:g} h = {demand[x]:,.0f} (difference {got[x] - demand[x]:,.0f})"
        ),
    )


# ---------------------------------------------------------------------------------------------
# Money and reported figures


@dataclass(frozen=True)
class _Money:
    """Recomputed figures: per scenario (undiscounted sums, discounted values) and per site-quarter."""

    cloud: np.ndarray  # [S] discounted
    guarantor: np.ndarray  # [S] discounted
    rev: np.ndarray  # [S] undiscounted sums over the horizon
    bb: np.ndarray
    rs: np.ndarray
    cl: np.ndarray
    served: np.ndarray  # [S] GPU-hours
    unserved: np.ndarray
    site_gpus: np.ndarray  # [I, T]
    site_utilisation: np.ndarray  # [I, T]
    site_buyback_gpu_hours: np.ndarray  # [I, T] expected
    site_buyback_usd: np.ndarray
    site_revenue_share_usd: np.ndarray


def recompute_money(
    scenario: Scenario,
    data: _Data,
    built: np.ndarray,
    installed: np.ndarray,
    available: np.ndarray,
    served: _Served,
    pool_served: np.ndarray,
    unserved: np.ndarray,
) -> _Money:
    """REV, RS, BB, CL, EN, CX, OX, PX, HM and the three values, term by term from docs/model.md.
    `unserved` is [K, T, S] GPU-hours."""
    terms = scenario.terms
    n_i, _, n_t, _, n_s = data.shape
    k, i, r, t, s, x = served.k, served.i, served.r, served.t, served.s, served.gpu_hours

    def per_ts(weights: np.ndarray) -> np.ndarray:
        return np.bincount(t * n_s + s, weights=weights, minlength=n_t * n_s).reshape(n_t, n_s)

    rental = data.price[k] * x
    rev = per_ts(rental)
    rs = terms.revenue_share * rev
    cl = per_ts(data.credit_loss_rate[k, s] * rental)
    energy_usd_per_gpu_hour = (
        data.power_price[:, None]
        * data.pue[:, None]
        * (data.kw_per_rack / 1000.0 / data.gpus_per_rack)[None, :]
    )
    en = per_ts(energy_usd_per_gpu_hour[i, r] * x)

    # Buyback: the covered share of the capacity no tenant wanted, per site, quarter and scenario:
    # max(0, h x GPUs - served at the site - unserved demand of every tenant that may use it).
    site_capacity = data.h * gpus_installed(data, installed).sum(axis=1)  # [I, T]
    site_sold = pool_served.sum(axis=1)  # [I, T, S]
    refused = np.einsum("ki,kts->its", data.may_use.astype(float), unserved)
    no_buyer = site_capacity[..., None] - site_sold - refused
    buyback_gpu_hours = terms.buyback_share * np.maximum(0.0, no_buyer)  # [I, T, S]
    bb = terms.buyback_price_usd_per_gpu_hour * buyback_gpu_hours.sum(axis=0)  # [T, S]

    new_racks = installed - data.existing_racks[:, :, None]
    cx = np.einsum("irt,r->t", new_racks, data.capex / data.lifetime)
    ox = np.einsum("irt,r->t", installed, data.opex)
    px = ((data.power_capex / data.power_life)[:, None] * (available - data.existing_mw[:, None])).sum(axis=0)
    # The guarantor's margin is a share of each new rack's capex, over the same quarters.
    hm = terms.guarantor_hardware_margin * cx

    d = data.discount[:, None]
    cloud = (d * (rev - rs + bb - en - (cx + ox + px)[:, None])).sum(axis=0)
    guarantor = (d * (hm[:, None] + rs - bb - cl)).sum(axis=0)

    p = data.prob
    site_gpus = gpus_installed(data, installed).sum(axis=1)
    site_served = pool_served.sum(axis=1) @ p  # [I, T]
    with np.errstate(divide="ignore", invalid="ignore"):
        utilisation = np.where(site_gpus > 0, site_served / (data.h * site_gpus), 0.0)
    site_bb_gh = buyback_gpu_hours @ p
    rev_its = np.bincount((i * n_t + t) * n_s + s, weights=rental, minlength=n_i * n_t * n_s).reshape(
        n_i, n_t, n_s
    )
    return _Money(
        cloud=cloud,
        guarantor=guarantor,
        rev=rev.sum(axis=0),
        bb=bb.sum(axis=0),
        rs=rs.sum(axis=0),
        cl=cl.sum(axis=0),
        served=np.bincount(s, weights=x, minlength=n_s),
        unserved=unserved.sum(axis=(0, 1)),
        site_gpus=site_gpus,
        site_utilisation=utilisation,
        site_buyback_gpu_hours=site_bb_gh,
        site_buyback_usd=terms.buyback_price_usd_per_gpu_hour * site_bb_gh,
        site_revenue_share_usd=terms.revenue_share * (rev_its @ p),
    )


def perspective_values(money: _Money, perspective: str) -> np.ndarray:
    """V_s: the value of the objective's perspective (syndicate = cloud + guarantor)."""
    if perspective == "cloud":
        return money.cloud
    if perspective == "guarantor":
        return money.guarantor
    return money.cloud + money.guarantor


def cvar_by_sorting(values: dict[str, float], probabilities: dict[str, float], alpha: float) -> float:
    """Mean value over the worst (1 − alpha) probability mass, by sorting the scenarios from the
    worst value up (deliberately not the Rockafellar–Uryasev LP the model uses)."""
    tail = 1.0 - alpha
    remaining = tail
    total = 0.0
    for s in sorted(values, key=values.__getitem__):
        take = min(probabilities[s], remaining)
        total += take * values[s]
        remaining -= take
        if remaining <= 0.0:
            break
    return total / tail


def _money_check(log: _Log, name: str, reported: float, recomputed: float) -> None:
    if not log.ok(_close(reported, recomputed, ABS_TOL_USD)):
        log.say(
            f"{name}: the plan reports {reported:,.2f}, recomputed {recomputed:,.2f} "
            f"(difference {reported - recomputed:,.2f})"
        )


def check_outcomes(scenario: Scenario, data: _Data, plan: Plan, money: _Money, log: _Log) -> None:
    """Every per-scenario figure the plan reports must equal its recomputation."""
    reported = {o.scenario: o for o in plan.outcomes}
    if not log.ok([o.scenario for o in plan.outcomes] == data.cases):
        log.say(
            f"outcomes: the plan lists scenarios {[o.scenario for o in plan.outcomes]}, "
            f"the scenario file {data.cases}"
        )
    values = perspective_values(money, scenario.objective.perspective)
    for j, case in enumerate(data.cases):
        o = reported.get(case)
        if o is None:
            continue
        figures = {
            "cloud_value_usd": (o.cloud_value_usd, money.cloud[j]),
            "guarantor_value_usd": (o.guarantor_value_usd, money.guarantor[j]),
            "syndicate_value_usd": (o.syndicate_value_usd, money.cloud[j] + money.guarantor[j]),
            "objective_value_usd": (o.objective_value_usd, values[j]),
            "rental_revenue_usd": (o.rental_revenue_usd, money.rev[j]),
            "buyback_usd": (o.buyback_usd, money.bb[j]),
            "revenue_share_usd": (o.revenue_share_usd, money.rs[j]),
            "credit_loss_usd": (o.credit_loss_usd, money.cl[j]),
        }
        for name, (got, want) in figures.items():
            _money_check(log, f"outcome [{case}] {name}", got, float(want))
        for name, got, want in (
            ("served_gpu_hours", o.served_gpu_hours, float(money.served[j])),
            ("unserved_gpu_hours", o.unserved_gpu_hours, float(money.unserved[j])),
        ):
            if not log.ok(_close(got, want, ABS_TOL_QUANTITY)):
                log.say(f"outcome [{case}] {name}: the plan reports {got:,.3f}, recomputed {want:,.3f}")
        if not log.ok(_close(o.probability, float(data.prob[j]), EXACT_TOL)):
            log.say(
                f"outcome [{case}] probability: the plan reports {o.probability}, the scenario {data.prob[j]}"
            )


def check_risk_and_objective(scenario: Scenario, data: _Data, plan: Plan, money: _Money, log: _Log) -> float:
    """Expected value, CVaR (by sorting), worst and best value, and the objective
    (1 − w)·E[V] + w·CVaR, which solver.objective_usd must equal. Returns the recomputed objective."""
    objective = scenario.objective
    values = perspective_values(money, objective.perspective)
    by_case = {c: float(v) for c, v in zip(data.cases, values, strict=True)}
    probabilities = {c: float(p) for c, p in zip(data.cases, data.prob, strict=True)}
    expected = float(values @ data.prob)
    _money_check(log, "risk.expected_value_usd", plan.risk.expected_value_usd, expected)
    _money_check(log, "risk.worst_case_value_usd", plan.risk.worst_case_value_usd, float(values.min()))
    _money_check(log, "risk.best_case_value_usd", plan.risk.best_case_value_usd, float(values.max()))
    alpha = objective.cvar_alpha
    cvar = None if alpha is None else cvar_by_sorting(by_case, probabilities, alpha)
    if not log.ok(plan.risk.cvar_alpha == alpha):
        log.say(f"risk.cvar_alpha: the plan reports {plan.risk.cvar_alpha}, the scenario asks for {alpha}")
    if cvar is None:
        if not log.ok(plan.risk.cvar_usd is None):
            log.say(
                f"risk.cvar_usd: the plan reports {plan.risk.cvar_usd} but the scenario sets no cvar_alpha"
            )
    else:
        if not log.ok(plan.risk.cvar_usd is not None):
            log.say(f"risk.cvar_usd: missing although cvar_alpha = {alpha}")
        if plan.risk.cvar_usd is not None:
            _money_check(log, f"risk.cvar_usd (alpha {alpha})", plan.risk.cvar_usd, cvar)
    w = objective.cvar_weight
    recomputed = (1.0 - w) * expected + (w * cvar if cvar is not None else 0.0)
    _money_check(log, "solver.objective_usd", plan.solver.objective_usd, recomputed)
    return recomputed


def check_site_periods(
    data: _Data, plan: Plan, installed: np.ndarray, available: np.ndarray, money: _Money, log: _Log
) -> None:
    """Every per-site, per-quarter summary row must match its recomputation, and every site and
    quarter must have exactly one row (planners read these rows, not the raw decisions)."""
    load = facility_load_mw(data, installed)
    seen = np.zeros((len(data.sites), len(data.labels)), dtype=bool)
    for row in plan.site_periods:
        where = f"site_periods {row.site} {row.period}"
        i, t = data.i_of.get(row.site), data.t_of.get(row.period)
        if not log.ok(i is not None and t is not None):
            log.say(f"{where}: unknown site or quarter")
        if i is None or t is None:
            continue
        if not log.ok(not seen[i, t]):
            log.say(f"{where}: listed more than once")
        seen[i, t] = True
        want_racks = {data.racks[r]: float(installed[i, r, t]) for r in np.flatnonzero(data.allowed[i])}
        if not log.ok(
            set(row.racks_by_type) <= set(want_racks)
            and all(_close(row.racks_by_type.get(r, 0), n, ABS_TOL_QUANTITY) for r, n in want_racks.items())
        ):
            log.say(
                f"{where} racks_by_type: the plan reports {row.racks_by_type}, recomputed "
                f"{ {r: round(n) for r, n in want_racks.items()} }"
            )
        quantities = (
            ("gpus_installed", row.gpus_installed, money.site_gpus[i, t], ABS_TOL_QUANTITY),
            ("available_mw", row.available_mw, available[i, t], ABS_TOL_QUANTITY),
            ("it_load_mw", row.it_load_mw, load[i, t], ABS_TOL_QUANTITY),
            ("expected_utilisation", row.expected_utilisation, money.site_utilisation[i, t], REL_TOL),
            (
                "expected_buyback_gpu_hours",
                row.expected_buyback_gpu_hours,
                money.site_buyback_gpu_hours[i, t],
                ABS_TOL_QUANTITY,
            ),
        )
        for name, got, want, tol in quantities:
            if not log.ok(_close(got, float(want), tol)):
                log.say(f"{where} {name}: the plan reports {got:,.6g}, recomputed {float(want):,.6g}")
        _money_check(
            log,
            f"{where} expected_buyback_usd",
            row.expected_buyback_usd,
            float(money.site_buyback_usd[i, t]),
        )
        _money_check(
            log,
            f"{where} expected_revenue_share_usd",
            row.expected_revenue_share_usd,
            float(money.site_revenue_share_usd[i, t]),
        )
    log.check_array(~seen, lambda x: f"site_periods {data.sites[x[0]]} {data.labels[x[1]]}: no summary row")


def check_parties(
    scenario: Scenario, data: _Data, plan: Plan, money: _Money, installed: np.ndarray, log: _Log
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
    reported = {f.party: f for f in plan.parties}
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
            _money_check(log, f"parties {party} expected_value_usd", figures.expected_value_usd, expected)
            _money_check(log, f"parties {party} cvar_usd (alpha {alpha})", figures.cvar_usd, cvar)
            _money_check(
                log, f"parties {party} worst_case_value_usd", figures.worst_case_value_usd, float(v.min())
            )
            if not log.ok(_close(figures.cvar_alpha, alpha, EXACT_TOL)):
                log.say(
                    f"parties {party} cvar_alpha: the plan reports {figures.cvar_alpha}, the scenario {alpha}"
                )
        need = needs.get(party)
        if need is None:
            continue
        for requirement, got in (("min_expected_value_usd", expected), ("min_cvar_usd", cvar)):
            least = getattr(need, requirement)
            if least is not None and not log.ok(got >= least - _tol(got, least, ABS_TOL_USD)):
                log.say(
                    f"participation.{party}.{requirement}: the plan gives the {party} US${got:,.0f}, "
                    f"below its requirement of US${least:,.0f} (short by US${least - got:,.0f})"
                )
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
            _exceeds(per_period, np.full_like(per_period, cap), ABS_TOL_USD),
            lambda x: (
                f"participation.guarantor.max_buyback_exposure_usd_per_period {data.labels[x[0]]}: "
                f"exposure US${per_period[x]:,.0f} above the cap of US${cap:,.0f}"
            ),
        )
    total = guarantor.max_buyback_exposure_usd_total
    if total is not None and not log.ok(
        bool(~_exceeds(np.array([per_period.sum()]), np.array([total]), ABS_TOL_USD)[0])
    ):
        log.say(
            f"participation.guarantor.max_buyback_exposure_usd_total: exposure US${per_period.sum():,.0f} "
            f"above the cap of US${total:,.0f}"
        )
    for row in plan.site_periods:
        i, t = data.i_of.get(row.site), data.t_of.get(row.period)
        if i is not None and t is not None:
            _money_check(
                log,
                f"site_periods {row.site} {row.period} buyback_exposure_usd",
                row.buyback_exposure_usd,
                float(exposure[i, t]),
            )


# ---------------------------------------------------------------------------------------------
# Entry point


def verify_plan(scenario: Scenario, plan: Plan) -> Verification:
    """Check `plan` against every constraint of `scenario` and recompute every figure it reports."""
    log = _Log()
    data = scenario_arrays(scenario)
    check_identity(scenario, plan, log)
    check_catalogue(scenario, plan, log)

    built = read_racks_built(data, plan, log)
    blocks = read_blocks_ordered(data, plan, log)
    quota = read_quotas(data, plan, log)
    served = read_served(data, plan, log)
    unserved = read_unserved(data, plan, log)

    installed = racks_installed(data, built)
    available = available_mw(data, blocks)
    check_reported_first_stage(data, plan, installed, available, log)

    check_power_fits(data, installed, available, log)
    check_power_cap(data, available, log)
    check_gpu_cap(data, installed, log)
    check_build_rate(data, built, log)
    check_block_rate(data, blocks, log)
    check_quota_fits(data, quota, installed, log)
    check_quota_never_shrinks(scenario, data, quota, log)

    pool_served = served_per_pool(data, served)
    check_serve_within_capacity(data, pool_served, installed, log)
    check_serve_within_quota(data, served, quota, log)
    check_demand_balance(data, served_per_tenant(data, served), unserved, log)

    money = recompute_money(scenario, data, built, installed, available, served, pool_served, unserved)
    check_outcomes(scenario, data, plan, money, log)
    objective = check_risk_and_objective(scenario, data, plan, money, log)
    check_site_periods(data, plan, installed, available, money, log)
    check_parties(scenario, data, plan, money, installed, log)

    return Verification(
        passed=log.failures == 0,
        checks_run=log.checks_run,
        violations=log.result(),
        objective_recomputed_usd=objective,
    )
