"""`dsx render -o DIR`: the manifests written as one set, replacing only what an earlier render wrote.

`kubectl apply -f DIR` applies every `.yaml`, `.yml` and `.json` file in DIR, hidden ones too. A
file left by an earlier render would be applied with the new ones (a stale GpuNodePool numbered
after the new one won, a tenant dropped from the plan came back), and a file someone else put
there is not ours to delete. So a render records what it wrote in `INDEX_NAME` (no such suffix:
kubectl skips it); the next render into DIR replaces exactly those files, if unchanged, as a set,
and refuses, before writing anything, a directory holding anything else kubectl would apply.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from planner.errors import UserError
from planner.files import refuse_overwriting_inputs, temporary_beside

INDEX_NAME = ".dsx-render"
"""The record of a render's files in its directory; JSON, but not named `.json` (kubectl would
apply it)."""

INDEX_KIND = "dsx-render-index"
INDEX_MAX_BYTES = 4 << 20
"""Largest index read: one names each file a render wrote (about 100 bytes each)."""

SAFE_FILE_NAME = re.compile(r"[0-9]{3,}-[a-z0-9][-a-z0-9.]*")
"""A manifest's file name: its number, kind and name, which are Kubernetes names."""

OWNED_NAME = re.compile(SAFE_FILE_NAME.pattern + r"\.(?:yaml|json)")
"""What a render may have written: an index naming anything else (a README) does not make it ours."""

APPLIED_SUFFIXES = (".yaml", ".yml", ".json")
"""What `kubectl apply -f DIR` reads (matched here regardless of case, as other tools may)."""

SHOWN = 10
"""Most files one refusal lists."""


@dataclass(frozen=True)
class Survey:
    """An existing output directory: the files an earlier render wrote and nobody changed since
    (ours, to be replaced or removed), and that render's site and period."""

    ours: frozenset[str]
    earlier: str


@dataclass(frozen=True)
class Rendered:
    """The earlier render's files a render removed, and that render's site and period."""

    removed: list[Path]
    earlier: str


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def write_render(
    out_dir: Path,
    files: Sequence[tuple[str, str]],
    record: dict[str, str],
    inputs: Sequence[tuple[str, Path]],
    *,
    option: str = "-o",
) -> Rendered:
    """Write `files` (name, text) into `out_dir` as the whole of its render, with `record` (plan,
    site, period) in the index; return what it removed of an earlier render. Every refusal comes
    before the first write, and a failure while writing puts the directory back as it was."""
    names = [name for name, _ in files]
    refuse_overwriting_inputs(
        out_dir, [out_dir / name for name in [*names, INDEX_NAME]], inputs, option=option
    )
    found = survey(out_dir, names, option=option)
    refuse_overwriting_inputs(out_dir, [out_dir / name for name in sorted(found.ours)], inputs, option=option)
    index = {
        "kind": INDEX_KIND,
        "note": "written by dsx render: the files it replaces or removes on its next render here",
        **record,
        "files": {name: digest(text.encode()) for name, text in files},
    }
    index_text = json.dumps(index, indent=1) + "\n"
    stale = sorted(found.ours - set(names))
    replace_files(out_dir, [*files, (INDEX_NAME, index_text)], stale)
    return Rendered([out_dir / name for name in stale], found.earlier)


def survey(out_dir: Path, names: Sequence[str], *, option: str = "-o") -> Survey:
    """What in `out_dir` this render may replace or remove; a `UserError` listing every file in
    the way: one kubectl would apply that no render wrote or that was edited since, and anything
    not a regular file where a manifest goes."""
    if not out_dir.is_dir():
        return Survey(frozenset(), "")
    index, earlier = read_index(out_dir, option=option)
    targets = set(names)
    ours: set[str] = set()
    problems: list[str] = []
    try:
        with os.scandir(out_dir) as entries:
            listed = sorted(entries, key=lambda entry: entry.name)
    except OSError as error:
        raise UserError(
            f"{option} {out_dir}: cannot list what the directory holds ({error.strerror})",
            details=[f"Fix: make it readable, or choose another {option} directory"],
        ) from None
    for entry in listed:
        name = entry.name
        if name == INDEX_NAME:
            continue
        regular = entry.is_file(follow_symlinks=False)
        if not (name in targets or name.lower().endswith(APPLIED_SUFFIXES)):
            continue  # a README, .gitkeep, a subdirectory: kubectl skips it, and so do we
        if entry.is_dir(follow_symlinks=False) and name not in targets:
            continue  # `kubectl apply -f DIR` does not descend into it
        why = ""
        if not regular:
            kind = "a directory" if entry.is_dir(follow_symlinks=False) else "not a regular file"
            kind = "a symbolic link" if entry.is_symlink() else kind
            why = f"is {kind}" + (", where a manifest is to be written" if name in targets else "")
        elif name in index:
            try:
                unchanged = file_digest(Path(entry.path)) == index[name]
            except OSError as error:
                why = f"cannot be read ({error.strerror}), so whether dsx render wrote it is unknown"
            else:
                if unchanged:
                    ours.add(name)
                    continue
                why = "was edited since dsx render wrote it"
        else:
            why = f"was not written by dsx render, and `kubectl apply -f {out_dir}` would apply it too"
        problems.append(f"{shown(out_dir, name)}: {why}")
    if problems:
        more = [f"... and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []
        raise UserError(
            f"{option} {out_dir}: holds files dsx render does not own, where its manifests go",
            details=[
                *problems[:SHOWN],
                *more,
                f"Fix: move or remove them, or choose a new or empty {option} directory (a render "
                f"replaces only the files an earlier render wrote there, listed in its {INDEX_NAME})",
            ],
        )
    return Survey(frozenset(ours), earlier)


@dataclass(frozen=True)
class IndexKind:
    """One command's record of the files it wrote in a directory: its file name, the `kind` it
    holds, the names the command may write (an index naming anything else does not make it
    ours) and the command, for messages. `dsx plan sweep` and `batch` keep one too
    (`dsx.commands.results_dir`)."""

    name: str
    kind: str
    owned: re.Pattern[str]
    writer: str
    files: str = "manifests"


RENDER_INDEX = IndexKind(INDEX_NAME, INDEX_KIND, OWNED_NAME, "dsx render")


def read_index(
    out_dir: Path, *, option: str = "-o", index: IndexKind = RENDER_INDEX
) -> tuple[dict[str, str], str]:
    """The file names and digests the last run into `out_dir` recorded, and (a render's) its
    site and period; empty where none did. An index that is not one dsx wrote is refused:
    without it, nothing says which files are ours."""
    path = out_dir / index.name
    try:
        info = path.lstat()
    except FileNotFoundError:
        return {}, ""
    data: object = None
    if stat.S_ISREG(info.st_mode) and info.st_size <= INDEX_MAX_BYTES:
        with contextlib.suppress(OSError, UnicodeDecodeError, ValueError, RecursionError):
            data = json.loads(path.read_text(encoding="utf-8"))
    record = data if isinstance(data, dict) and data.get("kind") == index.kind else {}
    files = record.get("files")
    if not (
        isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise UserError(
            f"{option} {out_dir}: {path} is not the index {index.writer} writes, so which files here "
            f"an earlier run wrote is unknown",
            details=[
                f"Fix: move or remove {path} and the {index.files} with it, or choose a new or empty "
                f"{option} directory"
            ],
        )
    earlier = " ".join(str(record.get(key, "")) for key in ("site", "period")).strip()
    if not (earlier.isprintable() and len(earlier) <= 80):
        earlier = ""  # only ever shown: an edited index could hold terminal escapes
    return {name: value for name, value in files.items() if index.owned.fullmatch(name)}, earlier


def shown(directory: Path, name: str) -> str:
    """A file name from the disk, for a message: escaped where it holds what a terminal would act on."""
    return str(directory / name) if name.isprintable() else f"{directory}/{name!a}"


def replace_files(out_dir: Path, files: Sequence[tuple[str, str]], stale: Sequence[str]) -> None:
    """Write `files` and remove `stale` as one step as far as a directory allows: every file is
    written to a temporary file first, the files it replaces or removes are moved aside, then
    the new ones into place. Any failure undoes what this run did and names the real file."""
    missing = [d for d in [out_dir, *out_dir.parents] if not d.exists()]
    temps: dict[str, Path] = {}
    aside: dict[str, Path] = {}
    placed: list[str] = []
    current = out_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files:
            current = out_dir / name
            temps[name] = write_temp(out_dir, name, text)
        for name in [*(name for name, _ in files), *stale]:
            current = out_dir / name
            if current.is_file() or current.is_symlink():
                aside[name] = move_aside(out_dir, name)
        for name, temp in temps.items():
            current = out_dir / name
            os.replace(temp, current)
            placed.append(name)
    except BaseException as error:
        undone = undo(out_dir, temps, aside, placed, missing)
        if not isinstance(error, OSError):
            raise
        raise UserError(
            f"{current}: cannot be written ({error.strerror or error})",
            details=[
                (
                    f"{out_dir} is as it was before this render"
                    if not undone
                    else f"could not restore {', '.join(undone)}: re-run the render once the cause is fixed"
                ),
                f"Fix: check the free space and permissions of {out_dir}, or choose another -o directory",
            ],
        ) from None
    for path in aside.values():
        with contextlib.suppress(OSError):
            path.unlink()


def write_temp(directory: Path, name: str, text: str) -> Path:
    """`text` in a new hidden file beside `name`'s, with the mode `name` has, else an ordinary
    file's (`planner.files.temporary_beside`)."""
    try:
        like: os.stat_result | None = os.stat(directory / name)
    except OSError:
        like = None
    return temporary_beside(directory / name, text.encode("utf-8"), like)


def move_aside(directory: Path, name: str) -> Path:
    """Rename `name` to a new hidden name (`.old`, which kubectl skips) it can be restored from."""
    fd, kept = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".old")
    os.close(fd)
    try:
        os.replace(directory / name, kept)
    except BaseException:
        Path(kept).unlink(missing_ok=True)
        raise
    return Path(kept)


def undo(
    out_dir: Path, temps: dict[str, Path], aside: dict[str, Path], placed: list[str], missing: list[Path]
) -> list[str]:
    """Put `out_dir` back: new files out, moved-aside ones back, temporary files and the
    directories this run made gone. Returns the files it could not restore."""
    failed = []
    for name in placed:
        with contextlib.suppress(OSError):
            (out_dir / name).unlink()
    for name, kept in aside.items():
        try:
            os.replace(kept, out_dir / name)
        except OSError:
            failed.append(str(out_dir / name))
    for temp in temps.values():
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
    for directory in missing:  # deepest first
        with contextlib.suppress(OSError):
            directory.rmdir()
    return failed
