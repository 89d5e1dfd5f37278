"""The plan's decisions, read into arrays: references, integrality, sign, timing, one record each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.schema.plan import (
    NoDealPower,
    NoDealQuota,
    NoDealRacks,
    Plan,
    PowerDecision,
    QuotaDecision,
    RackDecision,
)
from planner.verify.data import ScenarioArrays
from planner.verify.log import ABS_TOL_QUANTITY, Log


def _whole(value: float) -> bool:
    return float(value).is_integer()


def read_racks_built(
    data: ScenarioArrays, records: Sequence[RackDecision | NoDealRacks], log: Log, *, complete: bool = True
) -> np.ndarray:
    """racks_built[i, r, t]: whole, ≥ 0, known ids, a rack type allowed at the site, one record each,
    and (`complete`: a plan's own racks) a record for every index (docs/model.md lists every
    first-stage index); a walk-away record lists only the non-zero ones."""
    n_i, n_r, n_t, _, _ = data.shape
    built = np.zeros((n_i, n_r, n_t))
    seen = np.zeros((n_i, n_r, n_t), dtype=bool)
    for rec in records:
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
    missing = data.allowed[:, :, None] & ~seen if complete else np.zeros_like(seen)
    log.check_array(
        missing,
        lambda x: (
            f"racks {data.sites[x[0]]}/{data.racks[x[1]]} {data.labels[x[2]]}: no record "
            "(the plan must list racks for every site, allowed rack type and quarter)"
        ),
    )
    return built


def read_blocks_ordered(
    data: ScenarioArrays, records: Sequence[PowerDecision | NoDealPower], log: Log, *, complete: bool = True
) -> np.ndarray:
    """blocks_ordered[i, t]: whole, ≥ 0, known ids, one record per index (`complete`; a walk-away
    record lists only the non-zero ones), and ordered only where t + lead ≤ n − 1 (a block that
    cannot arrive inside the horizon is not a decision)."""
    n_i, _, n_t, _, _ = data.shape
    blocks = np.zeros((n_i, n_t))
    seen = np.zeros((n_i, n_t), dtype=bool)
    for rec in records:
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
        ~seen if complete else np.zeros_like(seen),
        lambda x: (
            f"power {data.sites[x[0]]} {data.labels[x[1]]}: no record "
            "(the plan must list power for every site and quarter)"
        ),
    )
    return blocks


def read_quotas(data: ScenarioArrays, records: Sequence[QuotaDecision | NoDealQuota], log: Log) -> np.ndarray:
    """quota_gpus[k, i, r, t] ≥ 0, known ids, one record each, and none where the tenant may not
    be served (jurisdiction) or the rack type is not allowed at the site."""
    n_i, n_r, n_t, n_k, _ = data.shape
    quota = np.zeros((n_k, n_i, n_r, n_t))
    seen = np.zeros((n_k, n_i, n_r, n_t), dtype=bool)
    for rec in records:
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
class Served:
    """Served GPU-hours, one entry per distinct (k, i, r, t, s), as parallel arrays."""

    k: np.ndarray
    i: np.ndarray
    r: np.ndarray
    t: np.ndarray
    s: np.ndarray
    gpu_hours: np.ndarray


def _served_codes(data: ScenarioArrays, plan: Plan, log: Log) -> tuple[np.ndarray, np.ndarray]:
    """The served records with known ids as index codes [5, n] (k, i, r, t, s) and GPU-hours [n];
    one check per record, failed where an id is unknown."""
    n = len(plan.served)
    codes = np.empty((5, n), dtype=np.int64)
    amounts: np.ndarray = np.empty(n)
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
    return codes[:, :kept], amounts[:kept]


def read_served(data: ScenarioArrays, plan: Plan, log: Log) -> Served:
    """served_gpu_hours[k, i, r, t, s] ≥ 0 with known ids, never where the tenant may not be served
    (jurisdiction) or on a rack type not allowed at the site; duplicates are named and summed."""
    codes, amounts = _served_codes(data, plan, log)
    kept = len(amounts)
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
    return Served(k, i, r, t, s, amounts)


def read_unserved(data: ScenarioArrays, plan: Plan, log: Log) -> np.ndarray:
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
