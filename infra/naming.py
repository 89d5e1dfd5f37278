"""Names and whole-GPU rounding shared by the desired state and the checks that guard it."""

from __future__ import annotations

import math
from typing import Literal

NamespaceStyle = Literal["tenant", "tenant-site"]
NAMESPACE_STYLES: tuple[str, ...] = ("tenant", "tenant-site")
DNS_LABEL_MAX = 63
QUOTA_TOLERANCE_GPUS = 1e-6
"""Solver noise allowance: 4095.9999999 GPUs is 4096, not 4095."""


def pool_name(site: str, rack_type: str) -> str:
    """GpuNodePool name; also a label value, so it must stay a DNS-1123 label."""
    return f"{site}-{rack_type}"


def tenant_namespace(tenant: str, site: str, style: str) -> str:
    """`tenant` when each site is its own cluster, `tenant-site` when clusters are shared."""
    return tenant if style == "tenant" else f"{tenant}-{site}"


def tenant_object_name(tenant: str, site: str, style: str) -> str:
    """The cluster-scoped Tenant's name (also its ClusterQueue's): per site when clusters are
    shared (`tenant-site`), so two sites' Tenants never overwrite each other."""
    return tenant if style == "tenant" else f"{tenant}-{site}"


def whole_gpus(quota_gpus: float) -> int:
    """Round a solver quota DOWN, so the sum of tenant quotas never exceeds a pool."""
    return max(0, math.floor(quota_gpus + QUOTA_TOLERANCE_GPUS))
