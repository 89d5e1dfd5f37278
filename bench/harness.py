"""Run one benchmark spec in a fresh process and measure it from outside.

Each run is `python -m bench.phases SPEC.json` in its own subprocess, so no run inherits
another's heap, Pyomo caches or GC state. Memory: this (parent) process samples the child's
resident set (/proc/<pid>/statm, every 5 ms, from a thread of its own, so the child's GIL and
long C calls cannot hide a peak) and attributes each sample to the phase whose [start, end]
(CLOCK_MONOTONIC, shared by both processes) holds it; the child also reads its own RSS at phase
boundaries. "peak" is the largest of those; it includes the interpreter and imported libraries
("base", RSS just before load). The child's ru_maxrss (process-lifetime peak) is kept as a
cross-check. tracemalloc is not used: it does not see HiGHS's or numpy's C allocations.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.phases import BEFORE_HIGHS, PAGE, PHASES, Spec

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SAMPLE_S = 0.005


@dataclass
class Result:
    """One run as the summary shows it: the child's figures and the parent's memory peaks."""

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
    loadavg_start: tuple[float, ...] = (0.0, 0.0, 0.0)
    loadavg_end: tuple[float, ...] = (0.0, 0.0, 0.0)
    wall_s: float = 0.0
    highs_version: str = ""
    method: str = ""
    """The method that produced the plan (a decomposition that fell back says extensive)."""
    method_note: str | None = None


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
    """Run `spec` in a fresh `python -m bench.phases` while sampling its memory."""
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
            [sys.executable, "-m", "bench.phases", spec_path], cwd=ROOT, stdout=log, stderr=log
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
    fill(result, raw, samples)
    return result


def fill(result: Result, raw: dict[str, Any], samples: list[tuple[float, int]]) -> None:
    """The child's figures into `result`, each memory sample attributed to its phase's window."""
    result.ok = True
    for key in (
        "rows", "columns", "nonzeros", "integer_columns", "status", "objective_usd", "mip_gap",
        "best_bound_usd", "start_s", "start_usd",
        "verification_passed", "violations", "served_records", "plan_bytes", "ru_maxrss_bytes", "base_bytes",
        "highs_version", "method", "method_note",
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
