"""Reading scenarios and reading/writing plans: the planner's only file I/O."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from planner.errors import PlanFileError, ScenarioError
from planner.schema.consistency import ScenarioInconsistent, check_scenario
from planner.schema.plan import PLAN_SCHEMA_VERSION, Plan
from planner.schema.scenario import Scenario


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _fix_for(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "remove it or check its spelling (units are part of field names, e.g. power_cap_mw)"
    if kind == "missing":
        return "add this field"
    if kind.startswith(("greater_than", "less_than")):
        return "use a value within the stated bound"
    if kind == "string_pattern_mismatch":
        return "use lowercase letters, digits and '-' (a DNS-1123 label)"
    return "correct the value"


def validation_details(error: ValidationError) -> list[str]:
    details = []
    for e in error.errors():
        got = e.get("input")
        shown = "" if e["type"] == "missing" or isinstance(got, dict | list) else f" (got {got!r})"
        details.append(f"{_loc(e['loc'])}: {e['msg']}{shown}. Fix: {_fix_for(e)}")
    return details


def parse_scenario(data: Any, source: str) -> Scenario:
    """Validate already-parsed YAML/JSON data, then check it across fields; `source` names it.

    Two steps, as PyPSA does (`consistency_check` before `optimize`): pydantic checks each field
    and its units, then `check_scenario` checks what spans fields (references, probabilities,
    capacity), explicitly here rather than hidden in a validator, so the schema stays free of
    the checks and every way into the planner goes through this one function.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping at the top level")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{source}: invalid scenario", details=validation_details(error)) from None
    try:
        check_scenario(scenario)
        return scenario
    except ScenarioInconsistent as error:
        details = [f"{p.path}: {p.message}. Fix: {p.fix}" for p in error.problems]
        raise ScenarioError(f"{source}: inconsistent scenario", details=details) from None


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read file ({error.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML: {error}") from None


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(read_yaml(path), str(path))


def write_atomic(path: str | Path, text: str) -> None:
    """Write via a temporary file and rename, so a failed run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a plan is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_plan(plan: Plan, path: str | Path) -> None:
    write_atomic(path, plan.model_dump_json(indent=1) + "\n")


def read_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise PlanFileError(f"{path}: cannot read plan ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise PlanFileError(f"{path}: not valid JSON: {error}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != PLAN_SCHEMA_VERSION:
        raise PlanFileError(
            f"{path}: plan schema_version is {version!r}, this dsx reads {PLAN_SCHEMA_VERSION!r}",
            details=["Fix: re-solve the scenario with this dsx (dsx plan solve ...)"],
        )
    try:
        return Plan.model_validate(data)
    except ValidationError as error:
        raise PlanFileError(f"{path}: invalid plan", details=validation_details(error)) from None
