"""What the commands say about a plan besides its tables: its gap as text, and a warning where
the gap cannot be measured."""

from __future__ import annotations

import math

from planner.schema.plan import Plan
from planner.schema.scenario import SolverOptions

MUSD = 1e6


def gap_text(gap: float | None) -> str:
    """A MIP gap for a table: '-' where HiGHS gave none (shown as 0.00% before, as if proven)."""
    if gap is None:
        return "-"
    return "inf" if not math.isfinite(gap) else f"{gap:.2%}"


def gap_warning(plan: Plan, options: SolverOptions) -> str | None:
    """Why a MIP plan's gap cannot be measured, with the fix, or None where it can: HiGHS stopped
    with no bound, or with a plan worth nothing against one (lp_algorithm pdlp, 5 s on the
    bundled example: the all-zero plan, its rounded start having run out the limit). Such a plan
    is verified, but of unknown quality. `options`: the scenario's, whose first LP may have run by PDLP."""
    solver = plan.solver
    if not solver.integer_columns or (solver.mip_gap is not None and math.isfinite(solver.mip_gap)):
        return None
    why = (
        "with no bound on this plan"
        if solver.best_bound_usd is None
        else f"with a plan worth US$ {solver.objective_usd / MUSD:,.1f} M against a bound of "
        f"US$ {solver.best_bound_usd / MUSD:,.1f} M"
    )
    return (
        f"HiGHS stopped ({solver.status}) {why}, so how far the plan is from the best is unknown. "
        "Fix: raise solver.time_limit_s (or --time-limit)"
        + (", and set solver.lp_algorithm to auto" if options.first_lp_solver() == "pdlp" else "")
    )
