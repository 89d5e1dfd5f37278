"""Plan + site + period → the custom resources that site's cluster should hold. Pure, but for
reading the shipped CRD schemas once (`infra.crd_fit`), against which the result is checked.

The Pulumi program registers exactly these manifests and `dsx render` prints them, so what a
platform engineer previews is what a `kubectl apply` user gets. Shapes follow docs/crd-contract.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from infra.checks import (
    Origin,
    check_block_label,
    check_instance_types,
    check_instance_types_backend,
    check_plan_matches,
    check_settings,
    check_single_node_nvlink,
)
from infra.crd_fit import check_against_crds
from infra.naming import NamespaceStyle, pool_name, tenant_namespace, tenant_object_name, whole_gpus
from operators import api
from operators.api import CAPI_BOOTSTRAP_GROUP, CAPI_INFRASTRUCTURE_GROUP
from planner.schema.plan import Plan, TenantInfo

API_VERSION = api.API_VERSION
Backend = Literal["cluster-api", "karpenter"]
DEFAULT_TAINTS: tuple[dict[str, str], ...] = (
    {"key": api.GPU_RESOURCE, "value": "present", "effect": "NoSchedule"},
)

Manifest = dict[str, Any]
KARPENTER_DEFAULT_NODE_CLASS = ("karpenter.k8s.aws", "EC2NodeClass")


@dataclass(frozen=True)
class TenantSizing:
    """Non-GPU quota granted per GPU, so a GPU quota is usable without a second request."""

    cpu_per_gpu: int = 16
    memory_gib_per_gpu: int = 128
    pods_per_gpu: int = 4
    deletion_policy: Literal["Retain", "DeleteWhenEmpty", "Delete"] = "Retain"


@dataclass(frozen=True)
class BackendSettings:
    """How node pools become machines; defaults follow the names in docs/crd-contract.md."""

    backend: Backend = "cluster-api"
    kubernetes_version: str = "v1.33.4"
    cluster_name: str | None = None  # default: the site id
    infrastructure_template: str = f"{CAPI_INFRASTRUCTURE_GROUP}/Metal3MachineTemplate"
    """`apiGroup/Kind` of the site's machine template; its name is the pool's (the site creates it)."""
    bootstrap_template: str = f"{CAPI_BOOTSTRAP_GROUP}/KubeadmConfigTemplate"
    """`apiGroup/Kind` of the site's bootstrap template, named `<site>-gpu` (the site creates it)."""
    karpenter_node_class: str = "gpu"
    """`name` or `group/Kind/name` of the node class; a bare name is a `KARPENTER_DEFAULT_NODE_CLASS`."""
    karpenter_instance_types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Rack type → the instance types (node.kubernetes.io/instance-type) that carry its GPUs at
    this site, so one rack type's pool never launches another's machines. A rack type not named
    gets its own id (bare-metal providers' naming). `checks.ALL_RACK_TYPES` holds one list for
    every rack type, accepted only where the site runs a single rack type."""
    topology_block_label: str | None = None
    """Node label the site's fabric tooling sets to each node's network block (e.g. its spine):
    the top level of every pool's Kueue Topology. None: the Topology is rack → node, since Kueue
    ignores nodes lacking any level's label."""
    single_node_nvlink_rack_types: tuple[str, ...] = ()
    """Rack types whose NVLink domain is one node (HGX: NVSwitch inside the node). Their pools'
    Topology has no rack level: GPU feature discovery labels `nvidia.com/gpu.clique` only on
    multi-node NVLink, and Kueue ignores nodes lacking a level's label."""


@dataclass(frozen=True)
class SiteSummary:
    """The figures a stack reports as outputs; all read from the plan at (site, period)."""

    site: str
    period: str
    scenario_name: str
    scenario_hash: str
    available_mw: float
    it_load_mw: float
    racks: dict[str, int]
    gpus: int
    nodes: int
    tenant_gpus: dict[str, int]

    @property
    def unallocated_gpus(self) -> int:
        return self.gpus - sum(self.tenant_gpus.values())


@dataclass(frozen=True)
class DesiredState:
    """Everything one site stack provisions, as plain manifest dicts (kubectl-appliable)."""

    site: str
    period: str
    operator: list[Manifest]
    node_pools: list[Manifest]
    tenants: list[Manifest]
    summary: SiteSummary
    origin: Origin = field(default_factory=Origin.for_cli, compare=False)

    def manifests(self) -> list[Manifest]:
        """In apply order: operator (CRDs first), then the pools the tenants' quotas refer to."""
        return [*self.operator, *self.node_pools, *self.tenants]

    def outputs(self) -> dict[str, Any]:
        """Stack outputs: what a platform engineer checks after `pulumi up`."""
        s = self.summary
        return {
            "site": s.site,
            "period": s.period,
            "plan": {"scenario": s.scenario_name, "scenarioHash": s.scenario_hash},
            "availableMw": s.available_mw,
            "itLoadMw": s.it_load_mw,
            "racks": dict(s.racks),
            "gpus": s.gpus,
            "nodes": s.nodes,
            "nodePools": [m["metadata"]["name"] for m in self.node_pools],
            "tenants": {
                m["metadata"]["labels"][api.TENANT_LABEL]: {
                    "namespaces": list(m["spec"]["namespaces"]),
                    "gpus": s.tenant_gpus[m["metadata"]["labels"][api.TENANT_LABEL]],
                    "gpuQuota": {q["pool"]: q["gpus"] for q in m["spec"]["gpuQuota"]},
                }
                for m in self.tenants
            },
            "unallocatedGpus": s.unallocated_gpus,
        }


def split_owners(owners: list[str]) -> dict[str, list[str]]:
    """Plan owners are `group:<name>`, `user:<name>` or a bare user name (e.g. an e-mail)."""
    users: list[str] = []
    groups: list[str] = []
    for owner in owners:
        kind, _, name = owner.partition(":")
        if kind == "group" and name:
            groups.append(name)
        elif kind == "user" and name:
            users.append(name)
        else:
            users.append(owner)
    return {"users": users, "groups": groups}


def pool_quotas(plan: Plan, site: str, period: str) -> dict[str, dict[str, int]]:
    """tenant → pool → whole GPUs (> 0 only), from the plan's quota decisions at (site, period)."""
    out: dict[str, dict[str, int]] = {}
    for q in plan.quotas_at(site, period):
        gpus = whole_gpus(q.quota_gpus)
        if gpus > 0:
            pools = out.setdefault(q.tenant, {})
            pools[pool_name(site, q.rack_type)] = pools.get(pool_name(site, q.rack_type), 0) + gpus
    return out


def _metadata(name: str, site: str, period: str, plan: Plan, **labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {
            "app.kubernetes.io/part-of": "dsx",
            api.SITE_LABEL: site,
            f"{api.GROUP}/period": period,
            **labels,
        },
        "annotations": {"dsx.ai/plan-scenario": plan.scenario_name, "dsx.ai/plan-hash": plan.scenario_hash},
    }


def node_pool_manifest(
    plan: Plan,
    site: str,
    period: str,
    rack_type: str,
    racks: int,
    backend: BackendSettings,
    instance_types: tuple[str, ...] = (),
) -> Manifest:
    """The GpuNodePool of one rack type; `instance_types` (Karpenter only) default to the rack
    type's id."""
    info = plan.rack_type(rack_type)
    name = pool_name(site, rack_type)
    spec: dict[str, Any] = {
        "site": site,
        "rackType": rack_type,
        "gpuProduct": info.gpu_product,
        "racks": racks,
        "nodesPerRack": info.nodes_per_rack,
        "gpusPerNode": info.gpus_per_node,
        "labels": {api.RACK_TYPE_LABEL: rack_type},
        "taints": [dict(t) for t in DEFAULT_TAINTS],
        "backend": backend.backend,
    }
    topology: dict[str, str] = {}
    if backend.topology_block_label:
        topology["blockLabel"] = backend.topology_block_label
    if rack_type in backend.single_node_nvlink_rack_types:
        topology["nvlinkDomain"] = "node"
    if topology:
        spec["topology"] = topology
    if backend.backend == "cluster-api":
        infra_group, _, infra_kind = backend.infrastructure_template.rpartition("/")
        boot_group, _, boot_kind = backend.bootstrap_template.rpartition("/")
        spec["clusterApi"] = {
            "clusterName": backend.cluster_name or site,
            "kubernetesVersion": backend.kubernetes_version,
            "infrastructureRef": {"apiGroup": infra_group, "kind": infra_kind, "name": name},
            "bootstrapConfigRef": {"apiGroup": boot_group, "kind": boot_kind, "name": f"{site}-gpu"},
        }
    else:
        parts = backend.karpenter_node_class.split("/")
        group, kind = KARPENTER_DEFAULT_NODE_CLASS if len(parts) == 1 else (parts[0], parts[1])
        spec["karpenter"] = {
            "nodeClassRef": {"group": group, "kind": kind, "name": parts[-1]},
            "instanceTypes": list(instance_types or (rack_type,)),
        }
    return {
        "apiVersion": API_VERSION,
        "kind": "GpuNodePool",
        "metadata": _metadata(
            name, site, period, plan, **{api.POOL_LABEL: name, api.RACK_TYPE_LABEL: rack_type}
        ),
        "spec": spec,
    }


def tenant_manifest(
    plan: Plan,
    site: str,
    period: str,
    tenant: TenantInfo,
    quota: dict[str, int],
    sizing: TenantSizing,
    namespace_style: NamespaceStyle,
) -> Manifest:
    gpus = sum(quota.values())
    return {
        "apiVersion": API_VERSION,
        "kind": "Tenant",
        "metadata": _metadata(
            tenant_object_name(tenant.id, site, namespace_style),
            site,
            period,
            plan,
            **{api.TENANT_LABEL: tenant.id},
        ),
        "spec": {
            "displayName": tenant.display_name or tenant.id,
            "site": site,
            "owners": split_owners(tenant.owners),
            "namespaces": [tenant_namespace(tenant.id, site, namespace_style)],
            "gpuQuota": [{"pool": pool, "gpus": n} for pool, n in sorted(quota.items())],
            "cpuQuota": str(gpus * sizing.cpu_per_gpu),
            "memoryQuota": f"{gpus * sizing.memory_gib_per_gpu}Gi",
            "podQuota": gpus * sizing.pods_per_gpu,
            "deletionPolicy": sizing.deletion_policy,
        },
    }


def _power_at(plan: Plan, site: str, period: str) -> tuple[float, float]:
    for sp in plan.site_periods:
        if sp.site == site and sp.period == period:
            return sp.available_mw, sp.it_load_mw
    for p in plan.power:
        if p.site == site and p.period == period:
            return p.available_mw, p.it_load_mw
    return 0.0, 0.0


def desired_state(
    plan: Plan,
    site: str,
    period: str,
    *,
    backend: BackendSettings | Backend = "cluster-api",
    sizing: TenantSizing | None = None,
    namespace_style: NamespaceStyle = "tenant",
    operator: list[Manifest] | None = None,
    origin: Origin | None = None,
) -> DesiredState:
    """The site's node pools (one per rack type with racks) and tenants (one per tenant with quota).

    `operator` is the operator bundle to install first (see `infra.operator_bundle`); None leaves
    the operator out, e.g. for clusters where it is installed separately. Raises a `UserError`
    naming `origin`'s settings when the plan does not fit the site and period, or when what it
    asks for would break the CRDs' schemas.
    """
    origin = origin or Origin.for_cli()
    settings = backend if isinstance(backend, BackendSettings) else BackendSettings(backend=backend)
    sizing = sizing or TenantSizing()
    check_settings(settings.backend, namespace_style, origin)
    check_plan_matches(plan, site, period, origin, namespace_style=namespace_style)

    check_block_label(settings.topology_block_label, origin)
    check_instance_types_backend(settings.karpenter_instance_types, settings.backend, origin)
    check_single_node_nvlink(settings.single_node_nvlink_rack_types, plan, origin)
    racks = {rt: n for rt, n in sorted(plan.racks_at(site, period).items()) if n > 0}
    instance_types = (
        check_instance_types(settings.karpenter_instance_types, plan, site, sorted(racks), origin)
        if settings.backend == "karpenter"
        else {}
    )
    pools = [
        node_pool_manifest(plan, site, period, rt, n, settings, instance_types.get(rt, ()))
        for rt, n in racks.items()
    ]
    quotas = pool_quotas(plan, site, period)
    tenants = [
        tenant_manifest(plan, site, period, t, quotas[t.id], sizing, namespace_style)
        for t in sorted(plan.tenants, key=lambda t: t.id)
        if t.id in quotas
    ]
    check_against_crds([*pools, *tenants], origin)  # what the API server would refuse
    available_mw, it_load_mw = _power_at(plan, site, period)
    summary = SiteSummary(
        site=site,
        period=period,
        scenario_name=plan.scenario_name,
        scenario_hash=plan.scenario_hash,
        available_mw=available_mw,
        it_load_mw=it_load_mw,
        racks=racks,
        gpus=sum(n * plan.rack_type(rt).gpus_per_rack for rt, n in racks.items()),
        nodes=sum(n * plan.rack_type(rt).nodes_per_rack for rt, n in racks.items()),
        tenant_gpus={t: sum(q.values()) for t, q in sorted(quotas.items())},
    )
    return DesiredState(site, period, list(operator or []), pools, tenants, summary, origin)
