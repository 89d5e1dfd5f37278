"""Identity: is this plan a plan of this scenario, and does it copy the scenario's catalogue?"""

from __future__ import annotations

from collections.abc import Sequence

from planner.schema.plan import Plan
from planner.schema.scenario import Scenario
from planner.verify.log import EXACT_TOL, Log, close


def check_identity(scenario: Scenario, plan: Plan, log: Log) -> None:
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
    if not log.ok(close(plan.hours_per_period, h, EXACT_TOL)):
        log.say(f"hours_per_period: the plan uses {plan.hours_per_period} h, the scenario {h} h")
    factors = scenario.periods.discount_factors()
    if not log.ok(
        len(plan.discount_factors) == len(factors)
        and all(close(a, b, EXACT_TOL) for a, b in zip(plan.discount_factors, factors, strict=True))
    ):
        log.say(
            "discount_factors: the plan's factors do not follow from discount_rate_annual = "
            f"{scenario.periods.discount_rate_annual}"
        )
    probabilities = {c.id: c.probability for c in scenario.scenarios}
    if not log.ok(
        plan.scenario_probabilities.keys() == probabilities.keys()
        and all(close(plan.scenario_probabilities[s], p, EXACT_TOL) for s, p in probabilities.items())
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
    if not log.ok(close(plan.cvar_weight, objective.cvar_weight, EXACT_TOL)):
        log.say(f"cvar_weight: the plan uses {plan.cvar_weight}, the scenario {objective.cvar_weight}")


def check_catalogue(scenario: Scenario, plan: Plan, log: Log) -> None:
    """The sites, rack types and tenants the plan repeats for provisioning must be the scenario's:
    infra/ sizes node pools and tenants from these copies, not from the scenario."""
    sites = {s.id: s for s in scenario.sites}
    if not log.ok([s.id for s in plan.sites] == list(sites)):
        log.say(f"sites: the plan lists {[s.id for s in plan.sites]}, the scenario {list(sites)}")
    for site_info in plan.sites:
        site = sites.get(site_info.id)
        if site is None:
            continue
        got = (
            site_info.name,
            site_info.jurisdiction,
            site_info.power_cap_mw,
            site_info.pue,
            site_info.gpu_cap,
        )
        want = (site.name, site.jurisdiction, site.power_cap_mw, site.pue, site.gpu_cap)
        if not log.ok(got == want):
            log.say(
                f"sites {site_info.id}: the plan copies (name, jurisdiction, cap MW, PUE, GPU cap) "
                f"as {got}, the scenario has {want}"
            )
    racks = {r.id: r for r in scenario.rack_types}
    if not log.ok([r.id for r in plan.rack_types] == list(racks)):
        log.say(f"rack_types: the plan lists {[r.id for r in plan.rack_types]}, the scenario {list(racks)}")
    for rack_info in plan.rack_types:
        rack = racks.get(rack_info.id)
        if rack is None:
            continue
        got_r = (
            rack_info.gpu_product,
            rack_info.gpus_per_rack,
            rack_info.nodes_per_rack,
            rack_info.gpus_per_node,
            rack_info.kw_per_rack,
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
                f"rack_types {rack_info.id}: the plan copies (product, GPUs, nodes, GPUs/node, "
                f"kW) as {got_r}, the scenario has {want_r}"
            )
    tenants = {k.id: k for k in scenario.tenants}
    if not log.ok([k.id for k in plan.tenants] == list(tenants)):
        log.say(f"tenants: the plan lists {[k.id for k in plan.tenants]}, the scenario {list(tenants)}")
    for tenant_info in plan.tenants:
        tenant = tenants.get(tenant_info.id)
        if tenant is None:
            continue
        if not log.ok(tenant_info.allowed_jurisdictions == tenant.allowed_jurisdictions):
            log.say(
                f"tenants {tenant_info.id}: the plan copies allowed jurisdictions {tenant_info.allowed_jurisdictions}, "
                f"the scenario has {tenant.allowed_jurisdictions}"
            )
        # Provisioning grants namespace access from these owners: a wrong copy is a wrong RBAC.
        if not log.ok((tenant_info.display_name, tenant_info.owners) == (tenant.display_name, tenant.owners)):
            log.say(
                f"tenants {tenant_info.id}: the plan copies (display name, owners) as "
                f"{(tenant_info.display_name, tenant_info.owners)}, the scenario has {(tenant.display_name, tenant.owners)}"
            )


def _span(labels: Sequence[str]) -> str:
    return f"{labels[0]}..{labels[-1]} ({len(labels)} quarters)" if labels else "no quarters"
