"""Tenant → namespaces with quota, limits, owner RBAC, isolation and Kueue queues; and its status."""

from __future__ import annotations

import re
from typing import Any

from operators.decisions.conditions import Condition
from operators.decisions.meta import (
    GPU_RESOURCE,
    NAMESPACE_ADMIN_ROLE,
    SITE_LABEL,
    TENANT_LABEL,
    Obj,
    object_meta,
)
from operators.decisions.nodepool import InvalidSpec
from operators.decisions.overcommit import Grant, split_evenly

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
POLICIES = ("Retain", "DeleteWhenEmpty", "Delete")
QUOTA_NAME = "dsx-quota"
LIMITS_NAME = "dsx-limits"
OWNERS_NAME = "dsx-owners"
NETPOL_NAME = "dsx-tenant-isolation"
LOCAL_QUEUE_NAME = "default"
DEFAULT_LIMITS = {"cpu": "2", "memory": "8Gi"}
DEFAULT_REQUESTS = {"cpu": "250m", "memory": "512Mi"}


def validate_tenant(tenant: Obj) -> None:
    spec = tenant.get("spec") or {}
    namespaces = spec.get("namespaces") or []
    if not spec.get("site"):
        raise InvalidSpec("spec.site is required")
    if not namespaces:
        raise InvalidSpec("spec.namespaces needs at least one namespace")
    for ns in namespaces:
        if not isinstance(ns, str) or len(ns) > 63 or not DNS_LABEL.match(ns):
            raise InvalidSpec(f"spec.namespaces: '{ns}' is not a DNS-1123 label")
    if len(set(namespaces)) != len(namespaces):
        raise InvalidSpec("spec.namespaces lists a namespace twice")
    pools = [q.get("pool") for q in spec.get("gpuQuota") or []]
    if len(set(pools)) != len(pools):
        raise InvalidSpec("spec.gpuQuota lists a pool twice")
    if any(int(q.get("gpus", 0)) < 0 for q in spec.get("gpuQuota") or []):
        raise InvalidSpec("spec.gpuQuota[].gpus must be ≥ 0")
    if spec.get("deletionPolicy", "Retain") not in POLICIES:
        raise InvalidSpec(f"spec.deletionPolicy must be one of {', '.join(POLICIES)}")


def requested_gpus(tenant: Obj) -> dict[str, int]:
    return {q["pool"]: int(q["gpus"]) for q in tenant["spec"].get("gpuQuota") or []}


def namespace_labels(tenant: Obj) -> dict[str, str]:
    return {TENANT_LABEL: tenant["metadata"]["name"], SITE_LABEL: tenant["spec"]["site"]}


def namespace_object(tenant: Obj, namespace: str) -> Obj:
    # No owner reference: garbage collection must never delete a tenant's namespace behind the
    # deletion policy's back. The labels are how the operator finds (and adopts) it.
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": object_meta(namespace, tenant, labels=namespace_labels(tenant), owned=False),
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


def desired_children(tenant: Obj, grant: Grant) -> list[Obj]:
    """Everything a tenant's spec implies, given the GPUs it was granted."""
    validate_tenant(tenant)
    namespaces = tenant["spec"]["namespaces"]
    total = sum(grant.granted_by_pool.values())
    out: list[Obj] = [cluster_queue(tenant, grant)]
    for namespace, gpus in zip(namespaces, split_evenly(total, len(namespaces)), strict=True):
        out += [
            namespace_object(tenant, namespace),
            resource_quota(tenant, namespace, gpus),
            limit_range(tenant, namespace),
            owner_role_binding(tenant, namespace),
            isolation_policy(tenant, namespace),
            local_queue(tenant, namespace),
        ]
    return out


def tenant_status(tenant: Obj, grant: Grant) -> tuple[dict[str, Any], list[Condition]]:
    requested = requested_gpus(tenant)
    figures = {
        "namespaces": list(tenant["spec"]["namespaces"]),
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
        Condition(
            "Ready", True, "Reconciled", f"{len(figures['namespaces'])} namespace(s) in line with the spec"
        ),
        Condition(
            "Overcommitted",
            grant.overcommitted,
            "PoolCapacityExceeded" if grant.overcommitted else "WithinCapacity",
            "; ".join(grant.shortfalls) if grant.overcommitted else "every requested GPU was granted",
        ),
    ]
    return figures, conditions


def namespaces_to_delete(policy: str, pods_by_namespace: dict[str, int]) -> tuple[list[str], list[str]]:
    """Which of a deleted tenant's namespaces go, and which stay (with workloads or by policy)."""
    if policy == "Delete":
        return sorted(pods_by_namespace), []
    if policy == "DeleteWhenEmpty":
        gone = sorted(ns for ns, pods in pods_by_namespace.items() if pods == 0)
        kept = sorted(ns for ns, pods in pods_by_namespace.items() if pods > 0)
        return gone, kept
    return [], sorted(pods_by_namespace)
