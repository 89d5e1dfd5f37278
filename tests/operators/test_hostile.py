"""Hostile specs, races and faults against the real operator on the emulator (issue 12).

Each test reproduces a failure the issue reported and proves it is gone: namespace takeover,
quota above the pool, drift the old comparison could not see, writes when idle, faults that made
the process exit or dropped the finalizer, data deleted under DeleteWhenEmpty.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from operators import reconcile
from operators.api import FINALIZER
from operators.config import OperatorConfig
from operators.kube import ApiError, Kube, RetryPolicy
from operators.leader import LeaderElector
from tests.operators.conftest import example, wait_for
from tests.support.emulator import EmulatorThread, FaultProxy, running_operator

POOL = "batam-gb300-nvl72"
CONFIG = OperatorConfig()


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return None


def _tenant(name: str, namespaces: list[str], gpus: int = 0, **spec: Any) -> dict[str, Any]:
    tenant = example("tenant")
    tenant["metadata"] = {"name": name}
    tenant["spec"].update(namespaces=namespaces, gpuQuota=[{"pool": POOL, "gpus": gpus}], **spec)
    return tenant


def _pool(racks: int) -> dict[str, Any]:
    pool = example("gpunodepool")
    pool["spec"].update(racks=racks, nodesPerRack=1, gpusPerNode=4)  # racks x 4 GPUs
    return pool


def _client(url: str) -> Kube:
    configuration = k8s.Configuration()
    configuration.host = url
    return Kube(k8s.ApiClient(configuration), RetryPolicy(base_s=0.01, cap_s=0.2))


def _objects(emulator: EmulatorThread, plural: str) -> list[tuple[str | None, dict[str, Any]]]:
    assert emulator.emulator is not None
    return [
        (key[1], obj.raw)
        for key, obj in list(emulator.emulator.objects.items())
        if key[0].plural == plural and not obj.deleted
    ]


def _gpu_quota_sum(emulator: EmulatorThread) -> int:
    return sum(
        int(raw.get("spec", {}).get("hard", {}).get("requests.nvidia.com/gpu", "0"))
        for _ns, raw in _objects(emulator, "resourcequotas")
        if raw["metadata"]["name"] == "dsx-quota"
    )


def _gpu_quota(kube: Kube, namespace: str) -> int | None:
    quota = kube.get("ResourceQuota", "dsx-quota", namespace)
    return None if quota is None else int(quota["spec"]["hard"]["requests.nvidia.com/gpu"])


# -- ownership ------------------------------------------------------------------------------------
def test_system_namespaces_are_refused_and_left_untouched(kube: Kube, operator: Any) -> None:
    for ns in ("kube-system", "default"):
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    before = {ns: kube.get("Namespace", ns) for ns in ("kube-system", "default", "dsx-system")}
    tenant = _tenant("mallory", ["kube-system", "default", "dsx-system"], 8, deletionPolicy="Delete")
    tenant["spec"]["owners"] = {"users": ["mallory"]}
    kube.create(tenant)
    ready = wait_for(lambda: _condition(kube.get("Tenant", "mallory"), "Ready"), what="Ready condition")
    assert ready["status"] == "False" and ready["reason"] == "NamespaceRefused"
    for ns in before:
        assert f"{ns} is a system, add-on, operator or ingress namespace" in ready["message"]
    time.sleep(1)  # several passes
    for ns, was in before.items():
        assert kube.get("Namespace", ns)["metadata"] == was["metadata"], f"{ns} relabelled"
        for kind in ("ResourceQuota", "RoleBinding", "NetworkPolicy", "LimitRange"):
            assert kube.list(kind, namespace=ns) == [], f"{kind} written into {ns}"
    kube.delete("Tenant", "mallory")
    wait_for(lambda: kube.get("Tenant", "mallory") is None, what="tenant gone")
    assert all(kube.get("Namespace", ns) is not None for ns in before), "a system namespace was deleted"


def test_system_owner_subjects_are_refused_with_a_condition(kube: Kube, operator: Any) -> None:
    tenant = _tenant("sneaky", ["sneaky-a"], 0)
    tenant["spec"]["owners"] = {"users": ["mallory"], "groups": ["system:authenticated"]}
    kube.create(tenant)
    ready = wait_for(lambda: _condition(kube.get("Tenant", "sneaky"), "Ready"), what="condition")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "system:authenticated" in ready["message"]
    assert kube.get("Namespace", "sneaky-a") is None
    assert kube.list("RoleBinding", namespace="sneaky-a") == []


def test_an_existing_unlabelled_namespace_is_refused_and_never_deleted(kube: Kube, operator: Any) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy"}})
    kube.create(_tenant("grabber", ["legacy", "grabber-own"], 0, deletionPolicy="Delete"))
    ready = wait_for(lambda: _condition(kube.get("Tenant", "grabber"), "Ready"), what="condition")
    assert "legacy exists and was not created for this tenant" in ready["message"]
    wait_for(lambda: kube.get("ResourceQuota", "dsx-quota", "grabber-own"), what="own namespace served")
    assert kube.list("RoleBinding", namespace="legacy") == []
    assert "dsx.ai/tenant" not in (kube.get("Namespace", "legacy")["metadata"].get("labels") or {})
    kube.delete("Tenant", "grabber")
    wait_for(lambda: kube.get("Tenant", "grabber") is None, what="tenant gone")
    assert kube.get("Namespace", "legacy") is not None
    assert kube.get("Namespace", "grabber-own") is None  # its own one follows the policy


def test_two_tenants_claiming_one_namespace_the_first_keeps_it(kube: Kube, operator: Any) -> None:
    kube.create(_tenant("first", ["shared"], 0, deletionPolicy="Delete"))
    wait_for(lambda: kube.get("ResourceQuota", "dsx-quota", "shared"), what="first tenant's namespace")
    kube.create(_tenant("second", ["shared", "second-own"], 0, deletionPolicy="Delete"))
    refused = wait_for(
        lambda: _condition(kube.get("Tenant", "second"), "NamespacesRefused"), what="condition"
    )
    assert refused["status"] == "True" and "belongs to another tenant (first)" in refused["message"]
    versions = []
    for _ in range(10):  # no flip-flopping of labels, subjects or quota
        ns = kube.get("Namespace", "shared")
        binding = kube.get("RoleBinding", "dsx-owners", "shared")
        versions.append((ns["metadata"]["resourceVersion"], binding["metadata"]["resourceVersion"]))
        assert ns["metadata"]["labels"]["dsx.ai/tenant"] == "first"
        time.sleep(0.1)
    assert len(set(versions)) == 1
    kube.delete("Tenant", "second")
    wait_for(lambda: kube.get("Tenant", "second") is None, what="second tenant gone")
    assert kube.get("Namespace", "shared") is not None  # never the other tenant's
    assert kube.get("Namespace", "second-own") is None


def test_a_namespace_carrying_a_tenant_label_it_did_not_get_from_the_operator_is_never_deleted(
    kube: Kube, operator: Any
) -> None:
    kube.create(_tenant("victim", ["victim-a"], 0, deletionPolicy="Delete"))
    wait_for(lambda: kube.get("ResourceQuota", "dsx-quota", "victim-a"), what="tenant served")
    forged = {
        "dsx.ai/tenant": "victim",
        "app.kubernetes.io/managed-by": "dsx-operator",
        "dsx.ai/owner-tenant": "victim",
    }
    kube.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bystander", "labels": forged}}
    )
    kube.delete("Tenant", "victim")
    wait_for(lambda: kube.get("Tenant", "victim") is None, what="tenant gone")
    assert kube.get("Namespace", "bystander") is not None
    assert kube.get("Namespace", "victim-a") is None


# -- quota never above the pool -------------------------------------------------------------------
def _race(emulator: EmulatorThread, names: list[str]) -> None:
    """Reconcile the tenants at once, each in its own thread with its own client (each with the
    finalizer Kopf would have put on first)."""
    setup = _client(emulator.url)
    for name in names:
        tenant = setup.get("Tenant", name)
        assert tenant is not None
        if FINALIZER not in (tenant["metadata"].get("finalizers") or []):
            setup.patch("Tenant", name, {"metadata": {"finalizers": [FINALIZER]}})
    barrier = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def run(name: str) -> None:
        client = _client(emulator.url)
        barrier.wait()
        for _attempt in range(5):
            try:
                reconcile.reconcile_tenant(client, CONFIG, {"metadata": {"name": name}})
                return
            except ApiError as error:  # a ledger that kept changing: Kopf would retry too
                if not error.retriable:
                    errors.append(error)
                    return
        errors.append(AssertionError(f"{name} did not settle"))

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


@pytest.fixture
def quota_sums(emulator: EmulatorThread) -> Iterator[list[int]]:
    """The sum of GPU quota over every namespace, recorded at every write the server accepts."""
    sums: list[int] = []
    assert emulator.emulator is not None
    emulator.emulator.on_write = lambda method, path: sums.append(_gpu_quota_sum(emulator))
    yield sums
    emulator.emulator.on_write = None


def test_concurrent_arrivals_never_grant_more_than_the_pool_at_any_write(
    emulator: EmulatorThread, kube: Kube, quota_sums: list[int]
) -> None:
    kube.create(_pool(25))  # 100 GPUs
    names = [f"t{i}" for i in range(8)]
    for name in names:
        kube.create(_tenant(name, [f"{name}-ns"], 30))  # 240 GPUs asked of 100
    _race(emulator, names)
    granted = {n: _gpu_quota(kube, f"{n}-ns") for n in names}
    assert sum(granted.values()) == 100
    assert max(quota_sums) <= 100, f"overshoot: {max(quota_sums)}"
    ledger = kube.get("GpuNodePool", POOL)["status"]["ledger"]
    assert ledger["grantedGpus"] == 100
    # arrival order is the ledger's, and everyone earlier got all it asked for
    by_seq = sorted(ledger["grants"], key=lambda g: g["seq"])
    assert [g["grantedGpus"] for g in by_seq] == [30, 30, 30, 10, 0, 0, 0, 0]
    for name in names:
        _race(emulator, [name])  # a second pass changes nothing
    assert {n: _gpu_quota(kube, f"{n}-ns") for n in names} == granted


def test_raises_and_newcomers_never_take_a_grant_another_tenant_holds(
    emulator: EmulatorThread, kube: Kube, quota_sums: list[int]
) -> None:
    kube.create(_pool(25))
    for name, gpus in [("old", 20), ("young", 60)]:
        kube.create(_tenant(name, [f"{name}-ns"], gpus))
        _race(emulator, [name])
    kube.patch("Tenant", "old", {"spec": {"gpuQuota": [{"pool": POOL, "gpus": 80}]}})
    for i in range(4):
        kube.create(_tenant(f"new{i}", [f"new{i}-ns"], 25))
    _race(emulator, ["old", "new0", "new1", "new2", "new3"])
    assert _gpu_quota(kube, "young-ns") == 60  # never taken away
    # Only the 20 free GPUs change hands, to whichever of the raise and the newcomers records
    # first (ledger rule 2 knows a raise once its reconcile has written it): the outcome of the
    # race is not fixed (CI once saw a newcomer first), the property is.
    old = _gpu_quota(kube, "old-ns")
    newcomers = [_gpu_quota(kube, f"new{i}-ns") or 0 for i in range(4)]
    assert old is not None and old >= 20  # never cut
    assert (old - 20) + sum(newcomers) == 20, (old, newcomers)
    assert max(quota_sums) <= 100


def test_a_pool_shrink_reports_and_cuts_the_latest_arrivals_first(
    emulator: EmulatorThread, kube: Kube, quota_sums: list[int]
) -> None:
    kube.create(_pool(25))
    for name in ("a", "b", "c"):
        kube.create(_tenant(name, [f"{name}-ns"], 40))
        _race(emulator, [name])
    assert [_gpu_quota(kube, f"{n}-ns") for n in "abc"] == [40, 40, 20]
    kube.patch("GpuNodePool", POOL, {"spec": {"racks": 15}})  # 60 GPUs
    reconcile.reconcile_pool(kube, CONFIG, {"metadata": {"name": POOL}})
    over = _condition(kube.get("GpuNodePool", POOL), "Overgranted")
    assert over["status"] == "True" and "40 GPUs granted beyond" in over["message"]
    shrink_at = len(quota_sums)
    _race(emulator, ["a", "b", "c"])
    after = quota_sums[shrink_at:]
    assert all(x >= y for x, y in itertools.pairwise(after)), "grants rose after the shrink"
    assert [_gpu_quota(kube, f"{n}-ns") for n in "abc"] == [40, 20, 0]
    reconcile.reconcile_pool(kube, CONFIG, {"metadata": {"name": POOL}})
    assert _condition(kube.get("GpuNodePool", POOL), "Overgranted")["status"] == "False"


# -- drift, idleness, bad specs, pagination -------------------------------------------------------
def test_drift_the_old_comparison_missed_is_repaired_within_seconds(
    emulator: EmulatorThread, kube: Kube
) -> None:
    kube.create(_pool(25))
    kube.create(_tenant("drifty", ["drifty-a"], 8))
    with running_operator(emulator.url, interval_s=60):  # the timer cannot be what repairs it
        wait_for(lambda: _gpu_quota(kube, "drifty-a") == 8, what="quota")
        policy = wait_for(
            lambda: kube.get("NetworkPolicy", "dsx-tenant-isolation", "drifty-a"), what="policy"
        )
        kube.patch(
            "NetworkPolicy",
            policy["metadata"]["name"],
            {"spec": {"podSelector": {"matchLabels": {"app": "one"}}}},
            "drifty-a",
        )
        kube.patch("ResourceQuota", "dsx-quota", {"spec": {"scopes": ["BestEffort"]}}, "drifty-a")
        wait_for(
            lambda: (
                kube.get("NetworkPolicy", "dsx-tenant-isolation", "drifty-a")["spec"]["podSelector"] == {}
            ),
            timeout_s=10,
            what="podSelector repaired",
        )
        wait_for(
            lambda: "scopes" not in kube.get("ResourceQuota", "dsx-quota", "drifty-a")["spec"],
            timeout_s=10,
            what="scopes removed",
        )


def test_an_idle_operator_writes_nothing_over_several_intervals(emulator: EmulatorThread, kube: Kube) -> None:
    assert emulator.emulator is not None
    kube.create(_pool(25))
    for i in range(3):
        kube.create(_tenant(f"idle{i}", [f"idle{i}-a", f"idle{i}-b"], 10))
    with running_operator(emulator.url, interval_s=0.5):
        wait_for(
            lambda: all(
                _condition(kube.get("Tenant", f"idle{i}"), "Ready")
                and "dsx.ai/last-handled-configuration"
                in (kube.get("Tenant", f"idle{i}")["metadata"].get("annotations") or {})
                for i in range(3)
            ),
            timeout_s=90,
            what="all Ready and handled",
        )

        # Let the last echoes of the creation settle: on a loaded machine they can take seconds.
        # Settled means a quiet second; if it never settles the measurement below fails anyway.
        def quiet_for(seconds: float) -> bool:
            assert emulator.emulator is not None
            recent = [w for w in emulator.emulator.writes if "/leases/" not in w[2]]
            return not recent or time.monotonic() - recent[-1][0] >= seconds

        wait_for(lambda: quiet_for(1.0), timeout_s=30, what="the creation's echoes settled")
        start = time.monotonic()
        time.sleep(3)  # six intervals
        writes = [w[1:] for w in emulator.emulator.writes if w[0] >= start and "/leases/" not in w[2]]
    assert writes == []


def test_one_tenants_bad_spec_never_blocks_another(kube: Kube, operator: Any) -> None:
    kube.create(_pool(25))
    bad = _tenant("broken", ["broken-a"], 0)
    bad["spec"]["gpuQuota"] = [{"pool": POOL, "gpus": "lots"}]  # the emulator checks no schema
    kube.create(bad)
    kube.create(_tenant("fine", ["fine-a"], 12))
    wait_for(lambda: _gpu_quota(kube, "fine-a") == 12, what="the good tenant served")
    ready = wait_for(lambda: _condition(kube.get("Tenant", "broken"), "Ready"), what="condition")
    assert ready["reason"] == "InvalidSpec"


def test_lists_are_read_page_by_page(emulator: EmulatorThread, kube: Kube) -> None:
    for i in range(7):
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"page-{i}"}})
    client = _client(emulator.url)
    client.page_size = 2
    assert emulator.emulator is not None
    before = len(emulator.emulator.lists)
    names = [n["metadata"]["name"] for n in client.list("Namespace")]
    assert sorted(names) == sorted(["dsx-system", *(f"page-{i}" for i in range(7))])
    pages = emulator.emulator.lists[before:]
    assert len(pages) == 4  # 8 namespaces, 2 per page
    assert all(p[1]["limit"] == "2" for p in pages) and "continue" in pages[-1][1]


# -- faults ---------------------------------------------------------------------------------------
def test_transient_errors_are_retried_inside_a_call_honouring_retry_after(emulator: EmulatorThread) -> None:
    assert emulator.emulator is not None
    emulator.emulator["get /api/v1/namespaces/dsx-system"][:2] << 503
    slept: list[float] = []
    client = _client(emulator.url)
    client.retry.sleep = slept.append
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dsx-system"}})
    assert client.get("Namespace", "dsx-system") is not None
    assert len(slept) == 2
    assert all(0 <= s <= client.retry.cap_s for s in slept)
    policy = RetryPolicy(base_s=1, cap_s=8)
    assert policy.delay(0, 7.0) == 7.0  # Retry-After wins
    assert all(0 <= policy.delay(10, None) <= 8 for _ in range(50))


@pytest.mark.parametrize("policy", ["DeleteWhenEmpty"])
@pytest.mark.parametrize(
    ("kind", "plural_path", "obj"),
    [
        (
            "PersistentVolumeClaim",
            "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            {"spec": {"resources": {"requests": {"storage": "10Ti"}}}},
        ),
        ("Deployment", "/apis/apps/v1/namespaces/{ns}/deployments", {"spec": {}}),
        ("StatefulSet", "/apis/apps/v1/namespaces/{ns}/statefulsets", {"spec": {}}),
        ("Job", "/apis/batch/v1/namespaces/{ns}/jobs", {"spec": {}}),
    ],
    ids=["pvc", "deployment", "statefulset", "job"],
)
def test_delete_when_empty_keeps_a_namespace_holding_data(
    kube: Kube, operator: Any, policy: str, kind: str, plural_path: str, obj: dict
) -> None:
    kube.create(_tenant("holder", ["holder-a", "holder-b"], 0, deletionPolicy=policy))
    wait_for(lambda: kube.get("ResourceQuota", "dsx-quota", "holder-b"), what="namespaces served")
    api = (
        "v1"
        if plural_path.startswith("/api/")
        else plural_path.split("/")[2] + "/" + plural_path.split("/")[3]
    )
    body = {"apiVersion": api, "kind": kind, "metadata": {"name": "data", "namespace": "holder-a"}, **obj}
    kube.request("POST", plural_path.format(ns="holder-a"), body=body)
    kube.delete("Tenant", "holder")
    wait_for(lambda: kube.get("Tenant", "holder") is None, what="tenant gone")
    assert kube.get("Namespace", "holder-a") is not None  # holds data: kept
    assert kube.get("Namespace", "holder-b") is None  # empty: deleted


def test_a_failing_namespace_deletion_keeps_the_finalizer_and_says_why(
    emulator: EmulatorThread, kube: Kube, operator: Any
) -> None:
    assert emulator.emulator is not None
    kube.create(_tenant("stuck", ["stuck-a"], 0, deletionPolicy="Delete"))
    wait_for(
        lambda: "dsx.ai/finalizer" in (kube.get("Tenant", "stuck")["metadata"].get("finalizers") or []),
        what="finalizer",
    )
    wait_for(lambda: kube.get("ResourceQuota", "dsx-quota", "stuck-a"), what="served")
    emulator.emulator.refusals[("DELETE", "/api/v1/namespaces/stuck-a")] = 403
    kube.delete("Tenant", "stuck")
    blocked = wait_for(lambda: _condition(kube.get("Tenant", "stuck"), "DeletionBlocked"), what="condition")
    assert "403" in blocked["message"]
    time.sleep(1)
    tenant = kube.get("Tenant", "stuck")
    assert tenant is not None and "dsx.ai/finalizer" in tenant["metadata"]["finalizers"]
    assert kube.get("NetworkPolicy", "dsx-tenant-isolation", "stuck-a") is not None  # isolation intact
    emulator.emulator.refusals.clear()
    wait_for(
        lambda: kube.get("Tenant", "stuck") is None, timeout_s=20, what="deletion once the API allows it"
    )
    assert kube.get("Namespace", "stuck-a") is None


def test_an_api_outage_never_makes_the_operator_exit(emulator: EmulatorThread, kube: Kube) -> None:
    kube.create(_tenant("patient", ["patient-a"], 0))
    with FaultProxy(emulator.url) as proxy, running_operator(proxy.url, interval_s=0.5) as runner:
        wait_for(lambda: kube.get("ResourceQuota", "dsx-quota", "patient-a"), what="served")
        proxy.cut()
        time.sleep(20)  # longer than the 8.5 s of backoffs that made the old operator exit
        kube.patch(
            "ResourceQuota", "dsx-quota", {"spec": {"hard": {"requests.nvidia.com/gpu": "999"}}}, "patient-a"
        )
        proxy.restore()
        wait_for(lambda: _gpu_quota(kube, "patient-a") == 0, timeout_s=90, what="repair after the outage")
        assert runner._thread.is_alive()  # still running
    assert runner.exception is None


def _unless_faulted(predicate: Any) -> Any:
    """The test's own reads meet the injected faults too: a faulted read is 'not yet'."""

    def check() -> Any:
        try:
            return predicate()
        except ApiError:
            return False

    return check


@pytest.mark.slow
@pytest.mark.parametrize(
    "error_rate", [float(r) for r in os.environ.get("DSX_TEST_FAULT_RATES", "0.1,0.3").split(",")]
)
def test_the_operator_converges_under_injected_api_errors(
    emulator: EmulatorThread, kube: Kube, error_rate: float
) -> None:
    assert emulator.emulator is not None
    kube.create(_pool(25))
    names = [f"f{i}" for i in range(5)]
    for name in names:
        kube.create(_tenant(name, [f"{name}-a"], 20, deletionPolicy="Delete"))
    emulator.emulator.error_rate = error_rate
    start = time.monotonic()
    # A 10 s lease, not the tests' usual 3 s (production: 15 s). In a CI run on two workers the
    # renewals (a GET and a PATCH, every 0.5 s when idle) came 1.5-4 s apart, the 3 s lease's
    # 2.4 s of validity ran out between them, and the deletion was refused ("not holding the
    # lease") until the 60 s wait ended. What this test proves is reconciliation under API errors; the lease's own
    # retries have their tests below.
    with running_operator(emulator.url, interval_s=0.5, lease_s=10.0):
        wait_for(
            _unless_faulted(lambda: all(_gpu_quota(kube, f"{n}-a") == 20 for n in names)),
            timeout_s=60,
            what=f"convergence at {error_rate:.0%} errors",
        )
        wait_for(_unless_faulted(lambda: kube.delete("Tenant", "f0") or True), what="delete sent")
        wait_for(
            _unless_faulted(lambda: kube.get("Tenant", "f0") is None),
            timeout_s=60,
            what="deletion under errors",
        )
    emulator.emulator.error_rate = 0
    assert kube.get("Namespace", "f0-a") is None
    assert kube.get("ClusterQueue", "f0") is None
    assert emulator.emulator.faults > 0
    print(f"converged at {error_rate:.0%} injected errors in {time.monotonic() - start:.1f} s")


# -- leader election ------------------------------------------------------------------------------
def test_a_second_replica_waits_for_the_lease_and_takes_over_when_it_expires(
    emulator: EmulatorThread, kube: Kube
) -> None:
    first = LeaderElector(_client(emulator.url), "dsx-system", "one", duration_s=1.5, renew_s=0.2)
    second = LeaderElector(_client(emulator.url), "dsx-system", "two", duration_s=1.5, renew_s=0.2)
    assert first.try_once() and first.is_leader()
    assert not second.try_once() and not second.is_leader()
    assert not second.try_once()
    time.sleep(1.7)  # first stops renewing (crashed): its lease runs out
    assert second.try_once() and second.is_leader()
    lost: list[bool] = []
    first.on_lost = lambda: lost.append(True)
    first._was_leader = True
    assert not first.try_once() and lost == [True] and not first.is_leader()
    lease = kube.get("Lease", "dsx-operator", "dsx-system")
    assert lease["spec"]["holderIdentity"] == "two" and lease["spec"]["leaseTransitions"] == 1


class _FlakyLeaseApi:
    """A Lease API whose reads fail with 503 while `failing` is set; records when it was asked."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.failing = False
        self.asked: list[tuple[float, bool]] = []

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.asked.append((time.monotonic(), self.failing))
        if self.failing:
            raise ApiError(503, "ServiceUnavailable", "injected")
        return self.lease

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
        return self.lease

    def patch(
        self, kind: str, name: str, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        assert self.lease is not None
        self.lease = {**self.lease, "spec": {**self.lease["spec"], **body["spec"]}}
        return self.lease


def test_a_failed_renewal_is_retried_before_the_lease_runs_out() -> None:
    # Renewing only every renew_s, two failures in a row lost the lease (duration 3 s, valid
    # 2.4 s, renewals every 0.5 s in the tests): under 30% injected errors the operator's
    # deletions were refused for seconds. After a failure the next renewal comes at a fifth.
    api = _FlakyLeaseApi()
    leader = LeaderElector(api, "dsx-system", "one", duration_s=3.0, renew_s=0.5)  # type: ignore[arg-type]
    assert leader.try_once()
    assert leader.renew_wait_s(True) == 0.5 and leader.renew_wait_s(False) == pytest.approx(0.1)
    api.failing = True
    leader.start_renewing()
    try:
        wait_for(
            lambda: sum(failed for _, failed in api.asked) >= 3, timeout_s=5, what="three failed renewals"
        )
        api.failing = False
        wait_for(lambda: not api.asked[-1][1], timeout_s=5, what="a renewal after the outage")
    finally:
        leader.stop()
    failed = [t for t, f in api.asked if f]
    # Three failures within about 0.3 s of each other, not 0.5 s apart; the lease held through.
    assert max(b - a for a, b in itertools.pairwise(failed[:3])) < 0.4
    assert leader.is_leader()


def test_a_tenant_with_a_malformed_spec_can_still_be_deleted(kube: Kube, operator: Any) -> None:
    bad = _tenant("garbled", ["garbled-a"], 0)
    bad["spec"]["gpuQuota"] = [{"pool": POOL, "gpus": "lots"}]
    kube.create(bad)
    wait_for(lambda: _condition(kube.get("Tenant", "garbled"), "Ready"), what="condition")
    kube.delete("Tenant", "garbled")
    wait_for(lambda: kube.get("Tenant", "garbled") is None, timeout_s=15, what="deleted")


def test_a_tenant_without_the_finalizer_yet_gets_nothing_made_for_it(
    emulator: EmulatorThread, kube: Kube
) -> None:
    # Kopf starts the drift timer before its finalizer lands. Under 30% injected errors a timer
    # pass made the namespace f0-a, the test deleted the Tenant before the finalizer was on, the
    # Tenant went at once and the namespace was left behind. Nothing is made until the
    # finalizer is there; then the same pass makes it.
    kube.create(_pool(25))
    kube.create(_tenant("early", ["early-a"], 4))
    client = _client(emulator.url)
    reconcile.reconcile_tenant(client, CONFIG, {"metadata": {"name": "early"}})
    assert kube.get("Namespace", "early-a") is None
    assert kube.get("ClusterQueue", "early") is None
    assert not (kube.get("Tenant", "early") or {}).get("status")
    kube.patch("Tenant", "early", {"metadata": {"finalizers": [FINALIZER]}})
    reconcile.reconcile_tenant(client, CONFIG, {"metadata": {"name": "early"}})
    assert kube.get("Namespace", "early-a") is not None
