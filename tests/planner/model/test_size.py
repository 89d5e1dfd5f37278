"""A scenario too large for the machine's memory is refused before anything is built, with the
count that makes it large and what to change; one that fits is not."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from bench.scenarios import SIZES, synthetic_scenario
from planner.engine import _cgroup_room, available_memory_bytes
from planner.errors import NoPlanError, ScenarioError
from planner.files import load_scenario, parse_scenario
from planner.model import build as build_module
from planner.model.build import build_model
from planner.model.size import (
    BYTES_PER_SERVED_COLUMN,
    GB,
    INTERIOR_POINT_BYTES_PER_SERVED_COLUMN,
    check_fits,
    model_size,
)
from planner.pipeline import solve_scenario
from planner.schema.scenario import AUTO_MIN_SCENARIOS, Scenario
from planner.solve import direct
from planner.value_of_information import compute
from tests.conftest import EXAMPLE_SCENARIO


@pytest.fixture(scope="module")
def xl() -> Scenario:
    return synthetic_scenario(*SIZES["xl"], seed=0)


def _with_solver(scenario: Scenario, **update) -> Scenario:
    return scenario.model_copy(update={"solver": scenario.solver.model_copy(update=update)})


@pytest.mark.parametrize("size", [(2, 2, 4, 3, 3), (3, 2, 6, 4, 5)])
def test_the_served_count_is_the_built_models(size):
    scenario = synthetic_scenario(*size, seed=1)
    m = build_model(scenario)
    assert model_size(scenario).served_columns == len(m.served_gpu_hours)


def test_the_served_count_of_the_bundled_example_is_its_models():
    scenario = load_scenario(EXAMPLE_SCENARIO)
    assert model_size(scenario).served_columns == len(build_model(scenario).served_gpu_hours)


def test_the_need_is_a_floor_of_what_the_build_and_compile_allocate():
    """tracemalloc sees Python's and numpy's allocations (not HiGHS's copy, which the figure for
    the extensive form also counts): their peak over the build and the compile to arrays is above
    the need even so. (By dual simplex: no interior point's memory in the need.)"""
    scenario = _with_solver(
        synthetic_scenario(*SIZES["small"], seed=0), method="extensive", lp_algorithm="simplex"
    )
    tracemalloc.start()
    try:
        m = build_model(scenario)
        direct.compile_to_arrays(m)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert model_size(scenario).needed_bytes < peak


@pytest.mark.parametrize(
    ("method", "per_column"),
    [
        ("decomposition", BYTES_PER_SERVED_COLUMN["decomposition"]),
        ("extensive", INTERIOR_POINT_BYTES_PER_SERVED_COLUMN),
        ("auto", BYTES_PER_SERVED_COLUMN["decomposition"]),  # 1,000 scenarios: decomposed
    ],
)
def test_the_xl_bench_size_is_refused_on_this_kind_of_machine_without_building_anything(
    monkeypatch, xl, method, per_column
):
    def no_build(*_args, **_kwargs):
        raise AssertionError("built")

    monkeypatch.setattr(build_module, "_build", no_build)
    scenario = _with_solver(xl, method=method)
    with pytest.raises(NoPlanError) as refused:
        check_fits(scenario, available_bytes=int(24 * GB))
    text = refused.value.render()
    size = model_size(scenario)
    assert size.served_columns == 23_040_000
    assert size.needed_bytes == per_column * 23_040_000
    assert "too large to build" in text and "24 GB is free here" in text
    assert "1,000 scenarios" in text and "Fix: fewer scenarios" in text
    assert "solver.max_memory_gb" in text


def test_the_extensive_forms_need_counts_its_interior_point_only_where_one_runs():
    scenario = _with_solver(synthetic_scenario(2, 2, 4, 3, 3, seed=1), method="extensive")
    served = model_size(scenario).served_columns
    interior = INTERIOR_POINT_BYTES_PER_SERVED_COLUMN * served
    handed = BYTES_PER_SERVED_COLUMN["extensive"] * served
    assert model_size(scenario).needed_bytes == interior  # a MILP's rounded start, by ipm
    assert (
        model_size(_with_solver(scenario, relax_integrality=True, lp_algorithm="ipm")).needed_bytes
        == interior
    )
    assert model_size(_with_solver(scenario, lp_algorithm="simplex")).needed_bytes == handed
    assert model_size(_with_solver(scenario, rounded_start=False)).needed_bytes == handed
    # As the solve resolves it: a raw `solver` option wins, and only `direct` runs a rounded start.
    assert model_size(_with_solver(scenario, extra={"solver": "simplex"})).needed_bytes == handed
    assert (
        model_size(_with_solver(scenario, lp_algorithm="simplex", extra={"solver": "ipm"})).needed_bytes
        == interior
    )
    assert model_size(_with_solver(scenario, interface="appsi")).needed_bytes == handed
    assert model_size(scenario, solving=False).needed_bytes == handed


def test_a_scenario_that_fits_is_let_through_and_an_unknown_machine_is_not_checked(xl):
    scenario = load_scenario(EXAMPLE_SCENARIO)
    assert check_fits(scenario, available_bytes=int(1 * GB)).needed_bytes < GB
    assert check_fits(xl, available_bytes=None).needed_bytes > 30 * GB


def test_max_memory_gb_replaces_the_machines_figure_both_ways(xl):
    scenario = load_scenario(EXAMPLE_SCENARIO)
    with pytest.raises(NoPlanError, match=r"solver\.max_memory_gb is 1e-06"):
        check_fits(_with_solver(scenario, max_memory_gb=1e-6), available_bytes=int(100 * GB))
    assert (
        check_fits(_with_solver(xl, max_memory_gb=1000.0), available_bytes=int(GB)).served_columns
        == 23_040_000
    )


@pytest.mark.parametrize("bad", [0.0, -1.0, 1e7])
def test_max_memory_gb_out_of_range_is_a_scenario_error(bad):
    data = load_scenario(EXAMPLE_SCENARIO).model_dump(mode="json")
    data["solver"]["max_memory_gb"] = bad
    with pytest.raises(ScenarioError, match=r"solver\.max_memory_gb"):
        parse_scenario(data, "bad.yaml")


def test_solve_scenario_refuses_before_the_build(monkeypatch):
    calls = []
    monkeypatch.setattr("planner.pipeline.build_model", lambda *a, **k: calls.append(a))
    scenario = _with_solver(load_scenario(EXAMPLE_SCENARIO), max_memory_gb=1e-6)
    with pytest.raises(NoPlanError, match="too large to build"):
        solve_scenario(scenario)
    assert calls == []


def test_value_of_information_refuses_with_the_fix_kept():
    scenario = _with_solver(load_scenario(EXAMPLE_SCENARIO), max_memory_gb=1e-6)
    with pytest.raises(NoPlanError) as refused:
        compute(scenario)
    assert "too large to build" in refused.value.message
    assert any(d.startswith("Fix:") for d in refused.value.details)


def _files(tmp_path: Path, cgroup: str, limits: dict[str, str]) -> tuple[Path, Path]:
    (tmp_path / "cgroup").write_text(cgroup)
    root = tmp_path / "fs"
    for name, value in limits.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(value)
    return tmp_path / "cgroup", root


def test_a_cgroup_v2_limit_leaves_its_room(tmp_path):
    cgroup, root = _files(
        tmp_path, "0::/job\n", {"job/memory.max": "4000000000\n", "job/memory.current": "1000000000\n"}
    )
    assert _cgroup_room(cgroup, root) == 3_000_000_000


def test_dropped_file_cache_counts_as_room_in_a_cgroup(tmp_path):
    cgroup, root = _files(
        tmp_path,
        "0::/job\n",
        {
            "job/memory.max": "4000000000",
            "job/memory.current": "3000000000",
            "job/memory.stat": "anon 1000000000\ninactive_file 1500000000\nactive_file 500000000\n",
        },
    )
    assert _cgroup_room(cgroup, root) == 2_500_000_000


def test_a_cgroup_path_not_under_the_mount_reads_the_mounts_own_limit(tmp_path):
    # A container without its own cgroup namespace sees the host's path but its own cgroup at /.
    cgroup, root = _files(
        tmp_path, "0::/docker/abc\n", {"memory.max": "2000000000", "memory.current": "500000000"}
    )
    assert _cgroup_room(cgroup, root) == 1_500_000_000


def test_a_dask_workers_limit_caps_the_room(monkeypatch, tmp_path):
    class Manager:
        memory_limit = 4_000_000_000

    class Worker:
        memory_manager = Manager()

    class Config:
        @staticmethod
        def get(_key, default):
            return 0.5

    fake = type(sys)("distributed")
    fake.get_worker = lambda: Worker()
    monkeypatch.setitem(sys.modules, "distributed", fake)
    monkeypatch.setitem(sys.modules, "dask", type("Dask", (), {"config": Config})())
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable: 100000000 kB\n")  # 102 GB free on the machine
    room = available_memory_bytes(meminfo, tmp_path / "no-cgroup")
    assert room is not None and room <= 2_000_000_000  # half the worker's limit, less what it holds


def test_a_cgroup_v1_limit_leaves_its_room(tmp_path):
    cgroup, root = _files(
        tmp_path,
        "5:cpu:/\n4:memory:/job\n0::/\n",
        {"memory/job/memory.limit_in_bytes": "2000000000", "memory/job/memory.usage_in_bytes": "500000000"},
    )
    assert _cgroup_room(cgroup, root) == 1_500_000_000


def test_a_parent_cgroups_limit_binds_a_child_without_one(tmp_path):
    # A Slurm job's or a systemd slice's limit, over a step's cgroup that has none of its own;
    # the parent's usage counts its other children too.
    cgroup, root = _files(
        tmp_path,
        "0::/slice/job/step\n",
        {
            "slice/memory.max": "max",
            "slice/memory.current": "9000000000",
            "slice/job/memory.max": "4000000000",
            "slice/job/memory.current": "3000000000",
            "slice/job/step/memory.max": "max",
            "slice/job/step/memory.current": "1000000000",
        },
    )
    assert _cgroup_room(cgroup, root) == 1_000_000_000


def test_the_tightest_of_a_cgroup_and_its_parents_is_its_room(tmp_path):
    cgroup, root = _files(
        tmp_path,
        "0::/job/step\n",
        {
            "job/memory.max": "8000000000",
            "job/memory.current": "6000000000",
            "job/step/memory.max": "5000000000",
            "job/step/memory.current": "1000000000",
        },
    )
    assert _cgroup_room(cgroup, root) == 2_000_000_000  # the job's 2 GB, not the step's 4 GB


def test_a_cgroup_v1_parents_limit_binds_a_child_without_one(tmp_path):
    cgroup, root = _files(
        tmp_path,
        "4:memory:/job/step\n",
        {
            "memory/job/memory.limit_in_bytes": "3000000000",
            "memory/job/memory.usage_in_bytes": "1200000000",
            "memory/job/memory.use_hierarchy": "1",
            "memory/job/step/memory.limit_in_bytes": "9223372036854771712",
            "memory/job/step/memory.usage_in_bytes": "500000000",
        },
    )
    assert _cgroup_room(cgroup, root) == 1_800_000_000


def test_a_cgroup_v1_parent_without_use_hierarchy_does_not_bind(tmp_path):
    # Its children are not charged to it (old v1 kernels): its limit is not this process's.
    cgroup, root = _files(
        tmp_path,
        "4:memory:/job/step\n",
        {
            "memory/job/memory.limit_in_bytes": "1000000000",
            "memory/job/memory.usage_in_bytes": "900000000",
            "memory/job/memory.use_hierarchy": "0",
            "memory/job/step/memory.limit_in_bytes": "4000000000",
            "memory/job/step/memory.usage_in_bytes": "500000000",
        },
    )
    assert _cgroup_room(cgroup, root) == 3_500_000_000


def test_a_parent_limit_binds_a_cgroup_that_has_no_memory_files_of_its_own(tmp_path):
    # The memory controller not enabled below the job: the step's directory has no memory.max.
    cgroup, root = _files(
        tmp_path,
        "0::/job/step\n",
        {"job/memory.max": "2000000000", "job/memory.current": "500000000", "job/step/cgroup.procs": "1"},
    )
    assert _cgroup_room(cgroup, root) == 1_500_000_000


@pytest.mark.parametrize("odd", ["0::/" + "x" * 5000 + "\n", "4:memory:/job\n"])
def test_an_odd_cgroup_never_stops_a_solve(tmp_path, odd):
    # A path longer than the file system allows, and a usage in non-ASCII digits ('²'.isdigit()).
    cgroup, root = _files(
        tmp_path, odd, {"memory/job/memory.limit_in_bytes": "4000", "memory/job/memory.usage_in_bytes": "²"}
    )
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable: 2048 kB\n")
    assert available_memory_bytes(meminfo, cgroup, root) == 2048 * 1024
    if "memory" in odd:
        assert _cgroup_room(cgroup, root) is None  # '²' read as no figure, not as an error


@pytest.mark.parametrize(
    "limits",
    [
        {"job/memory.max": "max\n", "job/memory.current": "1\n"},  # v2: no limit
        {"job/memory.max": "9223372036854771712", "job/memory.current": "1"},  # v1's "none"
        {"job/memory.max": "garbage", "job/memory.current": "1"},
        {},
    ],
)
def test_no_cgroup_limit_or_an_unreadable_one_leaves_no_room_figure(tmp_path, limits):
    cgroup, root = _files(tmp_path, "0::/job\n", limits)
    assert _cgroup_room(cgroup, root) is None


def test_available_memory_is_memavailable_and_none_without_it(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable: 2048 kB\n")
    no_cgroup = tmp_path / "no-cgroup"
    assert available_memory_bytes(meminfo, no_cgroup) == 2048 * 1024
    assert available_memory_bytes(tmp_path / "missing", no_cgroup) is None


def test_auto_is_counted_as_the_method_the_solve_will_run():
    # Before, `auto` counted the smaller need of the two: with no rounded start (a sweep's
    # --cold) the extensive form's hand-off, about half what the decomposition it runs needs.
    many = _with_solver(synthetic_scenario(2, 2, 4, 3, AUTO_MIN_SCENARIOS, seed=1), rounded_start=False)
    few = _with_solver(synthetic_scenario(2, 2, 4, 3, AUTO_MIN_SCENARIOS - 1, seed=1))
    assert many.solver.method == few.solver.method == "auto"
    per_column = {
        "many": model_size(many).needed_bytes / model_size(many).served_columns,
        "many on appsi": model_size(_with_solver(many, interface="appsi")).needed_bytes
        / model_size(many).served_columns,
        "few": model_size(few).needed_bytes / model_size(few).served_columns,
    }
    assert per_column == {
        "many": BYTES_PER_SERVED_COLUMN["decomposition"],
        "many on appsi": BYTES_PER_SERVED_COLUMN["extensive"],
        "few": INTERIOR_POINT_BYTES_PER_SERVED_COLUMN,  # the rounded start's interior point
    }
