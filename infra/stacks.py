"""Write or update `stacks/Pulumi.<site>.yaml` for every site in a plan.

Only the keys dsx owns (`MANAGED_KEYS`) are set; every other key a platform engineer set by hand
(kubeconfig secrets, context, sizing) stays, and so do comments: the file is edited line by line
and falls back to a plain YAML rewrite (keys kept, comments lost) only for layouts it cannot edit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.checks import BACKENDS, Origin, StackConfigError, check_plan_matches
from planner.files import (
    AsWritten,
    NestedTooDeeply,
    check_output_path,
    load_yaml_text,
    read_plan,
    write_atomic,
    yaml_error_place,
)
from planner.schema.plan import Plan

MANAGED_KEYS = ("dsx:plan", "dsx:site", "dsx:period", "dsx:nodePoolBackend")
_TOP_LEVEL = re.compile(r"^\S")
_CONFIG_LINE = re.compile(r"^config:\s*(#.*)?$")


@dataclass(frozen=True)
class StackFile:
    site: str
    path: Path
    text: str
    created: bool
    changed: bool


def stack_values(
    plan: Plan, plan_ref: str, site: str, existing: dict[str, Any], period: str | None, backend: str | None
) -> dict[str, str]:
    """The managed values: explicit options win, then a still-valid existing value, then defaults."""
    if period is not None and period not in plan.periods:
        raise StackConfigError(
            f"--period {period!r} is outside the plan's horizon ({plan.periods[0]}..{plan.periods[-1]})",
            details=[f"Fix: pass one of {', '.join(plan.periods)}"],
        )
    if backend is not None and backend not in BACKENDS:
        raise StackConfigError(
            f"--backend {backend!r} is not a node-pool backend",
            details=[f"Fix: pass one of {', '.join(BACKENDS)}"],
        )
    kept_period = existing.get("dsx:period")
    kept_backend = existing.get("dsx:nodePoolBackend")
    return {
        "dsx:plan": plan_ref,
        "dsx:site": site,
        "dsx:period": period or (kept_period if kept_period in plan.periods else plan.periods[0]),
        "dsx:nodePoolBackend": backend or (kept_backend if kept_backend in BACKENDS else BACKENDS[0]),
    }


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain where YAML reads it back as the same text, else quoted (a
    plan named `@plan.json` is no plain scalar: `@` is reserved)."""
    try:
        plain = yaml.safe_load(value) == value and ":" not in value and "#" not in value
    except (yaml.YAMLError, ValueError, TypeError, LookupError, AttributeError, OverflowError):
        plain = False  # e.g. `2026-13-01`, which PyYAML takes for a date it cannot make
    return value if plain else json.dumps(value)


def new_stack_text(site: str, values: dict[str, str]) -> str:
    lines = [
        f"# Pulumi stack for DSX site {site}. `dsx stacks write` keeps {', '.join(MANAGED_KEYS)}",
        "# in step with the plan and leaves every other key and comment alone.",
        "# Before `pulumi up`, give the stack its cluster (stored encrypted, never in plain text):",
        f'#   pulumi config set --secret dsx:kubeconfig "$(cat {site}.kubeconfig)" --stack {site}',
        "config:",
        *(f"  {key}: {_scalar(value)}" for key, value in values.items()),
    ]
    return "\n".join(lines) + "\n"


def _line_edit(text: str, values: dict[str, str]) -> str | None:
    """Set each key in place inside the top-level `config:` block; None if the layout is unusual."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _CONFIG_LINE.match(line)), None)
    if start is None:
        return None
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if _TOP_LEVEL.match(lines[i]) and not lines[i].startswith("#")
        ),
        len(lines),
    )
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    indents = [
        len(line) - len(line.lstrip())
        for line in lines[start + 1 : end]
        if line.strip() and not line.lstrip().startswith("#")
    ]
    indent = " " * (min(indents) if indents else 2)
    inserted: list[str] = []
    for key, value in values.items():
        pattern = re.compile(rf"^{indent}{re.escape(key)}:(\s.*)?$")
        found = [i for i in range(start + 1, end) if pattern.match(lines[i])]
        if len(found) > 1:
            return None
        if found:
            rest = (pattern.match(lines[found[0]]).group(1) or "").strip()  # type: ignore[union-attr]
            if not rest or rest.startswith(("|", ">", "{", "[")):
                return None  # a block or flow value: leave it to the YAML rewrite
            lines[found[0]] = f"{indent}{key}: {_scalar(value)}"
        else:
            inserted.append(f"{indent}{key}: {_scalar(value)}")
    lines[end:end] = inserted
    return "\n".join(lines) + "\n"


def updated_stack_text(text: str, values: dict[str, str], path: Path | None = None) -> str:
    """`text` with `values` set under `config:`; all other keys unchanged (verified by re-parsing).
    `path` names the file in errors."""
    original = load_yaml_text(text, lenient=True) or {}
    if not isinstance(original, dict):
        raise StackConfigError(
            f"{path or 'stack file'}: not a YAML mapping",
            details=["Fix: move it aside and re-run dsx stacks write"],
        )
    expected = dict(original)
    expected["config"] = {**(original.get("config") or {}), **values}
    edited = _line_edit(text, values)
    if edited is not None and _reads_as(edited, expected):
        return edited
    if _holds_as_written(original):
        # Written anew, such a value would change: a 44-digit number would become a string.
        raise StackConfigError(
            f"{path or 'stack file'}: holds values dsx would change by writing it anew (a number too long for "
            "YAML's reader, or a value it cannot make, such as 2026-13-01), and dsx's keys are not "
            "each on one line of `config:`",
            details=[
                "Fix: write each dsx: key on one line under config:, or set them with pulumi config set"
            ],
        )
    return yaml.safe_dump(expected, sort_keys=False)


def _holds_as_written(data: Any) -> bool:
    """Whether `data` holds a value `load_yaml_text(lenient=True)` kept as its text (`AsWritten`)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, AsWritten):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
    return False


def _reads_as(text: str, expected: dict[str, Any]) -> bool:
    """Whether the line-edited text reads back as the mapping meant (else it is written anew)."""
    try:
        return bool(load_yaml_text(text, lenient=True) == expected)
    except (yaml.YAMLError, NestedTooDeeply, RecursionError):  # e.g. a flow mapping over lines
        return False


def plan_reference(plan_path: Path, project_root: Path) -> str:
    """How the stack names the plan: relative to the project root when inside it."""
    plan_path, project_root = plan_path.resolve(), project_root.resolve()
    return (
        str(plan_path.relative_to(project_root)) if plan_path.is_relative_to(project_root) else str(plan_path)
    )


def _current_config(text: str, path: Path) -> dict[str, Any]:
    """The `config:` mapping of an existing stack file, or an error naming the file and the fix."""
    fix = f"Fix: repair {path} (or move it aside and re-run dsx stacks write)"
    try:
        # The scenario reader's limits on nesting (100 levels) and aliases, lenient on values
        # (`_Lenient`): 5,000 levels overflowed PyYAML's stack, and an alias bomb under a key dsx
        # does not touch ran past a minute when the edited file was compared.
        data = load_yaml_text(text, lenient=True) or {}
    except (RecursionError, NestedTooDeeply):
        raise StackConfigError(f"{path}: nested too deeply to be a stack file", details=[fix]) from None
    except yaml.YAMLError as error:
        where, problem = yaml_error_place(error)
        raise StackConfigError(f"{path}: cannot be read{where}: {problem}", details=[fix]) from None
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(config or {}, dict):
        raise StackConfigError(f"{path}: a stack file maps config: to keys and values", details=[fix])
    return config or {}


def stack_files(
    plan: Plan,
    plan_ref: str,
    stacks_dir: Path,
    existing: dict[str, str | None],
    *,
    period: str | None = None,
    backend: str | None = None,
    plan_shown: str | None = None,
) -> list[StackFile]:
    """The stack file text for every site; `existing` maps site → current text (None: no file).

    Each site's plan is checked as `pulumi up` would check it (`infra.checks.check_plan_matches`:
    verified, names that fit, quotas that fit the pools) before any text is made, so a plan that
    `dsx render` refuses is not written into a stack either."""
    out = []
    for site in (s.id for s in plan.sites):
        text = existing.get(site)
        path = stacks_dir / f"Pulumi.{site}.yaml"
        current = _current_config(text, path) if text else {}
        values = stack_values(plan, plan_ref, site, current, period, backend)
        check_plan_matches(plan, site, values["dsx:period"], Origin.for_cli(plan_shown or plan_ref))
        new = updated_stack_text(text, values, path) if text else new_stack_text(site, values)
        out.append(
            StackFile(
                site, stacks_dir / f"Pulumi.{site}.yaml", new, created=text is None, changed=new != text
            )
        )
    return out


def _read_stack(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StackConfigError(
            f"{path}: cannot read the stack file ({getattr(error, 'strerror', None) or error})",
            details=[f"Fix: repair {path} (or move it aside and re-run dsx stacks write)"],
        ) from None


def write_stacks(
    plan_path: Path,
    stacks_dir: Path,
    *,
    period: str | None = None,
    backend: str | None = None,
    project_root: Path | None = None,
) -> list[StackFile]:
    """The I/O edge of `stack_files`: read the plan and the current files, write what changed."""
    check_output_path(stacks_dir, directory=True, option="--dir")
    plan = read_plan(plan_path)
    root = project_root or stacks_dir.resolve().parent
    existing = {s.id: _read_stack(stacks_dir / f"Pulumi.{s.id}.yaml") for s in plan.sites}
    files = stack_files(
        plan,
        plan_reference(plan_path, root),
        stacks_dir,
        existing,
        period=period,
        backend=backend,
        plan_shown=str(plan_path),
    )
    for f in files:
        if f.changed:
            write_atomic(f.path, f.text)
    return files
