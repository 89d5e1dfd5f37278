"""Labels and owner references shared by everything the operator creates (keys: `operators.api`)."""

from __future__ import annotations

from typing import Any

from operators.api import API_VERSION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL_PREFIX

Obj = dict[str, Any]
MANAGED_BY = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
MAX_SHOWN = 63
"""Characters of an object's own value quoted in a message (a hostile one may be long)."""


def shown(value: object, limit: int) -> str:
    """A value from an object quoted in a message (a status, an event, a refusal), cut short and
    escaped: a hostile one may be megabytes long or carry newlines and terminal escapes."""
    text = str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def owner_label_key(kind: str) -> str:
    return f"{OWNER_LABEL_PREFIX}{kind.lower()}"


def owner_labels(kind: str, name: str) -> dict[str, str]:
    """Labels by which the operator finds what it wrote for an owner (and maps child events back)."""
    return {**MANAGED_BY, owner_label_key(kind): name}


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
    annotations: dict[str, str] | None = None,
    owned: bool = True,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {**owner_labels(owner["kind"], owner["metadata"]["name"]), **(labels or {})},
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    if namespace is not None:
        meta["namespace"] = namespace
    if owned:
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta
