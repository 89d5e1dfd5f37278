"""The no-deal plan a walk-away record holds (docs/model.md, Conventions), checked with the
verifier's own code: its first stage (`walk_away.racks`, `.power`, `.quotas`) keeps the rules the
cloud plans by alone, and the values the record states are what that first stage yields.

The floors of a walk-away plan are constraints whose right-hand sides come from this record, so
a record that lies moves the floors. The verifier cannot re-solve the no-deal plan (whether a
better one exists rests on HiGHS's bound, `cloud_bound_usd`), but given its first stage the rest
is closed-form: each (tenant, quarter, scenario) is served by a fractional knapsack (most
profitable pool first, each up to h x quota, all up to h x demand; issue 16), and every money
term follows by the verifier's own arithmetic (`planner.verify.money`).
"""

from __future__ import annotations

import numpy as np

from planner.schema.plan import Plan, WalkAway
from planner.schema.scenario import FLOORS_WALK_AWAY, Scenario
from planner.verify.constraints import check_first_stage_rules
from planner.verify.data import ScenarioArrays, scenario_arrays
from planner.verify.decisions import Served, read_blocks_ordered, read_quotas, read_racks_built
from planner.verify.derived import available_mw, racks_installed, served_per_pool
from planner.verify.log import ABS_TOL_USD, Log, close, tolerance, usd
from planner.verify.money import cvar_by_sorting, recompute_money

RULES = "walk_away (the no-deal plan's racks, power and quotas)"
"""How a message about the record's decisions begins; one about a value names the field itself
(`walk_away.cloud_value_usd`)."""

NOT_RECORDED_NOTE = (
    "walk_away: the record holds no no-deal decisions (racks, power, quotas; a plan written before "
    "schema 1.4), so its walk-away values could not be checked: the floors were checked against the "
    "values as recorded. Solve the scenario again to record them"
)

CVAR_FLOOR_DROPPED_NOTE = (
    "walk_away: the record says the cloud's CVaR floor was dropped (cloud_cvar_floor_dropped), "
    "HiGHS having proved that no plan alone meets it; the verifier cannot check that proof, and "
    "checked the no-deal plan without the floor"
)


def no_deal_terms(scenario: Scenario, *, keep_cvar_floor: bool) -> Scenario:
    """The scenario as the cloud plans it alone (docs/model.md, Conventions): no buyback, no
    revenue share, no token credits and the demand they funded gone. Written here again on
    purpose: the verifier does not import the planner's `planner.walk_away.no_deal_scenario`.
    Only the fields the checks read change (objective and the guarantor's requirements are not
    read); the cloud's CVaR floor stays unless the record says it was dropped."""
    terms = scenario.terms.model_copy(
        update={"buyback_price_usd_per_gpu_hour": 0.0, "buyback_share": 0.0, "revenue_share": 0.0}
    )
    tenants = [
        k.model_copy(
            update={
                "demand_gpus": {
                    s: [(1.0 - k.token_credit_share) * x for x in row] for s, row in k.demand_gpus.items()
                },
                "token_credit_share": 0.0,
                "credit_repayment_share": 1.0,
                "credit_repayment_share_by_scenario": {},
            }
        )
        for k in scenario.tenants
    ]
    cloud = scenario.participation.cloud.model_copy(
        update={
            "min_expected_value_usd": None,
            "min_cvar_usd": scenario.participation.cloud.min_cvar_usd if keep_cvar_floor else None,
        }
    )
    participation = scenario.participation.model_copy(update={"cloud": cloud})
    return scenario.model_copy(update={"terms": terms, "tenants": tenants, "participation": participation})


def best_serving(data: ScenarioArrays, quota: np.ndarray) -> tuple[Served, np.ndarray]:
    """The cloud's best second stage alone, given the quotas [K, I, R, T]: per tenant, quarter and
    scenario a fractional knapsack, solved greedily. With no buyback, revenue share or credits a
    served GPU-hour earns the cloud price_k minus the pool's energy, whatever the scenario; so
    each tenant's demand (h x D) fills its pools from the most profitable down, each up to
    h x quota, and none where a GPU-hour would earn nothing. The pools' own capacity needs no
    check here: the quotas fit in them (`quota_fits`). Returns served (one entry per non-zero) and
    unserved [K, T, S] GPU-hours."""
    n_i, n_r, n_t, n_k, _ = data.shape
    energy = (
        data.power_price[:, None]
        * data.pue[:, None]
        * (data.kw_per_rack / 1000.0 / data.gpus_per_rack)[None, :]
    )
    margin = data.price[:, None] - energy.reshape(-1)[None, :]  # [K, P], P = I x R pools
    order = np.argsort(-margin, axis=1, kind="stable")  # most profitable first
    pay = np.take_along_axis(margin, order, axis=1) > 0.0  # [K, P]
    cap = data.h * quota.reshape(n_k, n_i * n_r, n_t)  # [K, P, T]
    cap = np.take_along_axis(cap, order[:, :, None], axis=1) * pay[:, :, None]
    before = np.cumsum(cap, axis=1) - cap  # what the more profitable pools take first
    need = data.h * data.demand  # [K, T, S]
    served = np.clip(need[:, None, :, :] - before[..., None], 0.0, cap[..., None])  # [K, P, T, S]
    unserved = need - served.sum(axis=1)
    k, j, t, s = np.nonzero(served)
    pool = order[k, j]
    return Served(k, pool // n_r, pool % n_r, t, s, served[k, j, t, s]), unserved


def check_no_deal(scenario: Scenario, plan: Plan, log: Log) -> list[str]:
    """With `participation.floors: walk_away`, the record's no-deal decisions keep the no-deal
    rules (the checks `verify_plan` makes of a plan's first stage, under the no-deal terms), meet
    the cloud's CVaR floor unless the record says it was dropped, and yield the values, rack count
    and bound the record states. Returns notes: what could not be checked (a 1.3 record without
    decisions, a dropped CVaR floor's proof). `check_walk_away_floors` checks the floors."""
    record = plan.walk_away
    if scenario.participation.floors != FLOORS_WALK_AWAY or record is None:
        return []  # check_walk_away_floors names either mismatch
    if not record.has_decisions:
        _check_gap(record, log)  # reads only the values and the bound
        return [NOT_RECORDED_NOTE]
    _check_record(scenario, record, log)
    return [CVAR_FLOOR_DROPPED_NOTE] if record.cloud_cvar_floor_dropped else []


def walk_away_record_violations(scenario: Scenario, record: WalkAway) -> list[str]:
    """`check_no_deal`'s checks of a record with decisions, on their own: the planner runs them on
    the record it makes before solving the deal, so a record the verifier would refuse is refused
    there, as the no-deal plan's, not later as the deal's."""
    log = Log()
    _check_record(scenario, record, log)
    return log.result()


def _check_record(scenario: Scenario, record: WalkAway, log: Log) -> None:
    assert record.racks is not None and record.power is not None and record.quotas is not None
    alone = no_deal_terms(scenario, keep_cvar_floor=not record.cloud_cvar_floor_dropped)
    data = scenario_arrays(alone)
    rules = Log()  # its messages are said below, each headed as the record's
    built = read_racks_built(data, record.racks, rules, complete=False)
    blocks = read_blocks_ordered(data, record.power, rules, complete=False)
    quota = read_quotas(data, record.quotas, rules)
    installed = racks_installed(data, built)
    available = available_mw(data, blocks)
    check_first_stage_rules(alone, data, built, blocks, quota, installed, available, rules)
    log.ran(rules.checks_run)
    log.failures += rules.failures
    for message in rules.messages:
        log.say(f"{RULES}: {message}")

    served, unserved = best_serving(data, quota)
    money = recompute_money(
        alone, data, built, installed, available, served, served_per_pool(data, served), unserved
    )
    yields = {"cloud": float(money.cloud @ data.prob), "guarantor": float(money.guarantor @ data.prob)}
    recorded = {"cloud": record.cloud_value_usd, "guarantor": record.guarantor_value_usd}
    for party, value in yields.items():
        if not log.ok(close(recorded[party], value, ABS_TOL_USD)):
            log.say(
                f"walk_away.{party}_value_usd: the record says {usd(recorded[party], 2)}, but its decisions "
                f"(racks, power, quotas) yield the {party} {usd(value, 2)} (difference "
                f"{recorded[party] - value:,.2f})"
            )
    total = int(built.sum())
    if not log.ok(record.racks_built == total):
        log.say(
            f"walk_away.racks_built: the record says {record.racks_built:,} racks, its racks list {total:,}"
        )
    bound = record.cloud_bound_usd
    if bound is not None and not log.ok(
        bool(bound >= record.cloud_value_usd - tolerance(bound, record.cloud_value_usd, ABS_TOL_USD))
    ):
        log.say(
            f"walk_away.cloud_bound_usd: HiGHS's bound {usd(bound, 2)} is below the cloud's recorded value "
            f"{usd(record.cloud_value_usd, 2)}: no plan makes more than its bound"
        )
    _check_gap(record, log)
    floor = alone.participation.cloud.min_cvar_usd
    if floor is not None:
        alpha = alone.participation.cvar_alpha
        cvar = cvar_by_sorting(
            {c: float(v) for c, v in zip(data.cases, money.cloud, strict=True)},
            {c: float(p) for c, p in zip(data.cases, data.prob, strict=True)},
            alpha,
        )
        if not log.ok(bool(cvar >= floor - tolerance(cvar, floor, ABS_TOL_USD))):
            log.say(
                "walk_away (the no-deal plan) participation.cloud.min_cvar_usd: its decisions give the cloud "
                f"a CVaR (alpha {alpha}) of {usd(cvar)}, below its floor of {usd(floor)}, which the no-deal plan keeps"
            )


HIGHS_OBJECTIVE_UNIT_USD = 1e6
"""The unit of the objective HiGHS solves (`planner.model.build.MONEY_SCALE_USD`, written again
here: the verifier imports none of the planner's model)."""


def _check_gap(record: WalkAway, log: Log) -> None:
    """A record saying the no-deal plan reached its gap (`reached_gap`, or status Optimal where
    that is not recorded) must show it: a finite bound within `mip_rel_gap` of the cloud's value.
    Without this, a worse no-deal plan (the do-nothing plan, say: every value 0) passed with the
    bound of the real one beside it, and the floors fell with it. The verifier cannot re-solve the
    no-deal plan; a record whose bound was edited down to its value as well still passes
    (docs/model.md says so)."""
    if not record.gap_reached or record.mip_rel_gap is None:
        return
    value, bound = record.cloud_value_usd, record.cloud_bound_usd
    if not log.ok(bound is not None):
        log.say(
            "walk_away.cloud_bound_usd: null, but the record says the no-deal plan reached its gap "
            f"of {record.mip_rel_gap:g} (reached_gap, status {record.status}): a gap is measured against a bound"
        )
        return
    assert bound is not None  # (narrowed for the type checker)
    # HiGHS measures its gap on the objective in the planner's money unit (US$ 1 M), no less than
    # one unit of it: a small no-deal value may stop further from its bound than the ratio alone.
    scale = max(abs(bound), abs(value), HIGHS_OBJECTIVE_UNIT_USD)
    allowed = record.mip_rel_gap * scale + tolerance(bound, value, ABS_TOL_USD)
    if not log.ok(bool(bound - value <= allowed)):
        log.say(
            f"walk_away.reached_gap: the record says the no-deal plan reached its gap of {record.mip_rel_gap:g}, "
            f"but HiGHS's bound {usd(bound, 2)} is {usd(bound - value, 2)} above the cloud's value {usd(value, 2)} "
            f"(a gap of {(bound - value) / scale:.3g} as HiGHS measures it, on at least US$ 1 M)"
        )
