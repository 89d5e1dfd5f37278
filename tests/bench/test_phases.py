"""The benchmark's phases: every phase timed in order, the solve's three read from SolveOutcome,
and memory samples attributed to the phase whose window holds them."""

from __future__ import annotations

import itertools
from pathlib import Path

from bench.harness import Result, fill
from bench.phases import PHASES, Spec, run
from bench.scenarios import write_scenario
from planner.files import load_scenario


def test_a_run_times_every_phase_in_order_and_writes_the_plan(tmp_path: Path):
    size = (1, 1, 2, 1, 1)
    scenario = write_scenario(size, "mip", 20.0, 1, out_dir=tmp_path, mip_rel_gap=0.01)
    spec = Spec(
        label="tiny",
        size=size,
        interface="direct",
        mode="mip",
        solve=True,
        scenario_path=str(scenario),
        plan_path=str(tmp_path / "plan.json"),
        result_path=str(tmp_path / "result.json"),
    )
    out = run(spec)
    assert list(out["seconds"]) == list(PHASES)
    windows = [out["windows"][phase] for phase in PHASES]
    assert all(start <= end for start, end in windows)
    assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(windows))
    assert out["status"] == "Optimal" and out["verification_passed"] is True
    assert Path(spec.plan_path).stat().st_size == out["plan_bytes"]


def test_memory_samples_go_to_the_phase_whose_window_holds_them():
    raw = {
        "loadavg_start": [0.0, 0.0, 0.0],
        "loadavg_end": [0.0, 0.0, 0.0],
        "seconds": {"load": 1.0, "build": 2.0, "solve": 3.0},
        "windows": {"load": (0.0, 1.0), "build": (1.0, 3.0), "solve": (3.0, 6.0)},
        "boundary_rss": {"load": 50},
        "ru_maxrss_bytes": 400,
    }
    result = Result(spec={})
    fill(result, raw, samples=[(0.5, 100), (2.0, 300), (2.5, 200), (4.0, 250)])
    assert result.peak_bytes == {"load": 100, "build": 300, "solve": 250}
    assert result.before_highs_s == 3.0 and result.solver_s == 3.0
    assert result.non_solver_share == 0.5
    assert result.peak_bytes_all == 400


def test_a_perspective_asked_for_is_the_written_scenarios_own(tmp_path: Path):
    size = (2, 1, 4, 2, 2)
    cloud = write_scenario(size, "lp", 20.0, None, out_dir=tmp_path, mip_rel_gap=0.01)
    syndicate = write_scenario(
        size, "lp", 20.0, None, out_dir=tmp_path, mip_rel_gap=0.01, perspective="syndicate"
    )
    assert cloud != syndicate
    assert load_scenario(str(cloud)).objective.perspective == "cloud"
    assert load_scenario(str(syndicate)).objective.perspective == "syndicate"
