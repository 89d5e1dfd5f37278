"""What a benchmark run prints: three tables (model and outcome, time per phase, peak memory
per phase) and issue 6's targets judged on the runs that measured them."""

from __future__ import annotations

from typing import Any

from bench.harness import Result
from bench.phases import PHASES
from bench.scenarios import SIZES

# Issue 6 targets.
TARGET_LARGE_COLUMNS = 1_500_000
TARGET_BEFORE_HIGHS_S = 10.0
TARGET_BEFORE_HIGHS_BYTES = 1.5e9
TARGET_NON_SOLVER_SHARE = 0.10
TARGET_MIP_GAP = 0.01
TARGET_MIP_TIME_S = 120.0
TARGET_MIP_SIZE = (10, 3, 20, 6, 50)


def size_label(size: tuple[int, ...]) -> str:
    for name, value in SIZES.items():
        if value == size:
            return name
    return "x".join(map(str, size))


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


def run_name(r: Result) -> str:
    spec = r.spec
    mode = spec["mode"] + ("" if spec["solve"] else " no-solve")
    if spec["mode"] == "mip" and not spec.get("rounded_start", True):
        mode += " cold"
    return f"{size_label(tuple(spec['size']))} {spec['interface']} {mode}"


def _rounded_start(r: Result) -> str:
    """The rounded start's value and time (part of solve), or — when there was none."""
    if r.start_usd is None:
        return "—"
    return f"{r.start_usd:,.0f} in {r.start_s:.1f} s"


def render(results: list[Result], console: Any) -> None:
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
                run_name(r), ",".join(map(str, r.spec["size"])), "", "", "", "", "[red]failed[/red]"
            )
            continue
        model.add_row(
            run_name(r),
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
            run_name(r),
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
            run_name(r),
            _mb(r.base_bytes),
            *(_mb(r.peak_bytes.get(p)) for p in PHASES),
            _mb(r.before_highs_peak_bytes),
            _mb(r.ru_maxrss_bytes),
        )
    console.print(memory)

    for r in results:
        if not r.ok:
            console.print(f"[red]{run_name(r)} failed:[/red] {r.error}")
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
        name = run_name(r)
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
