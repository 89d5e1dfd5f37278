"""Scenario inputs that validate field by field but would fail later: checked when the file is read.

- Names: ids become Kubernetes object names and label values when a plan is provisioned
  (`infra/naming.py`: a node pool is `<site>-<rack type>`, a namespace `<tenant>` or
  `<tenant>-<site>`), so every such combination must stay within 63 characters; `gpu_product`
  becomes the value of the `nvidia.com/gpu.product` label; owners become RBAC subjects.
- Sizes: every amount must be a number HiGHS can work with; the upper bounds below are far above
  any real AI factory (a 100 GW site, a US$1 billion rack) and far below where the solver's
  arithmetic breaks (it treats 1e20 as infinite).

Each problem names the field path, what is wrong and the fix (`planner.schema.consistency.Problem`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from planner.schema.consistency import Problem

if TYPE_CHECKING:
    from planner.schema.scenario import Scenario

KUBERNETES_NAME_MAX = 63
"""Longest DNS-1123 label, and longest label value (infra.naming.DNS_LABEL_MAX)."""
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
OWNER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._+=:/-]*$")
OWNER_KINDS = ("user", "group")
SHOWN_ID_CHARS = 24

UPPER_BOUNDS: dict[str, dict[str, float]] = {
    "sites": {
        "power_cap_mw": 1e5,
        "existing_mw": 1e5,
        "power_block_mw": 1e5,
        "power_price_usd_per_mwh": 1e6,
        "power_capex_usd_per_mw": 1e9,
        "gpu_cap": 1e9,
        "max_racks_built_per_period": 1e6,
        "max_power_blocks_per_period": 1e6,
        "power_lead_time_periods": 400,
        "power_asset_lifetime_periods": 400,
    },
    "rack_types": {
        "gpus_per_rack": 1e4,
        "nodes_per_rack": 1e4,
        "kw_per_rack": 1e4,
        "capex_usd": 1e9,
        "lifetime_periods": 400,
        "opex_usd_per_rack_period": 1e9,
    },
    "tenants": {"price_usd_per_gpu_hour": 1e4},
    "terms": {"buyback_price_usd_per_gpu_hour": 1e4},
}
"""Field -> largest accepted value, per section of the scenario file."""
DEMAND_GPUS_MAX = 1e9
EXISTING_RACKS_MAX = 1e6


def short(text: str, limit: int = SHOWN_ID_CHARS) -> str:
    """An id shortened for a message: its head and tail around an ellipsis."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return f"{text[:head]}…{text[-(limit - 1 - head) :]}"


FLOAT_RANGE = 10**300
"""Integers at most this large are shown as floats (`magnitude`); a float reaches about 1.8e308."""


def magnitude(value: float) -> str:
    """A number for a message. An integer beyond a float's range (a 401-digit `--set` value,
    which pydantic takes from text) cannot be formatted as one: its digits are counted."""
    if isinstance(value, int) and abs(value) > FLOAT_RANGE:
        return f"a {len(str(abs(value))):,}-digit number"
    return f"{value:g}"


def _too_big(path: str, value: float, bound: float) -> Problem:
    return Problem(
        path,
        f"{magnitude(value)} is larger than any real AI factory needs (at most {bound:g} is accepted)",
        "check the unit in the field name (MW, not W; US$, not cents) and correct the value",
    )


def check_sizes(scenario: Scenario) -> Iterator[Problem]:
    for section, bounds in UPPER_BOUNDS.items():
        items: Any = getattr(scenario, section)
        listed = isinstance(items, list)
        for item in items if listed else [items]:
            where = f"{section}[{item.id}]" if listed else section
            for name, bound in bounds.items():
                value = getattr(item, name)
                if value is not None and value > bound:
                    yield _too_big(f"{where}.{name}", value, bound)
    for site in scenario.sites:
        for rack, count in site.existing_racks.items():
            if count > EXISTING_RACKS_MAX:
                yield _too_big(f"sites[{site.id}].existing_racks.{rack}", count, EXISTING_RACKS_MAX)
    for tenant in scenario.tenants:
        for case, values in tenant.demand_gpus.items():
            for quarter, value in enumerate(values):
                if value > DEMAND_GPUS_MAX:
                    path = f"tenants[{tenant.id}].demand_gpus.{case}[{quarter}]"
                    yield _too_big(path, value, DEMAND_GPUS_MAX)


def check_kubernetes_names(scenario: Scenario) -> Iterator[Problem]:
    """Combinations of ids that become one Kubernetes name or label value (see infra/naming.py)."""
    for site in scenario.sites:
        for rack in scenario.site_rack_types(site):
            pool = f"{site.id}-{rack.id}"
            if len(pool) > KUBERNETES_NAME_MAX:
                yield Problem(
                    f"sites[{short(site.id)}].id + rack_types[{short(rack.id)}].id",
                    f"the node pool name '{short(pool, 40)}' would be {len(pool)} characters; "
                    f"Kubernetes names hold at most {KUBERNETES_NAME_MAX}",
                    f"shorten the site or rack type id (together at most {KUBERNETES_NAME_MAX - 1})",
                )
        for tenant in scenario.tenants:
            namespace = f"{tenant.id}-{site.id}"
            if len(namespace) > KUBERNETES_NAME_MAX:
                yield Problem(
                    f"tenants[{short(tenant.id)}].id + sites[{short(site.id)}].id",
                    f"the namespace '{short(namespace, 40)}' (namespace style tenant-site) would be "
                    f"{len(namespace)} characters; Kubernetes names hold at most {KUBERNETES_NAME_MAX}",
                    f"shorten the tenant or site id (together at most {KUBERNETES_NAME_MAX - 1})",
                )
    for rack in scenario.rack_types:
        product = rack.gpu_product
        if not gpu_product_ok(product):
            yield Problem(
                f"rack_types[{rack.id}].gpu_product",
                f"{product!r} is not a Kubernetes label value (it becomes nvidia.com/gpu.product)",
                "use 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or "
                "digit, as the GPU operator labels it, e.g. NVIDIA-GB300",
            )
    for tenant in scenario.tenants:
        for n, owner in enumerate(tenant.owners):
            message = owner_problem(owner)
            if message:
                yield Problem(
                    f"tenants[{tenant.id}].owners[{n}]",
                    message,
                    "write group:NAME or user:NAME (NAME: letters, digits and @ . _ + = : / -), "
                    "e.g. group:inference-admins or user:alice@example.com",
                )


def gpu_product_ok(product: str) -> bool:
    """Whether `product` can be the `nvidia.com/gpu.product` label value (a DNS label value)."""
    return bool(product) and len(product) <= KUBERNETES_NAME_MAX and bool(LABEL_VALUE_RE.fullmatch(product))


def owner_problem(owner: str) -> str | None:
    """Why an owner cannot become an RBAC subject, or None. Accepted: `user:NAME`, `group:NAME`,
    or a bare user NAME without a colon (e.g. an e-mail address)."""
    kind, colon, name = owner.partition(":")
    if not colon:
        kind, name = "user", owner
    elif kind not in OWNER_KINDS:
        import difflib

        close = difflib.get_close_matches(kind, OWNER_KINDS, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]}:?)" if close else ""
        return f"{owner!r} starts with {kind + ':'!r}, which is neither user: nor group:{hint}"
    if not name:
        return f"{owner!r} names no {kind}"
    if len(name) > 253 or not OWNER_NAME_RE.fullmatch(name):
        return f"{owner!r}: {name!r} is not a usable {kind} name (spaces and symbols such as ! are not)"
    return None


def check_inputs(scenario: Scenario) -> Iterator[Problem]:
    return itertools.chain(check_sizes(scenario), check_kubernetes_names(scenario))
