"""Status conditions in the Kubernetes convention, with transition times kept when unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""


def render_conditions(
    new: list[Condition], old: list[dict[str, Any]] | None, now: str
) -> list[dict[str, Any]]:
    """Render conditions; keep lastTransitionTime where the status did not change."""
    previous = {c.get("type"): c for c in old or []}
    out = []
    for c in new:
        status = "True" if c.status else "False"
        before = previous.get(c.type)
        since = before.get("lastTransitionTime", now) if before and before.get("status") == status else now
        out.append(
            {
                "type": c.type,
                "status": status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": since,
            }
        )
    return out
