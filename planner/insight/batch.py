"""Scenario batches: several scenario files solved side by side on one engine, one verified plan
each (`dsx plan batch`). Unlike a sweep's points, the files share nothing, so each is solved
cold (with its own rounded start); one that has no plan is recorded with its reason and the
batch goes on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.engine import Engine, SerialEngine
from planner.insight.sweep import PointOutcome, default_solver, solve_point
from planner.schema.plan import Plan
from planner.schema.scenario import Scenario


@dataclass
class BatchResult:
    """One scenario of the batch: its name and either a verified plan or the reason there is none."""

    name: str
    plan: Plan | None = None
    error: str | None = None
    exit_code: int = 0
    wall_s: float = 0.0


def run_batch(
    scenarios: Sequence[tuple[str, Scenario]],
    *,
    engine: Engine | None = None,
    value_of_information: bool = False,
    on_done: Callable[[int, BatchResult], None] | None = None,
) -> list[BatchResult]:
    """Solve each (name, scenario) on `engine` (default: here, one at a time); `on_done(n,
    result)` runs here as each finishes. Results come back in the order given."""
    runner = engine or SerialEngine()
    solve = default_solver(value_of_information=value_of_information)
    results = [BatchResult(name) for name, _ in scenarios]
    for n, (_, scenario) in enumerate(scenarios):
        runner.submit(n, solve_point, solve, scenario, None)
    while runner.pending:
        key, outcome = runner.next_done()
        n = int(key)  # type: ignore[call-overload]
        result = results[n]
        if isinstance(outcome, PointOutcome):
            result.plan, result.error, result.exit_code = outcome.plan, outcome.error, outcome.exit_code
            result.wall_s = outcome.wall_s
        else:
            result.error = (
                f"the scenario's task failed on {runner.where}: {type(outcome).__name__}: {outcome}"
            )
            result.exit_code = 3
        if on_done is not None:
            on_done(n, result)
    return results
