"""Reading scenarios and reading/writing plans: the planner's only file I/O."""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import math
import os
import re
import stat
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError

from planner.errors import PlanFileError, ScenarioError, UserError
from planner.schema.consistency import SHOWN_PROBLEMS, ScenarioInconsistent, check_scenario, raise_problems
from planner.schema.input_checks import check_inputs, gpu_product_ok, magnitude, owner_problem, short
from planner.schema.plan import READABLE_PLAN_VERSIONS, Plan, tail_mean
from planner.schema.scenario import (
    BOOL_AS_NUMBER,
    HOURS_PER_YEAR,
    ID_MAX_CHARS,
    ID_PATTERN,
    PROBABILITY_TOLERANCE,
    QUARTER_RE,
    Scenario,
)


def _loc(loc: tuple[Any, ...], data: Any = None) -> str:
    """`sites[batam].power_cap_mw` (list items by id where the data has one, else by position)."""
    out = ""
    node = data
    for part in loc:
        item = node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
        if part == "[key]":  # pydantic's mark for a mapping's key (the part before is the key)
            out += " (the key)"
        elif isinstance(part, int) and not isinstance(node, dict):
            key = item.get("id") if isinstance(item, dict) else None
            out += f"[{key}]" if isinstance(key, str) and key else f"[{part}]"
        else:  # a field, or a mapping's key (a number YAML read from an unquoted id)
            out += f".{part}" if out else str(part)
        node = item if item is not None else (node.get(part) if isinstance(node, dict) else None)
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
    if kind == "string_too_long":
        return "shorten it"
    if kind == "finite_number":
        return "use a finite number (YAML's .inf and .nan are not allowed)"
    if kind == "string_type" and isinstance(error.get("input"), bool):
        loc = error["loc"]
        listed = len(loc) >= 2 and isinstance(loc[-1], int) and isinstance(loc[-2], str)
        example = f'{loc[-2]}: ["NO"]' if listed else 'jurisdiction: "NO"'
        return (
            "YAML reads unquoted yes/no/on/off/true/false (e.g. the country code NO) as a boolean; "
            f"quote it, e.g. {example}"
        )
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        shown = error["input"]
        field = error["loc"][-1] if error["loc"] else "id"
        if field == "[key]":
            example = f'"{shown}": ...'
        else:
            example = f'["{shown}"]' if isinstance(field, int) else f'{field}: "{shown}"'
        return f"YAML reads an unquoted number as a number, and this is text: quote it, e.g. {example}"
    if kind == BOOL_AS_NUMBER:
        return "write the number (YAML reads unquoted yes, no, on, off, true and false as true or false)"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "use a whole number"
    if kind in ("float_type", "float_parsing"):
        return "use a number"
    return "correct the value"


MAX_DETAILS = SHOWN_PROBLEMS


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at `loc` (following nested models and lists)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = next((m for m in models_in(field.annotation)), None)
    return model


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's type holds (`list[Site]`, `Terms | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in models_in(arg)]


def _did_you_mean(e: ErrorDetails, root: type[BaseModel] | None) -> str:
    if e["type"] != "extra_forbidden" or root is None or not e["loc"]:
        return ""
    model = _model_at(root, tuple(e["loc"]))
    close = difflib.get_close_matches(str(e["loc"][-1]), list(model.model_fields), n=1) if model else []
    return f"; did you mean '{close[0]}'?" if close else ""


def validation_details(
    error: ValidationError, data: Any = None, model: type[BaseModel] | None = None
) -> list[str]:
    details = []
    errors = error.errors()
    for e in errors[:MAX_DETAILS]:
        got = e.get("input")
        shown = "" if e["type"] == "missing" or isinstance(got, dict | list) else f" (got {_shown(got)})"
        details.append(
            f"{_loc(e['loc'], data)}: {e['msg']}{shown}. Fix: {_fix_for(e)}{_did_you_mean(e, model)}"
        )
    if len(errors) > MAX_DETAILS:
        details.append(f"... and {len(errors) - MAX_DETAILS} more of the same kinds")
    return details


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _not_a_mapping(source: str, data: Any) -> ScenarioError:
    what = "empty or only comments" if data is None else f"a YAML {type(data).__name__}, not a mapping"
    return ScenarioError(
        f"{source}: a scenario must be a mapping at the top level (this file is {what})",
        details=[
            "Fix: start from examples/dsx-2026.yaml: top-level keys name, periods, sites, rack_types, "
            "tenants, scenarios, terms"
        ],
    )


def parse_scenario(data: Any, source: str) -> Scenario:
    """Validate already-parsed YAML/JSON data, then check it across fields; `source` names it.

    Two steps, as PyPSA does (`consistency_check` before `optimize`): pydantic checks each field
    and its units, then `check_inputs` (names Kubernetes accepts, sizes HiGHS can work with) and
    `check_scenario` (what spans fields: references, probabilities, capacity) run explicitly here rather than hidden in a validator, so the schema stays free of
    the checks and every way into the planner goes through this one function.
    """
    if not isinstance(data, dict):
        raise _not_a_mapping(source, data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(
            f"{source}: invalid scenario", details=validation_details(error, data, Scenario)
        ) from None
    try:
        raise_problems(check_inputs(scenario))  # names Kubernetes accepts, sizes HiGHS can work with
        check_scenario(scenario)
        return scenario
    except ScenarioInconsistent as error:
        details = [f"{p.path}: {p.message}. Fix: {p.fix}" for p in error.problems]
        if error.more:
            details.append(f"... and {error.more} more")
        raise ScenarioError(f"{source}: inconsistent scenario", details=details) from None


def _read_text(path: Path, error_type: type[UserError], what: str, fix: str) -> str:
    """A file's text, or one error naming the file, what is wrong and `fix`."""
    if path.is_dir():
        raise error_type(
            f"{path}: is a directory, not a {what} file", details=[f"Fix: give the path of the {what} file"]
        )
    try:
        if stat.S_ISCHR(path.stat().st_mode) or stat.S_ISBLK(path.stat().st_mode):
            # /dev/zero never ends (read whole, it ran out of memory); a pipe, as <(...) gives, does.
            raise error_type(
                f"{path}: is a device, not a {what} file", details=[f"Fix: give the path of the {what} file"]
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error_type(
            f"{path}: cannot read {what} file: there is no such file",
            details=["Fix: check the path (relative to where dsx runs)"],
        ) from None
    except UnicodeDecodeError as error:
        raise error_type(
            f"{path}: not UTF-8 text (byte {error.start}: {error.reason})",
            details=[f"Fix: save the file as UTF-8, or {fix}"],
        ) from None
    except OSError as error:
        raise error_type(
            f"{path}: cannot read {what} file ({error.strerror})",
            details=["Fix: check the file's permissions"],
        ) from None


YAML_MAX_DEPTH = 100
"""Deepest nesting of lists and mappings a scenario file may have (its own nest about 6 deep).
Deeper, libyaml's composer (recursive C) can crash the process and PyYAML's runs out of
Python's stack at about 500 levels."""

YAML_MAX_INTEGER = 10**18
"""Largest integer a scenario file may hold, far above any count or amount in one. Hex, octal,
binary and base-60 literals escape Python's 4,300-digit limit, and a 401-digit integer broke the
scenario checks' formatting with a traceback. (A `--set` value YAML refuses is kept as text, for
the scenario check.)"""

YAML_MAX_INTEGER_CHARS = 40
"""Longest an integer may be written (10^18 takes 19 digits): PyYAML builds a base-60 one
(`1:59:59:...`) by multiplying by 60 once per part, quadratic in its length (450 KB took 4.4 s)."""

YAML_MAX_REPEATED = 500_000
"""Most that aliases may add to one file: the document weighed with every alias followed, less
its own weight, a scalar weighing one plus one per full 16 characters. Merge keys (`<<`) copy
what their aliases name: a chain of mappings each merging the one before twice doubles the
entries per line (26 such lines ran past 20 s and about 30 would need 8 GB). Plain aliases are
shared in the loaded data, but the scenario check validates, and may quote, each place one is
used: a 16 KB file repeating a 5,000-number list through 100 x 100 aliases took 10.9 s and
2 GB to be refused, a 20 KB owner named 20,000 times 11.7 s and 3.9 GB, and 5 million repeated
bad numbers more than 20 s and 3.2 GB; half a million, 5.1 s and 0.9 GB. A file that shares more
than this (20 tenants naming one 40-quarter demand list in each of 2,000 scenarios repeat 1.6
million) can write its values out."""

_WEIGHT_CAP = 1 << 62
"""Where a node's weight stops growing (`_repeated_nodes`), so a long chain of aliases adds small
integers, not ever longer ones."""

_VALUE_ERRORS = (ValueError, LookupError, TypeError, AttributeError, OverflowError)
"""What PyYAML's safe constructor raises, outside its own errors, for a value it cannot make:
`2026-13-01`, `!!float abc`, `!!int ''`, `!!bool foo`, `!!timestamp foo`."""

_INT_TAG = "tag:yaml.org,2002:int"


class NestedTooDeeply(Exception):
    """YAML whose lists or mappings nest deeper than `YAML_MAX_DEPTH`, as text or through
    aliases."""


def _repeated_nodes(root: yaml.Node) -> tuple[int, int]:
    """What aliases add to a document (`YAML_MAX_REPEATED`, each weight at most `_WEIGHT_CAP`),
    and how deep its data nests once aliases are followed (a chain of 1,200 aliases, two levels
    as text, loaded 1,201 deep and broke deep copies later). A `ConstructorError` where an alias
    stands inside the value it names: no scenario needs a value within itself, and its depth
    would depend on which way it is walked (`copy.deepcopy` ran out of the stack on one that
    this walk found 5 deep). Without such cycles, the nodes form a DAG and both figures are
    exact."""
    weight: dict[int, int] = {}
    depth: dict[int, int] = {}
    distinct = 0
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in weight:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if children_done:
            own = 1 + len(node.value) // 16 if isinstance(node, yaml.ScalarNode) else 1
            weight[id(node)] = min(_WEIGHT_CAP, own + sum(weight[id(child)] for child in children))
            nested = max((depth[id(child)] for child in children), default=0)
            depth[id(node)] = nested + 1 if children or not isinstance(node, yaml.ScalarNode) else 0
            distinct += own
            open_.discard(id(node))
        else:
            open_.add(id(node))
            for child in children:
                if id(child) in open_:
                    raise ConstructorError(
                        None,
                        None,
                        "an alias stands inside the value it names (a value within itself)",
                        child.start_mark,
                    )
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in weight)
    return max(0, weight[id(root)] - distinct), depth[id(root)]


class DuplicateKey(ConstructorError):
    """A mapping that gives one key twice: YAML's loaders keep the last without a word (a second
    `buyback_share: 0.2` under `terms` silently replaced the first)."""

    def __init__(self, key: Any, first: Any, again: Any):
        self.key, self.first_line, self.line = key, first.line + 1, again.line + 1
        super().__init__(
            None,
            None,
            f"the key {_shown(key)} is given twice (lines {self.first_line} and {self.line})",
            again,
        )


_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class _Shaped:
    """PyYAML's safe constructor, refusing at its node (a `ConstructorError`, with the line and
    column, as for any other YAML error) aliases (merge keys' among them) adding more than
    `YAML_MAX_REPEATED`, an alias inside the value it names, and a key given twice in one
    mapping (`DuplicateKey`); data nested too deeply through aliases is `NestedTooDeeply`."""

    aliased = True
    """Whether the document may have aliases (`_checked_load` says where it has none)."""

    def flatten_mapping(self, node: Any) -> None:
        """Refuse a key the mapping itself gives twice, before its merge keys (`<<`) are expanded:
        a key written beside a merge replaces the merged one, as YAML means it to. Here, not in
        `construct_mapping`, as a merged mapping is expanded in place, sometimes before it is
        constructed, and would then seem to repeat its own keys."""
        checked: set[int] = self.__dict__.setdefault("_unique_keys_checked", set())
        if id(node) not in checked:
            checked.add(id(node))
            first: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue  # a key that is a list or a mapping is refused as unhashable anyway
                # Text as it is (most keys, and quick); others as made: 1 and 0x1 are one number.
                key = key_node.value if key_node.tag == _STR_TAG else self._key(key_node)
                if key in first:
                    raise DuplicateKey(key, first[key], key_node.start_mark)
                first[key] = key_node.start_mark
        super().flatten_mapping(node)  # type: ignore[misc]

    def _key(self, node: Any) -> Any:
        return self.construct_object(node, deep=True)  # type: ignore[attr-defined]

    def construct_document(self, node: Any) -> Any:
        if self.aliased:
            repeated, depth = _repeated_nodes(node)
            if depth > YAML_MAX_DEPTH:
                raise NestedTooDeeply
            if repeated > YAML_MAX_REPEATED:
                raise ConstructorError(
                    None,
                    None,
                    f"its aliases repeat more than {YAML_MAX_REPEATED:,} values (name what they "
                    "stand for fewer times, or write it out)",
                    node.start_mark,
                )
        return super().construct_document(node)  # type: ignore[misc]


class _Guarded(_Shaped):
    """`_Shaped`, refusing too what the constructor would raise a Python error for or take
    without bound: a value it cannot make (`_VALUE_ERRORS`), and an integer beyond
    `YAML_MAX_INTEGER` or written longer than `YAML_MAX_INTEGER_CHARS`. For scenarios."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        if (
            node.tag == _INT_TAG
            and isinstance(node, yaml.ScalarNode)
            and len(node.value) > YAML_MAX_INTEGER_CHARS
        ):
            raise ConstructorError(
                None,
                None,
                f"an integer written in {len(node.value):,} characters (more than "
                f"{YAML_MAX_INTEGER_CHARS}) is beyond any count or amount of a scenario",
                node.start_mark,
            )
        try:
            value = super().construct_object(node, deep=deep)  # type: ignore[misc]
        except _VALUE_ERRORS as error:
            raise ConstructorError(
                None, None, f"this value cannot be read ({error})", node.start_mark
            ) from None
        if type(value) is int and abs(value) > YAML_MAX_INTEGER:
            raise ConstructorError(
                None,
                None,
                f"an integer of {value.bit_length()} bits is beyond any count or amount of a scenario "
                f"(at most {YAML_MAX_INTEGER:,})",
                node.start_mark,
            )
        return value


class AsWritten(str):
    """A stack file's value `_Lenient` kept as its text: written back as it was only by the line
    edit (`infra.stacks.updated_stack_text` refuses to rewrite a file holding one)."""


class _Lenient(_Shaped):
    """`_Shaped`, keeping as its text what the constructor cannot make (`2026-13-01`) or would
    take long to (an integer written longer than `YAML_MAX_INTEGER_CHARS`), as Pulumi's own YAML
    reader keeps them: for stack files, whose other keys are not dsx's to judge."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        if (
            isinstance(node, yaml.ScalarNode)
            and node.tag == _INT_TAG
            and len(node.value) > YAML_MAX_INTEGER_CHARS
        ):
            return AsWritten(node.value)
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except _VALUE_ERRORS:
            if isinstance(node, yaml.ScalarNode):
                return AsWritten(node.value)
            raise


class _PyLoader(_Guarded, yaml.SafeLoader):
    """PyYAML's own scanner and parser."""


class _PyLenientLoader(_Lenient, yaml.SafeLoader):
    """PyYAML's own scanner and parser, lenient values."""


def _libyaml_loader() -> Any:
    """libyaml's scanner and parser behind the guarded safe constructor, or None where this
    PyYAML build has no libyaml (its wheels do): a (10,3,20,6,50) scenario, 72 KB, is read in
    0.03 s instead of 0.15 s."""
    if not hasattr(yaml, "CSafeLoader"):
        return None

    class _CLoader(_Guarded, yaml.CSafeLoader):
        """libyaml's scanner and parser."""

    return _CLoader


def _libyaml_lenient_loader() -> Any:
    """As `_libyaml_loader`, behind the lenient constructor (stack files)."""
    if not hasattr(yaml, "CSafeLoader"):
        return None

    class _CLenientLoader(_Lenient, yaml.CSafeLoader):
        """libyaml's scanner and parser, lenient values."""

    return _CLenientLoader


_C_LOADER: Any = _libyaml_loader()
_C_LENIENT_LOADER: Any = _libyaml_lenient_loader()


def _first_document(text: str, loader: Any) -> bool:
    """Whether the first document has aliases; `NestedTooDeeply` where its lists or mappings
    nest deeper than `YAML_MAX_DEPTH` (as deep as the composer would recurse: it composes only
    the first document, and a second one is an error). By the loader's event parser, which keeps
    its own stack (no recursion) and is stopped at the first level too deep: libyaml's slows
    with the depth (100,000 levels of brackets took 38 s)."""
    depth = 0
    aliases = False
    for event in yaml.parse(text, Loader=loader):
        kind = type(event)
        if kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
            depth += 1
            if depth > YAML_MAX_DEPTH:
                raise NestedTooDeeply
        elif kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
            depth -= 1
        elif kind is yaml.AliasEvent:
            aliases = True
        elif kind is yaml.DocumentEndEvent:
            break
    return aliases


def _checked_load(text: str, loader: Any) -> Any:
    """The text's data by `loader` (`_PyLoader` or `_C_LOADER`), as `yaml.load` reads it, after
    `_first_document`: what aliases repeat is weighed only where there are any (at
    (10,3,20,6,50), which has none, the walk would take about a third of the load)."""
    aliased = _first_document(text, loader)
    reader = loader(text)
    reader.aliased = aliased
    try:
        return reader.get_single_data()
    finally:
        reader.dispose()


def load_yaml_text(text: str, *, lenient: bool = False) -> Any:
    """YAML text's data: libyaml's where it reads the text, else PyYAML's own loader's, which reads
    it or says why it cannot (a YAML error; `NestedTooDeeply` where it nests too deeply). The two
    scanners differ at the edges of YAML. Of 3,000 random edits of the bundled example with
    YAML's own characters, both read 1,287 and gave the same data but for one (`name: !`, an
    empty value with YAML's non-specific tag: "" to libyaml, null to PyYAML); libyaml alone
    read 94 (a tab inside a flow list, a `?` inside a flow entry: the scenario check then names
    the field, where it is one), PyYAML alone 5 (read here after libyaml refused them), neither
    1,614. `lenient` keeps values the scenario refuses (an integer beyond 10^18, `2026-13-01`) as
    they are or as text, and limits only nesting and aliases: for stack files (`_Lenient`)."""
    c_loader, py_loader = (_C_LENIENT_LOADER, _PyLenientLoader) if lenient else (_C_LOADER, _PyLoader)
    if c_loader is not None:
        try:
            return _checked_load(text, c_loader)
        except ConstructorError:
            raise  # the same constructor's refusal: PyYAML's parser would not change it
        except (yaml.YAMLError, UnicodeEncodeError):
            # libyaml reads UTF-8: text from a command line can hold lone surrogates (bytes
            # that were not UTF-8), which PyYAML's reader names.
            pass
    return _checked_load(text, py_loader)


def yaml_error_place(error: yaml.YAMLError) -> tuple[str, str]:
    """Where in the file a YAML error is (" at line L, column C"), and what it is."""
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        code = error.character if isinstance(error.character, int) else ord(error.character)
        return f" at character {error.position + 1}", f"{error.reason} (#x{code:04x})"
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return where, getattr(error, "problem", None) or "cannot be parsed"


def read_yaml(path: Path) -> Any:
    path = Path(path)
    text = _read_text(path, ScenarioError, "YAML", "re-create it from examples/dsx-2026.yaml")
    try:
        return load_yaml_text(text)
    except (RecursionError, NestedTooDeeply):
        # Refused by `_first_document` (text) or `_repeated_nodes` (aliases). RecursionError
        # too: PyYAML's composer and constructor recurse per level, and would raise it were the
        # checks to miss a way down.
        raise ScenarioError(
            f"{path}: cannot be read: its lists or mappings are nested too deeply",
            details=["Fix: repair the file (no scenario field nests more than a few levels)"],
        ) from None
    except DuplicateKey as error:
        raise ScenarioError(
            f"{path}: line {error.line}: the key {_shown(error.key)} is given twice in one mapping "
            f"(first at line {error.first_line}); YAML would keep only the last",
            details=[f"Fix: keep one of lines {error.first_line} and {error.line}, with the value meant"],
        ) from None
    except yaml.YAMLError as error:
        where, problem = yaml_error_place(error)
        raise ScenarioError(
            f"{path}: not valid YAML{where}: {problem}",
            details=[
                "Fix: repair the file there (a truncated file, a tab used for indenting, an "
                "unclosed quote or bracket, or a value YAML cannot read, such as 2026-13-01, are "
                "the usual causes; quote a value to keep it as text)"
            ],
        ) from None


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(read_yaml(path), str(path))


NAME_MAX_BYTES = 255 - len(".") - len(".12345678.tmp")
"""Longest file or directory name an output may have: most file systems take 255 bytes, and
`write_atomic` writes `.NAME.XXXXXXXX.tmp` first (a 250-byte plan name failed after the solve)."""


def check_output_path(
    path: str | Path, *, directory: bool = False, option: str = "-o", example: str = "plan.json"
) -> None:
    """Refuse an output path that cannot be written, before any work is done: a file path that is
    an existing directory or anything else but a regular file (`not_regular`), a directory path
    that is an existing file, a path under a file, or a name too long to write. `example` is the
    file name the fix suggests inside a directory."""
    path = Path(path)
    kind = "directory" if directory else "file"
    too_long = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX_BYTES), None)
    if too_long is not None:
        raise UserError(
            f"{option} {str(path)[:80]}…: the name {too_long[:24]}… is {len(os.fsencode(too_long))} bytes long; "
            f"at most {NAME_MAX_BYTES} are written here",
            details=[f"Fix: choose a shorter {kind} name"],
        )
    odd = None if directory or path.is_dir() else not_regular(path)
    if odd is not None:
        raise UserError(
            f"{option} {path}: {odd}; dsx writes an output only where there is no file yet or a "
            "regular one, which it replaces",
            details=[f"Fix: give the path of a regular file, e.g. {option} {path.parent / example}"],
        )
    if not directory and path.is_dir():
        raise UserError(
            f"{option} {path}: is an existing directory; the output is a file",
            details=[f"Fix: give a file path, e.g. {option} {path / example}"],
        )
    if directory and path.exists() and not path.is_dir():
        raise UserError(
            f"{option} {path}: is an existing file; the output is a directory",
            details=[f"Fix: give a directory path, e.g. {option} {path.with_suffix('')}-out"],
        )
    # An existing directory is written into itself; otherwise its nearest existing parent.
    for parent in ([path] if directory and path.is_dir() else []) + list(path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise UserError(
                    f"{option} {path}: {parent} is a file, so nothing can be written under it",
                    details=[f"Fix: choose a {kind} path whose parent is a directory"],
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(
                    f"{option} {path}: the directory {parent} is not writable",
                    details=[f"Fix: choose a {kind} path in a directory you may write to"],
                )
            return


def refuse_overwriting_inputs(
    given: str | Path,
    outputs: Sequence[str | Path],
    inputs: Sequence[tuple[str, str | Path | None]],
    *,
    option: str = "-o",
    example: str | None = None,
) -> None:
    """Refuse, before any work, outputs that would replace one of the command's own input files
    (`inputs`: what each is, e.g. "the scenario file", and its path): `plan solve -o scenario.yaml`
    wrote the plan over it. `given` is what the user wrote after `option` (a file, or the
    directory the outputs go in); `example` a file name the fix suggests."""
    for output in map(Path, outputs):
        for role, path in inputs:
            if path is None or not _same_file(output, Path(path)):
                continue
            what = "that is" if output == Path(given) else f"its {output.name} would replace"
            shown = "" if str(path) == str(given) else f" ({path})"
            raise UserError(
                f"{option} {given}: {what} {role}{shown}",
                details=[f"Fix: write to another {option} path" + (f", e.g. {example}" if example else "")],
            )


def _same_file(a: Path, b: Path) -> bool:
    """Whether a and b name one file: the same path once resolved (symbolic links, '.', '..'),
    or existing names of one file (a hard link; a name differing in case where the file system
    does not tell case apart). A hard link would survive `write_atomic`'s rename, but an output
    named as an input is refused either way."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def temporary_beside(
    target: Path, data: bytes, like: os.stat_result | None = None, *, keep_owner: bool = False
) -> Path:
    """`data` in a new hidden file beside `target` (`.NAME.*.tmp`), to be moved into its place:
    with the mode of the file it replaces (`like`; set-id bits dropped: a stack file holding
    secrets may be 0600), else an ordinary new file's (mkstemp makes 0600), and with
    `keep_owner` that file's owner too, where the system allows it."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if like is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(name, 0o666 & ~umask)
        else:
            os.chmod(name, stat.S_IMODE(like.st_mode) & 0o777)
            if keep_owner:
                with contextlib.suppress(OSError):  # only root, or the owner into its own group, may
                    os.chown(name, like.st_uid, like.st_gid)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def not_regular(path: Path, *, follow_links: bool = True) -> str | None:
    """What `path` is, in words, where it exists and is neither a regular file nor a symbolic link
    to one ("is a named pipe (FIFO)"); else None. An output is only ever written in place of a
    regular file: the rename `write_atomic` ends with replaced a device (as root, /dev/null) or a
    FIFO with a plain file without a word, and would replace a link with a file. Without
    `follow_links` a link is itself refused ("is a symbolic link"): a file a command names in
    its own directory (`dsx.commands.results_dir`)."""
    if not follow_links and path.is_symlink():
        return "is a symbolic link"
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # no such file (under a file: the caller says)
        if path.is_symlink():
            return f"is a symbolic link to {os.readlink(path)}, which does not exist"
        return None
    except OSError as error:
        return f"cannot be examined ({error.strerror})"
    if stat.S_ISREG(mode):
        return None
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
    ]
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"is {what}" + (
        f" (through the symbolic link to {os.readlink(path)})" if path.is_symlink() else ""
    )


def write_atomic(path: str | Path, text: str) -> None:
    """Write via a temporary file and rename, so a failed run never leaves half a file. Only a
    regular file is replaced (`not_regular`); where `path` is a symbolic link to one, the file it
    names is (the link stays). A failure is a `UserError` naming `path`, not the temporary file."""
    path = Path(path)
    odd = not_regular(path)
    if odd is not None:
        raise UserError(
            f"{path}: {odd}, not a file dsx may replace",
            details=[f"Fix: move {path} aside, or write the output elsewhere"],
        )
    target = path.resolve() if path.is_symlink() else path
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            like: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            like = None
        tmp = temporary_beside(target, text.encode("utf-8"), like)
        os.replace(tmp, target)
    except OSError as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise UserError(
            f"{path}: cannot be written ({error.strerror or error})",
            details=[f"Fix: check the free space and the permissions of {target.parent}, or write elsewhere"],
        ) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def write_plan(plan: Plan, path: str | Path) -> None:
    write_atomic(path, plan.model_dump_json(indent=1) + "\n")


class _NotJson(str):
    """NaN, Infinity or -Infinity where a plan holds a number (Python's json reads them)."""


def _first_not_json(node: Any, path: str = "") -> tuple[str, str] | None:
    if isinstance(node, _NotJson):
        return path or "(top level)", f"{node} is not a JSON number"
    if isinstance(node, float) and not math.isfinite(node):  # 1e400 is read as infinity
        return path or "(top level)", "a number beyond a float's range (no plan holds one)"
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        found = _first_not_json(
            value, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip(".")
        )
        if found:
            return found
    return None


RESOLVE = "Fix: re-solve the scenario (dsx plan solve SCENARIO -o PLAN) and use the plan it writes"


def read_plan(path: str | Path) -> Plan:
    path = Path(path)
    text = _read_text(path, PlanFileError, "plan", "re-solve the scenario")
    try:
        # dsx writes no NaN or Infinity (pydantic writes null); a plan holding them was edited.
        data = json.loads(text, parse_constant=_NotJson)
    except json.JSONDecodeError as error:
        raise PlanFileError(
            f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            + (" (the file is empty)" if not text.strip() else ""),
            details=[f"{RESOLVE}; a truncated plan is the usual cause"],
        ) from None
    except RecursionError:
        raise PlanFileError(
            f"{path}: nested too deeply to be a plan (a plan nests about 4 levels)", details=[RESOLVE]
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise PlanFileError(
            f"{path}: holds an integer of more digits than Python reads (4,300 by default), which no "
            "plan holds",
            details=[RESOLVE],
        ) from None
    found = _first_not_json(data)
    if found:
        raise PlanFileError(f"{path}: {found[0]}: {found[1]}", details=[RESOLVE])
    if not isinstance(data, dict):
        raise PlanFileError(
            f"{path}: a plan is a JSON object, this file holds a {type(data).__name__}", details=[RESOLVE]
        )
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_PLAN_VERSIONS:
        raise PlanFileError(
            f"{path}: plan schema_version is {version!r}, this dsx reads {', '.join(map(repr, READABLE_PLAN_VERSIONS[:-1]))} and {READABLE_PLAN_VERSIONS[-1]!r}",
            details=["Fix: re-solve the scenario with this dsx (dsx plan solve ...)"],
        )
    try:
        plan = Plan.model_validate(data)
    except ValidationError as error:
        raise PlanFileError(
            f"{path}: invalid plan", details=[*validation_details(error, data, Plan), RESOLVE]
        ) from None
    problems = plan_problems(plan)
    if problems:
        shown = problems[:MAX_DETAILS]
        more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
        raise PlanFileError(
            f"{path}: the plan does not hold together (was it edited?)", details=[*shown, *more, RESOLVE]
        )
    return plan


_REFERENCES = {
    "racks": ("site", "rack_type", "period"),
    "power": ("site", "period"),
    "quotas": ("tenant", "site", "rack_type", "period"),
    "served": ("scenario", "tenant", "site", "rack_type", "period"),
    "unserved": ("scenario", "tenant", "period"),
    "site_periods": ("site", "period"),
    "outcomes": ("scenario",),
}
PLAN_COUNT_MAX = 10**9
"""Most racks, GPUs, nodes or blocks one plan record may hold: a scenario's own bounds allow far
fewer (`planner.schema.input_checks`), and a count past it would be written into a node pool."""
_COUNTS = {
    "racks": ("racks_built", "racks_installed", "gpus_installed", "nodes_installed"),
    "power": ("blocks_ordered",),
    "quotas": ("quota_gpus",),
}


_ID = re.compile(ID_PATTERN)


def _printable(text: str) -> str:
    """Text from a plan file with its unprintable characters escaped: an id or owner holding ESC
    or a newline could colour or forge error lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shown_id(value: str) -> str:
    """An id from a plan file for a message: printable, and shortened if long."""
    return short(_printable(value), 60)


def _cut(text: str, limit: int = 200) -> str:
    """A message part from a plan file, printable and whole up to `limit` characters."""
    text = _printable(text)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _records_listed_twice(plan: Plan) -> list[str]:
    """Two records of one site, quarter, tenant or scenario: a reader keeps one of them (a pool
    sized from the second racks record while the summary says the first)."""
    problems = []
    for collection, fields in _REFERENCES.items():
        seen = Counter(tuple(getattr(r, name) for name in fields) for r in getattr(plan, collection))
        twice = sorted(key for key, n in seen.items() if n > 1)
        if twice:
            more = f" and {len(twice) - 1} more" if len(twice) > 1 else ""
            problems.append(
                f"{collection}: {'/'.join(_shown_id(str(v)) for v in twice[0])} ({'/'.join(fields)}) is listed "
                f"twice{more}"
            )
    return problems


def _racks_that_disagree(plan: Plan) -> list[str]:
    """Rack records whose GPUs and nodes are not their racks times the rack type's, or that the
    site and quarter summary counts differently: provisioning sizes pools from the records."""
    per_type = {r.id: r for r in plan.rack_types}
    summary = {(row.site, row.period): row.racks_by_type for row in plan.site_periods}
    problems = []
    for n, r in enumerate(plan.racks):
        rack = per_type.get(r.rack_type)
        if rack is None:
            continue  # named as unknown below
        if (r.gpus_installed, r.nodes_installed) != (
            r.racks_installed * rack.gpus_per_rack,
            r.racks_installed * rack.nodes_per_rack,
        ):
            problems.append(
                f"racks[{n}]: {r.racks_installed} racks of {_shown_id(r.rack_type)} hold {r.racks_installed * rack.gpus_per_rack} "
                f"GPUs on {r.racks_installed * rack.nodes_per_rack} nodes, not {r.gpus_installed} on {r.nodes_installed}"
            )
        by_type = summary.get((r.site, r.period))
        counted = None if by_type is None else by_type.get(r.rack_type)
        if by_type is not None and counted is None:
            problems.append(
                f"racks[{n}]: {r.racks_installed} racks of {_shown_id(r.rack_type)} at {_shown_id(r.site)} in "
                f"{_shown_id(r.period)}, a rack type site_periods does not count there"
            )
        elif counted is not None and counted != r.racks_installed:
            problems.append(
                f"racks[{n}]: {r.racks_installed} racks of {_shown_id(r.rack_type)} at {_shown_id(r.site)} in "
                f"{_shown_id(r.period)}, where site_periods counts {counted}"
            )
    recorded = {(r.site, r.rack_type, r.period) for r in plan.racks}
    for row in plan.site_periods:
        for rack_type in row.racks_by_type:
            if rack_type in per_type and (row.site, rack_type, row.period) not in recorded:
                problems.append(
                    f"site_periods[{_shown_id(row.site)} {_shown_id(row.period)}].racks_by_type: counts "
                    f"{_shown_id(rack_type)}, for which racks has no record"
                )
    return problems[:MAX_DETAILS]


QUANTITY_TOLERANCE = 1e-3
"""GPUs, MW and GPU-hours a plan reports agree with what its decisions give within this (or one
part in a million), as the verifier's do (`planner.verify.log`)."""
MONEY_TOLERANCE_USD = 1.0
"""Money a plan reports agrees with what its outcomes give within US$1 (or one part in a million)."""
EXACT_TOLERANCE = 1e-9
"""Probabilities a plan copies agree within this."""
UTILISATION_SLACK = 1e-4
"""How far past 100% an expected utilisation may be: what is served can exceed the GPUs by the
solver's feasibility tolerance, never by more."""
PARTIES = ("cloud", "guarantor", "syndicate")


def _agree(a: float, b: float, abs_tol: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=abs_tol)


def _some(places: list[str], what: str) -> list[str]:
    """One problem for many places of one kind: the first named, the rest counted."""
    if not places:
        return []
    more = f" (and {len(places) - 1} more)" if len(places) > 1 else ""
    return [f"{places[0]}{more}: {what}"]


def _horizon_problems(plan: Plan) -> list[str]:
    """Quarters that are not consecutive in time order, or hours that are not a quarter's: every
    reader takes the quarters as a time line (plots, compare's horizon, contract terms)."""
    problems = []
    numbers = []
    for label in plan.periods:
        match = QUARTER_RE.fullmatch(label)
        if match is None:
            return []  # named by the id checks
        numbers.append(int(match.group(1)) * 4 + int(match.group(2)) - 1)
    for n, (a, b) in enumerate(itertools.pairwise(numbers)):
        if b != a + 1:
            problems.append(
                f"periods[{n + 1}]: {_shown_id(plan.periods[n + 1])} follows {_shown_id(plan.periods[n])}; "
                "a plan's quarters are consecutive, in time order"
            )
            break
    if not _agree(plan.hours_per_period, HOURS_PER_YEAR / 4, EXACT_TOLERANCE):
        problems.append(
            f"hours_per_period: {plan.hours_per_period:g} is not a quarter's {HOURS_PER_YEAR / 4:,g} hours"
        )
    return problems


def _site_period_problems(plan: Plan) -> list[str]:
    """Summary rows and power records that are missing, or disagree with the racks and power
    decisions they summarise: `show`, `compare` and `plot` read the rows, provisioning the records."""
    gpus_per_rack = {r.id: r.gpus_per_rack for r in plan.rack_types}
    kw_per_rack = {r.id: r.kw_per_rack for r in plan.rack_types}
    pue = {s.id: s.pue for s in plan.sites}
    rows = {(row.site, row.period): row for row in plan.site_periods}
    power = {(p.site, p.period): p for p in plan.power}
    every = [(s.id, period) for s in plan.sites for period in dict.fromkeys(plan.periods)]
    problems = _some(
        [
            f"site_periods: no row for {_shown_id(i)} in {_shown_id(t)}"
            for i, t in every
            if (i, t) not in rows
        ],
        "every site has one row for every quarter",
    )
    problems += _some(
        [f"power: no record for {_shown_id(i)} in {_shown_id(t)}" for i, t in every if (i, t) not in power],
        "every site has one record for every quarter",
    )
    negative = [
        f"{where}.{name} is {value:,.6g} MW"
        for where, record in [
            *((f"site_periods[{_shown_id(r.site)} {_shown_id(r.period)}]", r) for r in plan.site_periods),
            *((f"power[{_shown_id(p.site)} {_shown_id(p.period)}]", p) for p in plan.power),
        ]
        for name in ("available_mw", "it_load_mw")
        if (value := getattr(record, name)) < 0
    ] + [
        f"sites[{_shown_id(s.id)}].power_cap_mw is {s.power_cap_mw:,.6g} MW"
        for s in plan.sites
        if s.power_cap_mw < 0
    ]
    problems += _some(negative, "power is never negative")
    sums = []
    for (site, period), row in rows.items():
        where = f"site_periods[{_shown_id(site)} {_shown_id(period)}]"
        if any(r not in gpus_per_rack for r in row.racks_by_type) or site not in pue:
            continue  # named as unknown
        gpus = sum(n * gpus_per_rack[r] for r, n in row.racks_by_type.items())
        if row.gpus_installed != gpus:
            sums.append(
                f"{where}.gpus_installed: {row.gpus_installed:,}, where its racks_by_type hold {gpus:,} GPUs"
            )
        load = sum(n * kw_per_rack[r] / 1000.0 * pue[site] for r, n in row.racks_by_type.items())
        if not _agree(row.it_load_mw, load, QUANTITY_TOLERANCE):
            sums.append(
                f"{where}.it_load_mw: {row.it_load_mw:,.6g}, where its racks need {load:,.6g} MW "
                "(racks x kW per rack x PUE)"
            )
        record = power.get((site, period))
        if record is not None:
            for name in ("available_mw", "it_load_mw"):
                if not _agree(getattr(row, name), getattr(record, name), QUANTITY_TOLERANCE):
                    sums.append(
                        f"{where}.{name}: {getattr(row, name):,.6g}, where power[{_shown_id(site)} "
                        f"{_shown_id(period)}] says {getattr(record, name):,.6g}"
                    )
        if not -UTILISATION_SLACK <= row.expected_utilisation <= 1 + UTILISATION_SLACK:
            sums.append(
                f"{where}.expected_utilisation: {row.expected_utilisation:.6g} ({row.expected_utilisation:.1%}) "
                "is not within 0 and 1 (served GPU-hours never exceed the installed)"
            )
        elif gpus == 0 and row.expected_utilisation > UTILISATION_SLACK:
            sums.append(f"{where}.expected_utilisation: {row.expected_utilisation:.6g} of no GPUs installed")
    return problems + sums[:MAX_DETAILS]


_NOT_NEGATIVE = {
    "served": ("served_gpu_hours",),
    "unserved": ("unserved_gpu_hours",),
    "site_periods": ("expected_buyback_gpu_hours", "expected_buyback_usd", "buyback_exposure_usd"),
    "outcomes": (
        "rental_revenue_usd",
        "buyback_usd",
        "revenue_share_usd",
        "credit_loss_usd",
        "served_gpu_hours",
        "unserved_gpu_hours",
    ),
}
"""Amounts no plan holds below zero: GPU-hours, and payments whose direction the field's name gives."""


def _outcome_problems(plan: Plan) -> list[str]:
    """Outcomes, risk and party figures that are missing or disagree with the plan's scenarios,
    probabilities and served records: `compare` and `show` report them as the plan's value."""
    problems = []
    for collection, names in _NOT_NEGATIVE.items():
        places = [
            f"{collection}[{n}].{name} is {value:,.6g}"
            for n, record in enumerate(getattr(plan, collection))
            for name in names
            if (value := getattr(record, name)) < 0
        ]
        problems += _some(places, "no plan holds a negative amount there")
    probabilities = plan.scenario_probabilities
    outcomes = {o.scenario: o for o in plan.outcomes}
    missing = [s for s in probabilities if s not in outcomes]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        problems.append(
            f"outcomes: no outcome for scenario '{_shown_id(missing[0])}'{more}; a plan has one for every "
            "scenario of scenario_probabilities"
        )
    served: dict[str, float] = {s: 0.0 for s in probabilities}
    for rec in plan.served:
        served[rec.scenario] = served.get(rec.scenario, 0.0) + rec.served_gpu_hours
    unserved: dict[str, float] = {s: 0.0 for s in probabilities}
    for rec_u in plan.unserved:
        unserved[rec_u.scenario] = unserved.get(rec_u.scenario, 0.0) + rec_u.unserved_gpu_hours
    party_value = {
        "cloud": lambda o: o.cloud_value_usd,
        "guarantor": lambda o: o.guarantor_value_usd,
        "syndicate": lambda o: o.syndicate_value_usd,
    }
    for s, o in outcomes.items():
        where = f"outcomes[{_shown_id(s)}]"
        if s in probabilities and not _agree(o.probability, probabilities[s], EXACT_TOLERANCE):
            problems.append(
                f"{where}.probability: {o.probability:g}, where scenario_probabilities gives {probabilities[s]:g}"
            )
        if not _agree(o.syndicate_value_usd, o.cloud_value_usd + o.guarantor_value_usd, MONEY_TOLERANCE_USD):
            problems.append(
                f"{where}.syndicate_value_usd: {o.syndicate_value_usd:,.2f}, where the cloud's and the "
                f"guarantor's values add up to {o.cloud_value_usd + o.guarantor_value_usd:,.2f}"
            )
        own = party_value[plan.perspective](o)
        if not _agree(o.objective_value_usd, own, MONEY_TOLERANCE_USD):
            problems.append(
                f"{where}.objective_value_usd: {o.objective_value_usd:,.2f}, where the {plan.perspective}'s "
                f"value (the plan's perspective) is {own:,.2f}"
            )
        for name, total, records in (
            ("served_gpu_hours", served.get(s, 0.0), "served"),
            ("unserved_gpu_hours", unserved.get(s, 0.0), "unserved"),
        ):
            if not _agree(getattr(o, name), total, QUANTITY_TOLERANCE):
                problems.append(
                    f"{where}.{name}: {getattr(o, name):,.6g}, where its {records} records add up to {total:,.6g}"
                )
    if missing or len(problems) > MAX_DETAILS:
        return problems  # the figures below are read from every scenario's outcome
    cases = list(probabilities)
    p = [probabilities[s] for s in cases]
    problems += _risk_problems(plan, [outcomes[s].objective_value_usd for s in cases], p)
    problems += _party_problems(
        plan, {name: [get(outcomes[s]) for s in cases] for name, get in party_value.items()}, p
    )
    return problems


def _risk_problems(plan: Plan, values: list[float], p: list[float]) -> list[str]:
    """Expected value, CVaR, worst and best value against the outcomes they are read from."""
    risk, problems = plan.risk, []
    if not 0 <= plan.cvar_weight <= 1:
        problems.append(f"cvar_weight: {plan.cvar_weight:g} is not within 0 and 1")
    if risk.cvar_alpha is not None and not 0 <= risk.cvar_alpha < 1:
        problems.append(f"risk.cvar_alpha: {risk.cvar_alpha:g} is not within 0 and 1 (below 1)")
        return problems
    if plan.cvar_weight > 0 and risk.cvar_alpha is None:
        problems.append(f"risk.cvar_alpha: none, although cvar_weight is {plan.cvar_weight:g}")
    if (risk.cvar_alpha is None) != (risk.cvar_usd is None):
        problems.append(
            f"risk.cvar_usd: {'none' if risk.cvar_usd is None else f'{risk.cvar_usd:,.2f}'} with cvar_alpha "
            f"{risk.cvar_alpha}; a plan has both or neither"
        )
    figures = [
        (
            "expected_value_usd",
            risk.expected_value_usd,
            sum(a * b for a, b in zip(p, values, strict=True)),
            "expected",
        ),
        ("worst_case_value_usd", risk.worst_case_value_usd, min(values, default=0.0), "least"),
        ("best_case_value_usd", risk.best_case_value_usd, max(values, default=0.0), "greatest"),
    ]
    if risk.cvar_alpha is not None and risk.cvar_usd is not None and values:
        figures.append(("cvar_usd", risk.cvar_usd, tail_mean(values, p, risk.cvar_alpha), "CVaR"))
    for name, got, want, how in figures:
        if not _agree(got, want, MONEY_TOLERANCE_USD):
            problems.append(
                f"risk.{name}: {got:,.2f}, where the outcomes' {how} objective value is {want:,.2f}"
            )
    return problems


def _party_problems(plan: Plan, values: dict[str, list[float]], p: list[float]) -> list[str]:
    """Each party's figures, listed once each, against the outcomes they are read from."""
    listed: Counter[str] = Counter(party.party for party in plan.parties)
    problems = [
        f"parties: {', '.join(names)} {'is' if len(names) == 1 else 'are'} {how}; a plan lists cloud, "
        "guarantor and syndicate once each"
        for names, how in (
            ([name for name in PARTIES if listed[name] == 0], "missing"),
            ([name for name in PARTIES if listed[name] > 1], "listed twice"),
        )
        if names
    ]
    for party in plan.parties:
        if not 0 <= party.cvar_alpha < 1:
            problems.append(
                f"parties[{party.party}].cvar_alpha: {party.cvar_alpha:g} is not within 0 and 1 (below 1)"
            )
            continue
        v = values[party.party]
        for name, got, want, how in (
            (
                "expected_value_usd",
                party.expected_value_usd,
                sum(a * b for a, b in zip(p, v, strict=True)),
                "expected",
            ),
            ("worst_case_value_usd", party.worst_case_value_usd, min(v, default=0.0), "least"),
            ("cvar_usd", party.cvar_usd, tail_mean(v, p, party.cvar_alpha) if v else 0.0, "CVaR of the"),
        ):
            if not _agree(got, want, MONEY_TOLERANCE_USD):
                problems.append(
                    f"parties[{party.party}].{name}: {got:,.2f}, where the outcomes' {how} {party.party} "
                    f"value is {want:,.2f}"
                )
    return problems + _walk_away_problems(plan)


def _walk_away_problems(plan: Plan) -> list[str]:
    """Each party's walk-away value as the plan's no-deal record (`walk_away`) says: the tables
    print the one beside the other's surplus."""
    record = plan.walk_away
    problems = []
    for party in plan.parties:
        got = party.walk_away_value_usd
        want = {
            "cloud": record.cloud_value_usd if record else None,
            "guarantor": record.guarantor_value_usd if record else None,
        }.get(party.party)
        if got is None and want is None:
            continue
        if got is None or want is None or not _agree(got, want, MONEY_TOLERANCE_USD):
            shown = "null" if got is None else f"{got:,.2f}"
            problems.append(
                f"parties[{party.party}].walk_away_value_usd: {shown}, where the plan's walk_away says "
                + ("none" if want is None else f"{want:,.2f}")
            )
    return problems


def _derived_problems(plan: Plan) -> list[str]:
    """Records derived from the decisions (summary rows, outcomes, risk and party figures) that
    are missing or disagree with them: readers trust them as they are (an edited row made `plot`
    fail with a traceback and `compare` report 27 fewer racks though no rack had changed)."""
    return [
        *_horizon_problems(plan),
        *_site_period_problems(plan),
        *_outcome_problems(plan),
        *_buyback_matching_problems(plan),
    ]


def _buyback_matching_problems(plan: Plan) -> list[str]:
    """A 1.4 plan's `buyback_matching` record that disagrees with itself or the outcomes: `show`
    and `compare` read its expected figures as they are (an edited one printed a negative buyback,
    or made two rules look alike). Every figure at least 0; each scenario's row billing what its
    outcome bills; the matching rule's never below the plan's; the expected figures the
    probability-weighted rows."""
    record = plan.buyback_matching
    if record is None:
        return []
    where = "buyback_matching"
    money = {
        "expected_buyback_usd": record.expected_buyback_usd,
        "expected_buyback_discounted_usd": record.expected_buyback_discounted_usd,
        "matching_expected_buyback_usd": record.matching_expected_buyback_usd,
        "matching_expected_buyback_discounted_usd": record.matching_expected_buyback_discounted_usd,
    }
    places = [f"{where}.{name} is {value:,.6g}" for name, value in money.items() if value < 0]
    places += [
        f"{where}.scenarios[{_shown_id(row.scenario)}].{name} is {value:,.6g}"
        for row in record.scenarios
        for name in (
            "buyback_usd",
            "buyback_discounted_usd",
            "matching_buyback_usd",
            "matching_buyback_discounted_usd",
        )
        if (value := getattr(row, name)) < 0
    ]
    problems = _some(places, "no plan holds a negative amount there")
    outcomes = {o.scenario: o for o in plan.outcomes}
    probabilities = plan.scenario_probabilities
    rows = {row.scenario: row for row in record.scenarios}
    if set(rows) != set(probabilities):
        return [*problems, f"{where}.scenarios: not one row per scenario of scenario_probabilities"]
    for s, row in rows.items():
        if s in outcomes and not _agree(row.buyback_usd, outcomes[s].buyback_usd, MONEY_TOLERANCE_USD):
            problems.append(
                f"{where}.scenarios[{_shown_id(s)}].buyback_usd: {row.buyback_usd:,.2f}, where "
                f"outcomes[{_shown_id(s)}].buyback_usd is {outcomes[s].buyback_usd:,.2f}"
            )
        for plans, matching in (
            ("buyback_usd", "matching_buyback_usd"),
            ("buyback_discounted_usd", "matching_buyback_discounted_usd"),
        ):
            if getattr(row, matching) < getattr(row, plans) - MONEY_TOLERANCE_USD:
                problems.append(
                    f"{where}.scenarios[{_shown_id(s)}].{matching}: {getattr(row, matching):,.2f}, below the "
                    f"plan's {getattr(row, plans):,.2f}; the matching rule never bills less"
                )
    for name, field in (
        ("expected_buyback_usd", "buyback_usd"),
        ("expected_buyback_discounted_usd", "buyback_discounted_usd"),
        ("matching_expected_buyback_usd", "matching_buyback_usd"),
        ("matching_expected_buyback_discounted_usd", "matching_buyback_discounted_usd"),
    ):
        expected = sum(probabilities[s] * getattr(row, field) for s, row in rows.items())
        if not _agree(money[name], expected, MONEY_TOLERANCE_USD):
            problems.append(
                f"{where}.{name}: {money[name]:,.2f}, where its scenarios' rows weighted by probability "
                f"give {expected:,.2f}"
            )
    return problems


def plan_problems(plan: Plan) -> list[str]:
    """What makes a plan file unusable although each field has the right type: references to
    sites, rack types, tenants, quarters or scenarios it does not list, ids listed twice or that
    are no ids (they become file and Kubernetes names), counts negative or past any plan, sizes
    of zero, probabilities that are none, owners and GPU products the scenario checks refuse; then,
    once those hold, records derived from the decisions that are missing or disagree with them
    (`_derived_problems`). A plan dsx wrote has none; an edited one may."""
    known: dict[str, list[str]] = {
        "site": [s.id for s in plan.sites],
        "rack_type": [r.id for r in plan.rack_types],
        "tenant": [t.id for t in plan.tenants],
        "period": list(plan.periods),
        "scenario": list(plan.scenario_probabilities),
    }
    problems = [
        f"{name}s: '{_shown_id(value)}' is listed twice"
        for name, values in known.items()
        for value in sorted(v for v, n in Counter(values).items() if n > 1)
    ]
    # Ids become Kubernetes names and file names (`dsx render -o`, `dsx stacks write`): only the
    # ids a scenario accepts, so an edited plan cannot name a path outside the output directory.
    for name, values in known.items():
        bad = [
            v
            for v in values
            if not (
                QUARTER_RE.fullmatch(v) if name == "period" else len(v) <= ID_MAX_CHARS and _ID.fullmatch(v)
            )
        ]
        if bad:
            problems.append(
                f"{name}s: '{_shown_id(bad[0])}'"
                + (f" and {len(bad) - 1} more are" if len(bad) > 1 else " is")
                + (
                    " not a quarter such as 2027Q4"
                    if name == "period"
                    else f" not an id (lowercase letters, digits and '-', at most {ID_MAX_CHARS} characters)"
                )
            )
    if not plan.periods or not plan.sites or not plan.rack_types:
        problems.append("periods, sites and rack_types must each list at least one entry")
    if len(plan.discount_factors) != len(plan.periods):
        problems.append(
            f"discount_factors: {len(plan.discount_factors)} values for {len(plan.periods)} periods"
        )
    probabilities = list(plan.scenario_probabilities.values())
    if any(not 0 <= p <= 1 for p in probabilities) or not math.isclose(
        sum(probabilities), 1.0, abs_tol=PROBABILITY_TOLERANCE
    ):
        problems.append("scenario_probabilities: each must be within 0 and 1, and together they add up to 1")
    if not plan.hours_per_period > 0:
        problems.append(f"hours_per_period: {plan.hours_per_period:g} is not a positive number of hours")
    for rack in plan.rack_types:
        if rack.gpus_per_rack < 1 or rack.nodes_per_rack < 1 or rack.gpus_per_node < 1:
            problems.append(f"rack_types[{_shown_id(rack.id)}]: GPUs and nodes per rack must be at least 1")
        # Both go into manifests as they are, as the scenario's checks let them (`input_checks`).
        if not gpu_product_ok(rack.gpu_product):
            problems.append(
                f"rack_types[{_shown_id(rack.id)}].gpu_product: {_cut(repr(rack.gpu_product))} is not a label value"
            )
        if rack.gpus_per_rack != rack.nodes_per_rack * rack.gpus_per_node:
            # Pools are sized in nodes of gpus_per_node, quotas checked against gpus_per_rack.
            problems.append(
                f"rack_types[{_shown_id(rack.id)}]: gpus_per_rack {rack.gpus_per_rack} is not nodes_per_rack "
                f"{rack.nodes_per_rack} x gpus_per_node {rack.gpus_per_node}"
            )
    problems += _records_listed_twice(plan)
    problems += _racks_that_disagree(plan)
    for tenant in plan.tenants:
        for n, owner in enumerate(tenant.owners):
            why = owner_problem(owner)
            if why:
                problems.append(f"tenants[{_shown_id(tenant.id)}].owners[{n}]: {_cut(why)}")
    sets = {name: set(values) for name, values in known.items()}
    unknown: dict[tuple[str, str], list[str]] = {}
    for collection, fields in _REFERENCES.items():
        for n, record in enumerate(getattr(plan, collection)):
            for name in fields:
                value = getattr(record, name)
                if value not in sets[name]:
                    unknown.setdefault((name, value), []).append(f"{collection}[{n}].{name}")
            for name in _COUNTS.get(collection, ()):
                count = getattr(record, name)
                if count < 0:
                    problems.append(f"{collection}[{n}].{name}: {count} is negative")
                elif count > PLAN_COUNT_MAX:
                    problems.append(
                        f"{collection}[{n}].{name}: {magnitude(count)} is more than any plan holds "
                        f"(at most {PLAN_COUNT_MAX:,})"
                    )
    for n, row in enumerate(plan.site_periods):
        for r in row.racks_by_type:
            if r not in sets["rack_type"]:
                unknown.setdefault(("rack_type", r), []).append(f"site_periods[{n}].racks_by_type")
    for (name, value), places in unknown.items():
        more = f" and {len(places) - 2} more" if len(places) > 2 else ""
        problems.append(
            f"{', '.join(places[:2])}{more}: '{_shown_id(value)}' is not a {name} the plan lists ({name}s: "
            f"{', '.join(_shown_id(v) for v in known[name][:6]) or 'none'})"
        )
    if problems:
        return problems  # what is derived is checked against references that hold
    return _derived_problems(plan)
