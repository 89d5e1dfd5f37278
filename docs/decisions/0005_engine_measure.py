"""Ray vs Dask: start-up of a local 2-worker cluster, per-task overhead (no-op and a point
solve of the tests' stylised scenario), memory (RSS of the whole process tree)."""

import contextlib
import json
import os
import statistics
import sys
import time

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))


def tree_rss():
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total, len(procs)


def noop(x):
    return x


def point(_):
    from planner.files import parse_scenario
    from planner.pipeline import solve_scenario
    from tests.planner.insight.helpers import stylised_data

    t = time.perf_counter()
    plan = solve_scenario(parse_scenario(stylised_data(), "s"))
    return time.perf_counter() - t, plan.solver.objective_usd


def measure(engine):
    out = {"engine": engine}
    _rss0, _ = tree_rss()
    t = time.perf_counter()
    if engine == "dask":
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)

        def run(f, xs):
            return client.gather(client.map(f, xs, pure=False))
    else:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        rf = {}

        def run(f, xs):
            if f not in rf:
                rf[f] = ray.remote(num_cpus=1)(f)
            return ray.get([rf[f].remote(x) for x in xs])

    run(noop, [0, 1])  # workers up
    out["startup_s"] = time.perf_counter() - t
    t = time.perf_counter()
    run(noop, list(range(200)))
    out["noop_ms_per_task"] = (time.perf_counter() - t) / 200 * 1e3
    # a point solve: first call imports the planner in each worker
    t = time.perf_counter()
    run(point, [0, 1])
    out["first_point_pair_s"] = time.perf_counter() - t
    t = time.perf_counter()
    res = run(point, list(range(8)))
    wall = time.perf_counter() - t
    inside = sum(r[0] for r in res)
    out["8_points_wall_s"] = wall
    out["8_points_in_worker_s"] = inside
    out["overhead_ms_per_point"] = (wall - inside / 2) / 8 * 1e3
    rss, n = tree_rss()
    out["tree_rss_mb"] = rss / 2**20
    out["processes"] = n
    if engine == "ray":
        # ray's raylet/gcs are not children of the driver in every version: count them by name
        tot = 0
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                if "ray" in cmd and (
                    "raylet" in cmd
                    or "gcs_server" in cmd
                    or "default_worker" in cmd
                    or "dashboard" in cmd
                    or "log_monitor" in cmd
                    or "monitor.py" in cmd
                ):
                    tot += p.memory_info().rss
            except psutil.Error:
                pass
        out["ray_daemons_rss_mb"] = tot / 2**20
    t = time.perf_counter()
    if engine == "dask":
        client.close()
        cluster.close()
    else:
        ray.shutdown()
    out["shutdown_s"] = time.perf_counter() - t
    t = time.perf_counter()
    inproc = [point(0)[0] for _ in range(2)]
    out["in_process_point_s"] = statistics.mean(inproc)
    out["loadavg"] = os.getloadavg()[0]
    return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
