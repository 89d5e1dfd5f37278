"""Tenant → namespaces with quota, limits, owner RBAC, isolation and Kueue queues; and its status."""

from __future__ import annotations

import ipaddress
import math
import re
from fractions import Fraction
from typing import Any

from operators.api import DEFAULT_CAPI_NAMESPACE as DEFAULT_OPERATOR_NAMESPACE
from operators.api import (
    DEFAULT_DELETION_POLICY,
    GPU_RESOURCE,
    INT32_MAX,
    KUEUE_COVERED_RESOURCES,
    LOCAL_QUEUE_NAME,
    MAX_NAME_LENGTH,
    MAX_TENANT_NAMESPACES,
    NAMESPACE_ADMIN_ROLE,
    NAMESPACE_NAME_LABEL,
    NAMESPACES_REFUSED,
    OPERATOR_IN_NAMESPACE_ROLE,
    OPERATOR_SERVICE_ACCOUNT,
    OVERCOMMITTED,
    OWNER_UID_ANNOTATION,
    POD_SECURITY_ENFORCE_LABEL,
    POD_SECURITY_VERSION,
    POD_SECURITY_WARN_LABEL,
    READY,
    SITE_LABEL,
    TENANT_LABEL,
    addon_api_version,
)
from operators.decisions.conditions import Condition
from operators.decisions.meta import MAX_SHOWN, Obj, object_meta, shown
from operators.decisions.nodepool import InvalidSpec, whole_number
from operators.decisions.overcommit import Grant, split_evenly
from operators.decisions.ownership import Claim, refused_message, subject_problems
from operators.decisions.quantity import parse_quantity

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
POLICIES = ("Retain", "DeleteWhenEmpty", "Delete")
QUOTA_NAME = "dsx-quota"
LIMITS_NAME = "dsx-limits"
OWNERS_NAME = "dsx-owners"
OPERATOR_BINDING_NAME = "dsx-operator"
NETPOL_NAME = "dsx-tenant-isolation"
DEFAULT_LIMITS = {"cpu": "16", "memory": "128Gi"}
"""A container that names no limits gets one GPU's share of a GPU node (GB300/B300 nodes: 4 GPUs,
~72 cores and ~1 TiB each, so 16 cores and 128 GiB per GPU, the planner's sizing per GPU)."""
DEFAULT_REQUESTS = {"cpu": "1", "memory": "4Gi"}
"""What Kueue and the quota count for a container that names no requests: small, so sidecars and
inference front ends fit; GPU work names its own."""
PER_GPU_WHEN_UNSET = {"cpu": 16, "memory": 128 * 2**30, "pods": 4}
"""ClusterQueue quota per requested GPU for a resource the Tenant gives no quota of."""
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
DEFAULT_INGRESS_NAMESPACES = ("ingress-nginx", "monitoring")
"""Namespaces whose pods may reach every tenant's pods (ingress controller, Prometheus); the
operator's DSX_INGRESS_NAMESPACES replaces them (operators/config.py)."""
DEFAULT_POD_SECURITY = "baseline"
"""Pod Security Admission level of tenant namespaces unless `DSX_POD_SECURITY` says restricted."""

# -- Bounds of the spec's quantities and CIDRs (also in the CRD schema, checked again here: the
#    operator must not trust that the schema it sees is the one shipped, nor that it can say all) --
MAX_QUANTITY_LENGTH = 32
"""Characters in spec.cpuQuota / spec.memoryQuota (CRD maxLength): the largest quantity allowed
below is 19 digits; without a bound, a 5 000-digit quantity made the parser raise."""
QUANTITY_SHAPES = {
    "cpuQuota": re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E)?$"),
    "memoryQuota": re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"),
}
"""The CRD's patterns: a non-negative decimal and a suffix, no exponent (`1e999999999` would be
a number of a billion digits)."""
INT64_MAX = 2**63 - 1
QUANTITY_MAXIMUM = {"cpuQuota": Fraction(INT64_MAX, 1000), "memoryQuota": Fraction(INT64_MAX)}
"""Kueue counts a ClusterQueue's CPU in int64 millicores and everything else in int64 units
(`resources.ResourceValue`): above these its quota would overflow."""
MAX_EGRESS_CIDRS = 32
EGRESS_CIDR_SHAPE = re.compile(r"^[0-9a-fA-F:.]+/(0|[1-9][0-9]?|1[01][0-9]|12[0-8])$")
"""An address and a prefix length without leading zeros (no netmask, no `%zone`), as the CRD
says; `cidr_problem` then parses it."""


def quantity_problem(field: str, value: object) -> str | None:
    """Why spec.<field> (cpuQuota or memoryQuota) is no quantity the operator can write, or None.
    Its length and shape are checked before it is parsed, so no input can make parsing slow or
    raise; the value must fit what Kueue can count (`QUANTITY_MAXIMUM`)."""
    if not isinstance(value, str):
        return f"spec.{field} must be a string quantity such as '20000' or '200Ti'"
    if len(value) > MAX_QUANTITY_LENGTH or not QUANTITY_SHAPES[field].fullmatch(value):
        return (
            f"spec.{field} {shown(value, MAX_QUANTITY_LENGTH)} is not a quantity of at most "
            f"{MAX_QUANTITY_LENGTH} characters (digits, an optional fraction, a unit suffix)"
        )
    parsed = parse_quantity(value)
    if parsed is None or parsed > QUANTITY_MAXIMUM[field]:
        unit = "millicores" if field == "cpuQuota" else "bytes (8Ei less one)"
        return (
            f"spec.{field} {shown(value, MAX_SHOWN)} is more than Kueue can count: at most {INT64_MAX} {unit}"
        )
    return None


def cidr_problem(index: int, cidr: object) -> str | None:
    """Why spec.network.egressCIDRs[index] is no CIDR every supported API server takes for a
    NetworkPolicy ipBlock, or None. Strict: an address with host bits set (`10.0.0.1/8`) and an
    IPv4-mapped IPv6 range are refused. v1.20 to v1.32 accept both (with a warning), but they are
    ambiguous (KEP-4858: is `10.0.0.1/8` the /8 or the one address?) and v1.33 refuses them with
    the StrictIPCIDRValidation gate on, so a CIDR accepted here is refused by no supported server."""
    where = f"spec.network.egressCIDRs[{index}]"
    if not isinstance(cidr, str):
        return f"{where} must be a string CIDR such as 10.20.0.0/16"
    quoted = shown(cidr, 50)
    if not EGRESS_CIDR_SHAPE.fullmatch(cidr):
        return f"{where} {quoted} is not a CIDR (an address, '/', a prefix length of 0 to 128)"
    address, length = cidr.split("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (
            f"{where} {quoted} is not an IPv4 or IPv6 address and prefix (an IPv4 octet has no leading zero)"
        )
    if int(length) > ip.max_prefixlen:
        return f"{where} {quoted}: an IPv{ip.version} prefix is at most /{ip.max_prefixlen}"
    network = ipaddress.ip_network(cidr, strict=False)
    if network.network_address != ip:
        return (
            f"{where} {quoted} has host bits set: write {network} for the range, "
            f"or {address}/{ip.max_prefixlen} for the one address"
        )
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"{where} {quoted} is an IPv4-mapped IPv6 range: write it as an IPv4 CIDR"
    return None


def validate_tenant(tenant: Obj, allowed_system_subjects: frozenset[str] = frozenset()) -> None:
    """Refuse what cannot be reconciled safely; the message names the field. Never raises
    anything but InvalidSpec, whatever the object holds (a bad spec must not stall others)."""
    try:
        _validate(tenant, allowed_system_subjects)
    except InvalidSpec:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise InvalidSpec(f"spec is malformed: {error}") from None


def _validate(tenant: Obj, allowed_system_subjects: frozenset[str]) -> None:
    name = (tenant.get("metadata") or {}).get("name") or ""
    if len(name) > MAX_NAME_LENGTH or not DNS_LABEL.fullmatch(name):
        raise InvalidSpec(
            f"metadata.name '{name}' must be a DNS-1123 label of at most {MAX_NAME_LENGTH} characters"
        )
    spec = tenant.get("spec") or {}
    if not isinstance(spec, dict):
        raise InvalidSpec("spec must be an object")
    namespaces = spec.get("namespaces") or []
    site = spec.get("site")
    if not isinstance(site, str) or not site:
        raise InvalidSpec("spec.site is required")
    if len(site) > MAX_NAME_LENGTH or not DNS_LABEL.fullmatch(site):
        # it becomes a label value on every namespace and the ClusterQueue's cohort
        raise InvalidSpec(f"spec.site {shown(site, MAX_NAME_LENGTH)} is not a DNS-1123 label")
    if not isinstance(namespaces, list) or not namespaces:
        raise InvalidSpec("spec.namespaces needs at least one namespace")
    if len(namespaces) > MAX_TENANT_NAMESPACES:
        raise InvalidSpec(f"spec.namespaces lists {len(namespaces)}; at most {MAX_TENANT_NAMESPACES}")
    for ns in namespaces:
        if not isinstance(ns, str) or len(ns) > MAX_NAME_LENGTH or not DNS_LABEL.fullmatch(ns):
            raise InvalidSpec(f"spec.namespaces: {shown(str(ns), MAX_NAME_LENGTH)} is not a DNS-1123 label")
    if len(set(namespaces)) != len(namespaces):
        raise InvalidSpec("spec.namespaces lists a namespace twice")
    quota = spec.get("gpuQuota") or []
    pools = [q.get("pool") for q in quota]
    if len(set(pools)) != len(pools):
        raise InvalidSpec("spec.gpuQuota lists a pool twice")
    for q in quota:
        gpus = q.get("gpus", 0)
        if not whole_number(gpus) or not 0 <= gpus <= INT32_MAX:
            raise InvalidSpec(f"spec.gpuQuota[].gpus must be an integer from 0 to {INT32_MAX}")
        if not isinstance(q.get("pool"), str) or not DNS_LABEL.fullmatch(q["pool"]):
            raise InvalidSpec(
                f"spec.gpuQuota[].pool {shown(str(q.get('pool')), MAX_NAME_LENGTH)} is not a pool name"
            )
    for field in QUANTITY_SHAPES:
        if spec.get(field) is not None and (problem := quantity_problem(field, spec[field])):
            raise InvalidSpec(problem)
    for field in ("podQuota", "kueue.lendingLimitGpus", "kueue.borrowingLimitGpus"):
        parent, _, key = field.rpartition(".")
        holder = (spec.get(parent) or {}) if parent else spec
        value = holder.get(key)
        if value is not None and (not whole_number(value) or not 0 <= value <= INT32_MAX):
            raise InvalidSpec(f"spec.{field} must be an integer from 0 to {INT32_MAX}")
    cidrs = (spec.get("network") or {}).get("egressCIDRs") or []
    if not isinstance(cidrs, list) or len(cidrs) > MAX_EGRESS_CIDRS:
        raise InvalidSpec(f"spec.network.egressCIDRs must be a list of at most {MAX_EGRESS_CIDRS} CIDRs")
    for index, cidr in enumerate(cidrs):
        if problem := cidr_problem(index, cidr):
            raise InvalidSpec(problem)
    if spec.get("deletionPolicy", DEFAULT_DELETION_POLICY) not in POLICIES:
        raise InvalidSpec(f"spec.deletionPolicy must be one of {', '.join(POLICIES)}")
    problems = subject_problems(spec.get("owners"), allowed_system_subjects)
    if problems:
        raise InvalidSpec("; ".join(problems))


def requested_gpus(tenant: Obj) -> dict[str, int]:
    return {q["pool"]: int(q["gpus"]) for q in tenant["spec"].get("gpuQuota") or []}


def namespace_labels(tenant: Obj, namespace: str, pod_security: str = DEFAULT_POD_SECURITY) -> dict[str, str]:
    """The tenant's name and site, and the Pod Security Admission level its pods run at
    (`api.POD_SECURITY_LEVELS`), with a warning at restricted; kept as drift like any label."""
    return {
        TENANT_LABEL: tenant["metadata"]["name"],
        SITE_LABEL: tenant["spec"]["site"],
        NAMESPACE_NAME_LABEL: namespace,
        POD_SECURITY_ENFORCE_LABEL: pod_security,
        f"{POD_SECURITY_ENFORCE_LABEL}-version": POD_SECURITY_VERSION,
        POD_SECURITY_WARN_LABEL: "restricted",
        f"{POD_SECURITY_WARN_LABEL}-version": POD_SECURITY_VERSION,
    }


def held_namespaces_selector(held: list[str]) -> dict[str, Any]:
    """Exactly the namespaces the tenant holds, by name (`api.NAMESPACE_NAME_LABEL`): a namespace
    someone else labels `dsx.ai/tenant: <tenant>` is not one of them. Holding none, it selects
    nothing (an `In` needs a value, so: the name label both present and absent)."""
    if not held:
        return {
            "matchExpressions": [
                {"key": NAMESPACE_NAME_LABEL, "operator": "Exists"},
                {"key": NAMESPACE_NAME_LABEL, "operator": "DoesNotExist"},
            ]
        }
    return {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(held)}]}


POD_SECURITY_ORDER = ("privileged", "baseline", "restricted")
"""Pod Security levels, least strict first."""


def stricter_pod_security(namespace_obj: Obj, live_labels: dict[str, str]) -> Obj:
    """The Namespace as wanted, but where the live namespace enforces a stricter level than the
    operator's (a site admin's `restricted`), that level and its version stay, and a warn level
    someone set otherwise is left alone: the operator only ever raises a namespace's Pod Security."""
    labels = dict(namespace_obj["metadata"]["labels"])
    live = live_labels.get(POD_SECURITY_ENFORCE_LABEL, "")
    if live in POD_SECURITY_ORDER and POD_SECURITY_ORDER.index(live) >= POD_SECURITY_ORDER.index(
        labels[POD_SECURITY_ENFORCE_LABEL]
    ):
        version = f"{POD_SECURITY_ENFORCE_LABEL}-version"
        labels[POD_SECURITY_ENFORCE_LABEL] = live
        if version in live_labels:
            labels[version] = live_labels[version]
    if (
        live_labels.get(POD_SECURITY_WARN_LABEL, labels[POD_SECURITY_WARN_LABEL])
        != labels[POD_SECURITY_WARN_LABEL]
    ):
        labels.pop(POD_SECURITY_WARN_LABEL)
        labels.pop(f"{POD_SECURITY_WARN_LABEL}-version", None)
    return {**namespace_obj, "metadata": {**namespace_obj["metadata"], "labels": labels}}


def namespace_object(tenant: Obj, namespace: str, pod_security: str = DEFAULT_POD_SECURITY) -> Obj:
    # No owner reference: garbage collection must never delete a tenant's namespace behind the
    # deletion policy's back. The uid annotation is the ownership proof (`decisions.ownership`).
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": object_meta(
            namespace,
            tenant,
            labels=namespace_labels(tenant, namespace, pod_security),
            annotations={OWNER_UID_ANNOTATION: tenant["metadata"].get("uid", "")},
            owned=False,
        ),
    }


def resource_quota(tenant: Obj, namespace: str, gpus: int) -> Obj:
    spec = tenant["spec"]
    hard: dict[str, str] = {f"requests.{GPU_RESOURCE}": str(gpus)}
    if spec.get("cpuQuota"):
        hard["requests.cpu"] = str(spec["cpuQuota"])
    if spec.get("memoryQuota"):
        hard["requests.memory"] = str(spec["memoryQuota"])
    if spec.get("podQuota") is not None:
        hard["pods"] = str(spec["podQuota"])
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": object_meta(QUOTA_NAME, tenant, namespace=namespace),
        "spec": {"hard": hard},
    }


def limit_range(tenant: Obj, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": object_meta(LIMITS_NAME, tenant, namespace=namespace),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": dict(DEFAULT_LIMITS),
                    "defaultRequest": dict(DEFAULT_REQUESTS),
                }
            ]
        },
    }


def owner_role_binding(tenant: Obj, namespace: str) -> Obj:
    owners = tenant["spec"].get("owners") or {}
    subjects = [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in owners.get("users", [])
    ]
    subjects += [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
        for g in owners.get("groups", [])
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_meta(OWNERS_NAME, tenant, namespace=namespace),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": NAMESPACE_ADMIN_ROLE,
        },
        "subjects": subjects,
    }


def operator_role_binding(tenant: Obj, namespace: str, operator_namespace: str) -> Obj:
    """The operator's own rights inside this namespace only (delete, to re-create a child whose
    immutable fields someone changed)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_meta(OPERATOR_BINDING_NAME, tenant, namespace=namespace),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": OPERATOR_IN_NAMESPACE_ROLE,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": OPERATOR_SERVICE_ACCOUNT, "namespace": operator_namespace}
        ],
    }


def isolation_policy(
    tenant: Obj,
    namespace: str,
    held: list[str],
    ingress_namespaces: tuple[str, ...] = DEFAULT_INGRESS_NAMESPACES,
) -> Obj:
    """Default deny, then: ingress from the tenant's own namespaces (`held`) and from the
    configured ingress-controller and monitoring namespaces; egress to the tenant's own namespaces,
    to DNS in kube-system, and to the CIDRs the Tenant lists (spec.network.egressCIDRs: its
    storage, the API server, the internet). Never from or to another tenant's namespaces: every
    namespace is selected by its name (`api.NAMESPACE_NAME_LABEL`), which no tenant can forge."""
    same_tenant = {"namespaceSelector": held_namespaces_selector(held)}
    ingress_from = [same_tenant] + [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: ns}}} for ns in ingress_namespaces
    ]
    dns = {
        "to": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}}}],
        "ports": [dict(p) for p in DNS_PORTS],
    }
    egress = [{"to": [same_tenant]}, dns]
    cidrs = ((tenant["spec"].get("network") or {}).get("egressCIDRs")) or []
    if cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(NETPOL_NAME, tenant, namespace=namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": ingress_from}],
            "egress": egress,
        },
    }


def local_queue(tenant: Obj, namespace: str) -> Obj:
    """Named `default`: Kueue's LocalQueueDefaulting puts a job without the queue-name label in
    it, so no job in a tenant namespace runs around Kueue."""
    return {
        "apiVersion": addon_api_version("LocalQueue"),
        "kind": "LocalQueue",
        "metadata": object_meta(LOCAL_QUEUE_NAME, tenant, namespace=namespace),
        "spec": {"clusterQueue": tenant["metadata"]["name"]},
    }


def _nominal(tenant: Obj, resource: str, share: Fraction, pool_gpus: int) -> str:
    """The tenant's quota of `resource` for one pool flavor: its share of the Tenant's quota (by
    the pool's share of the requested GPUs), or per GPU when the Tenant sets none."""
    spec = tenant["spec"]
    key = {"cpu": "cpuQuota", "memory": "memoryQuota", "pods": "podQuota"}[resource]
    total = parse_quantity(spec[key]) if spec.get(key) is not None else None
    value = total * share if total is not None else Fraction(PER_GPU_WHEN_UNSET[resource] * pool_gpus)
    if resource == "cpu":
        return f"{math.floor(value * 1000)}m"
    return str(math.floor(value))


def cluster_queue(tenant: Obj, grant: Grant, held: list[str]) -> Obj:
    """Kueue ClusterQueue covering every resource a tenant's pods request (cpu, memory, GPUs,
    pods), one flavor per pool with the granted GPUs and the matching share of cpu, memory and pods.
    Only the namespaces the tenant holds (`held`, by name) may submit to it.

    Lending and borrowing (docs/provisioning.md): all tenants of a site share one cohort (the
    site); idle GPUs are lent to whoever queues, with no limit unless the Tenant sets
    spec.kueue.lendingLimitGpus / borrowingLimitGpus; fair sharing weighs each queue by its planned
    GPUs, and a tenant reclaims its nominal quota by preempting borrowers."""
    kueue = tenant["spec"].get("kueue") or {}
    requested = requested_gpus(tenant)
    total_requested = sum(requested.values())
    flavors = []
    for pool, gpus in sorted(grant.granted_by_pool.items()):
        share = Fraction(requested.get(pool, 0), total_requested) if total_requested else Fraction(0)
        resources: list[dict[str, Any]] = []
        for name in KUEUE_COVERED_RESOURCES:
            if name == GPU_RESOURCE:
                resource: dict[str, Any] = {"name": name, "nominalQuota": str(gpus)}
                if "lendingLimitGpus" in kueue:
                    resource["lendingLimit"] = str(min(int(kueue["lendingLimitGpus"]), gpus))
                if "borrowingLimitGpus" in kueue:
                    resource["borrowingLimit"] = str(int(kueue["borrowingLimitGpus"]))
            else:
                resource = {"name": name, "nominalQuota": _nominal(tenant, name, share, gpus)}
            resources.append(resource)
        flavors.append({"name": pool, "resources": resources})
    return {
        "apiVersion": addon_api_version("ClusterQueue"),
        "kind": "ClusterQueue",
        "metadata": object_meta(tenant["metadata"]["name"], tenant),
        "spec": {
            "cohortName": tenant["spec"]["site"],
            "namespaceSelector": held_namespaces_selector(held),
            "queueingStrategy": "BestEffortFIFO",
            "fairSharing": {"weight": str(total_requested)},
            "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
            "resourceGroups": [{"coveredResources": list(KUEUE_COVERED_RESOURCES), "flavors": flavors}]
            if flavors
            else [],
        },
    }


def namespace_children(
    tenant: Obj,
    namespace: str,
    gpus: int,
    held: list[str],
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE,
    ingress_namespaces: tuple[str, ...] = DEFAULT_INGRESS_NAMESPACES,
) -> list[Obj]:
    """What the operator keeps inside one of the tenant's own namespaces (`held`: all of them),
    in the order it is applied. `apply_all` stops at the first child the server refuses, so the
    order fails closed: the operator's own binding first (it needs it to repair the others), then
    isolation, quota, limits and the queue, and the owners' binding last, so a refusal anywhere
    leaves owners without access rather than with access to a namespace lacking any of them."""
    return [
        operator_role_binding(tenant, namespace, operator_namespace),
        isolation_policy(tenant, namespace, held, ingress_namespaces),
        resource_quota(tenant, namespace, gpus),
        limit_range(tenant, namespace),
        local_queue(tenant, namespace),
        owner_role_binding(tenant, namespace),
    ]


def namespace_gpus(grant: Grant, namespaces: list[str]) -> dict[str, int]:
    """The grant spread over the namespaces the tenant holds; the sum is exactly the grant."""
    return dict(zip(namespaces, split_evenly(grant.total, len(namespaces)), strict=True))


def desired_children(
    tenant: Obj,
    grant: Grant,
    namespaces: list[str] | None = None,
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE,
    ingress_namespaces: tuple[str, ...] = DEFAULT_INGRESS_NAMESPACES,
    pod_security: str = DEFAULT_POD_SECURITY,
    allowed_system_subjects: frozenset[str] = frozenset(),
) -> list[Obj]:
    """Everything a tenant's spec implies in `namespaces` (default: all it lists), given its grant.
    Namespace objects come first; the caller creates them only where the tenant may. Checked
    with the owners the operator allows (`DSX_ALLOWED_SYSTEM_SUBJECTS`), as the caller did."""
    validate_tenant(tenant, allowed_system_subjects)
    held = list(tenant["spec"]["namespaces"] if namespaces is None else namespaces)
    out: list[Obj] = [cluster_queue(tenant, grant, held)]
    for namespace, gpus in namespace_gpus(grant, held).items():
        out += [
            namespace_object(tenant, namespace, pod_security),
            *namespace_children(tenant, namespace, gpus, held, operator_namespace, ingress_namespaces),
        ]
    return out


def tenant_status(
    tenant: Obj, grant: Grant, claims: list[Claim] | None = None
) -> tuple[dict[str, Any], list[Condition]]:
    requested = requested_gpus(tenant)
    claims = claims or []
    refused = [c for c in claims if c.verdict == "refused"]
    held = (
        [c.namespace for c in claims if c.verdict != "refused"]
        if claims
        else list(tenant["spec"]["namespaces"])
    )
    figures = {
        "namespaces": held,
        "quota": [
            {
                "pool": pool,
                "requestedGpus": requested[pool],
                "grantedGpus": grant.granted_by_pool.get(pool, 0),
            }
            for pool in sorted(requested)
        ],
    }
    conditions = [
        Condition(READY, False, "NamespaceRefused", f"refused: {refused_message(refused)}")
        if refused
        else Condition(READY, True, "Reconciled", f"{len(held)} namespace(s) in line with the spec"),
        Condition(
            NAMESPACES_REFUSED,
            bool(refused),
            "NotOwnedByTenant" if refused else "AllOwned",
            refused_message(refused) if refused else "every listed namespace belongs to this tenant",
        ),
        Condition(
            OVERCOMMITTED,
            grant.overcommitted,
            "PoolCapacityExceeded" if grant.overcommitted else "WithinCapacity",
            "; ".join(grant.shortfalls) if grant.overcommitted else "every requested GPU was granted",
        ),
    ]
    return figures, conditions


DATA_KINDS = (
    "Pod",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
)
"""Kinds whose objects hold a tenant's workloads or data: DeleteWhenEmpty keeps a namespace
holding any of them. Secrets and ConfigMaps are not counted: listing them would let the operator
read every secret and configuration in the cluster (kube-system's included); a namespace holding
only those counts as empty."""


def counts_as_data(kind: str, obj: Obj) -> bool:
    """Whether one listed object holds data (objects already being deleted still do)."""
    return kind in DATA_KINDS


def namespaces_to_delete(policy: str, data_by_namespace: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Which namespaces go, and which stay (holding data under DeleteWhenEmpty, or by policy).
    `data_by_namespace` names the data-holding kinds found in each (or that could not be
    checked: unknown counts as data)."""
    if policy == "Delete":
        return sorted(data_by_namespace), []
    if policy == "DeleteWhenEmpty":
        gone = sorted(ns for ns, kinds in data_by_namespace.items() if not kinds)
        kept = sorted(ns for ns, kinds in data_by_namespace.items() if kinds)
        return gone, kept
    return [], sorted(data_by_namespace)
