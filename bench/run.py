"""Planner benchmark (issue 6): time and peak memory of every phase, by size and interface.

    .venv/bin/python -m bench.run                       # default set, < 10 min on 2 cores
    .venv/bin/python -m bench.run --sizes small,medium,large --interface direct --no-solve large
    .venv/bin/python -m bench.run --size 10,3,20,6,50 --mip --time-limit 120
    .venv/bin/python -m bench.run --sizes small --interface direct,appsi,legacy --profile

The command line and the loop over runs. The rest of bench/, in the order a run meets it:

    scenarios  the synthetic scenario of each size, written once as YAML (`write_scenario`)
    harness    each run in a fresh subprocess, its memory sampled from outside
    phases     inside that subprocess: load, build, handoff, solve, readback, report, verify,
               write; the solve's three phases read from the `SolveOutcome` it returns
    summary    the tables and issue 6's targets

bench/README.md says what each phase measures and how memory is attributed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.harness import OUT, Result, run_isolated
from bench.phases import Spec
from bench.phases import main as run_phases
from bench.scenarios import SIZES, write_scenario
from bench.summary import TARGET_MIP_GAP, TARGET_MIP_TIME_S, render


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
    p.add_argument(
        "--method",
        default="extensive",
        help="comma-separated solver.method values to run side by side: extensive, decomposition",
    )
    p.add_argument("--threads", type=int, help="HiGHS threads (default: HiGHS's choice)")
    p.add_argument(
        "--perspective",
        choices=("cloud", "guarantor", "syndicate"),
        help="objective.perspective (default: the synthetic scenario's, cloud)",
    )
    p.add_argument(
        "--lp-algorithm",
        choices=("auto", "simplex", "ipm", "pdlp"),
        help="solver.lp_algorithm: HiGHS's LP algorithm (LP, and a MIP's rounded-start relaxation)",
    )
    p.add_argument(
        "--highs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a raw HiGHS option for every run (solver.extra), e.g. --highs solver=ipm (repeatable)",
    )
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


def _highs_options(pairs: list[str]) -> dict[str, float | int | str | bool]:
    """`--highs KEY=VALUE` pairs as typed HiGHS options (true/false, int, float, else text)."""
    out: dict[str, float | int | str | bool] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--highs {pair!r}: use KEY=VALUE, e.g. --highs solver=ipm")
        value: float | int | str | bool = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    pass
        out[key] = value
    return out


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
    if args.worker:  # older spelling of `python -m bench.phases SPEC.json`
        return run_phases(args.worker)
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or logged: keep every column readable
        console = Console(width=200)
    mode = "mip" if args.mip else "lp"
    time_limit = args.time_limit or (TARGET_MIP_TIME_S if mode == "mip" else 600.0)
    runs = plan_runs(args)
    extra = _highs_options(args.highs)
    if args.lp_algorithm:
        extra["lp_algorithm"] = args.lp_algorithm  # a SolverOptions field, not a raw option
    methods = [x for x in args.method.split(",") if x]
    for x in methods:
        if x not in ("extensive", "decomposition", "auto"):
            raise SystemExit(f"unknown method {x!r}; use extensive, decomposition or auto")
    OUT.mkdir(parents=True, exist_ok=True)
    console.print(
        f"[bold]dsx planner benchmark[/bold]: {len(runs)} run(s), {mode.upper()}, HiGHS time limit {time_limit:.0f} s, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    scenario_paths: dict[tuple[int, ...], Path] = {}
    results: list[Result] = []
    for (size, interface, solve), method in ((run, x) for run in runs for x in methods):
        if size not in scenario_paths:
            scenario_paths[size] = write_scenario(
                size,
                mode,
                time_limit,
                args.threads,
                out_dir=OUT,
                mip_rel_gap=TARGET_MIP_GAP,
                extra=extra,
                perspective=args.perspective,
            )
        label = f"{'-'.join(map(str, size))}-{interface}-{mode}" + ("" if solve else "-nosolve")
        if mode == "mip" and args.no_rounded_start:
            label += "-cold"
        label += "".join(f"-{k}={v}" for k, v in sorted(extra.items()))
        if args.threads is not None:
            label += f"-threads={args.threads}"
        if args.perspective is not None:
            label += f"-{args.perspective}"
        if method != "extensive":
            label += f"-{method}"
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
            method=method,
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
        "highs_options": extra,
        "threads": args.threads,
        "profiled": args.profile,
        "memory_method": "parent samples /proc/<child>/statm RSS every 5 ms + child RSS at phase boundaries",
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    console.print(f"results: {path}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
