"""One benchmark run, inside its fresh subprocess: the pipeline's stages in order, each timed.

    load      write-once YAML -> planner.files.load_scenario (YAML parse + pydantic + consistency)
    build     planner.model.build.build_model
    handoff   Pyomo model -> HiGHS  } from `SolveOutcome`: its `phases` windows (time.monotonic)
    solve     HiGHS's own run time  } and durations (`handoff_s`, `solve_s`, HiGHS's clock);
    readback  the rest of solve_model } readback = the call's wall time less the other two
    report    planner.results.build_plan (solution -> Plan)
    verify    planner.verify.verify_plan
    write     planner.files.write_plan

The stages are the calls `planner.pipeline.solve_scenario` makes, made here one by one so that
a plan failing verification (every LP run's: its racks are fractional) is still verified,
timed and written; the pipeline would stop there. Nothing is wrapped or patched: what happens
inside `solve_model` is read from the `SolveOutcome` it returns. With `--no-solve` the run stops
after the hand-off, which it then calls itself (`direct.pass_to_highs`, appsi `set_instance`).

Run as `python -m bench.phases SPEC.json` by `bench.harness`; writes the result JSON the spec
names. Heavy imports happen inside `run`, after the process has started, so that `base_bytes`
(RSS before `load`) counts the interpreter and libraries once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# As the dsx command line sets it (dsx/__init__.py, which says why), before `run` imports numpy,
# so a run is measured as `dsx plan` would run it.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

PHASES = ("load", "build", "handoff", "solve", "readback", "report", "verify", "write")
BEFORE_HIGHS = ("load", "build", "handoff")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Spec:
    """One isolated run, as handed to the subprocess (JSON)."""

    label: str
    size: tuple[int, int, int, int, int]
    interface: str
    mode: str  # "lp" or "mip"
    solve: bool
    scenario_path: str
    plan_path: str
    result_path: str
    rounded_start: bool = True
    method: str = "extensive"
    """`solver.method`: extensive or decomposition (planner.solve.decomposition)."""
    profile: bool = False
    profile_dir: str = ""


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class Clock:
    """Phase windows (CLOCK_MONOTONIC, shared with the sampling parent), durations and the RSS
    at each phase's boundaries, optionally cProfiled."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.windows: dict[str, tuple[float, float]] = {}
        self.seconds: dict[str, float] = {}
        self.boundary_rss: dict[str, int] = {}

    def run(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `fn` as phase `name`: its window, duration and boundary RSS are recorded."""
        rss0 = rss_bytes()
        t0 = time.monotonic()
        try:
            return self.profiled(name, fn, *args, **kwargs)
        finally:
            t1 = time.monotonic()
            self.record(name, (t0, t1), t1 - t0, max(rss0, rss_bytes()))

    def profiled(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `fn`, under cProfile with `--profile` (bench/out/profiles/<run>-<name>.*)."""
        if not self.spec.profile:
            return fn(*args, **kwargs)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            profiler.disable()
            _dump_profile(profiler, Path(self.spec.profile_dir) / f"{self.spec.label}-{name}")

    def record(self, name: str, window: tuple[float, float], seconds: float, rss: int | None = None) -> None:
        self.windows[name] = window
        self.seconds[name] = seconds
        if rss is not None:
            self.boundary_rss[name] = rss


def _dump_profile(profiler: Any, stem: Path) -> None:
    import io
    import pstats

    stem.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(stem) + ".prof")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    (Path(str(stem) + ".txt")).write_text(text.getvalue())


def _highs_counts(highs: Any, m: Any) -> tuple[int, int, int, int]:
    """Rows, columns and non-zeros as HiGHS holds them; integer columns from the model.
    Not `getLp()`: it copies the whole LP, which at 1.9M columns is over 200 MB of peak memory
    that no phase of the pipeline spends."""
    import pyomo.environ as pyo

    ints = sum(1 for v in m.component_data_objects(pyo.Var) if v.is_integer())
    return highs.getNumRow(), highs.getNumCol(), highs.getNumNz(), ints


def _hand_off_only(spec: Spec, clock: Clock, m: Any) -> dict[str, Any]:
    """`--no-solve`: everything before HiGHS starts, the hand-off called here."""
    from planner.solve import direct

    if spec.interface == "direct":
        handed = clock.run("handoff", direct.pass_to_highs, m)
        counts = (handed.rows, len(handed.columns), handed.nonzeros, handed.integer_columns)
    elif spec.interface == "appsi":
        from pyomo.contrib.appsi.solvers.highs import Highs

        opt = Highs()
        clock.run("handoff", opt.set_instance, m)
        counts = _highs_counts(opt._solver_model, m)
    else:
        raise SystemExit(
            "--no-solve supports the direct and appsi interfaces (legacy hands off inside solve)"
        )
    return {
        "rows": counts[0],
        "columns": counts[1],
        "nonzeros": counts[2],
        "integer_columns": counts[3],
        "status": "not solved",
    }


def _solve_phases(clock: Clock, outcome: Any, rss_after: int) -> None:
    """handoff, solve and readback from the `SolveOutcome`: its windows for the memory samples,
    its durations for the times (solve = HiGHS's own clock, as before this module read them)."""
    handoff, highs, readback = (outcome.phases[k] for k in ("handoff", "highs", "readback"))
    wall = readback[1] - handoff[0]
    clock.record("handoff", handoff, outcome.handoff_s)
    clock.record("solve", highs, outcome.solve_s)
    clock.record("readback", readback, max(0.0, wall - outcome.handoff_s - outcome.solve_s), rss_after)


def run(spec: Spec) -> dict[str, Any]:
    import resource

    import highspy

    from planner.engine import available_memory_bytes
    from planner.errors import NoPlanError
    from planner.files import load_scenario, write_plan
    from planner.model.build import build_model
    from planner.model.size import check_fits
    from planner.results import build_plan
    from planner.solve.interfaces import solve_model
    from planner.verify import verify_plan

    # Warm the imports the timed phases would otherwise pay for once (pyomo's appsi plugin).
    if spec.interface == "appsi":
        from pyomo.contrib.appsi.solvers.highs import Highs as AppsiHighs  # noqa: F401

    clock = Clock(spec)
    out: dict[str, Any] = {"loadavg_start": os.getloadavg(), "base_bytes": rss_bytes()}
    scenario = clock.run("load", load_scenario, spec.scenario_path)
    if not spec.rounded_start:
        scenario = scenario.model_copy(
            update={"solver": scenario.solver.model_copy(update={"rounded_start": False})}
        )
    scenario = scenario.model_copy(
        update={"solver": scenario.solver.model_copy(update={"method": spec.method})}
    )
    try:
        # As `dsx plan` would, before the build: the XL size is refused here, not killed later.
        check_fits(scenario, available_memory_bytes(), solving=spec.solve)
    except NoPlanError as refused:
        raise SystemExit(f"refused before the build: {refused.render()}") from None
    m = clock.run("build", build_model, scenario)
    if not spec.solve:
        out.update(_hand_off_only(spec, clock, m))
    else:
        outcome = clock.profiled("solve_model", solve_model, m, scenario.solver, spec.interface)
        _solve_phases(clock, outcome, rss_bytes())
        out.update(
            rows=outcome.rows,
            columns=outcome.columns,
            nonzeros=outcome.nonzeros,
            integer_columns=outcome.integer_columns,
            status=outcome.status,
            objective_usd=outcome.objective_usd,
            mip_gap=outcome.mip_gap,
            best_bound_usd=outcome.best_bound_usd,
            start_s=outcome.start_s,
            start_usd=outcome.start_usd,
            highs_version=outcome.highs_version,
            method=outcome.method,
            method_note=outcome.method_note,
        )
        if outcome.has_solution:
            plan = clock.run("report", build_plan, scenario, m, outcome, build_s=clock.seconds["build"])
            verification = clock.run("verify", verify_plan, scenario, plan)
            plan = plan.model_copy(update={"verification": verification})
            clock.run("write", write_plan, plan, spec.plan_path)
            out.update(
                verification_passed=verification.passed,
                violations=len(verification.violations),
                served_records=len(plan.served),
                plan_bytes=os.path.getsize(spec.plan_path),
            )
    if "highs_version" not in out:
        h = highspy.Highs()
        out["highs_version"] = f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
    out.update(
        seconds=clock.seconds,
        windows=clock.windows,
        boundary_rss=clock.boundary_rss,
        ru_maxrss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        loadavg_end=os.getloadavg(),
    )
    return out


def main(spec_path: str) -> int:
    raw = json.loads(Path(spec_path).read_text())
    spec = Spec(**{**raw, "size": tuple(raw["size"])})
    Path(spec.result_path).write_text(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
