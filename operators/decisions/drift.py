"""Whether a live child is in line with what the operator wants, and how to put it back. Pure.

Kinds the operator owns whole (quota, limits, owner binding, isolation policy) must equal the
desired body exactly: a field someone added (a ResourceQuota `scopes: [BestEffort]`) or a
selector someone narrowed is drift, and the object is replaced. Server-side apply alone cannot
remove such fields: they belong to the other field manager. Add-on kinds (Kueue, Cluster API,
Karpenter) get defaults from their own controllers and webhooks, so for them only the fields the
operator sets are compared, and server-side apply puts them back.
Quantities compare by value everywhere (`20000` equals `20k`).
"""

from __future__ import annotations

from typing import Any, Literal

from operators.decisions.quantity import same_quantity

Write = Literal["create", "replace", "apply"] | None

EXACT_KINDS = frozenset({"ResourceQuota", "LimitRange", "RoleBinding", "NetworkPolicy"})
QUANTITY_KEYS = frozenset(
    {"hard", "limits", "default", "defaultRequest", "max", "min", "maxLimitRequestRatio"}
    | {"nominalQuota", "lendingLimit", "borrowingLimit"}
)
_NOT_BODY = ("apiVersion", "kind", "metadata", "status")


def _scalar_equal(desired: Any, current: Any, quantities: bool) -> bool:
    if desired == current and type(desired) is type(current):
        return True
    return quantities and same_quantity(desired, current)


def equal(desired: Any, current: Any, quantities: bool = False) -> bool:
    """Exact structural equality; under quantity-valued keys, quantities compare by value."""
    if isinstance(desired, dict):
        return (
            isinstance(current, dict)
            and desired.keys() == current.keys()
            and all(equal(v, current[k], quantities or k in QUANTITY_KEYS) for k, v in desired.items())
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(equal(d, c, quantities) for d, c in zip(desired, current, strict=True))
        )
    return _scalar_equal(desired, current, quantities)


def covers(desired: Any, current: Any, quantities: bool = False) -> bool:
    """Every key and value the operator sets is present in the live object (others may add more)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            covers(v, current.get(k), quantities or k in QUANTITY_KEYS) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(covers(d, c, quantities) for d, c in zip(desired, current, strict=True))
        )
    return _scalar_equal(desired, current, quantities)


def _metadata_in_line(desired: dict[str, Any], current: dict[str, Any]) -> bool:
    mine = {k: desired[k] for k in ("labels", "annotations", "ownerReferences") if k in desired}
    return covers(mine, current)


def write_needed(desired: dict[str, Any], current: dict[str, Any] | None) -> Write:
    """None when the live object is in line; otherwise how to write it."""
    if current is None:
        return "create"
    if not _metadata_in_line(desired.get("metadata", {}), current.get("metadata", {})):
        return "replace" if desired["kind"] in EXACT_KINDS else "apply"
    body = {k: v for k, v in desired.items() if k not in _NOT_BODY}
    if desired["kind"] in EXACT_KINDS:
        live = {k: v for k, v in current.items() if k not in _NOT_BODY}
        return None if equal(body, live) else "replace"
    return None if covers(body, current) else "apply"


def replacement(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The object to PUT: the desired body, the live metadata with the operator's keys set, and
    the live resourceVersion (so a concurrent change makes the write fail, not vanish)."""
    meta = dict(current.get("metadata", {}))
    want = desired.get("metadata", {})
    for key in ("labels", "annotations"):
        if key in want:
            meta[key] = {**(meta.get(key) or {}), **want[key]}
    if "ownerReferences" in want:
        others = [
            r
            for r in meta.get("ownerReferences") or []
            if r.get("uid") not in {o.get("uid") for o in want["ownerReferences"]}
        ]
        meta["ownerReferences"] = others + want["ownerReferences"]
    meta.pop("managedFields", None)
    out = {k: v for k, v in desired.items() if k != "metadata"}
    out["metadata"] = meta
    return out
