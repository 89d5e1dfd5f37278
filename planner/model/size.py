"""How large a scenario's model will be, and the least memory it needs, worked out before it is built.

The extensive form grows with the scenario count, and the decomposition builds it whole before
splitting it: the (20,4,40,8,1000) case of `bench/` (25.0M columns) held 11.5 GB once built and
16.1 GB compiled to arrays, and its split passed 18 GB (bench/README.md, session 17). A run that
cannot fit is refused in a second, saying why and what to change, rather than killed by the
kernel minutes in. Pure: the machine's memory is read at the edge
(`planner.engine.available_memory_bytes`) and passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.errors import NoPlanError
from planner.model import sets
from planner.model.data import model_data
from planner.schema.scenario import Scenario

GB = 1e9
BYTES_PER_SERVED_COLUMN = {"extensive": 780, "decomposition": 1590}
"""Memory taken per `served_gpu_hours` column by the time the model is built and handed to its
solver: the Pyomo model, its arrays and HiGHS's copy (extensive), or the split and the first
evaluation (decomposition). Measured at (20,4,32,8,100), 1,843,200 served columns, as the resident
set's peak above its level before the build: 1.79 GB (973 B a column) and 3.67 GB (1,988 B); at
(10,3,20,6,50) 1,440 and 2,830 B. The share a column takes falls with the size: the
(20,4,40,8,1000) build alone took 498 B a column against 590 B at (20,4,32,8,100), so these are
(20,4,32,8,100)'s figures less a fifth, a floor at every size measured. The served columns are
97-98% of the columns at the bench's sizes, and every other family that grows with the
scenarios (unserved demand, buyback, their rows) grows with them."""
INTERIOR_POINT_BYTES_PER_SERVED_COLUMN = 1700
"""The same once HiGHS's interior point has started on the extensive form (`solver.lp_algorithm`
auto or ipm: an LP's solve, a MILP's rounded start): 3.91 GB above the base at (20,4,32,8,100),
LP, 120 s (2,120 B a column), less a fifth."""


@dataclass(frozen=True)
class ModelSize:
    """The counts that decide the model's memory, and the least it needs."""

    served_columns: int
    """`served_gpu_hours`: one per tenant, site, rack type, quarter and scenario with demand."""
    scenario_count: int
    needed_bytes: int
    """The least memory the build and the hand-off to the solver take (`BYTES_PER_SERVED_COLUMN`),
    and the extensive form's interior point where it runs; the rest of the solve needs more."""


def _bytes_per_served_column(scenario: Scenario) -> int:
    """The floor for the scenario's method; for `auto`, which picks one when the model is built,
    the smaller of the two."""
    solver = scenario.solver
    interior = solver.lp_algorithm in ("auto", "ipm") and (solver.relax_integrality or solver.rounded_start)
    extensive = INTERIOR_POINT_BYTES_PER_SERVED_COLUMN if interior else BYTES_PER_SERVED_COLUMN["extensive"]
    by_method = {"extensive": extensive, "decomposition": BYTES_PER_SERVED_COLUMN["decomposition"]}
    return by_method[solver.method] if solver.method in by_method else min(by_method.values())


def model_size(scenario: Scenario) -> ModelSize:
    """Counted from the scenario's data alone (a numpy mask over the served index's candidates:
    25.6 MB at (20,4,40,8,1000)), nothing of Pyomo built."""
    served = int(np.count_nonzero(sets.served_mask(model_data(scenario))))
    needed = _bytes_per_served_column(scenario) * served
    return ModelSize(served_columns=served, scenario_count=len(scenario.scenarios), needed_bytes=int(needed))


def check_fits(scenario: Scenario, available_bytes: int | None) -> ModelSize:
    """Refuse, before anything is built, a scenario whose model needs more memory than the
    limit: `solver.max_memory_gb` where set, else `available_bytes` (None: not known, no check)."""
    size = model_size(scenario)
    limit_gb = scenario.solver.max_memory_gb
    limit = limit_gb * GB if limit_gb is not None else available_bytes
    if limit is None or size.needed_bytes <= limit:
        return size
    per_scenario = max(1, size.needed_bytes) / size.scenario_count
    fitting = int(limit // per_scenario)
    where = (
        f"solver.max_memory_gb is {limit_gb:g}"
        if limit_gb is not None
        else f"this machine has {_gb(limit)} GB available"
    )
    # The need is a floor, so the count is a ceiling: more scenarios than this cannot fit.
    fewer = (
        f"fewer scenarios (more than about {fitting:,} cannot fit; `dsx plan reduce FILE --scenarios N` "
        "keeps the N that best stand for all)"
        if fitting >= 1
        else "fewer sites, tenants or quarters"
    )
    override = (
        "raise solver.max_memory_gb if the limit you set is too low"
        if limit_gb is not None
        else "set solver.max_memory_gb above the need to try all the same"
    )
    raise NoPlanError(
        f"scenario '{scenario.name}': too large to build here: its model needs at least "
        f"{_gb(size.needed_bytes)} GB to build and solve, and {where}",
        details=[
            f"{size.served_columns:,} served GPU-hour columns (one per tenant, site, rack type, quarter "
            f"and scenario with demand) over {size.scenario_count:,} scenarios; nothing was built",
            f"Fix: {fewer}, or a machine with more memory; or {override}",
        ],
    )


def _gb(value: float) -> str:
    """Bytes as GB for a message: three significant figures, so a small limit does not read as 0."""
    return f"{value / GB:.3g}"
