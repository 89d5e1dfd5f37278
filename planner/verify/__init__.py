"""Independent verification of a plan against its scenario (docs/model.md).

This package shares no code with the optimisation model (`planner/model/`, `planner/results.py`;
the `verifier-is-independent` contract in `.importlinter` enforces it): it reads only the scenario
and the plan's own decisions (racks, power, quotas, served, unserved), recomputes every derived
quantity and money figure by plain array arithmetic, checks every constraint of docs/model.md, and
compares the plan's reported figures with the recomputed ones. A plan that fails is never written
as a success.

`verify_plan` below runs the checks in one readable order. The modules mirror `planner/model/`:
`data` (the scenario as arrays), `decisions` (the plan's decisions read and checked record by
record), `derived` (racks installed, available MW, served sums), `constraints` (every constraint
family), `money` (values recomputed term by term, CVaR by sorting), `figures` (reported figures
against recomputed ones), `participation` (each party's figures and requirements), `identity`
(the plan is this scenario's), `no_deal` (a walk-away record's no-deal plan: its decisions keep
the no-deal rules and yield the values it records), `matching` (the matching rule's buyback, by its
own max-flow, and each site's pro-rata part), `buyback_matching` (which rule a plan is checked by,
from its schema version, and a 1.4 plan's record against the matching rule) and `log`
(tolerances and the violation log).

Tolerances (`planner.verify.log`): a constraint `lhs <= rhs` holds when
lhs - rhs <= max(REL_TOL * max(|lhs|, |rhs|), abs), with REL_TOL = 1e-6 and abs = ABS_TOL_QUANTITY
= 1e-3 on GPU-hours, GPUs and MW; money agrees when |reported - recomputed| <=
max(REL_TOL * max(|reported|, |recomputed|), ABS_TOL_USD = US$1); inputs the plan copies from the
scenario (hours, discount factors, probabilities) agree within EXACT_TOL = 1e-9. At most
MAX_MESSAGES = 50 violations are spelled out; the rest are counted.
"""

from __future__ import annotations

from planner.schema.plan import Plan, Verification
from planner.schema.scenario import Scenario
from planner.verify.buyback_matching import bills_per_site, check_buyback_rule
from planner.verify.constraints import (
    check_demand_balance,
    check_first_stage_rules,
    check_serve_within_capacity,
    check_serve_within_quota,
)
from planner.verify.data import scenario_arrays
from planner.verify.decisions import (
    read_blocks_ordered,
    read_quotas,
    read_racks_built,
    read_served,
    read_unserved,
)
from planner.verify.derived import available_mw, racks_installed, served_per_pool, served_per_tenant
from planner.verify.figures import (
    check_outcomes,
    check_reported_first_stage,
    check_risk_and_objective,
    check_site_periods,
)
from planner.verify.identity import check_catalogue, check_identity
from planner.verify.log import ABS_TOL_QUANTITY, ABS_TOL_USD, EXACT_TOL, MAX_MESSAGES, REL_TOL, Log
from planner.verify.money import cvar_by_sorting, recompute_money
from planner.verify.no_deal import check_no_deal, walk_away_record_violations
from planner.verify.participation import check_parties

__all__ = [
    "ABS_TOL_QUANTITY",
    "ABS_TOL_USD",
    "EXACT_TOL",
    "MAX_MESSAGES",
    "REL_TOL",
    "cvar_by_sorting",
    "verify_plan",
    "walk_away_record_violations",
]


def verify_plan(scenario: Scenario, plan: Plan) -> Verification:
    """Check `plan` against every constraint of `scenario` and recompute every figure it reports."""
    log = Log()
    data = scenario_arrays(scenario)
    check_identity(scenario, plan, log)
    check_catalogue(scenario, plan, log)

    built = read_racks_built(data, plan.racks, log)
    blocks = read_blocks_ordered(data, plan.power, log)
    quota = read_quotas(data, plan.quotas, log)
    served = read_served(data, plan, log)
    unserved = read_unserved(data, plan, log)

    installed = racks_installed(data, built)
    available = available_mw(data, blocks)
    check_reported_first_stage(data, plan, installed, available, log)

    check_first_stage_rules(scenario, data, built, blocks, quota, installed, available, log)

    pool_served = served_per_pool(data, served)
    check_serve_within_capacity(data, pool_served, installed, log)
    check_serve_within_quota(data, served, quota, log)
    check_demand_balance(data, served_per_tenant(data, served), unserved, log)

    money = recompute_money(
        scenario,
        data,
        built,
        installed,
        available,
        served,
        pool_served,
        unserved,
        per_site_buyback=bills_per_site(plan),
    )
    check_outcomes(scenario, data, plan, money, log)
    objective = check_risk_and_objective(scenario, data, plan, money, log)
    check_site_periods(data, plan, installed, available, money, log)
    check_parties(scenario, data, plan, money, installed, log)
    notes = check_no_deal(scenario, plan, log)
    notes += check_buyback_rule(scenario, data, plan, money, unserved, log)

    return Verification(
        passed=log.failures == 0,
        checks_run=log.checks_run,
        violations=log.result(),
        objective_recomputed_usd=objective,
        notes=notes,
    )
