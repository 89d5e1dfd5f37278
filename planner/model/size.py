"""How large a scenario's model will be, and the least memory it needs, worked out before it is built.

The extensive form grows with the scenario count, and the decomposition builds it whole before
splitting it: the (20,4,40,8,1000) case of `bench/` (25.0M columns) held 11.5 GB once built and
16.1 GB compiled to arrays, and its split passed 18 GB (bench/README.md, session 17). A run that
cannot fit is refused in seconds, saying why and what to change, rather than killed by the
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
(10,3,20,6,50) 1,440 and 2,830 B (bench/README.md, session 20). A column takes less the larger the
model: built and compiled to arrays, 781 B at (20,4,32,8,100) and 695 B at (20,4,40,8,1000)
(session 17's 16.12 GB; 11% less), so these are (20,4,32,8,100)'s figures less a fifth. At
(20,4,40,8,1000) only the build and the compile were measured: its compile (695 B) plus HiGHS's
copy as at (20,4,32,8,100) (190 B) would be 885 B, above the extensive figure; the
decomposition's is extrapolated. The served columns are 77-92% of the columns at the bench's
sizes, and the other families that grow with the scenarios (unserved demand, buyback, their
rows) grow with them."""
INTERIOR_POINT_BYTES_PER_SERVED_COLUMN = 1700
"""The same once HiGHS's interior point has started on the extensive form (an LP solved by
`ipm`, the default, or a MILP's rounded start, by the `direct` interface): 3.91 GB above the
base at (20,4,32,8,100), LP, 120 s (2,120 B a column), less a fifth."""
INTERIOR_POINT_SOLVERS = ("ipm", "ipx", "hipo")
"""HiGHS `solver` values that run an interior point."""


@dataclass(frozen=True)
class ModelSize:
    """The counts that decide the model's memory, and the least it needs."""

    served_columns: int
    """`served_gpu_hours`: one per tenant, site, rack type, quarter and scenario with demand."""
    scenario_count: int
    needed_bytes: int
    """The least memory the build and the hand-off to the solver take (`BYTES_PER_SERVED_COLUMN`),
    and the extensive form's interior point where it runs; the rest of the solve needs more."""


def _bytes_per_served_column(scenario: Scenario, *, solving: bool) -> int:
    """The floor for the method the solve will run (`auto` resolved as the solve resolves it,
    `SolverOptions.method_for`). Not `solving`: up to the hand-off only."""
    solver = scenario.solver
    algorithm = solver.first_lp_solver()  # as the solve resolves it: `extra` wins
    runs_lp = solver.relax_integrality or (solver.rounded_start and solver.interface == "direct")
    interior = solving and runs_lp and algorithm in INTERIOR_POINT_SOLVERS
    extensive = INTERIOR_POINT_BYTES_PER_SERVED_COLUMN if interior else BYTES_PER_SERVED_COLUMN["extensive"]
    by_method = {"extensive": extensive, "decomposition": BYTES_PER_SERVED_COLUMN["decomposition"]}
    return by_method[solver.method_for(len(scenario.scenarios))]


def served_columns(scenario: Scenario) -> int:
    """How many `served_gpu_hours` columns the model will have (`planner.model.sets.served_index`,
    a tenant's demand in a quarter and scenario, at every site it may use, one per rack type
    there), counted per (scenario, tenant, quarter), so the count itself holds nothing of that
    size times the sites and rack types."""
    d = model_data(scenario)
    tenants = [k.id for k in scenario.tenants]
    pools = sets.tenant_may_use(d).astype(np.int64).T @ np.array(
        [len(d.rack_ids_at[i]) for i in d.site_ids], dtype=np.int64
    )
    """Per tenant: the (site, rack type) pools it may use."""
    with_demand = np.array(
        [[sum(d.demand[k, t, s] > 0 for t in d.periods) for k in tenants] for s in d.scenario_ids],
        dtype=np.int64,
    )
    return int((with_demand @ pools).sum())


def model_size(scenario: Scenario, *, solving: bool = True) -> ModelSize:
    """Counted from the scenario's data alone, nothing of Pyomo built (0.5 s at
    (20,4,40,8,1000)). Not `solving`: the need up to the hand-off (the bench's `--no-solve`)."""
    served = served_columns(scenario)
    needed = _bytes_per_served_column(scenario, solving=solving) * served
    return ModelSize(served_columns=served, scenario_count=len(scenario.scenarios), needed_bytes=int(needed))


def check_fits(scenario: Scenario, available_bytes: int | None, *, solving: bool = True) -> ModelSize:
    """Refuse, before anything is built, a scenario whose model needs more memory than the
    limit: `solver.max_memory_gb` where set, else `available_bytes` (None: not known, no check)."""
    size = model_size(scenario, solving=solving)
    limit_gb = scenario.solver.max_memory_gb
    limit = limit_gb * GB if limit_gb is not None else available_bytes
    if limit is None or size.needed_bytes <= limit:
        return size
    per_scenario = max(1, size.needed_bytes) / size.scenario_count
    fitting = int(limit // per_scenario)
    where = (
        f"solver.max_memory_gb is {limit_gb:g}" if limit_gb is not None else f"{_gb(limit)} GB is free here"
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
        f"{_gb(size.needed_bytes)} GB to build{' and solve' if solving else ''}, and {where}",
        details=[
            f"{size.served_columns:,} served GPU-hour columns (one per tenant, site, rack type, quarter "
            f"and scenario with demand) over {size.scenario_count:,} scenarios; nothing was built",
            f"Fix: {fewer}"
            + (
                f"; or {override}"
                if limit_gb is not None
                else f", or a machine with more memory; or {override}"
            ),
        ],
    )


def _gb(value: float) -> str:
    """Bytes as GB for a message: three significant figures, so a small limit does not read as 0."""
    return f"{value / GB:.3g}"
