"""The operator at scale, measured: converge time and writes per idle interval for N tenants.

    .venv/bin/python -m bench.operator_scale [--tenants 200] [--interval 10] [--error-rate 0]

Runs the real operator (Kopf, in-process) against the test emulator (tests/support/emulator.py):
one pool, N tenants of one namespace each, all created at once. Reports the time until every
tenant's quota is written and its creation handled, then the operator's writes over three idle
drift intervals, the largest sum of GPU quota seen at any write (the pool holds 4·N GPUs and
every tenant asks 8, so half of them must be refused GPUs), and the list requests made.
"""

from __future__ import annotations

import argparse
import time

from kubernetes import client as k8s

from bench import operator_objects as bench_objects
from operators.kube import Kube
from tests.support.emulator import EmulatorThread, running_operator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    args = parser.parse_args()
    n = args.tenants
    with EmulatorThread() as emulator:
        em = emulator.emulator
        assert em is not None
        configuration = k8s.Configuration()
        configuration.host = emulator.url
        kube = Kube(k8s.ApiClient(configuration))
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dsx-system"}})
        sums: list[int] = []

        def quota_sum(_method: str, _path: str) -> None:
            total = 0
            for key, obj in list(em.objects.items()):
                if key[0].plural == "resourcequotas" and not obj.deleted:
                    total += int(obj.raw["spec"]["hard"].get("requests.nvidia.com/gpu", "0"))
            sums.append(total)

        em.on_write = quota_sum
        kube.create(bench_objects.pool(n))
        em.error_rate = args.error_rate
        with running_operator(emulator.url, interval_s=args.interval):
            start = time.monotonic()
            for i in range(n):
                kube.create(bench_objects.tenant(i))
            created_s = time.monotonic() - start
            print(f"created {n} tenants in {created_s:.1f} s", flush=True)

            def converged() -> bool:
                tenants = kube.list("Tenant")
                return len(tenants) == n and all(
                    "dsx.ai/last-handled-configuration" in (t["metadata"].get("annotations") or {})
                    and (t.get("status") or {}).get("quota")
                    for t in tenants
                )

            last = 0.0
            while not converged():
                time.sleep(2)
                if time.monotonic() - last > 30:
                    last = time.monotonic()
                    done = sum(1 for q in kube.list("ResourceQuota") if q)
                    print(
                        f"  {time.monotonic() - start:.0f} s: {done} quotas, {len(em.writes)} writes",
                        flush=True,
                    )
                if time.monotonic() - start > 1800:
                    raise SystemExit("did not converge in 30 min")
            converge_s = time.monotonic() - start
            em.error_rate = 0.0
            time.sleep(args.interval)  # the last echoes
            idle_start, lists_before = time.monotonic(), len(em.lists)
            time.sleep(3 * args.interval)
            idle_writes = [w for w in em.writes if w[0] >= idle_start and "/leases/" not in w[2]]
            idle_lists = len(em.lists) - lists_before
        granted = sum(int(q["spec"]["hard"]["requests.nvidia.com/gpu"]) for q in kube.list("ResourceQuota"))
    print(
        f"tenants: {n}, pool GPUs: {bench_objects.GPUS_PER_RACK * n}, asked: {bench_objects.GPUS_PER_TENANT * n}, injected error rate: {args.error_rate:.0%}"
    )
    print(
        f"created in {created_s:.1f} s; converged (all quotas written, creation handled) in {converge_s:.1f} s"
    )
    print(f"GPU quota granted in the end: {granted}; largest sum at any write: {max(sums)} (pool {4 * n})")
    print(
        f"writes over 3 idle intervals of {args.interval:.0f} s: {len(idle_writes)} "
        f"({len(idle_writes) / 3:.1f} per interval); list requests: {idle_lists / 3:.1f} per interval"
    )


if __name__ == "__main__":
    main()
