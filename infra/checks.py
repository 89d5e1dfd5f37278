"""Does this plan fit this stack? Checked before any resource is registered. Pure.

Every error names where the offending setting lives (stack file and config key, or CLI option)
and the command that fixes it, so `pulumi up` stops with one readable message, not a traceback.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from infra.naming import DNS_LABEL_MAX, NAMESPACE_STYLES, pool_name, tenant_namespace, whole_gpus
from infra.operator_bundle import DEFAULT_OPERATOR_NAMESPACE
from operators.api import (
    KUEUE_MAX_LEVEL_LABEL_LENGTH,
    PROTECTED_NAMESPACES,
    PROTECTED_PREFIX,
    RACK_TOPOLOGY_LEVELS,
)
from operators.decisions.nodepool import DNS_LABEL, label_key_ok, label_value_ok
from operators.decisions.ownership import is_protected
from operators.decisions.tenant import DEFAULT_INGRESS_NAMESPACES
from planner.errors import UserError
from planner.schema.plan import READABLE_PLAN_VERSIONS, Plan
from planner.schema.scenario import QUARTER_RE

BACKENDS: tuple[str, ...] = ("cluster-api", "karpenter")
_CLI_FLAGS = {
    "plan": "PLAN",
    "site": "--site",
    "period": "--period",
    "nodePoolBackend": "--backend",
    "namespaceStyle": "--namespace-style",
    "karpenterInstanceTypes": "--instance-types",
    "topologyBlockLabel": "--block-label",
    "singleNodeNvlinkRackTypes": "--single-node-nvlink",
    "operatorNamespace": "--operator-namespace",
    "operatorImage": "--operator-image",
}
ALL_RACK_TYPES = "*"
"""Key of a Karpenter instance-type list given for every rack type at once (a plain string)."""


class StackConfigError(UserError):
    """A stack setting is missing or has a value dsx does not know."""


class PlanMismatchError(UserError):
    """The plan cannot be provisioned for this stack: wrong site, period, schema or unverified."""


@dataclass(frozen=True)
class Origin:
    """Where the settings came from: a Pulumi stack file or the `dsx render` command line."""

    plan_path: str = "the plan"
    stack: str | None = None
    stack_file: str | None = None

    @classmethod
    def for_cli(cls, plan_path: str = "the plan") -> Origin:
        return cls(plan_path=plan_path)

    @classmethod
    def for_stack(cls, stack: str, stack_file: str, plan_path: str = "the plan") -> Origin:
        return cls(plan_path=plan_path, stack=stack, stack_file=stack_file)

    def where(self, key: str) -> str:
        """`dsx:period in stacks/Pulumi.batam.yaml`, or `--period` on the command line."""
        if self.stack_file:
            return f"dsx:{key} in {self.stack_file}"
        return _CLI_FLAGS.get(key, key)

    def fix(self, key: str, value: str) -> str:
        if self.stack is not None:
            return f"Fix: pulumi config set dsx:{key} {value} --stack {self.stack}"
        return f"Fix: pass {_CLI_FLAGS.get(key, key)} {value}"


_IMAGE = re.compile(r"[A-Za-z0-9\[][A-Za-z0-9._/:@+\[\]-]*")
"""An image reference's characters: registry (an IPv6 one in brackets), path, tag and digest."""
IMAGE_MAX_CHARS = 512
"""Longest operator image reference accepted (a registry, a path, a tag and a sha256 digest fit)."""


def plan_tenant_namespaces(plan: Plan, namespace_style: str) -> frozenset[str]:
    """Every tenant namespace the plan makes at any of its sites: with tenant-site, one cluster
    may hold several sites' tenants."""
    return frozenset(tenant_namespace(t.id, s.id, namespace_style) for t in plan.tenants for s in plan.sites)


def check_operator(
    image: str | None, namespace: str, origin: Origin, tenant_namespaces: frozenset[str] = frozenset()
) -> None:
    """The operator's namespace is a DNS-1123 label, neither the cluster's nor a tenant's
    (`tenant_namespaces`: created and deleted with the stack as dsx's own, either would go with
    it), and its image one reference without spaces, before either is put into a manifest or a
    file name (`dsx render -o` names files by it)."""
    if namespace in tenant_namespaces:
        free = next(
            n for n in ("dsx-system", "dsx-operator", "dsx-operator-system") if n not in tenant_namespaces
        )
        raise StackConfigError(
            f"{origin.where('operatorNamespace')} is {namespace!r}, a tenant's namespace in this plan",
            details=[
                "the operator's namespace is created, and deleted with the stack, as dsx's own",
                origin.fix("operatorNamespace", free),
            ],
        )
    if namespace != DEFAULT_OPERATOR_NAMESPACE and is_protected(
        namespace, PROTECTED_NAMESPACES
    ):  # its own: dsx-system
        raise StackConfigError(
            f"{origin.where('operatorNamespace')} is {namespace!r}, a namespace the cluster owns",
            details=[
                "the operator's namespace is created, and deleted with the stack, as dsx's own",
                origin.fix("operatorNamespace", "dsx-system"),
            ],
        )
    if len(namespace) > DNS_LABEL_MAX or not DNS_LABEL.fullmatch(namespace):
        raise StackConfigError(
            f"{origin.where('operatorNamespace')} is {namespace[:80]!r}, not a namespace name",
            details=[
                f"a namespace name is 1-{DNS_LABEL_MAX} lowercase letters, digits and '-', starting "
                "and ending with a letter or digit",
                origin.fix("operatorNamespace", "dsx-system"),
            ],
        )
    if image is not None and (len(image) > IMAGE_MAX_CHARS or not _IMAGE.fullmatch(image)):
        raise StackConfigError(
            f"{origin.where('operatorImage')} is {image[:80]!r}, not an image reference",
            details=[
                f"an image reference is at most {IMAGE_MAX_CHARS} characters, without spaces, "
                "e.g. registry.example.com/dsx/operator:1.2.0",
                origin.fix("operatorImage", "REGISTRY/REPOSITORY:TAG"),
            ],
        )


def check_settings(backend: str, namespace_style: str, origin: Origin) -> None:
    if backend not in BACKENDS:
        raise StackConfigError(
            f"{origin.where('nodePoolBackend')} is {backend!r}, not a node-pool backend dsx knows",
            details=[f"backends: {', '.join(BACKENDS)}", origin.fix("nodePoolBackend", BACKENDS[0])],
        )
    if namespace_style not in NAMESPACE_STYLES:
        raise StackConfigError(
            f"{origin.where('namespaceStyle')} is {namespace_style!r}, not a namespace style dsx knows",
            details=[
                f"styles: {', '.join(NAMESPACE_STYLES)}",
                origin.fix("namespaceStyle", NAMESPACE_STYLES[0]),
            ],
        )


def check_plan_matches(
    plan: Plan, site: str, period: str, origin: Origin, *, namespace_style: str = "tenant"
) -> None:
    """Raise `PlanMismatchError` unless the plan can be provisioned at (site, period)."""
    _check_schema_and_verification(plan, origin)
    _check_site_and_period(plan, site, period, origin)
    _check_names(plan, site, namespace_style, origin)
    _check_pool_capacity(plan, site, period, origin)


def _check_schema_and_verification(plan: Plan, origin: Origin) -> None:
    if plan.schema_version not in READABLE_PLAN_VERSIONS:
        raise PlanMismatchError(
            f"{origin.plan_path}: plan schema_version is {plan.schema_version!r}, this dsx reads {', '.join(map(repr, READABLE_PLAN_VERSIONS[:-1]))} and {READABLE_PLAN_VERSIONS[-1]!r}",
            details=["Fix: re-solve the scenario with this dsx (dsx plan solve ...)"],
        )
    if not plan.verification.passed:
        shown = plan.verification.violations[:5]
        more = len(plan.verification.violations) - len(shown)
        raise PlanMismatchError(
            f"{origin.plan_path}: the plan failed verification, so it is not provisioned",
            details=[
                *(f"violation: {v}" for v in shown),
                *([f"... and {more} more"] if more > 0 else []),
                "Fix: re-solve the scenario (dsx plan solve ...) and point "
                f"{origin.where('plan')} at a plan whose verification passed",
            ],
        )


def _check_site_and_period(plan: Plan, site: str, period: str, origin: Origin) -> None:
    sites = [s.id for s in plan.sites]
    if site not in sites:
        raise PlanMismatchError(
            f"{origin.where('site')} is {site!r}, which is not a site in {origin.plan_path}",
            details=[
                f"sites in the plan: {', '.join(sites)}",
                origin.fix("site", sites[0] if sites else "<site>"),
            ],
        )
    if period not in plan.periods and not QUARTER_RE.fullmatch(period):
        meant = period.strip().upper()
        raise PlanMismatchError(
            f"{origin.where('period')} is {period[:40]!r}, not a quarter such as 2027Q4",
            details=[
                origin.fix(
                    "period",
                    meant if meant in plan.periods else plan.periods[-1] if plan.periods else "2027Q4",
                )
            ],
        )
    if period not in plan.periods:
        horizon = f"{plan.periods[0]}..{plan.periods[-1]}" if plan.periods else "(empty)"
        raise PlanMismatchError(
            f"{origin.where('period')} is {period!r}, outside the horizon of {origin.plan_path} ({horizon})",
            details=[origin.fix("period", plan.periods[0] if plan.periods else "<period>")],
        )


RESERVED_TENANT_NAMESPACES = frozenset(
    PROTECTED_NAMESPACES | set(DEFAULT_INGRESS_NAMESPACES) | {DEFAULT_OPERATOR_NAMESPACE}
)
"""Namespaces no tenant may be given: the cluster's own, the operator's, and those whose pods every
tenant's network policy admits (a tenant there could reach every other tenant's pods)."""


def _check_names(plan: Plan, site: str, namespace_style: str, origin: Origin) -> None:
    """Names must be Kubernetes labels, no tenant's namespace may be a reserved one, and in a
    shared cluster (tenant-site) no two sites' tenants or pools may get the same name: the later
    `pulumi up` would take over the earlier one's namespace, quota and owners."""
    too_long = [pool_name(site, r.id) for r in plan.rack_types if len(pool_name(site, r.id)) > DNS_LABEL_MAX]
    too_long += [
        tenant_namespace(t.id, site, namespace_style)
        for t in plan.tenants
        if len(tenant_namespace(t.id, site, namespace_style)) > DNS_LABEL_MAX
    ]
    if too_long:
        raise PlanMismatchError(
            f"{origin.plan_path}: names longer than {DNS_LABEL_MAX} characters cannot be Kubernetes labels",
            details=[
                *too_long,
                "Fix: shorten the site, rack type or tenant ids in the scenario and re-solve",
            ],
        )
    reserved = [
        f"tenant {t.id!r}: namespace {namespace!r}"
        for t in plan.tenants
        if is_protected(
            namespace := tenant_namespace(t.id, site, namespace_style), RESERVED_TENANT_NAMESPACES
        )
    ]
    if reserved:
        raise PlanMismatchError(
            f"{origin.plan_path}: a tenant's namespace at {site} would be one no tenant may have",
            details=[
                *reserved,
                f"reserved: {PROTECTED_PREFIX}*, {', '.join(sorted(RESERVED_TENANT_NAMESPACES))} (the cluster's, "
                "its add-ons', the operator's, and the ingress and monitoring namespaces every tenant's network "
                "policy admits)",
                "Fix: rename the tenant in the scenario and re-solve",
            ],
        )
    if namespace_style != "tenant":
        tenants = [
            (tenant_namespace(t.id, s.id, namespace_style), f"tenant {t.id!r} at {s.id!r}", s.id)
            for t in plan.tenants
            for s in plan.sites
        ]
        pools = [  # a pool is made only where the plan has racks of its type in some quarter
            (pool_name(site_id, rack_id), f"rack type {rack_id!r} at {site_id!r}", site_id)
            for site_id, rack_id in sorted(
                {(r.site, r.rack_type) for r in plan.racks if r.racks_installed > 0}
            )
        ]
        clashes = _names_given_twice(tenants, site) + _names_given_twice(pools, site)
        if clashes:
            raise PlanMismatchError(
                f"{origin.plan_path}: with {origin.where('namespaceStyle')} {namespace_style}, sites share a "
                "cluster, and these names would be given twice in it",
                details=[
                    *clashes,
                    "the later stack would take over the earlier one's namespace, quota and owners",
                    "Fix: rename a site, rack type or tenant in the scenario so the joined names differ, and re-solve",
                ],
            )


def _names_given_twice(named: list[tuple[str, str, str]], site: str) -> list[str]:
    """Names of one kind (name, whose, site) that `site`'s objects would share with another's in
    one cluster: `<tenant>-<site>` and `<site>-<rack type>` are joined with '-', which ids hold
    too, so tenant agent at platform-sydney and agent-platform at sydney both get
    agent-platform-sydney."""
    owners: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, whose, at in named:
        owners[name].append((whose, at))
    return [
        f"{name}: {' and '.join(whose for whose, _ in given)}"
        for name, given in sorted(owners.items())
        if len(given) > 1 and any(at == site for _, at in given)
    ]


def _check_pool_capacity(plan: Plan, site: str, period: str, origin: Origin) -> None:
    """The sum of tenant quotas must fit the pool; a plan that says otherwise is not applied."""
    racks = plan.racks_at(site, period)
    known_tenants = {t.id for t in plan.tenants}
    granted: dict[str, int] = defaultdict(int)
    problems: list[str] = [
        f"pool {pool_name(site, rack_type)}: {count} racks; a pool cannot hold fewer than none"
        for rack_type, count in sorted(racks.items())
        if count < 0
    ]
    for q in plan.quotas_at(site, period):
        if not math.isfinite(q.quota_gpus) or q.quota_gpus < 0:
            # Rounding a negative quota to 0 would silently drop the tenant: refuse it instead.
            problems.append(
                f"tenant {q.tenant!r} on {pool_name(site, q.rack_type)}: quota {q.quota_gpus:g} GPUs "
                "is not a number of GPUs (negative or not finite)"
            )
            continue
        if q.tenant not in known_tenants:
            problems.append(f"quota for unknown tenant {q.tenant!r} on {pool_name(site, q.rack_type)}")
        granted[q.rack_type] += whole_gpus(q.quota_gpus)
    for rack_type, gpus in sorted(granted.items()):
        if rack_type not in {r.id for r in plan.rack_types}:
            problems.append(f"quota on unknown rack type {rack_type!r}")
            continue
        capacity = racks.get(rack_type, 0) * plan.rack_type(rack_type).gpus_per_rack
        if gpus > capacity:
            problems.append(
                f"pool {pool_name(site, rack_type)}: quotas sum to {gpus} GPUs, the pool has {capacity}"
            )
    if problems:
        raise PlanMismatchError(
            f"{origin.plan_path}: tenant quotas at {site} in {period} do not fit the node pools",
            details=[*problems, "Fix: re-solve the scenario; a verified plan never over-commits a pool"],
        )


def parse_instance_types(text: str | None, origin: Origin) -> dict[str, tuple[str, ...]]:
    """Karpenter instance types per rack type, written `RACK_TYPE=TYPE[,TYPE];RACK_TYPE=...`, or
    one bare `TYPE[,TYPE]` list for every rack type (kept under `ALL_RACK_TYPES`)."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in (e.strip() for e in (text or "").split(";")):
        if not entry:
            continue
        rack_type, named, listed = entry.rpartition("=")
        key = rack_type.strip() if named else ALL_RACK_TYPES
        types = tuple(t.strip() for t in listed.split(",") if t.strip())
        if not key or not types or key in out or (out and ALL_RACK_TYPES in {key, *out}):
            raise StackConfigError(
                f"{origin.where('karpenterInstanceTypes')}: {entry!r} is not RACK_TYPE=TYPE[,TYPE]"
                + (" (each rack type once; a bare list only on its own)" if types and key else ""),
                details=[origin.fix("karpenterInstanceTypes", "'gb300-nvl72=gb300-tray;b300-hgx=b300-8gpu'")],
            )
        bad = [t for t in types if not label_value_ok(t)]
        if bad:
            # they become a node.kubernetes.io/instance-type requirement's values: label values,
            # which the GpuNodePool schema and the operator refuse otherwise (after `pulumi up`)
            raise StackConfigError(
                f"{origin.where('karpenterInstanceTypes')}: instance type "
                + ", ".join(repr(t) for t in bad)
                + " is not a label value (at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit)",
                details=[origin.fix("karpenterInstanceTypes", "'gb300-nvl72=gb300-tray;b300-hgx=b300-8gpu'")],
            )
        out[key] = types
    return out


def check_block_label(label: str | None, origin: Origin) -> None:
    """A block label must be a node label key that is not already a level below the block."""
    if label is None:
        return
    valid = len(label) <= KUEUE_MAX_LEVEL_LABEL_LENGTH and label_key_ok(label)
    if not valid or label in RACK_TOPOLOGY_LEVELS:
        raise StackConfigError(
            f"{origin.where('topologyBlockLabel')} is {label!r}, not the label of a network block"
            + ("" if valid else " (not a node label key)"),
            details=[
                f"the levels below the block are {' → '.join(RACK_TOPOLOGY_LEVELS)}; name the label your "
                "fabric tooling sets on every GPU node for its block (e.g. its spine switch), or "
                "leave it unset for a rack → node topology",
                origin.fix("topologyBlockLabel", "network.topology.nvidia.com/spine"),
            ],
        )


def check_single_node_nvlink(rack_types: tuple[str, ...], plan: Plan, origin: Origin) -> None:
    """Every rack type said to have a one-node NVLink domain must be one the plan has."""
    known = {r.id for r in plan.rack_types}
    unknown = sorted(set(rack_types) - known)
    if unknown:
        raise StackConfigError(
            f"{origin.where('singleNodeNvlinkRackTypes')} names rack types {origin.plan_path} does not "
            f"have: {', '.join(unknown)}",
            details=[
                f"rack types in the plan: {', '.join(sorted(known))}",
                origin.fix("singleNodeNvlinkRackTypes", "b300-hgx"),
            ],
        )


def check_instance_types_backend(
    by_rack_type: dict[str, tuple[str, ...]], backend: str, origin: Origin
) -> None:
    """Instance types name Karpenter's machines; with Cluster API they would be ignored without a
    word, and the pools launched from its MachineDeployments' templates instead."""
    if by_rack_type and backend != "karpenter":
        raise StackConfigError(
            f"{origin.where('karpenterInstanceTypes')} is set, but {origin.where('nodePoolBackend')} is "
            f"{backend}: instance types are for Karpenter's pools only",
            details=[
                f"Fix: remove {origin.where('karpenterInstanceTypes')}, or use the karpenter backend "
                f"({origin.fix('nodePoolBackend', 'karpenter').removeprefix('Fix: ')})"
            ],
        )


def check_instance_types(
    by_rack_type: dict[str, tuple[str, ...]],
    plan: Plan,
    site: str,
    rack_types: list[str],
    origin: Origin,
) -> dict[str, tuple[str, ...]]:
    """Each pool's Karpenter instance types (rack type → types), refusing settings that would let
    one rack type's pool launch another's machines: one list for a site running several rack
    types, or an instance type named under two of them. A rack type not named gets its own id."""
    where = origin.where("karpenterInstanceTypes")
    per_rack = origin.fix(
        "karpenterInstanceTypes",
        "'" + ";".join(f"{rt}=<instance-type>" for rt in rack_types or ["<rack-type>"]) + "'",
    )
    known = {r.id for r in plan.rack_types}
    unknown = sorted(set(by_rack_type) - known - {ALL_RACK_TYPES})
    if unknown:
        raise StackConfigError(
            f"{where} names rack types {origin.plan_path} does not have: {', '.join(unknown)}",
            details=[f"rack types in the plan: {', '.join(sorted(known))}", per_rack],
        )
    if ALL_RACK_TYPES in by_rack_type:
        if len(rack_types) > 1:
            raise StackConfigError(
                f"{where} names one instance-type list for every pool, but {site} runs "
                f"{len(rack_types)} rack types ({', '.join(rack_types)}): Karpenter would launch "
                "either rack type's machines for both pools",
                details=["name the instance types per rack type", per_rack],
            )
        return {rt: by_rack_type[ALL_RACK_TYPES] for rt in rack_types}
    chosen = {rt: tuple(by_rack_type.get(rt) or (rt,)) for rt in rack_types}
    users: dict[str, list[str]] = defaultdict(list)
    for rack_type, types in chosen.items():
        for instance_type in types:
            users[instance_type].append(rack_type)
    shared = {t: rts for t, rts in sorted(users.items()) if len(rts) > 1}
    if shared:
        raise StackConfigError(
            f"{where}: an instance type is named for more than one rack type at {site}, so either "
            "pool could launch the other's machines",
            details=[
                *(f"{t}: {', '.join(rts)}" for t, rts in shared.items()),
                "give each rack type only its own instance types",
                per_rack,
            ],
        )
    return chosen
