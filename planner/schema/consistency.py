"""Cross-field checks of a scenario, run before any model is built.

Pydantic checks each field on its own; these `check_*` functions check how fields fit together
(references, probabilities, lead times, units that cannot add up). Each problem names the field
path and the fix, so the loader can report it without a traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.schema.scenario import Scenario


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str


class ScenarioInconsistent(Exception):
    """Raised with every problem found, so the user can fix them in one pass."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


def check_unique_ids(scenario: Scenario) -> list[Problem]:
    problems = []
    for field in ("sites", "rack_types", "tenants", "scenarios"):
        seen: set[str] = set()
        for index, item in enumerate(getattr(scenario, field)):
            if item.id in seen:
                problems.append(
                    Problem(
                        f"{field}[{index}].id", f"duplicate id '{item.id}'", "give every entry its own id"
                    )
                )
            seen.add(item.id)
    return problems


def check_probabilities(scenario: Scenario) -> list[Problem]:
    total = sum(s.probability for s in scenario.scenarios)
    if math.isclose(total, 1.0, abs_tol=1e-6):
        return []
    return [
        Problem(
            "scenarios[*].probability",
            f"probabilities sum to {total:.6g}, not 1",
            "scale the probabilities so they add up to exactly 1",
        )
    ]


def check_rack_references(scenario: Scenario) -> list[Problem]:
    known = {r.id for r in scenario.rack_types}
    problems = []
    for i, site in enumerate(scenario.sites):
        for rack_id in site.rack_types or []:
            if rack_id not in known:
                problems.append(
                    Problem(
                        f"sites[{i}].rack_types",
                        f"unknown rack type '{rack_id}'",
                        f"use one of: {', '.join(sorted(known))}",
                    )
                )
        allowed = set(site.rack_types) if site.rack_types is not None else known
        for rack_id, count in site.existing_racks.items():
            if rack_id not in allowed:
                problems.append(
                    Problem(
                        f"sites[{i}].existing_racks.{rack_id}",
                        f"rack type '{rack_id}' is unknown or not allowed at site '{site.id}'",
                        "name a rack type listed in rack_types (and allowed at this site)",
                    )
                )
            if count < 0:
                problems.append(
                    Problem(
                        f"sites[{i}].existing_racks.{rack_id}",
                        f"negative rack count {count}",
                        "use 0 or more",
                    )
                )
    return problems


def check_site_capacity(scenario: Scenario) -> list[Problem]:
    problems = []
    for i, site in enumerate(scenario.sites):
        if site.existing_mw > site.power_cap_mw:
            problems.append(
                Problem(
                    f"sites[{i}].existing_mw",
                    f"existing {site.existing_mw} MW exceeds the power cap {site.power_cap_mw} MW",
                    "raise power_cap_mw or lower existing_mw",
                )
            )
        existing_it_mw = sum(
            count * scenario.rack_type(r).kw_per_rack / 1000.0 * site.pue
            for r, count in site.existing_racks.items()
            if r in {rt.id for rt in scenario.rack_types}
        )
        if existing_it_mw > site.existing_mw + 1e-9:
            problems.append(
                Problem(
                    f"sites[{i}].existing_racks",
                    f"existing racks draw {existing_it_mw:.2f} MW with PUE but only {site.existing_mw} MW is energised",
                    "raise existing_mw or lower existing_racks",
                )
            )
        if site.power_lead_time_periods >= scenario.periods.count_quarters and site.existing_mw == 0:
            problems.append(
                Problem(
                    f"sites[{i}].power_lead_time_periods",
                    f"lead time of {site.power_lead_time_periods} quarters leaves no quarter in the "
                    f"{scenario.periods.count_quarters}-quarter horizon in which new power can arrive, "
                    "and the site has no existing power",
                    "shorten the lead time, extend periods.count_quarters, or give the site existing_mw",
                )
            )
    return problems


def check_tenant_demand(scenario: Scenario) -> list[Problem]:
    scenario_ids = {s.id for s in scenario.scenarios}
    jurisdictions = {s.jurisdiction for s in scenario.sites}
    horizon = scenario.periods.count_quarters
    problems = []
    for i, tenant in enumerate(scenario.tenants):
        missing = scenario_ids - tenant.demand_gpus.keys()
        if missing:
            problems.append(
                Problem(
                    f"tenants[{i}].demand_gpus",
                    f"no demand given for scenario(s) {', '.join(sorted(missing))}",
                    "give one list of per-quarter GPUs for every scenario id",
                )
            )
        for sid, series in tenant.demand_gpus.items():
            if sid not in scenario_ids:
                problems.append(
                    Problem(
                        f"tenants[{i}].demand_gpus.{sid}",
                        f"unknown scenario '{sid}'",
                        f"use one of: {', '.join(sorted(scenario_ids))}",
                    )
                )
            elif len(series) != horizon:
                problems.append(
                    Problem(
                        f"tenants[{i}].demand_gpus.{sid}",
                        f"{len(series)} values for a {horizon}-quarter horizon",
                        f"give exactly {horizon} values, one per quarter",
                    )
                )
        for sid in tenant.credit_repayment_share_by_scenario:
            if sid not in scenario_ids:
                problems.append(
                    Problem(
                        f"tenants[{i}].credit_repayment_share_by_scenario.{sid}",
                        f"unknown scenario '{sid}'",
                        f"use one of: {', '.join(sorted(scenario_ids))}",
                    )
                )
        for j in tenant.allowed_jurisdictions or []:
            if j not in jurisdictions:
                problems.append(
                    Problem(
                        f"tenants[{i}].allowed_jurisdictions",
                        f"no site is in jurisdiction '{j}'",
                        f"use one of the sites' jurisdictions: {', '.join(sorted(jurisdictions))}",
                    )
                )
    return problems


CHECKS = (
    check_unique_ids,
    check_probabilities,
    check_rack_references,
    check_site_capacity,
    check_tenant_demand,
)


def check_scenario(scenario: Scenario) -> None:
    """Run every check; raise once with all problems found."""
    problems = [p for check in CHECKS for p in check(scenario)]
    if problems:
        raise ScenarioInconsistent(problems)
