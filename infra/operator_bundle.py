"""The operator's deployment bundle (CRDs, RBAC, Deployment), as `operators/` publishes it.

`operators.bundle` is pure data; this module only orders it (CRDs first, so the API server knows
the kinds before anything refers to them) and drops duplicates when CRDs are listed twice.
"""

from __future__ import annotations

from typing import Any

DEFAULT_OPERATOR_NAMESPACE = "dsx-system"

Manifest = dict[str, Any]


def manifest_key(m: Manifest) -> tuple[str, str, str, str]:
    meta = m.get("metadata", {})
    return (m["apiVersion"], m["kind"], meta.get("namespace", ""), meta["name"])


def operator_manifests(
    image: str | None = None, namespace: str = DEFAULT_OPERATOR_NAMESPACE
) -> list[Manifest]:
    from operators.bundle import crd_manifests, operator_bundle

    bundle = (
        operator_bundle(image=image, namespace=namespace) if image else operator_bundle(namespace=namespace)
    )
    unique: dict[tuple[str, str, str, str], Manifest] = {}
    for m in [*crd_manifests(), *bundle]:
        unique.setdefault(manifest_key(m), m)
    return sorted(unique.values(), key=lambda m: m["kind"] != "CustomResourceDefinition")
