"""Outages, for real: kube-apiserver or etcd killed and started again while the operator runs.

The session's own server only (tests/support/real_cluster.py): what every API server restart,
crash or etcd failover looks like to the operator. It runs with its production retry delay (5 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.operators.test_real_lifecycle import gpu_quota, make_pool, make_tenant, ready, unique, wait_for
from tests.support.operator_process import OperatorProcess
from tests.support.real_cluster import RealCluster

pytestmark = pytest.mark.real_cluster

OUTAGE_S = 15.0  # more than the operator's error backoffs (1 + 2.5 + 5 s with the 5 s retry delay)


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
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
        assert operator.running
