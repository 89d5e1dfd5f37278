"""Planner benchmark (issue 6): time and peak memory of every phase, by size and interface.

    .venv/bin/python -m bench.run                       # default set, < 10 min on 2 cores
    .venv/bin/python -m bench.run --sizes small,medium,large --interface direct --no-solve large
    .venv/bin/python -m bench.run --size 10,3,20,6,50 --mip --time-limit 120
    .venv/bin/python -m bench.run --sizes small --interface direct,appsi,legacy --profile

Each (size, interface, mode) runs in a fresh subprocess, so no run inherits another's heap or
Pyomo caches. The phases are the pipeline's own calls, in order:

    load      write-once YAML -> planner.files.load_scenario (YAML parse + pydantic + consistency)
    build     planner.model.build.build_model
    handoff   Pyomo model -> HiGHS (direct: highs_direct.pass_to_highs; appsi: Highs.set_instance;
              legacy: wall time of the Pyomo solve minus HiGHS's run time)
    solve     HiGHS's own run time, as HiGHS reports it (highs.getRunTime)
    readback  the rest of planner.solve.interfaces.solve_model: options, solution -> Pyomo variables, status
    report    planner.results.build_plan (solution -> Plan)
    verify    planner.verify.verify_plan
    write     planner.files.write_plan

Memory: the parent samples the child's resident set (/proc/<pid>/statm, every 5 ms, from a
thread of the parent, so the child's GIL and long C calls cannot hide a peak) and attributes each
sample to the phase whose [start, end] (CLOCK_MONOTONIC, shared by both processes) holds it; the
child also reads its own RSS at every phase boundary. "peak" is the largest of those; it includes
the interpreter and imported libraries ("base", RSS just before load). The child's
ru_maxrss (process-lifetime peak) is reported as a cross-check. tracemalloc is not used: it does
not see HiGHS's or numpy's C allocations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "small": (10, 3, 20, 6, 10),
    "medium": (10, 3, 20, 6, 50),
    "large": (20, 4, 32, 8, 100),
}
PHASES = ("load", "build", "handoff", "solve", "readback", "report", "verify", "write")
BEFORE_HIGHS = ("load", "build", "handoff")
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_S = 0.005

# Issue 6 targets.
TARGET_LARGE_COLUMNS = 1_500_000
TARGET_BEFORE_HIGHS_S = 10.0
TARGET_BEFORE_HIGHS_BYTES = 1.5e9
TARGET_NON_SOLVER_SHARE = 0.10
TARGET_MIP_GAP = 0.01
TARGET_MIP_TIME_S = 120.0
TARGET_MIP_SIZE = (10, 3, 20, 6, 50)


@dataclass
class Spec:
    """One isolated run, as handed to the worker subprocess."""

    label: str
    size: tuple[int, int, int, int, int]
    interface: str
    mode: str  # "lp" or "mip"
    solve: bool
    scenario_path: str
    plan_path: str
    result_path: str
    rounded_start: bool = True
    profile: bool = False
    profile_dir: str = ""


@dataclass
class Result:
    spec: dict[str, Any]
    ok: bool = False
    error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)
    base_bytes: int = 0
    before_highs_s: float = 0.0
    before_highs_peak_bytes: int = 0
    peak_bytes_all: int = 0
    ru_maxrss_bytes: int = 0
    total_s: float = 0.0
    non_solver_s: float = 0.0
    solver_s: float = 0.0
    non_solver_over_solver: float | None = None
    non_solver_share: float | None = None
    rows: int = 0
    columns: int = 0
    nonzeros: int = 0
    integer_columns: int = 0
    status: str = ""
    objective_usd: float | None = None
    mip_gap: float | None = None
    best_bound_usd: float | None = None
    start_s: float = 0.0
    start_usd: float | None = None
    verification_passed: bool | None = None
    violations: int | None = None
    served_records: int | None = None
    plan_bytes: int | None = None
    loadavg_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wall_s: float = 0.0
    highs_version: str = ""


# ---------------------------------------------------------------------------------------------
# Worker (runs inside the fresh subprocess)


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class _Clock:
    """Phase boundaries (CLOCK_MONOTONIC), durations and boundary RSS, optionally profiled."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.windows: dict[str, tuple[float, float]] = {}
        self.seconds: dict[str, float] = {}
        self.boundary_rss: dict[str, int] = {}

    def run(self, name: str, fn, *args, **kwargs):
        profiler = None
        if self.spec.profile:
            import cProfile

            profiler = cProfile.Profile()
        rss0 = _rss()
        t0 = time.monotonic()
        if profiler:
            profiler.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            if profiler:
                profiler.disable()
            t1 = time.monotonic()
            self.windows[name] = (t0, t1)
            self.seconds[name] = t1 - t0
            self.boundary_rss[name] = max(rss0, _rss())
            if profiler:
                _dump_profile(profiler, Path(self.spec.profile_dir) / f"{self.spec.label}-{name}")


def _dump_profile(profiler, stem: Path) -> None:
    import io
    import pstats

    stem.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(stem) + ".prof")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)
    (Path(str(stem) + ".txt")).write_text(text.getvalue())


def _instrument(marks: dict[str, float]) -> None:
    """Record when the hand-off and the solution read-back start and end inside solve_model,
    by wrapping the module attributes it calls (timestamps only; behaviour unchanged)."""
    from planner.solve import direct as highs_direct

    def wrap(owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            marks[key + "_start"] = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                marks[key + "_end"] = time.monotonic()

        setattr(owner, name, wrapped)

    wrap(highs_direct, "pass_to_highs", "handoff")
    wrap(highs_direct, "load_solution", "readback")
    try:
        from pyomo.contrib.appsi.solvers.highs import Highs

        wrap(Highs, "set_instance", "handoff")
    except ImportError:  # pragma: no cover
        pass


def _highs_counts(highs, m) -> tuple[int, int, int, int]:
    """Rows, columns and non-zeros as HiGHS holds them; integer columns from the model.
    Not `getLp()`: it copies the whole LP, which at 1.9M columns is over 200 MB of peak memory
    that no phase of the pipeline spends."""
    import pyomo.environ as pyo

    ints = sum(1 for v in m.component_data_objects(pyo.Var) if v.is_integer())
    return highs.getNumRow(), highs.getNumCol(), highs.getNumNz(), ints


def worker(spec: Spec) -> dict[str, Any]:
    import highspy

    from planner.files import load_scenario, write_plan
    from planner.model.build import build_model
    from planner.results import build_plan
    from planner.solve import direct as highs_direct
    from planner.solve.interfaces import solve_model
    from planner.verify import verify_plan

    # Warm the imports the timed phases would otherwise pay for once (pyomo's appsi plugin).
    if spec.interface == "appsi":
        from pyomo.contrib.appsi.solvers.highs import Highs as AppsiHighs  # noqa: F401
    marks: dict[str, float] = {}
    _instrument(marks)

    clock = _Clock(spec)
    out: dict[str, Any] = {"loadavg_start": os.getloadavg(), "base_bytes": _rss()}
    scenario = clock.run("load", load_scenario, spec.scenario_path)
    if not spec.rounded_start:
        scenario = scenario.model_copy(
            update={"solver": scenario.solver.model_copy(update={"rounded_start": False})}
        )
    m = clock.run("build", build_model, scenario)
    if not spec.solve:
        if spec.interface == "direct":
            direct = clock.run("handoff", highs_direct.pass_to_highs, m)
            counts = (direct.rows, len(direct.columns), direct.nonzeros, direct.integer_columns)
        elif spec.interface == "appsi":
            from pyomo.contrib.appsi.solvers.highs import Highs

            opt = Highs()
            clock.run("handoff", opt.set_instance, m)
            counts = _highs_counts(opt._solver_model, m)
        else:
            raise SystemExit(
                "--no-solve supports the direct and appsi interfaces (legacy hands off inside solve)"
            )
        out.update(rows=counts[0], columns=counts[1], nonzeros=counts[2], integer_columns=counts[3])
        out["status"] = "not solved"
    else:
        outcome = clock.run("solve_model", solve_model, m, scenario.solver, spec.interface)
        t0, t1 = clock.windows.pop("solve_model")
        wall = clock.seconds.pop("solve_model")
        rss_end = clock.boundary_rss.pop("solve_model")
        handoff_s = outcome.handoff_s
        solve_s = outcome.solve_s
        clock.seconds["handoff"] = handoff_s
        clock.seconds["solve"] = solve_s
        clock.seconds["readback"] = max(0.0, wall - handoff_s - solve_s)
        h1 = marks.get("handoff_end", t0 + handoff_s)
        if spec.interface == "legacy":  # no separable hand-off call: split by the durations
            h1 = t0 + handoff_s
        r0 = marks.get("readback_start", h1 + solve_s)
        clock.windows["handoff"] = (t0, h1)  # includes the option check before it (ms)
        clock.windows["solve"] = (h1, r0)
        clock.windows["readback"] = (r0, t1)
        clock.boundary_rss["readback"] = rss_end
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
    import resource

    out.update(
        seconds=clock.seconds,
        windows=clock.windows,
        boundary_rss=clock.boundary_rss,
        ru_maxrss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        loadavg_end=os.getloadavg(),
    )
    return out


def _worker_main(spec_path: str) -> int:
    spec = Spec(**json.loads(Path(spec_path).read_text()))
    spec.size = tuple(spec.size)  # type: ignore[assignment]
    out = worker(spec)
    Path(spec.result_path).write_text(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------------------
# Parent: scenarios, isolated runs, sampling, tables


def _label(size: tuple[int, ...]) -> str:
    for name, value in SIZES.items():
        if value == size:
            return name
    return "x".join(map(str, size))


def write_scenario(
    size: tuple[int, int, int, int, int], mode: str, time_limit: float, threads: int | None
) -> Path:
    """The synthetic scenario of this size as YAML (LP: integrality relaxed), written once."""
    import yaml

    from bench.scenarios import synthetic_scenario

    scenario = synthetic_scenario(*size, seed=0)
    data = scenario.model_dump(mode="json", exclude_none=True)
    data["solver"] = {
        **data.get("solver", {}),
        "time_limit_s": float(time_limit),
        "mip_rel_gap": TARGET_MIP_GAP,
        "relax_integrality": mode == "lp",
    }
    if threads is not None:
        data["solver"]["threads"] = threads
    path = OUT / "scenarios" / f"{'-'.join(map(str, size))}-{mode}-{int(time_limit)}s.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=None))
    return path


def _sample(pid: int, samples: list[tuple[float, int]], stop: threading.Event) -> None:
    statm = f"/proc/{pid}/statm"
    while not stop.is_set():
        try:
            with open(statm) as handle:
                rss = int(handle.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            break
        samples.append((time.monotonic(), rss))
        time.sleep(SAMPLE_S)


def run_isolated(spec: Spec) -> Result:
    result = Result(spec=asdict(spec))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=OUT) as handle:
        json.dump(asdict(spec), handle)
        spec_path = handle.name
    log_path = OUT / "logs" / f"{spec.label}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.run", "--worker", spec_path], cwd=ROOT, stdout=log, stderr=log
        )
        sampler = threading.Thread(target=_sample, args=(proc.pid, samples, stop), daemon=True)
        sampler.start()
        code = proc.wait()
        stop.set()
        sampler.join()
    result.wall_s = time.monotonic() - start
    Path(spec_path).unlink(missing_ok=True)
    if code != 0 or not Path(spec.result_path).exists():
        tail = log_path.read_text().strip().splitlines()[-15:]
        result.error = f"exit {code}; see {log_path}: " + " | ".join(tail)
        return result
    raw = json.loads(Path(spec.result_path).read_text())
    Path(spec.result_path).unlink(missing_ok=True)
    _fill(result, raw, samples)
    return result


def _fill(result: Result, raw: dict[str, Any], samples: list[tuple[float, int]]) -> None:
    result.ok = True
    for key in (
        "rows", "columns", "nonzeros", "integer_columns", "status", "objective_usd", "mip_gap",
        "best_bound_usd", "start_s", "start_usd",
        "verification_passed", "violations", "served_records", "plan_bytes", "ru_maxrss_bytes", "base_bytes",
        "highs_version",
    ):  # fmt: skip
        if key in raw:
            setattr(result, key, raw[key])
    result.loadavg_start = tuple(raw["loadavg_start"])
    result.loadavg_end = tuple(raw["loadavg_end"])
    result.seconds = {p: raw["seconds"][p] for p in PHASES if p in raw["seconds"]}
    for phase, (t0, t1) in raw["windows"].items():
        peak = max((rss for t, rss in samples if t0 <= t <= t1), default=0)
        result.peak_bytes[phase] = max(peak, raw["boundary_rss"].get(phase, 0))
    result.peak_bytes = {p: result.peak_bytes[p] for p in PHASES if p in result.peak_bytes}
    result.peak_bytes_all = max([*result.peak_bytes.values(), result.ru_maxrss_bytes])
    result.before_highs_s = sum(result.seconds.get(p, 0.0) for p in BEFORE_HIGHS)
    result.before_highs_peak_bytes = max((result.peak_bytes.get(p, 0) for p in BEFORE_HIGHS), default=0)
    result.total_s = sum(result.seconds.values())
    result.solver_s = result.seconds.get("solve", 0.0)
    result.non_solver_s = result.total_s - result.solver_s
    if result.solver_s > 0:
        result.non_solver_over_solver = result.non_solver_s / result.solver_s
        result.non_solver_share = result.non_solver_s / result.total_s


# ---------------------------------------------------------------------------------------------
# Output


def _s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def _mb(x: int | None) -> str:
    return "—" if not x else f"{x / 1e6:,.0f}"


def _verified(r: Result) -> str:
    if r.verification_passed is None:
        return "—"
    if r.verification_passed:
        return "yes"
    # LP: the report rounds the relaxation's fractional racks and blocks, so the plan may break
    # power_fits or the objective check; verify's time is still measured.
    return f"[red]no ({r.violations})[/red]"


def _run_name(r: Result) -> str:
    spec = r.spec
    mode = spec["mode"] + ("" if spec["solve"] else " no-solve")
    if spec["mode"] == "mip" and not spec.get("rounded_start", True):
        mode += " cold"
    return f"{_label(tuple(spec['size']))} {spec['interface']} {mode}"


def _rounded_start(r: Result) -> str:
    """The rounded start's value and time (part of solve), or — when there was none."""
    if r.start_usd is None:
        return "—"
    return f"{r.start_usd:,.0f} in {r.start_s:.1f} s"


def render(results: list[Result], console) -> None:
    from rich.table import Table

    model = Table(title="Model and outcome", title_justify="left")
    for col in (
        "run",
        "size",
        "rows",
        "columns",
        "nonzeros",
        "int cols",
        "status",
        "objective US$",
        "MIP gap",
        "rounded start",
        "verified",
        "load avg",
    ):
        model.add_column(col, justify="left" if col in ("run", "size", "status") else "right")
    for r in results:
        if not r.ok:
            model.add_row(
                _run_name(r), ",".join(map(str, r.spec["size"])), "", "", "", "", "[red]failed[/red]"
            )
            continue
        model.add_row(
            _run_name(r),
            ",".join(map(str, r.spec["size"])),
            f"{r.rows:,}",
            f"{r.columns:,}",
            f"{r.nonzeros:,}",
            f"{r.integer_columns:,}",
            r.status,
            "—" if r.objective_usd is None else f"{r.objective_usd:,.0f}",
            "—" if r.mip_gap is None or r.spec["mode"] == "lp" else f"{r.mip_gap:.2%}",
            _rounded_start(r),
            _verified(r),
            f"{r.loadavg_start[0]:.1f}→{r.loadavg_end[0]:.1f}",
        )
    console.print(model)

    times = Table(
        title="Time per phase (s); solve = HiGHS's own run time (with a MIP's rounded start)",
        title_justify="left",
    )
    times.add_column("run")
    for col in (*PHASES, "before HiGHS", "total", "non-solver", "non-solver/solver", "non-solver share"):
        times.add_column(col, justify="right")
    for r in results:
        if not r.ok:
            continue
        times.add_row(
            _run_name(r),
            *(_s(r.seconds.get(p)) for p in PHASES),
            _s(r.before_highs_s),
            _s(r.total_s),
            _s(r.non_solver_s),
            "—" if r.non_solver_over_solver is None else f"{r.non_solver_over_solver:.2f}",
            "—" if r.non_solver_share is None else f"{r.non_solver_share:.1%}",
        )
    console.print(times)

    memory = Table(
        title="Peak resident memory per phase (MB, whole process, sampled every 5 ms)", title_justify="left"
    )
    memory.add_column("run")
    for col in ("base", *PHASES, "before HiGHS", "ru_maxrss"):
        memory.add_column(col, justify="right")
    for r in results:
        if not r.ok:
            continue
        memory.add_row(
            _run_name(r),
            _mb(r.base_bytes),
            *(_mb(r.peak_bytes.get(p)) for p in PHASES),
            _mb(r.before_highs_peak_bytes),
            _mb(r.ru_maxrss_bytes),
        )
    console.print(memory)

    for r in results:
        if not r.ok:
            console.print(f"[red]{_run_name(r)} failed:[/red] {r.error}")
    for line in targets(results):
        console.print(line)


def targets(results: list[Result]) -> list[str]:
    """Issue 6's targets, judged on this run's results (only where this run measured them)."""
    lines = ["[bold]Targets (issue 6)[/bold]"]

    def mark(ok: bool) -> str:
        return "[green]met[/green]" if ok else "[red]NOT met[/red]"

    for r in results:
        if not r.ok:
            continue
        name = _run_name(r)
        if r.columns >= TARGET_LARGE_COLUMNS:
            ok_t = r.before_highs_s <= TARGET_BEFORE_HIGHS_S
            ok_m = r.before_highs_peak_bytes <= TARGET_BEFORE_HIGHS_BYTES
            lines.append(
                f"  {name}: before HiGHS {r.before_highs_s:.1f} s (≤ {TARGET_BEFORE_HIGHS_S:.0f} s) {mark(ok_t)}; "
                f"peak {r.before_highs_peak_bytes / 1e9:.2f} GB (≤ 1.5 GB) {mark(ok_m)}"
            )
        if r.spec["mode"] == "lp" and r.non_solver_share is not None:
            lines.append(
                f"  {name}: non-solver share {r.non_solver_share:.1%} of total (≤ 10%) "
                f"{mark(r.non_solver_share <= TARGET_NON_SOLVER_SHARE)}"
            )
        if r.spec["mode"] == "mip" and tuple(r.spec["size"]) == TARGET_MIP_SIZE and r.mip_gap is not None:
            solve = r.seconds.get("solve", 0.0)
            ok = r.mip_gap <= TARGET_MIP_GAP + 1e-12 and solve <= TARGET_MIP_TIME_S + 1.0
            lines.append(
                f"  {name}: MIP gap {r.mip_gap:.2%} after {solve:.0f} s of HiGHS (≤ 1% within 120 s) {mark(ok)}"
            )
    if len(lines) == 1:
        lines.append("  (no run here measures a target)")
    return lines


# ---------------------------------------------------------------------------------------------
# Command line


def _parse_size(text: str) -> tuple[int, int, int, int, int]:
    parts = [int(x) for x in text.split(",")]
    if len(parts) != 5 or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            "a size is five positive integers: sites,rack_types,quarters,tenants,scenarios"
        )
    return tuple(parts)  # type: ignore[return-value]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", help=f"comma-separated names from {', '.join(SIZES)}")
    p.add_argument(
        "--size",
        action="append",
        type=_parse_size,
        default=[],
        help="sites,rack_types,quarters,tenants,scenarios (repeatable)",
    )
    p.add_argument("--interface", help="comma-separated: direct, appsi, legacy (default direct)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lp", action="store_true", help="LP relaxation (relax_integrality; the default)")
    mode.add_argument("--mip", action="store_true", help="the MILP (integer racks and power blocks)")
    p.add_argument("--time-limit", type=float, help="HiGHS time limit, s (default: LP 600, MIP 120)")
    p.add_argument("--threads", type=int, help="HiGHS threads (default: HiGHS's choice)")
    p.add_argument(
        "--no-solve",
        nargs="?",
        const="all",
        help="stop after the hand-off (everything before HiGHS starts); optionally only for these sizes, e.g. --no-solve large",
    )
    p.add_argument(
        "--no-rounded-start",
        action="store_true",
        help="MIP: HiGHS starts cold (no rounded LP relaxation; solver.rounded_start: false)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile each phase into bench/out/profiles (times are then inflated)",
    )
    p.add_argument(
        "--json", default=str(OUT / "results.json"), help="results file (default bench/out/results.json)"
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def plan_runs(args: argparse.Namespace) -> list[tuple[tuple[int, int, int, int, int], str, bool]]:
    """(size, interface, solve) in order. With no size or interface given: the default set."""
    if not (args.sizes or args.size or args.interface or args.no_solve):
        return [
            (SIZES["small"], "direct", True),
            (SIZES["small"], "appsi", True),
            # The medium LP takes HiGHS > 600 s on this machine (dual simplex, 2 cores), so
            # the default measures everything before HiGHS there; solve it with --sizes medium.
            (SIZES["medium"], "direct", False),
            (SIZES["medium"], "appsi", False),
            (SIZES["large"], "direct", False),
        ]
    sizes: list[tuple[int, int, int, int, int]] = []
    for name in (args.sizes or "").split(","):
        if name:
            if name not in SIZES:
                raise SystemExit(f"unknown size {name!r}; use {', '.join(SIZES)} or --size a,b,c,d,e")
            sizes.append(SIZES[name])
    sizes += args.size
    sizes = sizes or [SIZES["small"], SIZES["medium"]]
    interfaces = [x for x in (args.interface or "direct").split(",") if x]
    for x in interfaces:
        if x not in ("direct", "appsi", "legacy"):
            raise SystemExit(f"unknown interface {x!r}; use direct, appsi or legacy")
    no_solve: set[tuple[int, ...]] = set()
    if args.no_solve == "all":
        no_solve = set(sizes)
    elif args.no_solve:
        for name in args.no_solve.split(","):
            no_solve.add(SIZES[name] if name in SIZES else _parse_size(name))
    return [(size, iface, size not in no_solve) for size in sizes for iface in interfaces]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        return _worker_main(args.worker)
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or logged: keep every column readable
        console = Console(width=200)
    mode = "mip" if args.mip else "lp"
    time_limit = args.time_limit or (TARGET_MIP_TIME_S if mode == "mip" else 600.0)
    runs = plan_runs(args)
    OUT.mkdir(parents=True, exist_ok=True)
    console.print(
        f"[bold]dsx planner benchmark[/bold]: {len(runs)} run(s), {mode.upper()}, HiGHS time limit {time_limit:.0f} s, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    scenario_paths: dict[tuple[int, ...], Path] = {}
    results: list[Result] = []
    for size, interface, solve in runs:
        if size not in scenario_paths:
            scenario_paths[size] = write_scenario(size, mode, time_limit, args.threads)
        label = f"{'-'.join(map(str, size))}-{interface}-{mode}" + ("" if solve else "-nosolve")
        if mode == "mip" and args.no_rounded_start:
            label += "-cold"
        spec = Spec(
            label=label,
            size=size,
            interface=interface,
            mode=mode,
            solve=solve,
            scenario_path=str(scenario_paths[size]),
            plan_path=str(OUT / "plans" / f"{label}.json"),
            result_path=str(OUT / f".{label}.result.json"),
            rounded_start=not args.no_rounded_start,
            profile=args.profile,
            profile_dir=str(OUT / "profiles"),
        )
        console.print(f"  running {label} ...", end="")
        result = run_isolated(spec)
        results.append(result)
        if result.ok:
            console.print(
                f" {result.wall_s:.1f} s wall; before HiGHS {result.before_highs_s:.2f} s, "
                f"HiGHS {result.solver_s:.2f} s, status {result.status}"
            )
        else:
            console.print(f" [red]failed[/red]: {result.error}")
    render(results, console)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "mode": mode,
        "time_limit_s": time_limit,
        "profiled": args.profile,
        "memory_method": "parent samples /proc/<child>/statm RSS every 5 ms + child RSS at phase boundaries",
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    console.print(f"results: {path}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
