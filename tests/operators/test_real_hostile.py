"""The operator in-process against the real API server: hostile specs, drift, races, deletion.

The operator runs in-process as its own ServiceAccount, bound to the shipped ClusterRole (and
its Lease Role), so every request it makes is authorised by the real server. What the emulator
cannot show is shown here: canonical quantities, server-side apply and replace, resourceVersion
conflicts, namespace finalization by the namespace controller, and every write the operator
makes, counted from the server's audit log.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from operators.kube import ApiError, Kube
from tests.operators.conftest import example, selects, wait_for
from tests.support.emulator import running_operator
from tests.support.real_cluster import RealCluster

pytestmark = pytest.mark.real_cluster
INTERVAL_S = 2.0
STARTED: list[float] = []  # when this module's operator started (the audit log is session-wide)


@pytest.fixture(scope="module")
def admin(real_cluster: RealCluster) -> Kube:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(
        config_file=str(real_cluster.admin_kubeconfig), client_configuration=configuration
    )
    return Kube(k8s.ApiClient(configuration))


@pytest.fixture(scope="module")
def live_operator(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ca = tmp_path_factory.mktemp("ca") / "ca.crt"
    ca.write_text(real_cluster.ca_pem)
    token = real_cluster.service_account_token()
    STARTED.append(time.time())
    with running_operator(real_cluster.server, INTERVAL_S, token=token, ca_file=str(ca)) as runner:
        yield runner
    assert runner.exception is None, runner.output[-2000:]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return None


def _pool(name: str, gpus: int) -> dict[str, Any]:
    pool = example("gpunodepool")
    pool["metadata"]["name"] = name
    pool["spec"].update(racks=gpus // 4, nodesPerRack=1, gpusPerNode=4)
    return pool


def _tenant(name: str, namespaces: list[str], pool: str, gpus: int, **spec: Any) -> dict[str, Any]:
    tenant = example("tenant")  # cpuQuota "20000" and memoryQuota 200Ti: stored canonically
    tenant["metadata"]["name"] = name
    tenant["spec"].update(namespaces=namespaces, gpuQuota=[{"pool": pool, "gpus": gpus}], **spec)
    return tenant


def _gpus(admin: Kube, namespace: str) -> int | None:
    quota = admin.get("ResourceQuota", "dsx-quota", namespace)
    return None if quota is None else int(quota["spec"]["hard"]["requests.nvidia.com/gpu"])


def test_a_tenant_reconciles_and_an_idle_operator_writes_nothing(
    real_cluster: RealCluster, admin: Kube, live_operator: Any
) -> None:
    pool, name = _id("pool"), _id("quiet")
    admin.create(_pool(pool, 400))
    admin.create(_tenant(name, [f"{name}-a"], pool, 64))
    wait_for(lambda: _gpus(admin, f"{name}-a") == 64, timeout_s=30, what="quota on the real server")
    stored = admin.get("ResourceQuota", "dsx-quota", f"{name}-a")["spec"]["hard"]
    assert stored["requests.cpu"] == "20k"  # the server's canonical form of "20000"
    wait_for(
        lambda: (
            "dsx.ai/last-handled-configuration"
            in (admin.get("Tenant", name)["metadata"].get("annotations") or {})
        ),
        timeout_s=30,
        what="creation handled",
    )
    time.sleep(INTERVAL_S)
    since = time.time()
    time.sleep(3 * INTERVAL_S + 0.5)
    writes = [
        (e["verb"], e["requestURI"])
        for e in real_cluster.writes(since=since)
        if "/leases/" not in e["requestURI"] and (name in e["requestURI"] or pool in e["requestURI"])
    ]
    assert writes == []


def test_system_foreign_and_unlabelled_namespaces_are_refused_untouched_and_never_deleted(
    admin: Kube, live_operator: Any
) -> None:
    pool, name, other = _id("pool"), _id("mallory"), _id("owner")
    legacy = _id("legacy")
    admin.create(_pool(pool, 40))
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": legacy}})
    admin.create(_tenant(other, [f"{other}-a"], pool, 0))
    wait_for(lambda: admin.get("ResourceQuota", "dsx-quota", f"{other}-a"), timeout_s=30, what="other tenant")
    targets = ["kube-system", "default", "dsx-system", f"{other}-a", legacy]
    before = {ns: admin.get("Namespace", ns)["metadata"].get("labels") for ns in targets}
    tenant = _tenant(name, targets, pool, 8, deletionPolicy="Delete")
    tenant["spec"]["owners"] = {"users": ["mallory"]}
    admin.create(tenant)
    ready = wait_for(lambda: _condition(admin.get("Tenant", name), "Ready"), timeout_s=30, what="condition")
    assert ready["status"] == "False" and ready["reason"] == "NamespaceRefused"
    time.sleep(INTERVAL_S)
    for ns in targets:
        assert admin.get("Namespace", ns)["metadata"].get("labels") == before[ns], ns
        bindings = [
            b for b in admin.list("RoleBinding", namespace=ns) if b["metadata"]["name"] == "dsx-owners"
        ]
        assert all(b["metadata"]["labels"].get("dsx.ai/owner-tenant") != name for b in bindings), ns
    assert admin.get("ResourceQuota", "dsx-quota", "kube-system") is None
    admin.delete("Tenant", name)
    wait_for(lambda: admin.get("Tenant", name) is None, timeout_s=30, what="tenant deleted")
    for ns in targets:
        live = admin.get("Namespace", ns)
        assert live is not None and not live["metadata"].get("deletionTimestamp"), f"{ns} deleted"


def test_a_namespace_given_a_tenants_labels_neither_reaches_its_pods_nor_uses_its_queue(
    admin: Kube, live_operator: Any
) -> None:
    pool, name = _id("pool"), _id("victim")
    copycat = _id("copycat")
    admin.create(_pool(pool, 40))
    admin.create(_tenant(name, [f"{name}-a"], pool, 8))
    policy = wait_for(
        lambda: admin.get("NetworkPolicy", "dsx-tenant-isolation", f"{name}-a"), timeout_s=30, what="policy"
    )
    labels = {"dsx.ai/tenant": name, "dsx.ai/site": "batam"}
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": copycat, "labels": labels}})
    forged = admin.get("Namespace", copycat)["metadata"]["labels"]
    # v1.20 does not set kubernetes.io/metadata.name (v1.21+ sets it to the name on every
    # namespace): the operator writes it on its own, and selects by it alone
    assert "kubernetes.io/metadata.name" not in forged
    own = admin.get("Namespace", f"{name}-a")["metadata"]["labels"]
    assert own["kubernetes.io/metadata.name"] == f"{name}-a"
    queue = admin.get("ClusterQueue", name)
    assert queue is not None
    for selector in (
        queue["spec"]["namespaceSelector"],
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"],
        policy["spec"]["egress"][0]["to"][0]["namespaceSelector"],
    ):
        assert selects(selector, own) and not selects(selector, forged), selector
    for peer in policy["spec"]["ingress"][0]["from"]:
        assert not selects(peer["namespaceSelector"], forged)


def test_drift_the_old_comparison_missed_is_repaired_on_the_real_server(
    admin: Kube, live_operator: Any
) -> None:
    pool, name = _id("pool"), _id("drift")
    ns = f"{name}-a"
    admin.create(_pool(pool, 40))
    admin.create(_tenant(name, [ns], pool, 8))
    wait_for(lambda: admin.get("NetworkPolicy", "dsx-tenant-isolation", ns), timeout_s=30, what="policy")
    admin.patch(
        "NetworkPolicy", "dsx-tenant-isolation", {"spec": {"podSelector": {"matchLabels": {"app": "x"}}}}, ns
    )
    # scopes are immutable on a real server: someone makes the quota again with them
    scoped = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "dsx-quota", "namespace": ns},
        "spec": {"scopes": ["BestEffort"], "hard": {"pods": "100"}},
    }

    def replace() -> bool:
        admin.delete("ResourceQuota", "dsx-quota", ns)
        try:
            admin.create(scoped)
        except ApiError as error:  # the operator re-created it between the two (CI once): again
            if error.status != 409:
                raise
            return False
        return True

    wait_for(replace, timeout_s=30, what="quota replaced by a scoped one")
    wait_for(
        lambda: admin.get("NetworkPolicy", "dsx-tenant-isolation", ns)["spec"]["podSelector"] == {},
        timeout_s=INTERVAL_S * 3,
        what="podSelector repaired",
    )
    # The operator replaces the quota (its scopes are immutable): between its delete and its
    # create there is none, which is "not yet", not a failure (CI once read it there).
    wait_for(
        lambda: (
            (quota := admin.get("ResourceQuota", "dsx-quota", ns)) is not None
            and "scopes" not in quota["spec"]
            and _gpus(admin, ns) == 8
        ),
        timeout_s=INTERVAL_S * 3,
        what="quota repaired",
    )


def test_concurrent_arrivals_never_exceed_the_pool_on_the_real_server(
    admin: Kube, live_operator: Any
) -> None:
    pool = _id("pool")
    admin.create(_pool(pool, 100))
    names = [_id(f"race{i}") for i in range(6)]
    for name in names:
        admin.create(_tenant(name, [f"{name}-a"], pool, 30))
    seen: list[int] = []

    def settled() -> bool:
        sums = [(_gpus(admin, f"{n}-a") or 0) for n in names]
        seen.append(sum(sums))
        return sum(sums) == 100

    wait_for(settled, timeout_s=60, what="grants settled")
    time.sleep(INTERVAL_S)
    assert max(seen) <= 100 and sum((_gpus(admin, f"{n}-a") or 0) for n in names) == 100
    ledger = admin.get("GpuNodePool", pool)["status"]["ledger"]
    assert ledger["grantedGpus"] == 100
    assert sorted(g["grantedGpus"] for g in ledger["grants"]) == [0, 0, 10, 30, 30, 30]


def test_delete_when_empty_keeps_a_namespace_holding_a_volume_claim(admin: Kube, live_operator: Any) -> None:
    pool, name = _id("pool"), _id("keeper")
    admin.create(_pool(pool, 40))
    admin.create(_tenant(name, [f"{name}-data", f"{name}-empty"], pool, 4, deletionPolicy="DeleteWhenEmpty"))
    wait_for(lambda: admin.get("ResourceQuota", "dsx-quota", f"{name}-empty"), timeout_s=30, what="served")
    admin.request(
        "POST",
        f"/api/v1/namespaces/{name}-data/persistentvolumeclaims",
        body={
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "weights"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Ti"}}},
        },
    )
    admin.delete("Tenant", name)
    wait_for(lambda: admin.get("Tenant", name) is None, timeout_s=30, what="tenant deleted")
    kept = admin.get("Namespace", f"{name}-data")
    assert kept is not None and not kept["metadata"].get("deletionTimestamp")
    assert kept["metadata"]["labels"]["dsx.ai/released-by-policy"] == "DeleteWhenEmpty"
    assert _gpus(admin, f"{name}-data") == 0  # its GPUs went back to the pool
    wait_for(
        lambda: admin.get("Namespace", f"{name}-empty") is None, timeout_s=60, what="empty one finalized"
    )
    ledger = admin.get("GpuNodePool", pool)["status"].get("ledger") or {}
    assert ledger.get("grants") == []


def test_the_operator_reads_no_secrets_and_writes_only_what_its_role_allows(
    real_cluster: RealCluster, live_operator: Any
) -> None:
    events = real_cluster.audit_events(since=STARTED[0])
    assert events, "the operator made no requests"
    assert not [e for e in events if "/secrets" in e["requestURI"]]
    denied = [(e["verb"], e["requestURI"]) for e in events if e.get("responseStatus", {}).get("code") == 403]
    assert denied == []
