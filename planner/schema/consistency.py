"""Cross-field checks of a scenario, run before any model is built.

Pydantic checks each field on its own; these `check_*` functions check how fields fit together
(references, probabilities, lead times, units that cannot add up). Each problem names the field
path and the fix, so the loader can report it without a traceback. A list item is named by its id
(`sites[batam]`), as the schema's own errors and `--set` paths name it; only a repeated id is
named by its position.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.schema.scenario import Scenario


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str


SHOWN_PROBLEMS = 12
"""Problems kept, and shown, of those found; the rest are counted. A file with a million bad
entries (owners, say) would otherwise hold, and print, a million messages (3.39 GB and 56 s at a
million bad owners; 0.63 GB and 12 s kept to twelve)."""


class ScenarioInconsistent(Exception):
    """Raised with the first problems found (`SHOWN_PROBLEMS`) and how many more there are, so
    the user can fix them in as few passes as possible."""

    def __init__(self, problems: list[Problem], more: int = 0):
        self.problems, self.more = problems, more
        super().__init__(
            "; ".join(f"{p.path}: {p.message}" for p in problems) + (f"; and {more} more" if more else "")
        )


def raise_problems(found: Iterable[Problem]) -> None:
    """Raise `ScenarioInconsistent` with the first of `found`, the rest counted, if any."""
    found = iter(found)
    kept = list(itertools.islice(found, SHOWN_PROBLEMS))
    if kept:
        raise ScenarioInconsistent(kept, sum(1 for _ in found))


def check_unique_ids(scenario: Scenario) -> Iterator[Problem]:
    for field in ("sites", "rack_types", "tenants", "scenarios"):
        seen: set[str] = set()
        for index, item in enumerate(getattr(scenario, field)):
            if item.id in seen:
                yield Problem(
                    f"{field}[{index}].id", f"duplicate id '{item.id}'", "give every entry its own id"
                )
            seen.add(item.id)


def check_probabilities(scenario: Scenario) -> Iterator[Problem]:
    total = sum(s.probability for s in scenario.scenarios)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        yield Problem(
            "scenarios[*].probability",
            f"probabilities sum to {total:.6g}, not 1",
            "scale the probabilities so they add up to exactly 1",
        )


def check_rack_references(scenario: Scenario) -> Iterator[Problem]:
    known = {r.id for r in scenario.rack_types}
    for site in scenario.sites:
        for rack_id in site.rack_types or []:
            if rack_id not in known:
                yield Problem(
                    f"sites[{site.id}].rack_types",
                    f"unknown rack type '{rack_id}'",
                    f"use one of: {', '.join(sorted(known))}",
                )
        allowed = set(site.rack_types) if site.rack_types is not None else known
        for rack_id, count in site.existing_racks.items():
            if rack_id not in allowed:
                yield Problem(
                    f"sites[{site.id}].existing_racks.{rack_id}",
                    f"rack type '{rack_id}' is unknown or not allowed at site '{site.id}'",
                    "name a rack type listed in rack_types (and allowed at this site)",
                )
            if count < 0:
                yield Problem(
                    f"sites[{site.id}].existing_racks.{rack_id}",
                    f"negative rack count {count}",
                    "use 0 or more",
                )


def check_site_holds_a_rack_type(scenario: Scenario) -> Iterator[Problem]:
    """Refuse `rack_types: []`, a site that may hold no rack type.

    Why refuse rather than plan a site that builds nothing: an absent `rack_types` allows every
    rack type, so a written-out empty list is almost always a slip (an edit meant to allow them
    all, a generated list that came out empty), and planning it would quietly leave the site
    empty while its power, GPU cap and build rate say it is to be built. A site kept for later
    has a spelling that says so: `max_racks_built_per_period: 0` (its existing racks stay).
    """
    for site in scenario.sites:
        if site.rack_types is not None and not site.rack_types:
            yield Problem(
                f"sites[{site.id}].rack_types",
                "lists no rack type, so the site could never hold a rack",
                "name the rack types the site may hold, or remove rack_types to allow every one; "
                "to keep the site without building there, set max_racks_built_per_period: 0 instead",
            )


def check_site_capacity(scenario: Scenario) -> Iterator[Problem]:
    for site in scenario.sites:
        if site.existing_mw > site.power_cap_mw:
            yield Problem(
                f"sites[{site.id}].existing_mw",
                f"existing {site.existing_mw} MW exceeds the power cap {site.power_cap_mw} MW",
                "raise power_cap_mw or lower existing_mw",
            )
        existing_it_mw = sum(
            count * scenario.rack_type(r).kw_per_rack / 1000.0 * site.pue
            for r, count in site.existing_racks.items()
            if r in {rt.id for rt in scenario.rack_types}
        )
        if existing_it_mw > site.existing_mw + 1e-9:
            yield Problem(
                f"sites[{site.id}].existing_racks",
                f"existing racks draw {existing_it_mw:.2f} MW with PUE but only {site.existing_mw} MW is energised",
                "raise existing_mw or lower existing_racks",
            )
        if site.power_lead_time_periods >= scenario.periods.count_quarters and site.existing_mw == 0:
            yield Problem(
                f"sites[{site.id}].power_lead_time_periods",
                f"lead time of {site.power_lead_time_periods} quarters leaves no quarter in the "
                f"{scenario.periods.count_quarters}-quarter horizon in which new power can arrive, "
                "and the site has no existing power",
                "shorten the lead time, extend periods.count_quarters, or give the site existing_mw",
            )


def check_tenant_demand(scenario: Scenario) -> Iterator[Problem]:
    scenario_ids = {s.id for s in scenario.scenarios}
    jurisdictions = {s.jurisdiction for s in scenario.sites}
    horizon = scenario.periods.count_quarters
    for tenant in scenario.tenants:
        missing = scenario_ids - tenant.demand_gpus.keys()
        if missing:
            yield Problem(
                f"tenants[{tenant.id}].demand_gpus",
                f"no demand given for scenario(s) {', '.join(sorted(missing))}",
                "give one list of per-quarter GPUs for every scenario id",
            )
        for sid, series in tenant.demand_gpus.items():
            if sid not in scenario_ids:
                yield Problem(
                    f"tenants[{tenant.id}].demand_gpus.{sid}",
                    f"unknown scenario '{sid}'",
                    f"use one of: {', '.join(sorted(scenario_ids))}",
                )
            elif len(series) != horizon:
                yield Problem(
                    f"tenants[{tenant.id}].demand_gpus.{sid}",
                    f"{len(series)} values for a {horizon}-quarter horizon",
                    f"give exactly {horizon} values, one per quarter",
                )
        for sid in tenant.credit_repayment_share_by_scenario:
            if sid not in scenario_ids:
                yield Problem(
                    f"tenants[{tenant.id}].credit_repayment_share_by_scenario.{sid}",
                    f"unknown scenario '{sid}'",
                    f"use one of: {', '.join(sorted(scenario_ids))}",
                )
        for j in tenant.allowed_jurisdictions or []:
            if j not in jurisdictions:
                yield Problem(
                    f"tenants[{tenant.id}].allowed_jurisdictions",
                    f"no site is in jurisdiction '{j}'",
                    f"use one of the sites' jurisdictions: {', '.join(sorted(jurisdictions))}",
                )


CHECKS = (
    check_unique_ids,
    check_probabilities,
    check_rack_references,
    check_site_holds_a_rack_type,
    check_site_capacity,
    check_tenant_demand,
)


def check_scenario(scenario: Scenario) -> None:
    """Run every check; raise once with the problems found."""
    raise_problems(p for check in CHECKS for p in check(scenario))
