"""Why a scenario has no plan, in domain words: which site, quarter and limit conflict.

Two layers: domain checks on the scenario (pure, no solver) find the conflicts we can name
directly (existing racks holding more GPUs than the site's cap); then HiGHS's irreducible
infeasible subsystem (IIS) on the compiled model names the constraints that cannot hold together,
mapped back to Pyomo component names (`gpu_cap[batam,0]`) and explained per family.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import highspy
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from pyomo.repn.util import FileDeterminism

from planner.engine import available_memory_bytes
from planner.model.build import build_model
from planner.model.size import check_fits
from planner.schema.scenario import Scenario

FAMILY_WORDS = {
    "power_fits": "the racks installed need more facility power than is energised",
    "power_cap": "energised power cannot exceed the site's power cap",
    "gpu_cap": "GPUs installed cannot exceed the site's GPU cap",
    "build_rate": "racks built per quarter cannot exceed the build rate",
    "block_rate": "power blocks ordered per quarter cannot exceed the order rate",
    "quota_fits": "quotas cannot exceed the GPUs of their pool",
    "serve_within_capacity": "served GPU-hours cannot exceed installed GPU-hours",
    "serve_within_quota": "served GPU-hours cannot exceed the tenant's quota",
    "demand_balance": "served plus unserved GPU-hours must equal demand",
    "cvar_shortfall_def": "CVaR shortfall definition",
}


@dataclass
class Conflict:
    site: str | None
    period: str | None
    limit: str
    explanation: str
    fix: str = ""


@dataclass
class Diagnosis:
    scenario: str
    feasible: bool
    status: str
    conflicts: list[Conflict] = field(default_factory=list)
    iis_constraints: list[str] = field(default_factory=list)
    iis_bounds: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_domain(scenario: Scenario) -> list[Conflict]:
    """Conflicts visible in the data alone (no solver)."""
    out = []
    first = scenario.periods.labels()[0]
    for site in scenario.sites:
        existing_gpus = sum(
            count * scenario.rack_type(r).gpus_per_rack for r, count in site.existing_racks.items()
        )
        if existing_gpus > site.gpu_cap:
            out.append(
                Conflict(
                    site=site.id,
                    period=first,
                    limit="gpu_cap",
                    explanation=(
                        f"site {site.id}: existing racks hold {existing_gpus:,} GPUs from {first} on, "
                        f"above its GPU cap of {site.gpu_cap:,} (existing racks stay for the whole horizon)"
                    ),
                    fix=f"raise sites[{site.id}].gpu_cap to at least {existing_gpus:,} or lower sites[{site.id}].existing_racks",
                )
            )
    return out


_NAME_RE = re.compile(r"^(?P<family>[A-Za-z_]+)\[(?P<index>.*)\]$")


def _explain_row(name: str, scenario: Scenario) -> Conflict:
    labels = scenario.periods.labels()
    match = _NAME_RE.match(name)
    family = match.group("family") if match else name
    parts = [p.strip() for p in match.group("index").split(",")] if match else []
    site_ids = {s.id for s in scenario.sites}
    site = next((p for p in parts if p in site_ids), None)
    period = None
    for p in parts:
        if p.isdigit() and int(p) < len(labels):
            period = labels[int(p)]
    words = FAMILY_WORDS.get(family, family)
    where = ", ".join(x for x in (f"site {site}" if site else "", period or "") if x)
    return Conflict(
        site=site,
        period=period,
        limit=family,
        explanation=f"{name}: {words}" + (f" ({where})" if where else ""),
    )


def diagnose(scenario: Scenario) -> Diagnosis:
    """Solve the LP relaxation; if infeasible, explain with domain checks and HiGHS's IIS."""
    # Its own solve: the extensive form's relaxation by HiGHS's defaults, whatever `solver` says.
    extensive = scenario.solver.model_copy(
        update={"method": "extensive", "relax_integrality": False, "rounded_start": False}
    )
    check_fits(scenario.model_copy(update={"solver": extensive}), available_memory_bytes())
    m = build_model(scenario)
    # Pyomo's compiler (used here for its row list) does not apply the scaling suffix and warns
    # about it; the IIS is about which rows conflict, not their units.
    m.del_component("scaling_factor")
    diagnosis = Diagnosis(scenario=scenario.name, feasible=True, status="")
    domain = check_domain(scenario)
    try:
        info = LinearStandardFormCompiler().write(
            m, mixed_form=True, set_sense=None, file_determinism=FileDeterminism.NONE
        )
    except Exception as error:  # pyomo raises on a row that is infeasible on its own (all constants)
        diagnosis.feasible = False
        diagnosis.status = f"trivially infeasible: {error}"
        diagnosis.conflicts = domain
        return diagnosis
    highs = _pass(info)
    highs.setOptionValue("solve_relaxation", True)
    highs.run()
    status = highs.getModelStatus()
    diagnosis.status = highs.modelStatusToString(status)
    if status != highspy.HighsModelStatus.kInfeasible:
        diagnosis.feasible = not domain
        diagnosis.conflicts = domain
        return diagnosis
    diagnosis.feasible = False
    _, iis = highs.getIis()
    rows = [info.rows[i][0].name for i in iis.row_index_]
    cols = [info.columns[j].name for j in iis.col_index_]
    diagnosis.iis_constraints = rows
    diagnosis.iis_bounds = cols
    conflicts = list(domain)
    named = {(c.site, c.period, c.limit) for c in conflicts}
    for row in rows:
        conflict = _explain_row(row, scenario)
        if (conflict.site, conflict.period, conflict.limit) not in named:
            conflicts.append(conflict)
            named.add((conflict.site, conflict.period, conflict.limit))
    diagnosis.conflicts = conflicts
    return diagnosis


def _pass(info: Any) -> highspy.Highs:
    """Hand the compiled arrays to HiGHS (as planner.solve.direct does, but keeping the row list)."""
    import numpy as np

    inf = highspy.kHighsInf
    A = info.A.tocsc()
    num_row, num_col = A.shape
    lp = highspy.HighsLp()
    lp.num_col_ = num_col
    lp.num_row_ = num_row
    lp.col_cost_ = np.asarray(info.c.toarray()[0], dtype=np.float64) if num_col else np.zeros(0)
    lower, upper = [], []
    for var in info.columns:
        lb, ub = var.bounds
        lower.append(-inf if lb is None else lb)
        upper.append(inf if ub is None else ub)
    lp.col_lower_ = np.asarray(lower, dtype=np.float64)
    lp.col_upper_ = np.asarray(upper, dtype=np.float64)
    kinds = np.fromiter((row[1] for row in info.rows), dtype=np.int8, count=num_row)
    rhs = np.asarray(info.rhs, dtype=np.float64)
    lp.row_lower_ = np.where(kinds >= 0, np.where(kinds == 0, rhs, -inf), rhs)
    lp.row_upper_ = np.where(kinds <= 0, np.where(kinds == 0, rhs, inf), rhs)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.sense_ = highspy.ObjSense.kMaximize
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(lp)
    return highs


def iis_text(diagnosis: Diagnosis) -> str:
    """The conflicting constraints and bounds, one per line, for `--iis-out`."""
    lines = [f"# IIS of scenario {diagnosis.scenario} (HiGHS: {diagnosis.status})", "# constraints"]
    lines += diagnosis.iis_constraints or ["(none)"]
    lines += ["# variable bounds"]
    lines += diagnosis.iis_bounds or ["(none)"]
    return "\n".join(lines) + "\n"
