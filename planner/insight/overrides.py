"""Named scenario overrides: data, not code, composed onto a base scenario file.

An overrides file maps case names to `{dotted.path: value}` changes, e.g.

    low-buyback:
      terms.buyback_share: 0.6
      sites[batam].power_cap_mw: 300

Path segments are mapping keys; `name[id]` selects the item of list `name` whose `id` is `id`
(`sites[batam]`, `tenants[acme]`), and `name[3]` selects by position. The composed data is
validated again by `planner.files.parse_scenario`, so every error names the case, the path and a fix.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from planner.errors import ScenarioError
from planner.files import (
    DuplicateKey,
    NestedTooDeeply,
    load_yaml_text,
    models_in,
    parse_scenario,
    read_yaml,
)
from planner.schema.scenario import Scenario

SEGMENT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\[\]]+)\])?$")

Overrides = dict[str, dict[str, Any]]
"""case name -> {dotted path: value}"""


def _suggest(wanted: str, known: list[str]) -> str:
    close = difflib.get_close_matches(wanted, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}known here: {', '.join(known) or '(none)'}"


def parse_path(path: str) -> list[tuple[str, str | None]]:
    """'sites[batam].power_cap_mw' -> [('sites', 'batam'), ('power_cap_mw', None)]."""
    segments = []
    for part in path.split("."):
        match = SEGMENT_RE.match(part.strip())
        if not match:
            raise ValueError(
                f"'{part}' is not a path segment; write field names joined by dots, "
                "with [id] to pick a list item, e.g. sites[batam].power_cap_mw"
            )
        segments.append((match.group(1), match.group(2)))
    return segments


def _select_item(items: list, key: str, where: str) -> Any:
    for item in items:
        if isinstance(item, dict) and str(item.get("id")) == key:
            return item
    if key.isdigit() and int(key) < len(items):
        return items[int(key)]
    ids = [str(item.get("id")) for item in items if isinstance(item, dict) and "id" in item]
    raise KeyError(f"{where} has no item with id '{key}'; {_suggest(key, ids)}")


def path_location(data: Mapping[str, Any], path: str) -> tuple[tuple[str, str | int | None], ...]:
    """Where `path` points in `data`, as (field, list position) pairs: two spellings of one place
    ('sites[batam]' and 'sites[0]', spaces around a dot) give the same. A part that does not
    resolve is kept as written (composing the path reports why)."""
    try:
        segments = parse_path(path)
    except ValueError:
        return ((path, None),)
    node: Any = data
    location: list[tuple[str, str | int | None]] = []
    for name, key in segments:
        items = node.get(name) if isinstance(node, Mapping) else None
        if key is None or not isinstance(items, list):
            location.append((name, key))
            node = items
            continue
        try:
            item = _select_item(items, key, name)
        except KeyError:
            location.append((name, key))
            node = None
            continue
        location.append((name, next(n for n, one in enumerate(items) if one is item)))
        node = item
    return tuple(location)


def _schema_fields(names: list[str]) -> list[str] | None:
    """The fields the scenario's schema has in the section at these field names (list items are
    passed over): [] below a free-form mapping (`solver.extra`), None where it has no such
    section."""
    model: type[BaseModel] | None = Scenario
    for name in names:
        if model is None:
            return []
        field = model.model_fields.get(name)
        if field is None:
            return None
        model = next(iter(models_in(field.annotation)), None)
    return list(model.model_fields) if model is not None else []


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at `path` in `data` (in place). Every segment but the last must exist, or be a
    section of the schema the data leaves out (`solver.extra`, made empty); a new last key is
    allowed (an optional field absent from the base) and left to validation. A name that is
    neither is refused with the data's and the schema's names there."""
    segments = parse_path(path)
    node: Any = data
    where = ""
    for n, (name, key) in enumerate(segments):
        last = n == len(segments) - 1
        if not isinstance(node, dict):
            raise KeyError(f"'{where}' is a value, not a section, so it has no field '{name}'")
        here = f"{where}.{name}" if where else name
        if (
            name not in node
            and not last
            and key is None
            and _schema_fields([s for s, _ in segments[: n + 1]]) is not None
        ):
            node[name] = {}  # a section the data leaves out, at its defaults
        if name not in node and (not last or key is not None):
            fields = _schema_fields([s for s, _ in segments[:n]]) or []
            known = [*node, *(f for f in fields if f not in node)]
            raise KeyError(f"'{where or '(top level)'}' has no field '{name}'; {_suggest(name, known)}")
        if key is None:
            if last:
                node[name] = copy.deepcopy(value)
                return
            node = node[name]
        else:
            if not isinstance(node[name], list):
                raise KeyError(f"'{here}' is not a list, so [{key}] cannot select an item in it")
            item = _select_item(node[name], key, here)
            if last:
                node[name][node[name].index(item)] = copy.deepcopy(value)
                return
            node = item
        where = f"{here}[{key}]" if key is not None else here


def apply_overrides(base: Mapping[str, Any], changes: Mapping[str, Any], *, case: str, source: str) -> dict:
    """A deep copy of `base` with `changes` applied; errors name the case, the path and the fix."""
    data = copy.deepcopy(dict(base))
    for path, value in changes.items():
        try:
            set_path(data, str(path), value)
        except (KeyError, ValueError) as error:
            message = error.args[0] if error.args else str(error)
            raise ScenarioError(
                f"{source}: override '{case}', path '{path}': {message}",
                details=[
                    "Fix: correct the path (field names as in the scenario file, list items as name[id])"
                ],
            ) from None
    return data


def compose(
    base: Mapping[str, Any], changes: Mapping[str, Any], *, case: str, source: str, fix: str | None = None
) -> Scenario:
    """Apply the changes of one case and validate the result as a scenario; `fix` replaces the
    closing advice (default: change the case's values in `source`)."""
    data = apply_overrides(base, changes, case=case, source=source)
    try:
        return parse_scenario(
            data, f"{source} (override '{case}': {', '.join(map(str, changes)) or 'no changes'})"
        )
    except ScenarioError as error:
        raise ScenarioError(
            error.message,
            details=[*error.details, fix or f"Fix: change the values of override '{case}' in {source}"],
        ) from None


def load_overrides(path: str | Path) -> Overrides:
    """Read an overrides file: a mapping of case names to mappings of dotted paths to values."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise ScenarioError(
            f"{path}: an overrides file must map case names to changes",
            details=["Fix: write e.g. `low-buyback: {terms.buyback_share: 0.6}`"],
        )
    out: Overrides = {}
    for case, changes in data.items():
        if not isinstance(case, str | int) or isinstance(case, bool):
            raise ScenarioError(
                f"{path}: the case name {json.dumps(case, default=str)} is not text (YAML reads an empty key, null, "
                "yes, no, true or false unquoted as a value)",
                details=['Fix: quote the case name, e.g. "low-buyback":'],
            )
        if not isinstance(changes, dict):
            raise ScenarioError(
                f"{path}: override '{case}' must map dotted paths to values (got {type(changes).__name__})",
                details=["Fix: write e.g. `terms.buyback_share: 0.6` under the case name"],
            )
        for key in changes:
            if not isinstance(key, str):
                raise ScenarioError(
                    f"{path}: override '{case}': the path {json.dumps(key, default=str)} is not a field path (YAML reads an "
                    "empty key, null, a number, yes, no, true or false unquoted as a value)",
                    details=["Fix: write a dotted field path, e.g. terms.buyback_share: 0.6"],
                )
            try:
                parse_path(key)
            except ValueError as error:
                raise ScenarioError(
                    f"{path}: override '{case}', path '{key}': {error}",
                    details=[
                        "Fix: correct the path (field names as in the scenario file, list items as name[id])"
                    ],
                ) from None
        out[str(case)] = {str(k): v for k, v in changes.items()}
    return out


def pick_case(overrides: Overrides, case: str, source: str) -> dict[str, Any]:
    if case not in overrides:
        raise ScenarioError(
            f"{source}: no override named '{case}'", details=[f"Fix: use one of {', '.join(overrides)}"]
        )
    return overrides[case]


def load_case(
    base_path: str | Path, overrides_path: str | Path | None, case: str | None
) -> tuple[dict, Scenario]:
    """The base file's data with one named case applied, and that data validated as a scenario."""
    base_path = Path(base_path)
    base = read_yaml(base_path)
    if not isinstance(base, dict):
        raise ScenarioError(f"{base_path}: a scenario must be a mapping at the top level")
    if overrides_path is None or case is None:
        if case is not None:
            raise ScenarioError("--case needs --overrides FILE", details=["Fix: add --overrides FILE"])
        return base, parse_scenario(base, str(base_path))
    changes = pick_case(load_overrides(overrides_path), case, str(overrides_path))
    data = apply_overrides(base, changes, case=case, source=str(overrides_path))
    return data, compose(base, changes, case=case, source=str(overrides_path))


def split_values(raw: str) -> list[str]:
    """`--set` values split at the commas between them, not those inside a YAML list, mapping or
    quoted string: 'a,[NO,SE],"x,y"' -> ['a', '[NO,SE]', '"x,y"'] (a list given by --set was
    split into '[NO' and 'SE]'). A quote opens a string only where YAML's would (first in a
    value, or after '[', '{', ',' or ':'): "it's" is a plain word. Unbalanced brackets keep the
    rest as one value, for YAML (or the scenario check) to refuse."""
    parts: list[str] = []
    depth, quote, skip, start, last = 0, "", False, 0, ","
    for n, char in enumerate(raw):
        if skip:  # the character after a backslash in "...", or the second quote of '' in '...'
            skip = False
            continue
        if quote:
            escape = quote == '"' and char == "\\"
            if escape or (quote == "'" and char == "'" and raw[n + 1 : n + 2] == "'"):
                skip = True
            elif char == quote:
                quote = ""
            continue
        if char in "'\"" and last in "[{,:":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(raw[start:n])
            start = n + 1
        if not char.isspace():
            last = char
    parts.append(raw[start:])
    return parts


def parse_assignment(text: str) -> tuple[str, list[Any]]:
    """'terms.buyback_share=0.6,0.7' -> ('terms.buyback_share', [0.6, 0.7]); values read as YAML,
    split at top-level commas (`split_values`): 'tenants[a].allowed_jurisdictions=[SE,FI]' is one."""
    if "=" not in text:
        raise ScenarioError(
            f"--set {text!r}: expected PATH=V1,V2,...",
            details=["Fix: e.g. --set terms.buyback_share=0.6,0.7,0.8"],
        )
    path, _, raw = text.partition("=")
    path = path.strip()
    try:
        parse_path(path)
    except ValueError as error:
        raise ScenarioError(f"--set {text!r}: {error}") from None
    values = []
    for item in split_values(raw):
        if not item.strip():
            raise ScenarioError(
                f"--set {text!r}: empty value", details=["Fix: separate values by single commas"]
            )
        try:
            values.append(load_yaml_text(item))
        except DuplicateKey as error:
            raise ScenarioError(
                f"--set {text!r}: the value {item.strip()!r} gives the key {error.key!r} twice",
                details=["Fix: give each key once"],
            ) from None
        except (yaml.YAMLError, RecursionError, NestedTooDeeply):
            # Not YAML, or a value YAML cannot read (2026-13-01), or nested too deeply: kept as
            # text, for the scenario check to name the field.
            values.append(item.strip())
    return path, values
