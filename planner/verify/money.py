"""Money recomputed term by term from docs/model.md: revenue, revenue share, buyback, credit loss,
energy, capex, opex, power capex, hardware margin, each party's values and CVaR by sorting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.schema.scenario import Scenario
from planner.verify.data import ScenarioArrays
from planner.verify.decisions import Served
from planner.verify.derived import gpus_installed
from planner.verify.matching import matching_buyback_gpu_hours, pro_rata


@dataclass(frozen=True)
class Money:
    """Recomputed figures: per scenario (undiscounted sums, discounted values) and per site-quarter."""

    cloud: np.ndarray  # [S] discounted
    guarantor: np.ndarray  # [S] discounted
    rev: np.ndarray  # [S] undiscounted sums over the horizon
    bb: np.ndarray
    bb_by_quarter: np.ndarray  # [T, S] undiscounted
    rs: np.ndarray
    cl: np.ndarray
    served: np.ndarray  # [S] GPU-hours
    unserved: np.ndarray
    site_gpus: np.ndarray  # [I, T]
    site_utilisation: np.ndarray  # [I, T]
    site_buyback_gpu_hours: np.ndarray  # [I, T] expected
    site_buyback_usd: np.ndarray
    site_revenue_share_usd: np.ndarray
    unsold_gpu_hours: np.ndarray  # [I, T, S] h x GPUs installed - served, at least 0


def recompute_money(
    scenario: Scenario,
    data: ScenarioArrays,
    built: np.ndarray,
    installed: np.ndarray,
    available: np.ndarray,
    served: Served,
    pool_served: np.ndarray,
    unserved: np.ndarray,
    *,
    per_site_buyback: bool = False,
) -> Money:
    """REV, RS, BB, CL, EN, CX, OX, PX, HM and the three values, term by term from docs/model.md.
    `unserved` is [K, T, S] GPU-hours. Buyback by the matching rule, or with `per_site_buyback`
    by the per-site rule plans before schema 1.5 were solved and billed under."""
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

    site_capacity = data.h * gpus_installed(data, installed).sum(axis=1)  # [I, T]
    site_sold = pool_served.sum(axis=1)  # [I, T, S]
    unsold = np.maximum(0.0, site_capacity[..., None] - site_sold)
    if per_site_buyback:
        # Per site, quarter and scenario: max(0, h x GPUs - served at the site - unserved demand
        # of every tenant that may use it).
        refused = np.einsum("ki,kts->its", data.may_use.astype(float), unserved)
        no_buyer = site_capacity[..., None] - site_sold - refused
        buyback_gpu_hours = terms.buyback_share * np.maximum(0.0, no_buyer)  # [I, T, S]
        bb = terms.buyback_price_usd_per_gpu_hour * buyback_gpu_hours.sum(axis=0)  # [T, S]
    else:
        # Per quarter and scenario: the covered share of the unsold hours no refused hour was
        # placed on (each once); a site's part pro rata to its unsold hours (tables only).
        total = matching_buyback_gpu_hours(unsold, unserved, data.may_use, terms.buyback_share)  # [T, S]
        buyback_gpu_hours = pro_rata(total, unsold)
        bb = terms.buyback_price_usd_per_gpu_hour * total

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
    return Money(
        cloud=cloud,
        guarantor=guarantor,
        rev=rev.sum(axis=0),
        bb=bb.sum(axis=0),
        bb_by_quarter=bb,
        rs=rs.sum(axis=0),
        cl=cl.sum(axis=0),
        served=np.bincount(s, weights=x, minlength=n_s),
        unserved=unserved.sum(axis=(0, 1)),
        site_gpus=site_gpus,
        site_utilisation=utilisation,
        site_buyback_gpu_hours=site_bb_gh,
        site_buyback_usd=terms.buyback_price_usd_per_gpu_hour * site_bb_gh,
        site_revenue_share_usd=terms.revenue_share * (rev_its @ p),
        unsold_gpu_hours=unsold,
    )


def perspective_values(money: Money, perspective: str) -> np.ndarray:
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
