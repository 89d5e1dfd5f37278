"""The operator's configuration, read once from the environment at the edge (`main.py`).

- DSX_OPERATOR_NAMESPACE: where the operator runs (protected; its Lease lives there). Default
  dsx-system, or the pod's namespace when run in-cluster.
- DSX_PROTECTED_NAMESPACES: comma-separated extra namespaces no tenant may ever claim.
- DSX_INGRESS_NAMESPACES: comma-separated namespaces (ingress controller, monitoring) whose pods
  may reach every tenant's pods, so no tenant may claim them. Default ingress-nginx,monitoring.
- DSX_POD_SECURITY: the Pod Security Admission level of tenant namespaces, baseline (default) or
  restricted (no root containers).
- DSX_ALLOWED_SYSTEM_SUBJECTS: comma-separated `system:` user or group names that Tenants may
  nevertheless name as owners (none by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from operators.api import DEFAULT_CAPI_NAMESPACE, POD_SECURITY_LEVELS, PROTECTED_NAMESPACES
from operators.decisions.tenant import DEFAULT_INGRESS_NAMESPACES, DEFAULT_POD_SECURITY

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class OperatorConfig:
    operator_namespace: str = DEFAULT_CAPI_NAMESPACE
    protected_namespaces: frozenset[str] = field(default_factory=lambda: PROTECTED_NAMESPACES)
    allowed_system_subjects: frozenset[str] = frozenset()
    ingress_namespaces: tuple[str, ...] = DEFAULT_INGRESS_NAMESPACES
    pod_security: str = DEFAULT_POD_SECURITY

    @property
    def protected(self) -> frozenset[str]:
        """Namespaces no Tenant may claim: the configured ones, the operator's, and the ingress
        ones, whose pods every tenant's network policy admits (a Tenant given `monitoring` would
        reach every other tenant's pods)."""
        return self.protected_namespaces | {self.operator_namespace} | set(self.ingress_namespaces)


def _names(value: str | None) -> frozenset[str]:
    return frozenset(n.strip() for n in (value or "").split(",") if n.strip())


def _pod_security(value: str | None) -> str:
    """`DSX_POD_SECURITY`: baseline (default) or restricted; anything else stops the operator at
    start rather than run tenant pods at a level nobody chose."""
    level = (value or DEFAULT_POD_SECURITY).strip()
    if level not in POD_SECURITY_LEVELS:
        raise SystemExit(f"DSX_POD_SECURITY is {value!r}; use one of {', '.join(POD_SECURITY_LEVELS)}")
    return level


def from_environment() -> OperatorConfig:
    namespace = os.environ.get("DSX_OPERATOR_NAMESPACE")
    if not namespace and _SA_NAMESPACE.exists():
        namespace = _SA_NAMESPACE.read_text().strip()
    return OperatorConfig(
        operator_namespace=namespace or DEFAULT_CAPI_NAMESPACE,
        protected_namespaces=PROTECTED_NAMESPACES | _names(os.environ.get("DSX_PROTECTED_NAMESPACES")),
        allowed_system_subjects=_names(os.environ.get("DSX_ALLOWED_SYSTEM_SUBJECTS")),
        pod_security=_pod_security(os.environ.get("DSX_POD_SECURITY")),
        ingress_namespaces=tuple(
            sorted(_names(os.environ.get("DSX_INGRESS_NAMESPACES", ",".join(DEFAULT_INGRESS_NAMESPACES))))
        ),
    )
