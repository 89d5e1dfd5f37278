"""Which namespaces a Tenant may have, which objects outside them its owner may write, and which
owner subjects it may name. Pure.

A Tenant gets a namespace only when the operator creates it for that Tenant, or when the
namespace already carries the Tenant's ownership (`dsx.ai/tenant-uid` = the Tenant's uid, written
by the operator at creation or by an administrator handing a namespace over). Everything else
(system and operator namespaces, another tenant's, any existing namespace without that proof)
is refused: nothing is written into it and it is never deleted. A `dsx.ai/tenant` label alone
proves nothing: anyone allowed to label namespaces can set it.

Children outside the owner's namespaces (a Tenant's ClusterQueue, a pool's ResourceFlavor,
Topology, Karpenter NodePool, and MachineDeployment in whatever namespace the pool names) are
the owner's only when they carry an owner reference with the owner's uid, which the operator has
written on every child since its first version. An object of that kind and name without it is
someone else's: it is neither written nor deleted, whatever labels it carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from operators.api import (
    MAX_OWNER_SUBJECTS,
    MAX_SUBJECT_LENGTH,
    OWNER_UID_ANNOTATION,
    PROTECTED_PREFIX,
    TENANT_LABEL,
)
from operators.decisions.conditions import Condition
from operators.decisions.meta import Obj

Verdict = Literal["create", "owned", "refused"]
_BAD_SUBJECT_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Claim:
    namespace: str
    verdict: Verdict
    reason: str = ""


def owns(namespace: Obj | None, tenant_uid: str) -> bool:
    """Whether a live namespace carries this Tenant's ownership (and so may be written or deleted)."""
    if namespace is None or not tenant_uid:
        return False
    annotations = namespace.get("metadata", {}).get("annotations") or {}
    return annotations.get(OWNER_UID_ANNOTATION) == tenant_uid


def is_protected(namespace: str, protected: frozenset[str]) -> bool:
    """Never a tenant's: one of `protected`, or a name Kubernetes keeps for itself (`kube-`)."""
    return namespace in protected or namespace.startswith(PROTECTED_PREFIX)


def claim_namespace(tenant_uid: str, namespace: str, live: Obj | None, protected: frozenset[str]) -> Claim:
    """Create it, use it (it is this tenant's), or refuse it (and say why)."""
    if is_protected(namespace, protected):
        return Claim(namespace, "refused", "is a system, add-on, operator or ingress namespace")
    if live is None:
        return Claim(namespace, "create")
    if owns(live, tenant_uid):
        if live.get("metadata", {}).get("deletionTimestamp"):
            return Claim(namespace, "refused", "is being deleted; it will be created again once gone")
        return Claim(namespace, "owned")
    meta = live.get("metadata", {})
    holder = (meta.get("labels") or {}).get(TENANT_LABEL)
    if (meta.get("annotations") or {}).get(OWNER_UID_ANNOTATION):
        return Claim(namespace, "refused", f"belongs to another tenant ({holder or 'unknown'})")
    return Claim(namespace, "refused", "exists and was not created for this tenant")


def owns_child(live: Obj, owner: Obj) -> bool:
    """Whether an existing object is `owner`'s child: an owner reference names the owner's kind
    and uid. The uid, not a name or label: a Tenant deleted and made again under the same name is
    another owner, and labels are written by whoever writes the object."""
    uid = (owner.get("metadata") or {}).get("uid")
    refs = (live.get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(r.get("uid") == uid and r.get("kind") == owner.get("kind") for r in refs)


def not_owned_reason(live: Obj | None, owner: Obj) -> str:
    """Why `owner` may not write or delete this existing object; '' when it may (absent, or its
    own child)."""
    if live is None or owns_child(live, owner):
        return ""
    kind, name = owner.get("kind"), (owner.get("metadata") or {}).get("name")
    refs = (live.get("metadata") or {}).get("ownerReferences") or []
    if any(r.get("kind") == kind and r.get("name") == name for r in refs):
        return f"belongs to an earlier {kind} {name} (another uid); the garbage collector removes it"
    if refs:
        holders = ", ".join(f"{r.get('kind')} {r.get('name')}" for r in refs)
        return f"exists and belongs to {holders}"
    return f"exists and was not made by the operator for this {kind}"


def with_children_not_owned(
    conditions: list[Condition], condition_type: str, not_owned: list[tuple[str, str, str]]
) -> list[Condition]:
    """The owner's conditions with `condition_type` False, reason ChildNotOwned, naming every
    child left alone (kind, name, why) and what an administrator does about it; a refusal the
    condition already says is kept in front."""
    if not not_owned:
        return conditions
    named = "; ".join(f"{kind} {name} {why}" for kind, name, why in not_owned)
    message = (
        f"not written and never deleted: {named}. Give the owner another name, or have whoever "
        "owns the object delete it; the operator then makes its own"
    )
    out = []
    for c in conditions:
        if c.type == condition_type:
            before = f"{c.message}; " if not c.status else ""
            c = Condition(condition_type, False, "ChildNotOwned", (before + message)[:1000])
        out.append(c)
    return out


def refused_message(claims: list[Claim]) -> str:
    return "; ".join(f"{c.namespace} {c.reason}" for c in claims if c.verdict == "refused")


def subject_problems(
    owners: dict[str, Any] | None, allowed_system_subjects: frozenset[str] = frozenset()
) -> list[str]:
    """Problems with spec.owners: malformed names, `system:` users or groups not allowed by config."""
    problems: list[str] = []
    owners = owners or {}
    if not isinstance(owners, dict):
        return ["spec.owners must be an object with users and groups"]
    count = 0
    for key in ("users", "groups"):
        names = owners.get(key) or []
        if not isinstance(names, list):
            problems.append(f"spec.owners.{key} must be a list")
            continue
        for name in names:
            count += 1
            where = f"spec.owners.{key}: {name!r}"
            if not isinstance(name, str) or not name:
                problems.append(f"{where} is not a non-empty string")
            elif len(name) > MAX_SUBJECT_LENGTH:
                problems.append(f"{where[:60]}… is longer than {MAX_SUBJECT_LENGTH} characters")
            elif _BAD_SUBJECT_CHARS.search(name):
                problems.append(f"{where} contains whitespace or control characters")
            elif name.lower().startswith("system:") and name not in allowed_system_subjects:
                problems.append(
                    f"{where} is a system identity; the operator's configuration "
                    "(DSX_ALLOWED_SYSTEM_SUBJECTS) does not allow it"
                )
    if count > MAX_OWNER_SUBJECTS:
        problems.append(f"spec.owners names {count} subjects; at most {MAX_OWNER_SUBJECTS}")
    return problems
