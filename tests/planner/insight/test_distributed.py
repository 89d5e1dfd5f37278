"""Sweeps and EVPI/VSS on the Dask engine: a running cluster reached by address, the same
figures as solving here, and one clear error for an address nobody answers at."""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from typer.testing import CliRunner

from dsx import cli
from planner.engine import SerialEngine, connect, open_engine
from planner.errors import UserError
from planner.files import parse_scenario, read_plan
from planner.value_of_information import compute
from tests.planner.insight.helpers import stylised_data

cli._register_commands()
runner = CliRunner()


@pytest.fixture(scope="module")
def scheduler():
    """A running Dask cluster of two worker processes, reached only by its address."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    yield cluster.scheduler_address
    cluster.close()


def test_a_sweep_on_a_running_cluster_by_address(scheduler, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(stylised_data()))
    out = tmp_path / "sweep"
    args = ["plan", "sweep", str(base), "--set", "terms.revenue_share=0,0.05,0.1", "-o", str(out)]
    result = runner.invoke(cli.app, [*args, "--cluster", scheduler, "--no-value-of-information", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["engine"] == {"where": f"the Dask cluster at {scheduler}", "slots": 2}
    assert len(summary["plans"]) == 3
    assert all(read_plan(path).verification.passed for path in summary["plans"].values())


def test_value_of_information_on_the_cluster_equals_solving_here(scheduler):
    scenario = parse_scenario(stylised_data(), "stylised")
    here = compute(scenario, engine=SerialEngine())
    engine = connect(scheduler)
    try:
        there = compute(scenario, engine=engine)
    finally:
        engine.close()
    assert there.ws_usd == pytest.approx(here.ws_usd, rel=1e-9)
    assert there.eev_usd == pytest.approx(here.eev_usd, rel=1e-9)
    assert there.rp_usd == pytest.approx(here.rp_usd, rel=1e-9)


def test_an_address_nobody_answers_at_is_one_user_error(monkeypatch):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = pytest.raises(UserError, match="--cluster: no Dask scheduler answers")
    with refused as caught, open_engine(f"tcp://127.0.0.1:{port}"):
        pass
    assert "Fix:" in caught.value.details[0]
    monkeypatch.setenv("DSX_CLUSTER", "nonsense")
    result = runner.invoke(cli.app, ["plan", "value-of-information", "whatever.yaml"])
    assert result.exit_code != 0


def test_one_worker_or_one_task_runs_here_without_a_cluster():
    with open_engine(workers=1, tasks=5) as engine:
        assert isinstance(engine, SerialEngine)
    with open_engine(tasks=1) as engine:
        assert isinstance(engine, SerialEngine)
    with pytest.raises(UserError, match="--workers 0"), open_engine(workers=0, tasks=3):
        pass


def test_a_batch_with_one_infeasible_file_writes_the_other_plans(tmp_path, monkeypatch):
    from tests.planner.insight.helpers import three_quarters

    files = []
    for name, share in (("low", 0.0), ("high", 0.1)):
        data = stylised_data()
        data["terms"]["revenue_share"] = share
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(yaml.safe_dump(data))
    bad = three_quarters().model_dump(mode="json")
    bad["sites"][0].update(gpu_cap=150, existing_racks={"rack10": 20})
    files.append(tmp_path / "infeasible.yaml")
    files[-1].write_text(yaml.safe_dump(bad))
    out = tmp_path / "batch"
    monkeypatch.setattr(
        "sys.argv", ["dsx", "plan", "batch", *map(str, files), "-o", str(out), "--workers", "2"]
    )
    with pytest.raises(SystemExit) as caught:
        cli.main()
    assert caught.value.code == 4
    assert sorted(p.name for p in out.glob("*.json")) == ["high.json", "low.json"]
    assert read_plan(out / "low.json").verification.passed


def _omp_num_threads() -> str:
    import os

    return os.environ.get("OMP_NUM_THREADS", "")


def test_local_worker_processes_share_the_cpus_for_a_decomposition_s_threads(monkeypatch):
    # Dask sets OMP_NUM_THREADS=1 in its workers; a decomposed solve reads it for its recourse
    # threads. Two local processes on an 8-CPU machine get 4 each, so a batch of two points
    # still uses every CPU.
    import planner.engine as engine_module

    monkeypatch.setattr(engine_module.os, "cpu_count", lambda: 8)
    with open_engine(workers=2, tasks=2) as engine:
        for key in ("a", "b"):
            engine.submit(key, _omp_num_threads)
        seen = {engine.next_done()[1] for _ in range(2)}
    assert seen == {"4"}


@pytest.mark.parametrize("port", ["99999", "0"])
def test_an_address_whose_port_no_machine_has_says_so(port):
    # 99999 was reported as "connection refused", as if a scheduler could listen there.
    with (
        pytest.raises(UserError, match=f"port {port} in .* is not a TCP port") as caught,
        open_engine(f"tcp://127.0.0.1:{port}"),
    ):
        pass
    assert "Fix:" in caught.value.details[0]


def test_workers_given_run_locally_even_where_a_cluster_is_set_in_the_environment(monkeypatch):
    # --workers 1 went to DSX_CLUSTER's cluster although its help says it solves here.
    monkeypatch.setenv("DSX_CLUSTER", "tcp://127.0.0.1:1")
    with open_engine(workers=1, tasks=5) as engine:
        assert isinstance(engine, SerialEngine)
    with (
        pytest.raises(UserError, match="--workers sizes a local cluster"),
        open_engine("tcp://127.0.0.1:1", workers=2, tasks=5),
    ):
        pass
