"""The plan's reported figures compared with their recomputation: installed racks and power, each
scenario's outcome, risk and objective, and the per-site, per-quarter summary rows."""

from __future__ import annotations

import numpy as np

from planner.schema.plan import Plan
from planner.schema.scenario import Scenario
from planner.verify.data import ScenarioArrays
from planner.verify.derived import facility_load_mw
from planner.verify.log import ABS_TOL_QUANTITY, ABS_TOL_USD, EXACT_TOL, REL_TOL, Log, close
from planner.verify.money import Money, cvar_by_sorting, perspective_values


def check_money(log: Log, name: str, reported: float, recomputed: float) -> None:
    if not log.ok(close(reported, recomputed, ABS_TOL_USD)):
        log.say(
            f"{name}: the plan reports {reported:,.2f}, recomputed {recomputed:,.2f} "
            f"(difference {reported - recomputed:,.2f})"
        )


def check_reported_first_stage(
    data: ScenarioArrays, plan: Plan, installed: np.ndarray, available: np.ndarray, log: Log
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
        if not log.ok(all(close(a, b, ABS_TOL_QUANTITY) for a, b in zip(got, want, strict=True))):
            log.say(
                f"reported racks {rec.site}/{rec.rack_type} {rec.period}: the plan says {got[0]} racks, "
                f"{got[1]} GPUs, {got[2]} nodes; its racks_built and the existing racks give {want[0]:g} racks, "
                f"{want[1]:g} GPUs, {want[2]:g} nodes"
            )
    for power in plan.power:
        i, t = data.i_of.get(power.site), data.t_of.get(power.period)
        if i is None or t is None:
            continue
        mw, it = float(available[i, t]), float(load[i, t])
        if not log.ok(close(power.available_mw, mw, ABS_TOL_QUANTITY)):
            log.say(
                f"reported available_mw {power.site} {power.period}: the plan says {power.available_mw:,.3f} MW, "
                f"its blocks give {mw:,.3f} MW"
            )
        if not log.ok(close(power.it_load_mw, it, ABS_TOL_QUANTITY)):
            log.say(
                f"reported it_load_mw {power.site} {power.period}: the plan says {power.it_load_mw:,.3f} MW, "
                f"its racks need {it:,.3f} MW"
            )


def check_outcomes(scenario: Scenario, data: ScenarioArrays, plan: Plan, money: Money, log: Log) -> None:
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
            check_money(log, f"outcome [{case}] {name}", got, float(want))
        for name, got, want in (
            ("served_gpu_hours", o.served_gpu_hours, float(money.served[j])),
            ("unserved_gpu_hours", o.unserved_gpu_hours, float(money.unserved[j])),
        ):
            if not log.ok(close(got, want, ABS_TOL_QUANTITY)):
                log.say(f"outcome [{case}] {name}: the plan reports {got:,.3f}, recomputed {want:,.3f}")
        if not log.ok(close(o.probability, float(data.prob[j]), EXACT_TOL)):
            log.say(
                f"outcome [{case}] probability: the plan reports {o.probability}, the scenario {data.prob[j]}"
            )


def check_risk_and_objective(
    scenario: Scenario, data: ScenarioArrays, plan: Plan, money: Money, log: Log
) -> float:
    """Expected value, CVaR (by sorting), worst and best value, and the objective
    (1 − w)·E[V] + w·CVaR, which solver.objective_usd must equal. Returns the recomputed objective."""
    objective = scenario.objective
    values = perspective_values(money, objective.perspective)
    by_case = {c: float(v) for c, v in zip(data.cases, values, strict=True)}
    probabilities = {c: float(p) for c, p in zip(data.cases, data.prob, strict=True)}
    expected = float(values @ data.prob)
    check_money(log, "risk.expected_value_usd", plan.risk.expected_value_usd, expected)
    check_money(log, "risk.worst_case_value_usd", plan.risk.worst_case_value_usd, float(values.min()))
    check_money(log, "risk.best_case_value_usd", plan.risk.best_case_value_usd, float(values.max()))
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
            check_money(log, f"risk.cvar_usd (alpha {alpha})", plan.risk.cvar_usd, cvar)
    w = objective.cvar_weight
    recomputed = (1.0 - w) * expected + (w * cvar if cvar is not None else 0.0)
    check_money(log, "solver.objective_usd", plan.solver.objective_usd, recomputed)
    return recomputed


def check_site_periods(
    data: ScenarioArrays, plan: Plan, installed: np.ndarray, available: np.ndarray, money: Money, log: Log
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
            and all(close(row.racks_by_type.get(r, 0), n, ABS_TOL_QUANTITY) for r, n in want_racks.items())
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
            if not log.ok(close(got, float(want), tol)):
                log.say(f"{where} {name}: the plan reports {got:,.6g}, recomputed {float(want):,.6g}")
        check_money(
            log,
            f"{where} expected_buyback_usd",
            row.expected_buyback_usd,
            float(money.site_buyback_usd[i, t]),
        )
        check_money(
            log,
            f"{where} expected_revenue_share_usd",
            row.expected_revenue_share_usd,
            float(money.site_revenue_share_usd[i, t]),
        )
    log.check_array(~seen, lambda x: f"site_periods {data.sites[x[0]]} {data.labels[x[1]]}: no summary row")
