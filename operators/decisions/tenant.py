"""Tenant → namespaces with quota, limits, owner RBAC, isolation and Kueue queues; and its status."""

from __future__ import annotations

import re
from typing import Any

from operators.api import DEFAULT_CAPI_NAMESPACE as DEFAULT_OPERATOR_NAMESPACE
from operators.api import (
    DEFAULT_DELETION_POLICY,
    GPU_RESOURCE,
    INT32_MAX,
    MAX_NAME_LENGTH,
    MAX_TENANT_NAMESPACES,
    NAMESPACE_ADMIN_ROLE,
    NAMESPACES_REFUSED,
    OPERATOR_IN_NAMESPACE_ROLE,
    OPERATOR_SERVICE_ACCOUNT,
    OVERCOMMITTED,
    OWNER_UID_ANNOTATION,
    READY,
    SITE_LABEL,
    TENANT_LABEL,
)
from operators.decisions.conditions import Condition
from operators.decisions.meta import Obj, object_meta
from operators.decisions.nodepool import InvalidSpec, whole_number
from operators.decisions.overcommit import Grant, split_evenly
from operators.decisions.ownership import Claim, refused_message, subject_problems

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
POLICIES = ("Retain", "DeleteWhenEmpty", "Delete")
QUOTA_NAME = "dsx-quota"
LIMITS_NAME = "dsx-limits"
OWNERS_NAME = "dsx-owners"
OPERATOR_BINDING_NAME = "dsx-operator"
NETPOL_NAME = "dsx-tenant-isolation"
LOCAL_QUEUE_NAME = "default"
DEFAULT_LIMITS = {"cpu": "2", "memory": "8Gi"}
DEFAULT_REQUESTS = {"cpu": "250m", "memory": "512Mi"}


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
    if len(name) > MAX_NAME_LENGTH or not DNS_LABEL.match(name):
        raise InvalidSpec(
            f"metadata.name '{name}' must be a DNS-1123 label of at most {MAX_NAME_LENGTH} characters"
        )
    spec = tenant.get("spec") or {}
    if not isinstance(spec, dict):
        raise InvalidSpec("spec must be an object")
    namespaces = spec.get("namespaces") or []
    if not isinstance(spec.get("site"), str) or not spec.get("site"):
        raise InvalidSpec("spec.site is required")
    if not isinstance(namespaces, list) or not namespaces:
        raise InvalidSpec("spec.namespaces needs at least one namespace")
    if len(namespaces) > MAX_TENANT_NAMESPACES:
        raise InvalidSpec(f"spec.namespaces lists {len(namespaces)}; at most {MAX_TENANT_NAMESPACES}")
    for ns in namespaces:
        if not isinstance(ns, str) or len(ns) > MAX_NAME_LENGTH or not DNS_LABEL.match(ns):
            raise InvalidSpec(f"spec.namespaces: '{ns}' is not a DNS-1123 label")
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
        if not isinstance(q.get("pool"), str) or not DNS_LABEL.match(q["pool"]):
            raise InvalidSpec(f"spec.gpuQuota[].pool '{q.get('pool')}' is not a pool name")
    if spec.get("deletionPolicy", DEFAULT_DELETION_POLICY) not in POLICIES:
        raise InvalidSpec(f"spec.deletionPolicy must be one of {', '.join(POLICIES)}")
    problems = subject_problems(spec.get("owners"), allowed_system_subjects)
    if problems:
        raise InvalidSpec("; ".join(problems))


def requested_gpus(tenant: Obj) -> dict[str, int]:
    return {q["pool"]: int(q["gpus"]) for q in tenant["spec"].get("gpuQuota") or []}


def namespace_labels(tenant: Obj) -> dict[str, str]:
    return {TENANT_LABEL: tenant["metadata"]["name"], SITE_LABEL: tenant["spec"]["site"]}


def namespace_object(tenant: Obj, namespace: str) -> Obj:
    # No owner reference: garbage collection must never delete a tenant's namespace behind the
    # deletion policy's back. The uid annotation is the ownership proof (`decisions.ownership`).
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": object_meta(
            namespace,
            tenant,
            labels=namespace_labels(tenant),
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


def isolation_policy(tenant: Obj, namespace: str) -> Obj:
    """Default deny; traffic allowed only between the tenant's own namespaces (and DNS out)."""
    same_tenant = {"namespaceSelector": {"matchLabels": {TENANT_LABEL: tenant["metadata"]["name"]}}}
    dns = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(NETPOL_NAME, tenant, namespace=namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [same_tenant]}],
            "egress": [{"to": [same_tenant]}, dns],
        },
    }


def local_queue(tenant: Obj, namespace: str) -> Obj:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "LocalQueue",
        "metadata": object_meta(LOCAL_QUEUE_NAME, tenant, namespace=namespace),
        "spec": {"clusterQueue": tenant["metadata"]["name"]},
    }


def cluster_queue(tenant: Obj, grant: Grant) -> Obj:
    """Kueue ClusterQueue: nominal GPUs per pool flavor, borrowing within the site's cohort."""
    kueue = tenant["spec"].get("kueue") or {}
    flavors = []
    for pool, gpus in sorted(grant.granted_by_pool.items()):
        resource: dict[str, Any] = {"name": GPU_RESOURCE, "nominalQuota": gpus}
        if "lendingLimitGpus" in kueue:
            resource["lendingLimit"] = min(int(kueue["lendingLimitGpus"]), gpus)
        if "borrowingLimitGpus" in kueue:
            resource["borrowingLimit"] = int(kueue["borrowingLimitGpus"])
        flavors.append({"name": pool, "resources": [resource]})
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "ClusterQueue",
        "metadata": object_meta(tenant["metadata"]["name"], tenant),
        "spec": {
            "cohort": tenant["spec"]["site"],
            "namespaceSelector": {"matchLabels": {TENANT_LABEL: tenant["metadata"]["name"]}},
            "resourceGroups": [{"coveredResources": [GPU_RESOURCE], "flavors": flavors}] if flavors else [],
        },
    }


def namespace_children(
    tenant: Obj, namespace: str, gpus: int, operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
) -> list[Obj]:
    """What the operator keeps inside one of the tenant's own namespaces."""
    return [
        operator_role_binding(tenant, namespace, operator_namespace),
        resource_quota(tenant, namespace, gpus),
        limit_range(tenant, namespace),
        owner_role_binding(tenant, namespace),
        isolation_policy(tenant, namespace),
        local_queue(tenant, namespace),
    ]


def namespace_gpus(grant: Grant, namespaces: list[str]) -> dict[str, int]:
    """The grant spread over the namespaces the tenant holds; the sum is exactly the grant."""
    return dict(zip(namespaces, split_evenly(grant.total, len(namespaces)), strict=True))


def desired_children(
    tenant: Obj,
    grant: Grant,
    namespaces: list[str] | None = None,
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE,
) -> list[Obj]:
    """Everything a tenant's spec implies in `namespaces` (default: all it lists), given its grant.
    Namespace objects come first; the caller creates them only where the tenant may."""
    validate_tenant(tenant)
    held = list(tenant["spec"]["namespaces"] if namespaces is None else namespaces)
    out: list[Obj] = [cluster_queue(tenant, grant)]
    for namespace, gpus in namespace_gpus(grant, held).items():
        out += [
            namespace_object(tenant, namespace),
            *namespace_children(tenant, namespace, gpus, operator_namespace),
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
