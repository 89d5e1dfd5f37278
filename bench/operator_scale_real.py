"""The operator at scale on the real API server (kube-apiserver v1.20.2 of the test suite).

    .venv/bin/python -m bench.operator_scale_real [--tenants 200] [--interval 10]

Starts the suite's real cluster (tests/support/real_cluster.py), runs the operator in-process as
its ServiceAccount, creates one pool of 4·N GPUs and N tenants asking 8 GPUs each, all at once,
and reports: the time until every tenant has its quota and its creation handled, the largest
sum of GPU quota seen by a watch on ResourceQuotas (every stored state, not samples), and the
operator's writes and requests per idle drift interval, counted in the server's audit log.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from bench import operator_objects as bench_objects
from operators.kube import Kube
from tests.support.emulator import running_operator
from tests.support.real_cluster import LocalCluster


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    n = args.tenants
    with LocalCluster() as cluster:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(
            config_file=str(cluster.admin_kubeconfig), client_configuration=configuration
        )
        api = k8s.ApiClient(configuration)
        admin = Kube(api)
        quotas: dict[str, int] = {}
        sums: list[int] = []
        stop = threading.Event()

        def watch_quotas() -> None:
            core = k8s.CoreV1Api(api)
            while not stop.is_set():
                for event in k8s_watch.Watch().stream(
                    core.list_resource_quota_for_all_namespaces, timeout_seconds=5
                ):
                    quota = event["object"]
                    if quota.metadata.name != "dsx-quota":
                        continue
                    key = quota.metadata.namespace
                    value = (quota.spec.hard or {}).get("requests.nvidia.com/gpu", "0")
                    quotas[key] = 0 if event["type"] == "DELETED" else int(value)
                    sums.append(sum(quotas.values()))

        watcher = threading.Thread(target=watch_quotas, daemon=True)
        watcher.start()
        admin.create(bench_objects.pool(n))
        ca = Path(tempfile.mkdtemp()) / "ca.crt"
        ca.write_text(cluster.ca_pem)
        token = cluster.service_account_token()
        with running_operator(cluster.server, args.interval, token=token, ca_file=str(ca)):
            start = time.monotonic()
            for i in range(n):
                admin.create(bench_objects.tenant(i))
            created_s = time.monotonic() - start
            print(f"created {n} tenants in {created_s:.1f} s", flush=True)
            last = 0.0
            while True:
                tenants = admin.list("Tenant")
                done = [
                    t
                    for t in tenants
                    if "dsx.ai/last-handled-configuration" in (t["metadata"].get("annotations") or {})
                    and (t.get("status") or {}).get("quota")
                ]
                if len(done) == n:
                    break
                if time.monotonic() - last > 30:
                    last = time.monotonic()
                    print(f"  {time.monotonic() - start:.0f} s: {len(done)} tenants done", flush=True)
                if time.monotonic() - start > 1800:
                    raise SystemExit("did not converge in 30 min")
                time.sleep(1)
            converge_s = time.monotonic() - start
            time.sleep(args.interval)
            since = time.time()
            time.sleep(3 * args.interval)
            events = [e for e in cluster.audit_events(since=since) if "/leases/" not in e["requestURI"]]
            writes = [e for e in events if e.get("verb") in ("create", "update", "patch", "delete")]
        stop.set()
        granted = sum(
            int(q["spec"]["hard"]["requests.nvidia.com/gpu"])
            for q in admin.list("ResourceQuota")
            if q["metadata"]["name"] == "dsx-quota"
        )
    print(
        f"tenants: {n}, pool GPUs: {bench_objects.GPUS_PER_RACK * n}, asked: {bench_objects.GPUS_PER_TENANT * n}"
    )
    print(
        f"created in {created_s:.1f} s; converged (all quotas written, creation handled) in {converge_s:.1f} s"
    )
    print(
        f"GPU quota granted in the end: {granted}; largest sum seen by the watch: {max(sums)} (pool {4 * n})"
    )
    print(
        f"over 3 idle intervals of {args.interval:.0f} s: {len(writes)} writes "
        f"({len(writes) / 3:.1f} per interval), {len(events) / 3:.0f} requests per interval"
    )


if __name__ == "__main__":
    main()
