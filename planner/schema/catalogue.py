"""What a plan repeats from its scenario, so provisioning can read the plan alone."""

from __future__ import annotations

from typing import Any

from planner.schema.plan import RackTypeInfo, SiteInfo, TenantInfo
from planner.schema.scenario import Scenario


def plan_catalogue(scenario: Scenario) -> dict[str, Any]:
    """The `sites`, `rack_types` and `tenants` fields of a plan solved from `scenario`."""
    return {
        "sites": [
            SiteInfo(
                id=s.id,
                name=s.name,
                jurisdiction=s.jurisdiction,
                power_cap_mw=s.power_cap_mw,
                pue=s.pue,
                gpu_cap=s.gpu_cap,
            )
            for s in scenario.sites
        ],
        "rack_types": [
            RackTypeInfo(
                id=r.id,
                gpu_product=r.gpu_product,
                gpus_per_rack=r.gpus_per_rack,
                nodes_per_rack=r.nodes_per_rack,
                gpus_per_node=r.gpus_per_node,
                kw_per_rack=r.kw_per_rack,
            )
            for r in scenario.rack_types
        ],
        "tenants": [
            TenantInfo(
                id=k.id,
                display_name=k.display_name,
                owners=list(k.owners),
                allowed_jurisdictions=k.allowed_jurisdictions,
            )
            for k in scenario.tenants
        ],
    }
