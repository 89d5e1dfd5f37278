"""Write or update `stacks/Pulumi.<site>.yaml` for every site in a plan.

Only the keys dsx owns (`MANAGED_KEYS`) are set; every other key a platform engineer set by hand
(kubeconfig secrets, context, sizing) stays, and so do comments: the file is edited line by line
and falls back to a plain YAML rewrite (keys kept, comments lost) only for layouts it cannot edit.
Every file's new text is made and every target checked before the first is written, and a failed
move puts back what the run had already changed: the stacks never disagree about the plan.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.checks import (
    BACKENDS,
    Origin,
    PlanMismatchError,
    StackConfigError,
    check_plan_matches,
    check_settings,
)
from infra.desired_state import desired_state
from planner.files import (
    AsWritten,
    NestedTooDeeply,
    check_output_path,
    load_yaml_text,
    read_plan,
    refuse_overwriting_inputs,
    temporary_beside,
    yaml_error_place,
)
from planner.schema.plan import Plan

MANAGED_KEYS = ("dsx:plan", "dsx:site", "dsx:period", "dsx:nodePoolBackend")
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")
"""The project file pulumi looks for; the program resolves `dsx:plan` against its directory."""
DEFAULT_NAMESPACE_STYLE = "tenant"
"""`dsx:namespaceStyle` when a stack does not set it, as `infra.settings.read_settings` reads it."""
_TOP_LEVEL = re.compile(r"^\S")
_CONFIG_LINE = re.compile(r"^config:\s*(#.*)?$")
_LINE_BREAK = re.compile(r"(\r\n|\n|\r)")
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_SINGLE_QUOTED = re.compile(r"'(?:[^']|'')*'")


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


def _split_lines(text: str) -> tuple[list[str], list[str], str]:
    """`text` as lines, each line's own ending, and the file's line ending (its first line's): only
    CR LF, LF and CR end a line (`str.splitlines` also broke lines at form feeds)."""
    parts = _LINE_BREAK.split(text)
    lines, endings = parts[0::2], parts[1::2]
    if lines and not lines[-1]:
        lines.pop()  # the text after the last line break
    return lines, endings, endings[0] if endings else "\n"


def _value_and_comment(rest: str) -> tuple[str, str]:
    """A `key: value  # comment` line's text after `key: `, split where its comment starts (the
    spaces before it kept with it). As YAML reads it: a plain value ends at the first ` #`, a
    quoted one at its closing quote. Linear in the line (a hostile line is no slower to read)."""
    start = 0
    if rest[:1] in ('"', "'"):
        closed = (_DOUBLE_QUOTED if rest[0] == '"' else _SINGLE_QUOTED).match(rest)
        if closed is None:
            return rest.rstrip(), ""
        start = closed.end()
    elif rest[:1] in ("!", "&", "*"):
        return rest.rstrip(), ""  # a tag, anchor or alias: no comment is looked for
    at = next(
        (i for i in range(start, len(rest)) if rest[i] == "#" and (i == 0 or rest[i - 1] in " \t")),
        None,
    )
    if at is None:
        return rest.rstrip(), ""
    value = rest[:at].rstrip()
    return value, rest[len(value) :]


def _line_edit(text: str, values: dict[str, str]) -> str | None:
    """Set each key in place inside the top-level `config:` block, keeping a comment after a
    value and the file's line endings; None if the layout is unusual."""
    lines, endings, newline = _split_lines(text)
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
            rest = (pattern.match(lines[found[0]]).group(1) or "").lstrip()  # type: ignore[union-attr]
            old, comment = _value_and_comment(rest)
            if (not old and not comment) or old.startswith(("|", ">", "{", "[")):
                return None  # a block or flow value: leave it to the YAML rewrite
            gap = "" if old or not comment else " "  # `key:  # note` had no value before it
            lines[found[0]] = f"{indent}{key}: {_scalar(value)}{gap}{comment}"
        else:
            inserted.append(f"{indent}{key}: {_scalar(value)}")
    endings += [newline] * (len(lines) - len(endings))  # the last line may have had none
    lines[end:end] = inserted
    endings[end:end] = [newline] * len(inserted)
    return "".join(line + ending for line, ending in zip(lines, endings, strict=True))


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
    return yaml.safe_dump(expected, sort_keys=False).replace("\n", _split_lines(text)[2])


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


def project_root_of(stacks_dir: Path) -> Path | None:
    """The directory of the Pulumi.yaml the stacks belong to: the nearest at or above
    `stacks_dir`, as pulumi finds its project from where it runs. None if there is none."""
    start = Path(os.path.abspath(stacks_dir))  # lexical, as stackConfigDir is read from Pulumi.yaml
    return next(
        (d for d in (start, *start.parents) if any((d / name).is_file() for name in PROJECT_FILES)),
        None,
    )


def plan_root(stacks_dir: Path) -> Path:
    """What `dsx:plan` is written relative to: the project root (`project_root_of`), which the
    program resolves it against. Without a Pulumi.yaml yet, the directory holding `stacks_dir`,
    where the bundled layout puts it (`stackConfigDir: stacks` beside Pulumi.yaml)."""
    return project_root_of(stacks_dir) or Path(os.path.abspath(stacks_dir)).parent


def no_project_note(stacks_dir: Path) -> str | None:
    """What to tell the user when no Pulumi.yaml says what `dsx:plan` is relative to."""
    if project_root_of(stacks_dir) is not None:
        return None
    root = plan_root(stacks_dir)
    return (
        f"note: no {PROJECT_FILES[0]} at or above {stacks_dir}, so dsx:plan is written relative to "
        f"{root}: put {PROJECT_FILES[0]} there, with stackConfigDir: "
        f"{Path(os.path.abspath(stacks_dir)).relative_to(root)}"
    )


def stacks_dir_option(value: str) -> Path:
    """`--dir` as a path; an empty one is refused, not read as the current directory (an unset
    `--dir "$STACKS"` wrote every stack file there)."""
    if not value:
        raise StackConfigError(
            "--dir '': an empty path, not a directory",
            details=["Fix: name the stack config directory, e.g. --dir stacks (or --dir . for this one)"],
        )
    return Path(value)


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


def _namespace_style(current: dict[str, Any], backend: str, path: Path, site: str, plan_ref: str) -> str:
    """The stack's own `dsx:namespaceStyle`, read as the program reads it, refused if unknown:
    the names `pulumi up` makes, and so the plans it refuses, depend on it."""
    raw = current.get("dsx:namespaceStyle")
    style = str(raw) if raw not in (None, "") else DEFAULT_NAMESPACE_STYLE
    check_settings(backend, style, Origin.for_stack(site, str(path), plan_ref))
    return style


def _check_plan_fits_stack(
    plan: Plan, site: str, period: str, style: str, path: Path, origin: Origin
) -> None:
    """`check_plan_matches` with the stack's namespace style; when that style alone is why the
    plan is refused, the error says where it is set."""
    try:
        check_plan_matches(plan, site, period, origin, namespace_style=style)
    except PlanMismatchError as error:
        if style == DEFAULT_NAMESPACE_STYLE:
            raise
        try:
            check_plan_matches(plan, site, period, origin, namespace_style=DEFAULT_NAMESPACE_STYLE)
        except PlanMismatchError:
            raise error from None
        *shown, fix = error.details or [""]
        raise PlanMismatchError(
            error.message,
            details=[
                *shown,
                f"{path} sets dsx:namespaceStyle {style}, so each tenant's namespace is <tenant>-{site}",
                f"{fix} (or, if {site} has a cluster of its own: "
                f"pulumi config set dsx:namespaceStyle {DEFAULT_NAMESPACE_STYLE} --stack {site})",
            ],
        ) from None


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

    Each site's plan is checked as `pulumi up` would check it (`infra.checks.check_plan_matches`
    with the stack's own `dsx:namespaceStyle`: verified, names that fit, quotas that fit the
    pools; then the pools and tenants against the CRDs' schemas, `infra.crd_fit`) before any text
    is made, so a plan `pulumi up` or `dsx render` refuses for its own sake is not written into a
    stack either. (The stack's other settings, such as Karpenter instance types, are checked by
    `pulumi up` against the plan, not here.)"""
    out = []
    for site in (s.id for s in plan.sites):
        text = existing.get(site)
        path = stacks_dir / f"Pulumi.{site}.yaml"
        current = _current_config(text, path) if text else {}
        values = stack_values(plan, plan_ref, site, current, period, backend)
        style = _namespace_style(current, values["dsx:nodePoolBackend"], path, site, plan_ref)
        origin = Origin.for_cli(plan_shown or plan_ref)
        _check_plan_fits_stack(plan, site, values["dsx:period"], style, path, origin)
        # the CRDs' bounds (GPUs per node, racks, display names), as `pulumi up` checks them
        desired_state(plan, site, values["dsx:period"], namespace_style=style, origin=origin)  # type: ignore[arg-type]
        new = updated_stack_text(text, values, path) if text else new_stack_text(site, values)
        out.append(StackFile(site, path, new, created=text is None, changed=new != text))
    return out


def _write_target(path: Path) -> Path:
    """The file a stack write replaces: `path`, or the file a symbolic link there leads to, so
    the link stays a link (as `pulumi config set` leaves it)."""
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except OSError as error:
        gone = isinstance(error, FileNotFoundError)
        raise StackConfigError(
            f"{path}: a symbolic link to {os.readlink(path)}, which "
            + ("does not exist" if gone else f"does not lead to a file ({error.strerror or error})"),
            details=[f"Fix: point {path} at an existing stack file, or remove the link and re-run"],
        ) from None


def _shown(path: Path, target: Path) -> str:
    return str(path) if path == target else f"{path} (a link to {target})"


def _read_stack(path: Path, target: Path) -> str | None:
    """The stack file's text as it is (line endings included), or None if there is none. Only a
    regular file is read: reading a named pipe would wait for ever."""
    fix = f"Fix: repair {path} (or move it aside and re-run dsx stacks write)"
    try:
        mode = target.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a named pipe, socket or device"
            raise StackConfigError(f"{_shown(path, target)}: is {kind}, not a stack file", details=[fix])
        return target.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise StackConfigError(
            f"{_shown(path, target)}: cannot read the stack file ({getattr(error, 'strerror', None) or error})",
            details=[fix],
        ) from None


def _refuse_shared_targets(targets: dict[Path, Path]) -> None:
    """Two sites' stack files that are one file (links to it) would each overwrite the other."""
    seen: dict[Path, Path] = {}
    for path, target in targets.items():
        if target in seen:
            raise StackConfigError(
                f"{seen[target]} and {path} are one file ({target}); each site needs its own",
                details=["Fix: make each a file of its own (or a link to a file of its own) and re-run"],
            )
        seen[target] = path


def _refuse_unwritable(path: Path, target: Path) -> None:
    """Refuse, before anything is written, a file or directory this run could not write: the
    permission or immutable flag the owner set is kept, as `pulumi config set` would fail."""
    shown = _shown(path, target)
    fix = (
        f"Fix: make {target} writable (chmod u+w; chattr -i if it is immutable) or move it aside, "
        "then re-run dsx stacks write"
    )
    if target.exists() and not os.access(target, os.W_OK):
        raise StackConfigError(f"{shown}: the file is not writable", details=[fix])
    directory = next(d for d in (target.parent, *target.parent.parents) if d.exists())
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise StackConfigError(
            f"{shown}: the directory {directory} is not writable",
            details=[f"Fix: make {directory} writable, or write the stacks elsewhere with --dir"],
        )


@dataclass
class _Staged:
    """One changed stack file, its new text in a temporary file beside it, and for a file that
    existed a copy of its old text, to put back if a later file cannot be moved into place."""

    path: Path
    target: Path
    new: Path
    old: Path | None


def _remove(paths: list[Path | None]) -> None:
    for path in paths:
        if path is not None:
            path.unlink(missing_ok=True)


def _missing_dirs(targets: list[Path]) -> list[Path]:
    """The directories writing `targets` creates, deepest first (removed again if it fails)."""
    missing = {d for t in targets for d in (t.parent, *t.parent.parents) if not d.exists()}
    return sorted(missing, key=lambda d: len(d.parts), reverse=True)


def _write_all(changed: list[tuple[StackFile, Path, str | None]]) -> None:
    """Write every changed stack file or none: stage each in a temporary file beside it, then
    move them into place; if a move fails, the files this run already moved are put back."""
    made_dirs = _missing_dirs([target for _, target, _ in changed])
    staged: list[_Staged] = []
    moved: list[_Staged] = []
    at = (Path(), Path())  # the stack file (as named, and the file written) being worked on
    try:
        for f, target, old_text in changed:
            at = (f.path, target)
            target.parent.mkdir(parents=True, exist_ok=True)
            like = None if old_text is None else target.stat()
            old = (
                None
                if old_text is None
                else temporary_beside(target, old_text.encode("utf-8"), like, keep_owner=True)
            )
            staged.append(
                _Staged(
                    f.path,
                    target,
                    temporary_beside(target, f.text.encode("utf-8"), like, keep_owner=True),
                    old,
                )
            )
        for s in staged:
            at = (s.path, s.target)
            os.replace(s.new, s.target)
            moved.append(s)
    except BaseException as error:
        not_undone = _put_back(moved)
        _remove([p for s in staged for p in (s.new, s.old) if p not in not_undone])
        for directory in made_dirs:
            with contextlib.suppress(OSError):  # only if empty: what was not undone stays
                directory.rmdir()
        if not isinstance(error, OSError):
            raise
        raise _write_error(*at, error, not_undone) from None
    _remove([s.old for s in staged])


def _put_back(moved: list[_Staged]) -> list[Path]:
    """Undo the moves made, newest first: the old text back, a new file removed. Returns the
    files left changed (a copy of the old text, or the new file), to be named and kept."""
    left = []
    for s in reversed(moved):
        try:
            if s.old is None:
                s.target.unlink()
            else:
                os.replace(s.old, s.target)
        except OSError:
            left.append(s.old or s.target)
    return left


def _write_error(path: Path, target: Path, error: OSError, not_undone: list[Path]) -> StackConfigError:
    return StackConfigError(
        f"{_shown(path, target)}: cannot be written ({error.strerror or error})",
        details=[
            "no stack file was changed"
            if not not_undone
            else "these could not be undone (an old text kept, or a new file): "
            + ", ".join(map(str, not_undone)),
            f"Fix: make {target} replaceable (writable, not immutable or append-only: chattr -i -a; "
            "space on its disk) or move it aside, then re-run dsx stacks write",
        ],
    )


def write_stacks(
    plan_path: Path,
    stacks_dir: Path,
    *,
    period: str | None = None,
    backend: str | None = None,
    project_root: Path | None = None,
) -> list[StackFile]:
    """The I/O edge of `stack_files`: read the plan and the current files, check every target,
    then write what changed, all of it or none. `dsx:plan` is written relative to `project_root`,
    by default `plan_root(stacks_dir)`."""
    check_output_path(stacks_dir, directory=True, option="--dir")
    plan = read_plan(plan_path)
    paths = {s.id: stacks_dir / f"Pulumi.{s.id}.yaml" for s in plan.sites}
    targets = {path: _write_target(path) for path in paths.values()}  # links checked first
    refuse_overwriting_inputs(
        stacks_dir, list(paths.values()), [("the plan file", plan_path)], option="--dir"
    )
    _refuse_shared_targets(targets)
    existing = {site: _read_stack(path, targets[path]) for site, path in paths.items()}
    files = stack_files(
        plan,
        plan_reference(plan_path, project_root or plan_root(stacks_dir)),
        stacks_dir,
        existing,
        period=period,
        backend=backend,
        plan_shown=str(plan_path),
    )
    changed = [(f, targets[f.path], existing[f.site]) for f in files if f.changed]
    for f, target, _ in changed:
        _refuse_unwritable(f.path, target)
    _write_all(changed)
    return files
