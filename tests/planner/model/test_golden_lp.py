"""Golden LP files: each constraint family of the model, and the objective, written as a small
LP-style text on one tiny scenario and compared with the file checked in under `lp_files/`.

A change to a family's rows, coefficients, bounds, variable domains or scaling shows up here as a
readable diff of that family's file (after Calliope's `tests/math/lp_files/`). The text is this
module's own canonical dump, not Pyomo's LP writer: rows sorted by index, terms sorted by
variable, constants moved to the right-hand side, numbers to 12 significant digits. It reads
like a CPLEX LP file but uses Pyomo's names (`racks_built[alpha,rack10,0]`), so it is for people,
not for a solver.

When a formulation change is intended, regenerate the files and review the diff:

    DSX_REGEN_GOLDEN=1 .venv/bin/pytest -q tests/planner/model/test_golden_lp.py
    git diff tests/planner/model/lp_files/

The scenario (`golden_scenario`): two quarters, one site that can order power blocks with a
one-quarter lead time and holds two existing racks, two rack types, two tenants, two scenarios
with unequal probabilities, discounting, buyback, revenue share, energy cost and a CVaR term, so
that every family has rows and every coefficient kind is non-trivial.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyomo.environ as pyo
import pytest
from pyomo.repn import generate_standard_repn

from planner.model.build import build_model
from tests.planner.small_scenarios import tiny

LP_FILES = Path(__file__).parent / "lp_files"
REGENERATE = os.environ.get("DSX_REGEN_GOLDEN") == "1"
HEADER = (
    "\\ Golden LP of `{name}` on tests/planner/model/test_golden_lp.py's golden_scenario.\n"
    "\\ Regenerate on purpose: DSX_REGEN_GOLDEN=1 pytest tests/planner/model/test_golden_lp.py\n"
)


def golden_scenario():
    def change(data: dict[str, Any]) -> None:
        data["name"] = "golden"
        data["periods"] = {"start_quarter": "2026Q1", "count_quarters": 2, "discount_rate_annual": 0.08}
        site = data["sites"][0]
        site.update(
            power_cap_mw=12.0,
            existing_mw=10.0,
            power_lead_time_periods=1,
            power_price_usd_per_mwh=80.0,
            pue=1.2,
            gpu_cap=400,
            max_racks_built_per_period=20,
            max_power_blocks_per_period=1,
            power_capex_usd_per_mw=1_000_000.0,
            existing_racks={"rack10": 2},
        )
        data["rack_types"][0].update(lifetime_periods=4, opex_usd_per_rack_period=5_000.0)
        data["rack_types"].append(
            {
                "id": "rack40",
                "gpu_product": "NVIDIA-TEST",
                "gpus_per_rack": 40,
                "nodes_per_rack": 4,
                "kw_per_rack": 250.0,
                "capex_usd": 500_000.0,
                "lifetime_periods": 4,
            }
        )
        data["tenants"] = [
            {
                "id": "acme",
                "price_usd_per_gpu_hour": 10.0,
                "demand_gpus": {"boom": [55.0, 90.0], "bust": [20.0, 10.0]},
            },
            {
                "id": "beta",
                "price_usd_per_gpu_hour": 4.0,
                "token_credit_share": 0.5,
                "credit_repayment_share_by_scenario": {"boom": 0.9, "bust": 0.4},
                "demand_gpus": {"boom": [10.0, 30.0], "bust": [0.0, 5.0]},
            },
        ]
        data["scenarios"] = [{"id": "boom", "probability": 0.6}, {"id": "bust", "probability": 0.4}]
        data["terms"] = {
            "buyback_price_usd_per_gpu_hour": 1.5,
            "buyback_share": 0.5,
            "revenue_share": 0.1,
            "guarantor_hardware_margin": 0.0,
        }
        data["objective"] = {"perspective": "cloud", "cvar_alpha": 0.5, "cvar_weight": 0.3}

    return tiny(change)


def _num(value: float) -> str:
    return f"{value:.12g}"


def _term(coef: float, name: str) -> str:
    sign = "-" if coef < 0 else "+"
    return f"{sign}{_num(abs(coef))} {name}"


def _sort_key(index: Any) -> tuple:
    parts = index if isinstance(index, tuple) else (index,)
    return tuple((0, p, "") if isinstance(p, int | float) else (1, 0, str(p)) for p in parts)


def _linear(expr: Any) -> tuple[list[tuple[Any, float]], float]:
    """(variable, coefficient) terms sorted by variable, and the constant, of a linear expression."""
    repn = generate_standard_repn(expr, compute_values=True, quadratic=False)
    assert repn.nonlinear_expr is None, "the model is linear"
    coefs: dict[int, list] = {}
    for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        entry = coefs.setdefault(id(var), [var, 0.0])
        entry[1] += coef
    terms = sorted(
        ((var, float(c)) for var, c in coefs.values() if c != 0),
        key=lambda vc: (vc[0].parent_component().name, _sort_key(vc[0].index())),
    )
    return terms, float(repn.constant)


def _row(head: str, terms: list[str], tail: str) -> list[str]:
    """A row on one line, or with more than three terms one term per line (diffs stay readable)."""
    if len(terms) <= 3:
        return [f"{head}{' '.join(terms)} {tail}".rstrip()]
    return [head.rstrip(), *(f"   {term}" for term in terms), *([f"   {tail}"] if tail else [])]


def _variables_section(variables: dict[int, Any], scaling: dict[str, float]) -> list[str]:
    ordered = sorted(variables.values(), key=lambda v: (v.parent_component().name, _sort_key(v.index())))
    lines = ["bounds"]
    for var in ordered:
        lower, upper = var.bounds
        if lower is None and upper is None:
            lines.append(f" {var.name} free")
        elif upper is None:
            lines.append(f" {var.name} >= {_num(lower)}")
        elif lower is None:
            lines.append(f" -inf <= {var.name} <= {_num(upper)}")
        else:
            lines.append(f" {_num(lower)} <= {var.name} <= {_num(upper)}")
    integers = [var.name for var in ordered if var.is_integer()]
    if integers:
        lines += ["general", *(f" {name}" for name in integers)]
    components = sorted({var.parent_component().name for var in ordered})
    scaled = [f"\\ scaling_factor {name} {_num(scaling[name])}" for name in components if name in scaling]
    return lines + scaled


def _scaling(m: pyo.ConcreteModel) -> dict[str, float]:
    suffix = getattr(m, "scaling_factor", None)
    if suffix is None:
        return {}
    return {component.name: float(value) for component, value in suffix.items() if component.is_indexed()}


def constraint_lp(m: pyo.ConcreteModel, component: Any) -> str:
    """One constraint family as LP-style text: its rows, then the bounds of the variables they use."""
    scaling = _scaling(m)
    lines = [HEADER.format(name=component.name).rstrip("\n")]
    if component.name in scaling:
        lines.append(f"\\ scaling_factor {component.name} {_num(scaling[component.name])}")
    lines.append("subject to")
    used: dict[int, Any] = {}
    for index in sorted(component.keys(), key=_sort_key):
        row = component[index]
        lower, body, upper = row.lower, row.body, row.upper
        terms, constant = _linear(body)
        used.update((id(var), var) for var, _ in terms)
        lo = None if lower is None else pyo.value(lower) - constant
        hi = None if upper is None else pyo.value(upper) - constant
        if lo is not None and hi is not None and lo == hi:
            prefix, suffix = "", f"= {_num(hi)}"
        elif lo is not None and hi is not None:
            prefix, suffix = f"{_num(lo)} <= ", f"<= {_num(hi)}"
        elif hi is not None:
            prefix, suffix = "", f"<= {_num(hi)}"
        else:
            prefix, suffix = "", f">= {_num(lo)}"
        lines += _row(f" {row.name}: {prefix}", [_term(c, var.name) for var, c in terms] or ["0"], suffix)
    return "\n".join([*lines, *_variables_section(used, scaling), "end", ""])


def objective_lp(m: pyo.ConcreteModel, objective: Any) -> str:
    terms, constant = _linear(objective.expr)
    sense = "maximize" if objective.sense == pyo.maximize else "minimize"
    lines = [HEADER.format(name=objective.name).rstrip("\n"), sense]
    lines += _row(f" {objective.name}: ", [_term(c, var.name) for var, c in terms], "")
    if constant:
        lines.append(f"\\ constant {_num(constant)}")
    used = {id(var): var for var, _ in terms}
    return "\n".join([*lines, *_variables_section(used, _scaling(m)), "end", ""])


def golden_texts() -> dict[str, str]:
    """File name -> text, one per constraint family and one for the objective."""
    m = build_model(golden_scenario())
    texts = {f"{c.name}.lp": constraint_lp(m, c) for c in m.component_objects(pyo.Constraint, active=True)}
    for objective in m.component_objects(pyo.Objective, active=True):
        texts[f"objective_{objective.name}.lp"] = objective_lp(m, objective)
    return texts


GOLDEN_FILES = sorted(p.name for p in LP_FILES.glob("*.lp"))


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """The dump of every family; with DSX_REGEN_GOLDEN=1 also written over `lp_files/` (stale
    files of families the model no longer has are removed)."""
    out = golden_texts()
    if REGENERATE:
        for stale in set(GOLDEN_FILES) - set(out):
            (LP_FILES / stale).unlink()
        for name, text in out.items():
            (LP_FILES / name).write_text(text)
    return out


def test_there_is_one_golden_file_per_family_and_for_the_objective(texts):
    assert set(texts) == {p.name for p in LP_FILES.glob("*.lp")}, (
        "families and golden files differ: if the change is intended, regenerate (module docstring)"
    )


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_each_family_matches_its_golden_lp_file(texts, name):
    assert name in texts, f"{name}: the model no longer has this family; regenerate (module docstring)"
    assert texts[name] == (LP_FILES / name).read_text(), (
        f"{name} differs from its golden file: if the change is intended, regenerate (module docstring)"
    )


def test_every_family_has_rows_on_the_golden_scenario():
    m = build_model(golden_scenario())
    families = {c.name: len(c) for c in m.component_objects(pyo.Constraint, active=True)}
    assert families.keys() >= {
        "power_fits",
        "power_cap",
        "gpu_cap",
        "build_rate",
        "block_rate",
        "quota_fits",
        "serve_within_quota",
        "demand_balance",
        "scenario_value_def",
        "cvar_shortfall_def",
    }
    assert all(families.values()), families
