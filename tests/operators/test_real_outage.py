"""Outages, for real: kube-apiserver or etcd killed and started again while the operator runs, and
a spell of RBAC denials.

The session's own server only (tests/support/real_cluster.py): what every API server restart,
crash or etcd failover looks like to the operator. It runs with its production retry delay (5 s)
and the tests' 6 s Lease (tests/support/operator_process.py), which each outage outlasts as well.
Right after a kube-apiserver restart, its RBAC authorizer answers 403 ("clusterrole ... not
found") until its caches have synced: an operator that reconnects in that window is denied.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.operators.test_real_lifecycle import (
    GPU,
    QUOTA,
    gpu_quota,
    make_pool,
    make_tenant,
    ready,
    unique,
    wait_for,
)
from tests.support.operator_process import OperatorProcess
from tests.support.real_cluster import OPERATOR_SERVICE_ACCOUNT, RealCluster

pytestmark = pytest.mark.real_cluster

OUTAGE_S = 15.0  # more than the operator's error backoffs (1 + 2.5 + 5 s with the 5 s retry delay)
DENIAL_S = 12.0


@pytest.mark.parametrize(
    "component",
    [
        "kube-apiserver",
        "etcd",
    ],
)
def test_operator_survives_an_outage_and_catches_up(
    real_cluster: RealCluster, tmp_path: Path, component: str
) -> None:
    if real_cluster.outage is None:
        pytest.skip("only the suite's own API server can be stopped and started")
    admin = real_cluster.admin
    kubeconfig = real_cluster.service_account_kubeconfig(tmp_path / "operator.kubeconfig")
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    with OperatorProcess(
        kubeconfig, tmp_path / "operator.log", interval_s=1.0, retry_delay_s=5.0
    ) as operator:
        admin.create(make_pool(pool, 100))
        admin.create(make_tenant(tenant, pool, 10))
        wait_for(lambda: ready(admin, tenant), "tenant Ready")
        real_cluster.outage(component, OUTAGE_S)
        assert operator.running, operator.output()[-3000:]
        admin.patch("Tenant", tenant, {"spec": {"gpuQuota": [{"pool": pool, "gpus": 20}]}})
        wait_for(lambda: gpu_quota(admin, ns) == 20, "the change after the outage reconciled", timeout_s=60)
        admin.patch("ResourceQuota", QUOTA, {"spec": {"hard": {GPU: "99"}}}, namespace=ns)
        wait_for(lambda: gpu_quota(admin, ns) == 20, "drift after the outage repaired", timeout_s=30)
        assert operator.running


def test_rbac_denial_across_an_api_server_restart_is_survived(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    """What a restarted server does while its RBAC caches sync, made long enough to be met every
    time: the operator's ClusterRoleBinding is removed, the server restarted (so every watch
    reconnects), and the binding restored 12 s later."""
    if real_cluster.outage is None:
        pytest.skip("only the suite's own API server can be stopped and started")
    admin = real_cluster.admin
    kubeconfig = real_cluster.service_account_kubeconfig(tmp_path / "operator.kubeconfig")
    pool, tenant = unique("pool"), unique("tn")
    ns = f"{tenant}-ns"
    binding = admin.get("ClusterRoleBinding", OPERATOR_SERVICE_ACCOUNT)
    assert binding is not None
    restore = {k: v for k, v in binding.items() if k != "status"}
    restore["metadata"] = {
        k: v for k, v in binding["metadata"].items() if k in ("name", "labels", "annotations")
    }
    with OperatorProcess(
        kubeconfig, tmp_path / "operator.log", interval_s=1.0, retry_delay_s=5.0
    ) as operator:
        admin.create(make_pool(pool, 100))
        admin.create(make_tenant(tenant, pool, 10))
        wait_for(lambda: ready(admin, tenant), "tenant Ready")
        admin.delete("ClusterRoleBinding", OPERATOR_SERVICE_ACCOUNT)
        try:
            real_cluster.outage("kube-apiserver", 2)
            time.sleep(DENIAL_S)
        finally:
            wait_for(lambda: admin.create(restore), "operator's ClusterRoleBinding restored")
        assert operator.running, operator.output()[-3000:]
        admin.patch("ResourceQuota", QUOTA, {"spec": {"hard": {GPU: "99"}}}, namespace=ns)
        wait_for(lambda: gpu_quota(admin, ns) == 10, "drift repaired after the denials ended", timeout_s=20)
        admin.patch("Tenant", tenant, {"spec": {"gpuQuota": [{"pool": pool, "gpus": 20}]}})
        wait_for(
            lambda: gpu_quota(admin, ns) == 20, "a spec change after the denials reconciled", timeout_s=30
        )
