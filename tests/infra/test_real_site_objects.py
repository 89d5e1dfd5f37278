"""Done-when of issue 13, on the suite's real API server with the genuine upstream CRDs of Kueue,
Cluster API and Karpenter (tests/support/upstream-crds/, their schemas, defaults and pruning): for
every site and backend of the example, the rendered stack and the objects the operator derives
from it are accepted unchanged (nothing pruned, nothing rejected), and a GPU job, as Kueue admits
it on the pool's flavor, fits the pool's Nodes as Cluster API or Karpenter label and taint them,
with every resource it requests covered by the tenant's ClusterQueue.

The Pods and Nodes are real objects on the server: the LimitRanger and ResourceQuota admission
plugins fill and check the pod's requests. What no v1.20 server runs (Kueue's admission, the
CAPI/Karpenter controllers' node labelling, CEL) is simulated by operators/upstream_rules.py.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dsx.commands.provision import Phase, select_phase
from infra.checks import BACKENDS
from infra.desired_state import BackendSettings, desired_state
from infra.operator_bundle import operator_manifests
from operators import api
from operators import upstream_rules as up
from operators.decisions import nodepool, tenant
from operators.decisions.overcommit import Grant
from operators.decisions.quantity import same_quantity
from tests.infra.plan_factory import make_plan
from tests.support.real_cluster import ApiStatus, Client, RealCluster, wait_until

pytestmark = pytest.mark.real_cluster

SITES = ("batam", "sydney", "narvik")
PERIOD = "2027Q4"


def unchanged(sent: Any, stored: Any, where: str = "") -> list[str]:
    """Where the stored object differs from what was sent (server additions are fine)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [f"{where}: stored as {stored!r}"]
        return [d for k, v in sent.items() for d in unchanged(v, stored.get(k), f"{where}.{k}")]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [f"{where}: list stored as {stored!r}"]
        return [
            d
            for i, (a, b) in enumerate(zip(sent, stored, strict=True))
            for d in unchanged(a, b, f"{where}[{i}]")
        ]
    if sent == stored or (isinstance(sent, str) and same_quantity(sent, stored)):
        return []
    return [f"{where}: sent {sent!r}, stored {stored!r}"]


@pytest.fixture
def applied(real_cluster: RealCluster) -> Iterator[list[dict[str, Any]]]:
    """Objects the test applied, removed afterwards (no later operator may find them)."""
    objects: list[dict[str, Any]] = []
    yield objects
    cleanup(real_cluster.admin, objects)


def cleanup(admin: Client, objects: list[dict[str, Any]]) -> None:
    for obj in reversed(objects):
        meta = obj["metadata"]
        with contextlib.suppress(ApiStatus):
            admin.delete(obj["kind"], meta["name"], meta.get("namespace"))
    for obj in objects:  # the next case re-creates the same namespaces: wait until these are gone
        if obj["kind"] == "Namespace":
            name = obj["metadata"]["name"]
            wait_until(
                lambda name=name: admin.get("Namespace", name) is None, 120, f"namespace {name} deleted"
            )


def apply(admin: Client, obj: dict[str, Any], applied: list[dict[str, Any]]) -> dict[str, Any]:
    stored = wait_until(functools.partial(admin.create_or_replace, obj), 30, f"{obj['kind']} applied")
    applied.append(obj)
    differences = unchanged(obj, stored, f"{obj['kind']} {obj['metadata']['name']}")
    assert differences == [], differences
    return stored


BLOCK_LABEL = "network.topology.nvidia.com/spine"


def _settings(backend: str) -> BackendSettings:
    # bare-metal Karpenter: a node class of another provider than AWS, instance types per rack
    # type; a fabric that labels each node's spine, so the Topology has a block level
    return BackendSettings(
        backend,  # type: ignore[arg-type]
        karpenter_node_class="metal.example.com/MetalNodeClass/gpu",
        karpenter_instance_types=(
            {"gb300-nvl72": ("gb300-tray",), "b300-hgx": ("b300-8gpu",)} if backend == "karpenter" else {}
        ),  # Cluster API refuses them (they would be ignored)
        topology_block_label=BLOCK_LABEL,
    )


def _gpu_pod(name: str, namespace: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "containers": [
                {
                    "name": "trainer",
                    "image": "trainer",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                },
                {"name": "sidecar", "image": "sidecar"},
            ]
        },
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("site", SITES)
def test_site_stack_and_operator_objects_are_accepted_unchanged_and_gpu_jobs_fit_the_pool_nodes(
    real_cluster: RealCluster, applied: list[dict[str, Any]], site: str, backend: str
) -> None:
    check_site(real_cluster.admin, applied, site, backend)


def check_site(admin: Client, applied: list[dict[str, Any]], site: str, backend: str) -> None:
    state = desired_state(
        make_plan(SITES, ("2027Q3", PERIOD)),
        site,
        PERIOD,
        backend=_settings(backend),
        namespace_style="tenant-site",
        operator=operator_manifests(),
    )
    # Phase 1, the CRDs (the fixture installed the same files; applying again changes nothing).
    for crd in select_phase(state.manifests(), Phase.crds):
        stored = admin.create_or_replace(crd)
        assert unchanged(crd["spec"]["names"], stored["spec"]["names"]) == []
    # Phase 2, the stack's pools and tenants (the operator's RBAC and namespace are the fixture's,
    # from the same manifest; its Deployment would not run without a kubelet).
    stored_pools = [apply(admin, m, applied) for m in state.node_pools]
    stored_tenants = [apply(admin, m, applied) for m in state.tenants]
    assert stored_pools and stored_tenants

    # What the operator derives from them, applied as it would write them.
    flavors: dict[str, dict[str, Any]] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for pool in stored_pools:
        machinery, topology, flavor = nodepool.desired_children(pool)
        for child in (machinery, topology, flavor):
            assert up.problems(child) == []
            apply(admin, child, applied)
        flavors[pool["metadata"]["name"]] = flavor
        node_name = f"gpu-{uuid.uuid4().hex[:8]}"
        if backend == "cluster-api":
            node = up.node_of_machine_deployment(machinery, node_name)
        else:
            instance_type = pool["spec"]["karpenter"]["instanceTypes"][0]
            assert up.instance_type_allowed(machinery, instance_type)
            others = {
                t for p in stored_pools if p is not pool for t in p["spec"]["karpenter"]["instanceTypes"]
            }
            assert not any(up.instance_type_allowed(machinery, t) for t in others)
            node = up.node_of_node_pool(machinery, node_name, instance_type)
        # the labels the site's own tooling adds: its fabric's block, GPU feature discovery's clique
        node["metadata"]["labels"].update({BLOCK_LABEL: "spine-1", api.NVLINK_DOMAIN_LABEL: "clique-1"})
        ready = {**node, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        assert up.topology_nodes([ready], flavor, topology) == [node_name]
        node = {"apiVersion": "v1", "kind": "Node", **node}
        admin.create(node)  # not dsx's object: the server adds its lifecycle taints (not-ready)
        applied.append(node)
        nodes[pool["metadata"]["name"]] = node

    for t in stored_tenants:
        grant = Grant({q["pool"]: q["gpus"] for q in t["spec"]["gpuQuota"]})
        children = tenant.desired_children(t, grant)
        for child in children:
            assert up.problems(child) == []
            apply(admin, child, applied)
        queue = next(c for c in children if c["kind"] == "ClusterQueue")
        namespace = t["spec"]["namespaces"][0]
        wait_until(
            lambda ns=namespace: admin.get("ServiceAccount", "default", ns), 60, "default ServiceAccount"
        )
        for pool_name in grant.granted_by_pool:
            pool = next(p for p in stored_pools if p["metadata"]["name"] == pool_name)
            gpus = pool["spec"]["gpusPerNode"]
            job = _gpu_pod(f"job-{uuid.uuid4().hex[:6]}", namespace, gpus)
            job["spec"] = up.admitted_pod(job["spec"], flavors[pool_name])
            # The real admission chain: LimitRanger fills cpu and memory, the quota admits the GPUs.
            # (a tenant's object, not dsx's: the server adds its default tolerations)
            pod = wait_until(functools.partial(admin.create, job), 30, "GPU pod admitted")
            applied.append(job)
            requests = up.pod_requests(pod["spec"])
            assert {"cpu", "memory", "nvidia.com/gpu"} <= set(requests)
            assert up.uncovered_resources(requests, queue) == []
            assert up.fits_nominal(requests, queue, pool_name) == []
            node = admin.get("Node", nodes[pool_name]["metadata"]["name"])
            assert node is not None
            # the pool's labels and taints as stored; the lifecycle taints (node.kubernetes.io/*)
            # are the node controller's, gone once the kubelet reports Ready
            node["spec"]["taints"] = [
                t for t in node["spec"].get("taints") or [] if not t["key"].startswith("node.kubernetes.io/")
            ]
            assert node["spec"]["taints"] == nodes[pool_name]["spec"]["taints"]
            assert up.schedulable(pod["spec"], node) == []
            # and the same pod as written, before Kueue's admission, would not fit the GPU node
            assert up.schedulable(_gpu_pod("x", namespace, gpus)["spec"], node)
