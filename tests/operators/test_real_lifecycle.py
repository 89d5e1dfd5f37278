"""The operator's lifecycle on a real API server, as deployed: its own process, its own ServiceAccount.

One `kopf run -m operators.main` for the module, authenticated as `dsx-system/dsx-operator` and so
authorised only by the shipped ClusterRole, against the session's real kube-apiserver
(tests/support/real_cluster.py). Every test uses its own pool, tenants and namespaces, so tests do
not see each other's objects. The drift interval is 1 s.

`pending(what)` marks a test xfail(strict=True) that asserts what the operator must do and does
not yet, naming the bug; whoever fixes it removes the marker. The issue-12 bugs are fixed and no
test carries one today.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.utils import parse_quantity

from tests.support.dsx_objects import make_pool
from tests.support.operator_process import LEASE_S, OperatorProcess
from tests.support.real_cluster import (
    OPERATOR_NAMESPACE,
    OPERATOR_SERVICE_ACCOUNT,
    Client,
    RealCluster,
    wait_until,
)

pytestmark = pytest.mark.real_cluster

INTERVAL_S = 1.0
SETTLE_S = 45.0  # what a test waits at most for the operator to act (a busy 2-core machine)
GPU = "requests.nvidia.com/gpu"
OWNERS = "dsx-owners"
QUOTA = "dsx-quota"


def pending(what: str) -> pytest.MarkDecorator:
    """Asserts what issue 12 requires; fails today by assertion or timeout (not by a test error)."""
    return pytest.mark.xfail(
        strict=True, raises=(AssertionError, TimeoutError), reason=f"issue 12 operator fix pending: {what}"
    )


# --- fixtures and factories ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def operator(
    real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    directory = tmp_path_factory.mktemp("operator")
    kubeconfig = real_cluster.service_account_kubeconfig(directory / "operator.kubeconfig")
    process = OperatorProcess(kubeconfig, directory / "operator.log", interval_s=INTERVAL_S)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def admin(real_cluster: RealCluster, operator: OperatorProcess) -> Client:
    return real_cluster.admin


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def make_tenant(
    name: str,
    pool: str,
    gpus: int,
    namespaces: list[str] | None = None,
    policy: str = "Retain",
    **spec: Any,
) -> dict[str, Any]:
    body = {
        "site": "batam",
        "owners": {"users": [f"{name}@example.com"], "groups": [f"{name}-admins"]},
        "namespaces": namespaces or [f"{name}-ns"],
        "gpuQuota": [{"pool": pool, "gpus": gpus}],
        "cpuQuota": "200",
        "memoryQuota": "2Ti",
        "podQuota": 100,
        "deletionPolicy": policy,
    }
    body.update(spec)
    return {"apiVersion": "dsx.ai/v1alpha1", "kind": "Tenant", "metadata": {"name": name}, "spec": body}


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return None


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = SETTLE_S) -> Any:
    return wait_until(predicate, timeout_s, what, interval_s=0.1)


def gpu_quota(admin: Client, namespace: str) -> int | None:
    quota = admin.get("ResourceQuota", QUOTA, namespace)
    return None if quota is None else int(parse_quantity(quota["spec"]["hard"][GPU]))


def reconciled(admin: Client, name: str) -> dict[str, Any] | None:
    """The tenant once the operator has written its status for the current generation."""
    tenant = admin.get("Tenant", name)
    status = (tenant or {}).get("status") or {}
    if (
        tenant
        and status.get("conditions")
        and status.get("observedGeneration") == tenant["metadata"]["generation"]
    ):
        return tenant
    return None


def ready(admin: Client, name: str) -> dict[str, Any] | None:
    tenant = reconciled(admin, name)
    c = condition(tenant, "Ready")
    return tenant if c and c["status"] == "True" else None


def delete_tenant(admin: Client, name: str) -> None:
    """Delete and wait until the operator released its finalizer."""
    admin.delete("Tenant", name)
    wait_for(lambda: admin.get("Tenant", name) is None, f"tenant {name} gone (finalizer released)")


def create_pod(admin: Client, namespace: str, name: str = "worker") -> None:
    """A pod that is stored but never runs (no nodes). Retried until the namespace's default
    ServiceAccount exists (the ServiceAccount admission plugin wants it)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{"name": "main", "image": "registry.example/idle:1"}],
        },
    }
    wait_for(lambda: admin.create(pod), f"pod {namespace}/{name} admitted")


class QuotaTimeline:
    """Every GPU quota value the server stored for some namespaces, in the server's order.

    A watch on ResourceQuotas from a list's resourceVersion sees every change, so the largest sum
    over the timeline is the largest quota that was granted at any instant, not a sample.
    """

    def __init__(self, admin: Client, namespaces: set[str]):
        self.core = k8s.CoreV1Api(admin.api)
        self.namespaces = namespaces
        self.values: dict[str, int] = {}
        self.totals: list[int] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _record(self, quota: dict[str, Any], deleted: bool = False) -> None:
        meta = quota["metadata"]
        if meta["namespace"] not in self.namespaces or meta["name"] != QUOTA:
            return
        with self.lock:
            if deleted:
                self.values.pop(meta["namespace"], None)
            else:
                self.values[meta["namespace"]] = int(parse_quantity(quota["spec"]["hard"].get(GPU, "0")))
            self.totals.append(sum(self.values.values()))

    def _run(self) -> None:
        try:
            self._follow()
        except BaseException as error:  # reported by __exit__: a timeline with gaps proves nothing
            self.error = error

    def _follow(self) -> None:
        listing = self.core.list_resource_quota_for_all_namespaces(_preload_content=False)
        body = json.loads(listing.data)
        for quota in body["items"]:
            self._record(quota)
        version = body["metadata"]["resourceVersion"]
        while not self.stop.is_set():
            stream = k8s_watch.Watch().stream(
                self.core.list_resource_quota_for_all_namespaces,
                resource_version=version,
                timeout_seconds=1,
                allow_watch_bookmarks=False,
            )
            for event in stream:
                raw = event["raw_object"]
                version = raw["metadata"]["resourceVersion"]
                self._record(raw, deleted=event["type"] == "DELETED")

    def __enter__(self) -> QuotaTimeline:
        self.thread.start()
        time.sleep(0.5)  # the initial list is in
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the quota watch did not stop"
        assert self.error is None, f"the quota watch failed: {self.error!r}"
        assert self.totals, "the quota watch saw no quota at all"

    @property
    def largest_total(self) -> int:
        with self.lock:
            return max(self.totals, default=0)


def writes_to(real_cluster: RealCluster, since: float, names: set[str], namespaces: set[str]) -> list[str]:
    """The operator's write requests (from the audit log) that touched these objects or namespaces."""
    out = []
    for event in real_cluster.writes(since=since):
        ref = event.get("objectRef") or {}
        if ref.get("resource") == "events":
            continue
        if ref.get("namespace") in namespaces or (not ref.get("namespace") and ref.get("name") in names):
            out.append(
                f"{event['verb']} {ref.get('resource')}{'/' + ref['subresource'] if ref.get('subresource') else ''}"
                f" {ref.get('namespace') or '-'}/{ref.get('name')}"
            )
    return out


def assert_repair_is_counted(
    real_cluster: RealCluster, admin: Client, tenant: str, ns: str, gpus: int
) -> None:
    """Positive control for the write counts: a hand edit is repaired, and the audit log has it."""
    since = time.time()
    admin.patch("ResourceQuota", QUOTA, {"spec": {"hard": {GPU: "99"}}}, namespace=ns)
    wait_for(lambda: gpu_quota(admin, ns) == gpus, "GPU quota put back")
    assert any("resourcequotas" in w for w in writes_to(real_cluster, since, {tenant}, {ns}))


# --- create, update, drift ------------------------------------------------------------------------


def test_tenant_and_pool_become_namespaces_quota_isolation_queues_and_machines(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 400))
    admin.create(make_tenant(tenant, pool, 100, cpuQuota="20000", memoryQuota="200Ti"))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")

    namespace = admin.get("Namespace", ns)
    assert namespace["metadata"]["labels"]["dsx.ai/tenant"] == tenant
    assert namespace["status"]["phase"] == "Active"
    quota = admin.get("ResourceQuota", QUOTA, ns)
    assert gpu_quota(admin, ns) == 100
    assert parse_quantity(quota["spec"]["hard"]["requests.cpu"]) == 20000
    assert parse_quantity(quota["spec"]["hard"]["requests.memory"]) == parse_quantity("200Ti")
    # the real quota controller enforces it: usage is tracked
    wait_for(lambda: (admin.get("ResourceQuota", QUOTA, ns).get("status") or {}).get("used"), "quota usage")
    assert admin.get("LimitRange", "dsx-limits", ns)["spec"]["limits"][0]["type"] == "Container"
    binding = admin.get("RoleBinding", OWNERS, ns)
    assert binding["roleRef"]["name"] == "dsx-namespace-admin"
    assert {s["name"] for s in binding["subjects"]} == {f"{tenant}@example.com", f"{tenant}-admins"}
    policy = admin.get("NetworkPolicy", "dsx-tenant-isolation", ns)
    assert policy["spec"]["podSelector"] == {}
    assert admin.get("LocalQueue", "default", ns)["spec"]["clusterQueue"] == tenant
    cluster_queue = admin.get("ClusterQueue", tenant)
    assert cluster_queue["spec"]["cohortName"] == "batam"
    # children carry a real owner reference to the Tenant (uid included), namespaces none
    uid = admin.get("Tenant", tenant)["metadata"]["uid"]
    assert quota["metadata"]["ownerReferences"][0]["uid"] == uid
    assert not namespace["metadata"].get("ownerReferences")

    machines = wait_for(lambda: admin.get("MachineDeployment", pool, "dsx-system"), "MachineDeployment")
    assert machines["spec"]["replicas"] == 100
    assert admin.get("ResourceFlavor", pool)["spec"]["nodeLabels"]["dsx.ai/pool"] == pool
    status = wait_for(
        lambda: (admin.get("GpuNodePool", pool).get("status") or {}).get("capacityGpus"), "pool status"
    )
    assert status == 400


def test_owners_get_the_namespace_admin_role_and_nothing_outside(
    real_cluster: RealCluster, admin: Client
) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")

    def allowed(user: str, verb: str, resource: str, namespace: str) -> bool:
        review = admin.request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": user,
                    "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace},
                },
            },
        )
        return bool(review["status"]["allowed"])

    owner = f"{tenant}@example.com"
    wait_for(lambda: allowed(owner, "create", "pods", ns), "the RoleBinding to take effect")
    assert allowed(owner, "get", "secrets", ns)
    assert not allowed(owner, "update", "resourcequotas", ns)  # cannot raise its own quota
    assert not allowed(owner, "get", "pods", "kube-system")
    assert not allowed("someone-else", "get", "pods", ns)


def test_update_resizes_the_quota_the_queue_and_the_machines(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 40))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    assert gpu_quota(admin, ns) == 40

    admin.patch("GpuNodePool", pool, {"spec": {"nodesPerRack": 50}})  # 200 GPUs
    admin.patch("Tenant", tenant, {"spec": {"gpuQuota": [{"pool": pool, "gpus": 150}]}})
    wait_for(lambda: gpu_quota(admin, ns) == 150, "quota raised to 150")
    wait_for(
        lambda: (
            (admin.get("MachineDeployment", pool, "dsx-system") or {}).get("spec", {}).get("replicas") == 50
        ),
        "MachineDeployment scaled to 50",
    )
    flavors = admin.get("ClusterQueue", tenant)["spec"]["resourceGroups"][0]["flavors"]
    gpu = next(r for r in flavors[0]["resources"] if r["name"] == "nvidia.com/gpu")
    assert parse_quantity(gpu["nominalQuota"]) == 150
    assert (
        condition(wait_for(lambda: ready(admin, tenant), "Ready again"), "Overcommitted")["status"] == "False"
    )


def test_backend_switch_replaces_the_machine_deployment_with_a_karpenter_node_pool(admin: Client) -> None:
    pool = unique("pool")
    admin.create(make_pool(pool, 100))
    wait_for(lambda: admin.get("MachineDeployment", pool, "dsx-system"), "MachineDeployment")
    node_class = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"}
    karpenter = {"nodeClassRef": node_class, "instanceTypes": ["p6-b300.48xlarge"]}
    admin.patch("GpuNodePool", pool, {"spec": {"backend": "karpenter", "karpenter": karpenter}})
    node_pool = wait_for(lambda: admin.get("NodePool", pool), "Karpenter NodePool")
    assert parse_quantity(node_pool["spec"]["limits"]["nvidia.com/gpu"]) == 100
    assert node_pool["spec"]["template"]["spec"]["nodeClassRef"] == node_class
    wait_for(lambda: admin.get("MachineDeployment", pool, "dsx-system") is None, "MachineDeployment removed")


def test_cluster_api_references_the_site_has_not_made_are_named_until_it_makes_them(
    real_cluster: RealCluster, admin: Client
) -> None:
    site = unique("site")  # its own Cluster name: no other test's pool sees this test's Cluster
    pool = unique("pool")
    admin.create(make_pool(pool, 8, site=site))

    def references_condition() -> dict[str, Any] | None:
        return condition(admin.get("GpuNodePool", pool), "ClusterApiReferencesMissing")

    missing = wait_for(references_condition, "the references checked")
    assert missing["status"] == "True" and missing["reason"] == "ReferenceNotFound"
    assert f"Cluster dsx-system/{site} (spec.clusterApi.clusterName) does not exist" in missing["message"]
    assert "Metal3MachineTemplate dsx-system/gpu" in missing["message"]
    assert "KubeadmConfigTemplate dsx-system/gpu" in missing["message"]
    template = unique("gpu")
    made = [
        {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": site}},
        {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "Metal3MachineTemplate"},
        {"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate"},
    ]
    for obj in made:
        obj["metadata"] = {"name": obj.get("metadata", {}).get("name", template), "namespace": "dsx-system"}
        admin.create(obj)
    spec = admin.get("GpuNodePool", pool)["spec"]["clusterApi"]
    admin.patch(
        "GpuNodePool",
        pool,
        {
            "spec": {
                "clusterApi": {
                    "infrastructureRef": {**spec["infrastructureRef"], "name": template},
                    "bootstrapConfigRef": {**spec["bootstrapConfigRef"], "name": template},
                }
            }
        },
    )
    found = wait_for(
        lambda: (c := references_condition()) and c["status"] == "False" and c, "every reference found"
    )
    assert found["reason"] == "AllFound"
    # read, never written: the operator's ServiceAccount may only get them (the shipped ClusterRole)
    if real_cluster.audit_log is not None:
        touched = [
            e
            for e in real_cluster.audit_events()
            if (e.get("objectRef") or {}).get("resource")
            in {"clusters", "metal3machinetemplates", "kubeadmconfigtemplates"}
        ]
        assert touched and {e["verb"] for e in touched} == {"get"}
    for obj in made:
        admin.delete(obj["kind"], obj["metadata"]["name"], "dsx-system")


def test_deleting_a_pool_lets_the_garbage_collector_remove_what_it_owned(admin: Client) -> None:
    pool = unique("pool")
    admin.create(make_pool(pool, 100))
    wait_for(lambda: admin.get("MachineDeployment", pool, "dsx-system"), "MachineDeployment")
    wait_for(lambda: admin.get("ResourceFlavor", pool), "ResourceFlavor")
    admin.delete("GpuNodePool", pool)
    # No deletion handler for pools (Kopf's finalizer only waits for the drift timer to stop):
    # the owner references (with the pool's real uid) do the work.
    wait_for(
        lambda: admin.get("MachineDeployment", pool, "dsx-system") is None, "MachineDeployment collected"
    )
    wait_for(lambda: admin.get("ResourceFlavor", pool) is None, "ResourceFlavor collected")


def test_second_namespace_added_then_removed_is_created_then_released(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    first, second = f"{tenant}-a", f"{tenant}-b"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, namespaces=[first]))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    admin.patch("Tenant", tenant, {"spec": {"namespaces": [first, second]}})
    wait_for(lambda: gpu_quota(admin, second) == 5 and gpu_quota(admin, first) == 5, "quota split 5 + 5")
    admin.patch("Tenant", tenant, {"spec": {"namespaces": [first]}})
    wait_for(
        lambda: (
            admin.get("Namespace", second)["metadata"]["labels"].get("dsx.ai/released-by-policy") == "Retain"
        ),
        "dropped namespace released under Retain",
    )
    wait_for(lambda: gpu_quota(admin, first) == 10, "all GPUs back in the remaining namespace")


def test_hand_edits_to_quota_labels_and_limits_are_put_back(real_cluster: RealCluster, admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 30))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")

    admin.patch("ResourceQuota", QUOTA, {"spec": {"hard": {GPU: "99"}}}, namespace=ns)
    admin.patch("Namespace", ns, {"metadata": {"labels": {"dsx.ai/tenant": "someone-else"}}})
    admin.delete("LimitRange", "dsx-limits", ns)
    admin.patch(
        "RoleBinding",
        OWNERS,
        {"subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]},
        namespace=ns,
    )
    wait_for(lambda: gpu_quota(admin, ns) == 30, "GPU quota put back")
    wait_for(
        lambda: admin.get("Namespace", ns)["metadata"]["labels"]["dsx.ai/tenant"] == tenant, "label put back"
    )
    wait_for(lambda: admin.get("LimitRange", "dsx-limits", ns), "LimitRange re-created")
    if real_cluster.audit_log is not None:
        assert_repair_is_counted(real_cluster, admin, tenant, ns, 30)
    wait_for(
        lambda: "mallory" not in {s["name"] for s in admin.get("RoleBinding", OWNERS, ns)["subjects"]},
        "RoleBinding subjects put back",
    )


def test_a_tenant_namespace_runs_pods_at_baseline_pod_security_and_a_lowered_level_is_put_back(
    admin: Client,
) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    enforce = "pod-security.kubernetes.io/enforce"
    assert admin.get("Namespace", ns)["metadata"]["labels"][enforce] == "baseline"
    admin.patch("Namespace", ns, {"metadata": {"labels": {enforce: "privileged"}}})
    wait_for(
        lambda: admin.get("Namespace", ns)["metadata"]["labels"][enforce] == "baseline", "level put back"
    )


def test_a_namespace_an_earlier_version_gave_a_tenant_that_is_protected_now_is_let_go_never_deleted(
    admin: Client,
) -> None:
    # cert-manager is an add-on's namespace, refused to tenants from session 23; an earlier
    # operator could have created it for one. Dropped from the spec under Delete, it was deleted;
    # detached, the owners kept admin rights over the add-on's workloads there.
    pool, tenant, addon = unique("pool"), unique("tn"), "cert-manager"
    assert admin.get("Namespace", addon) is None
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, policy="Delete"))
    uid = wait_for(lambda: ready(admin, tenant), "tenant Ready")["metadata"]["uid"]
    mine = {
        "labels": {"app.kubernetes.io/managed-by": "dsx-operator", "dsx.ai/owner-tenant": tenant},
        "ownerReferences": [{"apiVersion": "dsx.ai/v1alpha1", "kind": "Tenant", "name": tenant, "uid": uid}],
    }
    # Made unmarked, marked the tenant's once its objects are in: the state an earlier version
    # left, all at once (marked first, a pass could list its kinds between the creations below).
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": addon}})
    try:
        # what the earlier version left there: its own binding, a GPU quota and the owners' binding
        admin.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "dsx-operator", "namespace": addon, **mine},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "dsx-operator-in-tenant-namespace",
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": OPERATOR_SERVICE_ACCOUNT,
                        "namespace": OPERATOR_NAMESPACE,
                    }
                ],
            }
        )
        admin.create(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": QUOTA, "namespace": addon, **mine},
                "spec": {"hard": {GPU: "64"}},
            }
        )
        admin.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": OWNERS, "namespace": addon, **mine},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
            }
        )
        admin.patch(
            "Namespace",
            addon,
            {"metadata": {"labels": {"dsx.ai/tenant": tenant}, "annotations": {"dsx.ai/tenant-uid": uid}}},
        )
        wait_for(lambda: admin.get("RoleBinding", OWNERS, addon) is None, "the owners' binding removed")
        wait_for(lambda: admin.get("ResourceQuota", QUOTA, addon) is None, "its GPU quota removed")

        def let_go() -> dict[str, Any] | None:
            meta = admin.get("Namespace", addon)["metadata"]
            return None if "dsx.ai/tenant-uid" in (meta.get("annotations") or {}) else meta

        meta = wait_for(let_go, "no longer the tenant's")
        assert "dsx.ai/tenant" not in (meta.get("labels") or {})
        delete_tenant(admin, tenant)
        live = admin.get("Namespace", addon)
        assert live is not None and live["status"]["phase"] == "Active"
    finally:
        if admin.get("Namespace", addon) is not None:
            admin.delete("Namespace", addon)
        wait_for(lambda: admin.get("Namespace", addon) is None, "cert-manager gone", timeout_s=120)


def test_a_stricter_pod_security_level_a_site_admin_set_is_kept(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    enforce = "pod-security.kubernetes.io/enforce"
    admin.patch(
        "Namespace", ns, {"metadata": {"labels": {enforce: "restricted", f"{enforce}-version": "v1.30"}}}
    )
    time.sleep(3 * INTERVAL_S)  # several passes
    labels = admin.get("Namespace", ns)["metadata"]["labels"]
    assert (labels[enforce], labels[f"{enforce}-version"]) == ("restricted", "v1.30")


def test_narrowed_network_policy_is_put_back(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    # Isolation now covers only pods labelled app=decoy: every other pod is open.
    admin.patch(
        "NetworkPolicy",
        "dsx-tenant-isolation",
        {"spec": {"podSelector": {"matchLabels": {"app": "decoy"}}}},
        namespace=ns,
    )
    wait_for(
        lambda: admin.get("NetworkPolicy", "dsx-tenant-isolation", ns)["spec"]["podSelector"] == {},
        "podSelector put back to every pod",
        timeout_s=5 * INTERVAL_S + 3,
    )


def test_quota_recreated_with_a_scope_is_put_back(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    # Scopes are immutable, so this drift takes a delete and a create: the GPU quota then applies
    # to BestEffort pods only, i.e. to none (a pod requesting a GPU is not BestEffort).
    scoped = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA, "namespace": ns},
        "spec": {"hard": {GPU: "10", "pods": "100"}, "scopes": ["BestEffort"]},
    }

    def replace() -> bool:
        admin.delete("ResourceQuota", QUOTA, ns)
        admin.create(scoped)  # 409 when the operator re-created it first: try again
        return True

    wait_for(replace, "quota replaced by a scoped one")
    wait_for(
        lambda: (
            not (admin.get("ResourceQuota", QUOTA, ns) or {"spec": {"scopes": ["?"]}})["spec"].get("scopes")
        ),
        "an unscoped quota back",
        timeout_s=5 * INTERVAL_S + 3,
    )
    assert gpu_quota(admin, ns) == 10


# --- writes when nothing changes ------------------------------------------------------------------


def test_quota_with_canonicalised_quantities_is_not_rewritten_when_idle(
    real_cluster: RealCluster, admin: Client
) -> None:
    if real_cluster.audit_log is None:
        pytest.skip("needs the audit log of the suite's own API server")
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, cpuQuota="20000", memoryQuota="2594816Gi", podQuota=20000))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    stored = admin.get("ResourceQuota", QUOTA, ns)["spec"]["hard"]
    assert (stored["requests.cpu"], stored["requests.memory"], stored["pods"]) == ("20k", "2534Ti", "20k")
    time.sleep(2 * INTERVAL_S)  # let the creation settle
    since = time.time()
    version = admin.get("ResourceQuota", QUOTA, ns)["metadata"]["resourceVersion"]
    time.sleep(5 * INTERVAL_S)
    quota_writes = [w for w in writes_to(real_cluster, since, {tenant, pool}, {ns}) if "resourcequotas" in w]
    assert quota_writes == []
    assert admin.get("ResourceQuota", QUOTA, ns)["metadata"]["resourceVersion"] == version
    assert_repair_is_counted(real_cluster, admin, tenant, ns, 10)


def test_idle_tenant_and_pool_get_no_writes_over_several_intervals(
    real_cluster: RealCluster, admin: Client
) -> None:
    if real_cluster.audit_log is None:
        pytest.skip("needs the audit log of the suite's own API server")
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    # quantities the server stores as given, so only the status writes remain
    admin.create(make_tenant(tenant, pool, 10, cpuQuota="200", memoryQuota="2Ti", podQuota=100))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    time.sleep(2 * INTERVAL_S)
    since = time.time()
    time.sleep(5 * INTERVAL_S)
    assert writes_to(real_cluster, since, {tenant, pool}, {ns}) == []
    assert_repair_is_counted(real_cluster, admin, tenant, ns, 10)


# --- overcommit -------------------------------------------------------------------------------------


def test_second_tenant_gets_only_what_the_pool_has_left(admin: Client) -> None:
    pool, first, second = unique("pool"), unique("tn"), unique("tn")
    namespaces = {f"{first}-ns", f"{second}-ns"}
    admin.create(make_pool(pool, 100))
    with QuotaTimeline(admin, namespaces) as timeline:
        admin.create(make_tenant(first, pool, 80))
        wait_for(lambda: ready(admin, first), "first tenant Ready")
        time.sleep(1.1)  # creation timestamps have whole seconds: make the order unambiguous
        admin.create(make_tenant(second, pool, 60))
        tenant = wait_for(lambda: ready(admin, second), "second tenant Ready")
        time.sleep(3 * INTERVAL_S)  # drift passes of both
    assert gpu_quota(admin, f"{first}-ns") == 80
    assert gpu_quota(admin, f"{second}-ns") == 20
    over = condition(tenant, "Overcommitted")
    assert over["status"] == "True" and "20 of 60" in over["message"]
    assert tenant["status"]["quota"] == [{"pool": pool, "requestedGpus": 60, "grantedGpus": 20}]
    assert timeline.largest_total <= 100, timeline.totals


def test_raise_by_an_older_tenant_never_takes_a_younger_tenants_grant(admin: Client) -> None:
    pool, older, younger = unique("pool"), unique("tn"), unique("tn")
    admin.create(make_pool(pool, 100))
    with QuotaTimeline(admin, {f"{older}-ns", f"{younger}-ns"}) as timeline:
        admin.create(make_tenant(older, pool, 40))
        wait_for(lambda: ready(admin, older), "older tenant Ready")
        time.sleep(1.1)
        admin.create(make_tenant(younger, pool, 60))
        wait_for(lambda: ready(admin, younger), "younger tenant Ready")
        admin.patch("Tenant", older, {"spec": {"gpuQuota": [{"pool": pool, "gpus": 80}]}})
        wait_for(lambda: reconciled(admin, older), "raise reconciled")
        time.sleep(4 * INTERVAL_S)
    seen = f"GPU quota totals over time: {timeline.totals}"
    assert timeline.largest_total <= 100, seen
    assert gpu_quota(admin, f"{younger}-ns") == 60, seen
    assert gpu_quota(admin, f"{older}-ns") == 40, seen
    assert condition(admin.get("Tenant", older), "Overcommitted")["status"] == "True"


@contextlib.contextmanager
def drift_interval(operator: OperatorProcess, seconds: float) -> Iterator[None]:
    """The module's operator restarted with another drift interval, and back afterwards."""
    operator.stop()
    operator.env["DSX_RECONCILE_INTERVAL_S"] = str(seconds)
    operator.start()
    try:
        yield
    finally:
        operator.stop()
        operator.env["DSX_RECONCILE_INTERVAL_S"] = str(INTERVAL_S)
        operator.start()


def _start_of_next_second() -> None:
    time.sleep(1.02 - time.time() % 1)


def test_newcomer_is_never_granted_what_another_tenant_holds(
    admin: Client, operator: OperatorProcess
) -> None:
    """Creation timestamps have whole seconds and ties go by name, so a newcomer named before a
    tenant created earlier in the same second comes first in the grant order. With a production-
    like drift interval the older tenant's quota is not lowered in the meantime.

    Arranging "same second" can miss on a busy machine: up to 6 tries; the pool is never
    exceeded on any of them."""
    pool = unique("pool")
    admin.create(make_pool(pool, 100))
    arranged = False
    with drift_interval(operator, 60):
        for _attempt in range(6):
            prefix = unique("tn")
            older, newcomer = f"{prefix}-b", f"{prefix}-a"
            with QuotaTimeline(admin, {f"{older}-ns", f"{newcomer}-ns"}) as timeline:
                _start_of_next_second()
                admin.create(make_tenant(older, pool, 60))
                wait_for(lambda older=older: gpu_quota(admin, f"{older}-ns") == 60, "older tenant's quota")
                admin.create(make_tenant(newcomer, pool, 60))
                wait_for(lambda newcomer=newcomer: reconciled(admin, newcomer), "newcomer reconciled")
                time.sleep(1)
            assert timeline.largest_total <= 100, f"GPU quota totals over time: {timeline.totals}"
            assert gpu_quota(admin, f"{older}-ns") == 60  # never taken away
            stamps = {admin.get("Tenant", n)["metadata"]["creationTimestamp"] for n in (older, newcomer)}
            for name in (older, newcomer):
                delete_tenant(admin, name)
            if len(stamps) == 1:
                arranged = True
                break
    assert arranged, "the two tenants never landed in the same second: the case was not tested"


# --- deletion --------------------------------------------------------------------------------------


def test_retain_keeps_namespaces_with_quota_after_garbage_collection(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, policy="Retain"))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    create_pod(admin, ns)
    delete_tenant(admin, tenant)
    wait_for(lambda: admin.get("ClusterQueue", tenant) is None, "ClusterQueue deleted")
    # The garbage collector has had time to act on the deleted owner: the children stay because
    # the operator detached them (no owner references) before releasing the finalizer.
    time.sleep(3)
    assert admin.get("Namespace", ns)["metadata"]["labels"]["dsx.ai/released-by-policy"] == "Retain"
    quota = admin.get("ResourceQuota", QUOTA, ns)
    assert quota is not None and not quota["metadata"].get("ownerReferences")
    assert admin.get("NetworkPolicy", "dsx-tenant-isolation", ns) is not None
    assert admin.get("Pod", "worker", ns) is not None


def test_delete_when_empty_deletes_only_the_empty_namespace(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    busy, empty = f"{tenant}-busy", f"{tenant}-empty"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, namespaces=[busy, empty], policy="DeleteWhenEmpty"))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    create_pod(admin, busy)
    delete_tenant(admin, tenant)
    wait_for(
        lambda: admin.get("Namespace", empty) is None, "empty namespace finalized by the namespace controller"
    )
    assert admin.get("Namespace", busy)["status"]["phase"] == "Active"
    assert admin.get("Pod", "worker", busy) is not None


def test_delete_policy_deletes_namespaces_with_their_workloads(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, policy="Delete"))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    create_pod(admin, ns)
    delete_tenant(admin, tenant)
    wait_for(lambda: admin.get("Namespace", ns) is None, "namespace and its pod deleted")


def test_delete_when_empty_keeps_a_namespace_holding_a_volume(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, policy="DeleteWhenEmpty"))
    wait_for(lambda: ready(admin, tenant), "tenant Ready")
    admin.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Ti"}}},
        }
    )
    delete_tenant(admin, tenant)
    time.sleep(2)
    namespace = admin.get("Namespace", ns)
    assert namespace is not None and namespace["status"]["phase"] == "Active"


# --- ownership (issue 12: tenants isolated from each other and from the system) -----------------


def reports_refusal(tenant: dict[str, Any] | None, subject: str) -> bool:
    """The Tenant says it was refused: Ready=False, or a condition naming what was refused."""
    conditions = ((tenant or {}).get("status") or {}).get("conditions", [])
    ready_condition = condition(tenant, "Ready")
    if ready_condition and ready_condition["status"] == "False":
        return True
    return any(
        c["type"] not in ("Ready", "Overcommitted") and subject in c.get("message", "") for c in conditions
    )


def _cleanup_foreign_namespace(admin: Client, tenant: str, ns: str, labels: dict[str, str]) -> None:
    """Undo what a takeover did to a namespace the test does not own (the tenant is gone first)."""
    if admin.get("Tenant", tenant) is not None:
        admin.patch("Tenant", tenant, {"spec": {"deletionPolicy": "Retain"}})
        delete_tenant(admin, tenant)
    for kind, name in [
        ("ResourceQuota", QUOTA),
        ("LimitRange", "dsx-limits"),
        ("RoleBinding", OWNERS),
        ("NetworkPolicy", "dsx-tenant-isolation"),
        ("LocalQueue", "default"),
    ]:
        admin.delete(kind, name, ns)
    live = admin.get("Namespace", ns)
    if live is not None:
        admin.patch(
            "Namespace",
            ns,
            {"metadata": {"labels": {k: labels.get(k) for k in live["metadata"].get("labels", {})}}},
        )


def test_tenant_listing_a_system_namespace_is_refused_and_leaves_it_untouched(admin: Client) -> None:
    pool, tenant, ns = unique("pool"), unique("tn"), "kube-public"
    before = dict(admin.get("Namespace", ns)["metadata"].get("labels") or {})
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, namespaces=[ns]))
    try:
        wait_for(lambda: reconciled(admin, tenant), "tenant reconciled")
        time.sleep(2 * INTERVAL_S)
        assert (admin.get("Namespace", ns)["metadata"].get("labels") or {}) == before
        assert admin.get("RoleBinding", OWNERS, ns) is None
        assert admin.get("ResourceQuota", QUOTA, ns) is None
        assert reports_refusal(admin.get("Tenant", tenant), ns)
    finally:
        _cleanup_foreign_namespace(admin, tenant, ns, before)


def test_tenant_listing_an_ingress_namespace_is_refused_and_never_created(admin: Client) -> None:
    # Every tenant's network policy admits pods from the ingress and monitoring namespaces: a
    # tenant given `monitoring` could reach every other tenant's pods.
    pool, tenant, ns = unique("pool"), unique("tn"), "monitoring"
    assert admin.get("Namespace", ns) is None
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, namespaces=[ns]))
    try:
        wait_for(lambda: reconciled(admin, tenant), "tenant reconciled")
        time.sleep(2 * INTERVAL_S)
        assert admin.get("Namespace", ns) is None
        assert reports_refusal(admin.get("Tenant", tenant), ns)
    finally:
        delete_tenant(admin, tenant)
        if admin.get("Namespace", ns) is not None:
            admin.delete("Namespace", ns)


def test_existing_namespace_of_someone_else_is_refused_and_never_deleted(admin: Client) -> None:
    pool, tenant, ns = unique("pool"), unique("tn"), unique("team")
    admin.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": "other"}}}
    )
    admin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": ns}})
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10, namespaces=[ns], policy="Delete"))
    try:
        wait_for(lambda: reconciled(admin, tenant), "tenant reconciled")
        time.sleep(2 * INTERVAL_S)
        assert admin.get("Namespace", ns)["metadata"]["labels"] == {"team": "other"}
        assert admin.get("RoleBinding", OWNERS, ns) is None
        assert reports_refusal(admin.get("Tenant", tenant), ns)
        delete_tenant(admin, tenant)
        time.sleep(2)
        namespace = admin.get("Namespace", ns)
        assert namespace is not None and namespace["status"]["phase"] == "Active"
    finally:
        _cleanup_foreign_namespace(admin, tenant, ns, {"team": "other"})


def test_second_tenant_cannot_take_over_another_tenants_namespace(admin: Client) -> None:
    pool, first, second = unique("pool"), unique("tn"), unique("tn")
    ns = f"{first}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(first, pool, 10))
    wait_for(lambda: ready(admin, first), "first tenant Ready")
    admin.create(make_tenant(second, pool, 10, namespaces=[ns]))
    try:
        wait_for(lambda: reconciled(admin, second), "second tenant reconciled")
        time.sleep(3 * INTERVAL_S)
        assert admin.get("Namespace", ns)["metadata"]["labels"]["dsx.ai/tenant"] == first
        assert {s["name"] for s in admin.get("RoleBinding", OWNERS, ns)["subjects"]} == {
            f"{first}@example.com",
            f"{first}-admins",
        }
        assert reports_refusal(admin.get("Tenant", second), ns)
    finally:
        admin.patch("Tenant", second, {"spec": {"deletionPolicy": "Retain"}})
        delete_tenant(admin, second)


def test_system_group_as_owner_is_refused(admin: Client) -> None:
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(
        make_tenant(tenant, pool, 10, owners={"users": ["alice"], "groups": ["system:authenticated"]})
    )
    wait_for(lambda: reconciled(admin, tenant), "tenant reconciled")
    time.sleep(2 * INTERVAL_S)
    binding = admin.get("RoleBinding", OWNERS, ns)
    assert binding is None or "system:authenticated" not in {s["name"] for s in binding["subjects"]}
    assert reports_refusal(admin.get("Tenant", tenant), "system:authenticated")


def test_an_egress_cidr_the_server_refuses_is_invalid_spec_and_grants_no_owner_access(admin: Client) -> None:
    # 10.0.0.0/99 passes the CRD's pattern but not the server's NetworkPolicy validation. It used
    # to leave the owners bound to dsx-namespace-admin in a namespace with no NetworkPolicy, every
    # pass, with no status. Now: Ready=False naming the entry, and nothing is made.
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 8, network={"egressCIDRs": ["10.20.0.0/16", "10.0.0.0/99"]}))
    try:
        refused = wait_for(lambda: reconciled(admin, tenant), "tenant reconciled")
        ready_condition = condition(refused, "Ready")
        assert ready_condition["status"] == "False" and ready_condition["reason"] == "InvalidSpec"
        assert "spec.network.egressCIDRs[1] '10.0.0.0/99'" in ready_condition["message"]
        time.sleep(2 * INTERVAL_S)  # further passes make nothing either
        assert admin.get("RoleBinding", OWNERS, ns) is None
        assert admin.get("Namespace", ns) is None

        # the fix is taken up: isolation with the corrected CIDR, then the owners
        admin.patch("Tenant", tenant, {"spec": {"network": {"egressCIDRs": ["10.20.0.0/16", "10.0.0.0/9"]}}})
        wait_for(lambda: ready(admin, tenant), "tenant Ready once the CIDR is fixed")
        policy = admin.get("NetworkPolicy", "dsx-tenant-isolation", ns)
        assert [p["ipBlock"]["cidr"] for p in policy["spec"]["egress"][2]["to"]] == [
            "10.20.0.0/16",
            "10.0.0.0/9",
        ]
        assert admin.get("RoleBinding", OWNERS, ns) is not None
    finally:
        delete_tenant(admin, tenant)


def foreign(kind: str, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """Someone else's object, made before dsx came: dsx's own labels on it (anyone may write
    labels), no owner reference with a dsx owner's uid."""
    version = {"MachineDeployment": "cluster.x-k8s.io/v1beta2"}.get(kind, "kueue.x-k8s.io/v1beta2")
    labels = {"team": "other", "app.kubernetes.io/managed-by": "dsx-operator"}
    labels["dsx.ai/owner-tenant" if kind == "ClusterQueue" else "dsx.ai/owner-gpunodepool"] = name
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": version, "kind": kind, "metadata": metadata, "spec": spec}


def untouched(before: dict[str, Any], after: dict[str, Any] | None) -> bool:
    """Not written at all: same object (uid), same resourceVersion, same spec and metadata."""
    return (
        after is not None
        and after["metadata"]["uid"] == before["metadata"]["uid"]
        and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        and after["spec"] == before["spec"]
        and not after["metadata"].get("ownerReferences")
        and not after["metadata"].get("deletionTimestamp")
    )


def test_a_tenant_named_after_someone_elses_cluster_queue_neither_takes_it_over_nor_deletes_it(
    admin: Client,
) -> None:
    pool, tenant = unique("pool"), unique("research")
    theirs = admin.create(
        foreign(
            "ClusterQueue",
            tenant,
            {
                "cohortName": "other",
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu"],
                        "flavors": [
                            {"name": "cpu-only", "resources": [{"name": "cpu", "nominalQuota": "1k"}]}
                        ],
                    }
                ],
            },
        )
    )
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(tenant, pool, 10))
    try:
        # its namespaces are served as usual; only the queue is refused, and said so
        wait_for(lambda: gpu_quota(admin, f"{tenant}-ns") == 10, "the tenant's own quota")
        refused = wait_for(
            lambda: (c := condition(reconciled(admin, tenant), "Ready")) and c["status"] == "False" and c,
            "the refusal reported",
        )
        assert refused["reason"] == "ChildNotOwned" and f"ClusterQueue {tenant}" in refused["message"]
        time.sleep(2 * INTERVAL_S)
        assert untouched(theirs, admin.get("ClusterQueue", tenant))
        # no LocalQueue in the tenant's namespace leads into someone else's queue
        assert admin.get("LocalQueue", "default", f"{tenant}-ns") is None
        delete_tenant(admin, tenant)
        time.sleep(2 * INTERVAL_S)  # the garbage collector has had its chance too
        assert untouched(theirs, admin.get("ClusterQueue", tenant))
    finally:
        if admin.get("Tenant", tenant) is not None:
            delete_tenant(admin, tenant)
        admin.delete("ClusterQueue", tenant)


def test_a_pool_named_after_someone_elses_flavor_and_machines_neither_takes_them_over_nor_deletes_them(
    admin: Client,
) -> None:
    pool, team = unique("pool"), unique("team")
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team}})
    flavor = admin.create(foreign("ResourceFlavor", pool, {"nodeLabels": {"team": "other"}}))
    machines = admin.create(
        foreign(
            "MachineDeployment",
            pool,
            {
                "clusterName": "other",
                "replicas": 7,
                "selector": {"matchLabels": {"team": "other"}},
                "template": {  # all Cluster API v1.14's MachineDeployment requires
                    "metadata": {"labels": {"team": "other"}},
                    "spec": {
                        "clusterName": "other",
                        "bootstrap": {"dataSecretName": "other-bootstrap"},
                        "infrastructureRef": {
                            "apiGroup": "infrastructure.cluster.x-k8s.io",
                            "kind": "Metal3MachineTemplate",
                            "name": "other",
                        },
                    },
                },
            },
            namespace=team,
        )
    )
    body = make_pool(pool, 100)
    body["spec"]["clusterApi"]["namespace"] = team
    admin.create(body)
    try:
        # the pool's own child (its Topology) is written; the two that are someone else's are not
        wait_for(lambda: admin.get("Topology", pool), "the pool's own Topology")
        refused = wait_for(
            lambda: (
                (c := condition(admin.get("GpuNodePool", pool), "Reconciled"))
                and c["status"] == "False"
                and c
            ),
            "the refusal reported",
        )
        assert refused["reason"] == "ChildNotOwned"
        assert f"ResourceFlavor {pool}" in refused["message"]
        assert f"MachineDeployment {team}/{pool}" in refused["message"]
        time.sleep(2 * INTERVAL_S)
        assert untouched(flavor, admin.get("ResourceFlavor", pool))
        assert untouched(machines, admin.get("MachineDeployment", pool, team))
        admin.delete("GpuNodePool", pool)
        wait_for(lambda: admin.get("Topology", pool) is None, "the pool's own Topology collected")
        time.sleep(2 * INTERVAL_S)
        assert untouched(flavor, admin.get("ResourceFlavor", pool))
        assert untouched(machines, admin.get("MachineDeployment", pool, team))
    finally:
        admin.delete("GpuNodePool", pool)
        admin.delete("ResourceFlavor", pool)
        admin.delete("Namespace", team)


# --- restart and least privilege ----------------------------------------------------------------


def test_restarted_operator_catches_up_and_creates_no_duplicates(
    admin: Client, operator: OperatorProcess
) -> None:
    pool, existing, newcomer = unique("pool"), unique("tn"), unique("tn")
    admin.create(make_pool(pool, 100))
    admin.create(make_tenant(existing, pool, 30))
    wait_for(lambda: ready(admin, existing), "tenant Ready")

    assert operator.stop() == 0  # a graceful stop
    admin.patch("ResourceQuota", QUOTA, {"spec": {"hard": {GPU: "99"}}}, namespace=f"{existing}-ns")
    admin.delete("LimitRange", "dsx-limits", f"{existing}-ns")
    admin.create(make_tenant(newcomer, pool, 30))
    time.sleep(1)
    assert admin.get("Namespace", f"{newcomer}-ns") is None  # nobody is reconciling
    operator.start()

    wait_for(lambda: ready(admin, newcomer), "newcomer Ready after the restart")
    wait_for(lambda: gpu_quota(admin, f"{existing}-ns") == 30, "quota repaired after the restart")
    wait_for(lambda: admin.get("LimitRange", "dsx-limits", f"{existing}-ns"), "LimitRange re-created")
    time.sleep(2 * INTERVAL_S)
    for tenant in (existing, newcomer):
        labels = {"dsx.ai/owner-tenant": tenant}
        assert len(admin.list("ResourceQuota", f"{tenant}-ns", labels)) == 1
        # two bindings by design: the owners' (dsx-owners) and the operator's own (dsx-operator)
        bindings = [b["metadata"]["name"] for b in admin.list("RoleBinding", f"{tenant}-ns", labels)]
        assert sorted(bindings) == ["dsx-operator", "dsx-owners"]
        assert len(admin.list("ClusterQueue", labels=labels)) == 1
        assert len(admin.list("Namespace", labels={"dsx.ai/tenant": tenant})) == 1


def operator_tracebacks(output: str) -> list[str]:
    """Tracebacks that pass through the operator's own code: an exception it did not expect.

    Kopf also logs tracebacks of its own retried requests (a watch that timed out on a busy
    machine); those are not the operator's and are left out.
    """
    blocks, current = [], None
    for line in output.splitlines():
        if line.startswith("Traceback"):
            current = [line]
            blocks.append(current)
        elif current is not None and (line.startswith(" ") or not line.startswith("[")):
            current.append(line)
        else:
            current = None
    return ["\n".join(b) for b in blocks if any("/operators/" in line for line in b)]


def test_the_operator_holds_its_lease_for_the_test_duration_a_restart_waits_out(
    admin: Client, operator: OperatorProcess
) -> None:
    """A stopped operator keeps its Lease until it runs out: every restart above waited for it.
    The test figure (tests/support/operator_process.py LEASE_S) must reach the operator; at the
    production 15 s each restart cost about 10 s."""
    lease = admin.request(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases/dsx-operator"
    )
    assert lease["spec"]["leaseDurationSeconds"] == int(LEASE_S) < 15


def test_operator_was_never_denied_and_never_crashed(
    real_cluster: RealCluster, operator: OperatorProcess
) -> None:
    """Runs last in this module: over every test above, the shipped ClusterRole sufficed.

    Only requests since this module's operator started count: test_real_cluster.py is denied
    things as the same ServiceAccount on purpose."""
    if real_cluster.audit_log is not None:
        denied = [
            f"{e['verb']} {e.get('objectRef')}"
            # since this module's operator started: test_real_cluster.py's deliberate denials
            # of the same ServiceAccount, earlier in the session, are not the operator's
            for e in real_cluster.audit_events(since=operator.first_started_at or 0.0)
            if e.get("responseStatus", {}).get("code") == 403
        ]
        assert denied == []
    assert operator.running
    assert operator_tracebacks(operator.output()) == []
