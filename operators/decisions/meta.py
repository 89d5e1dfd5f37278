"""Labels and owner references shared by everything the operator creates."""

from __future__ import annotations

from typing import Any

GROUP = "dsx.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGED_BY = {"app.kubernetes.io/managed-by": "dsx-operator"}
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
SITE_LABEL = "dsx.ai/site"
POOL_LABEL = "dsx.ai/pool"
TENANT_LABEL = "dsx.ai/tenant"
NAMESPACE_ADMIN_ROLE = "dsx-namespace-admin"

Obj = dict[str, Any]


def owner_labels(kind: str, name: str) -> dict[str, str]:
    """Labels by which the operator finds (and after a restart, adopts) what it created."""
    return {**MANAGED_BY, f"dsx.ai/owner-{kind.lower()}": name}


def owner_reference(owner: Obj) -> dict[str, Any]:
    meta = owner.get("metadata", {})
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": False,
    }


def object_meta(
    name: str,
    owner: Obj,
    *,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    owned: bool = True,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {**owner_labels(owner["kind"], owner["metadata"]["name"]), **(labels or {})},
    }
    if namespace is not None:
        meta["namespace"] = namespace
    if owned:
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta
