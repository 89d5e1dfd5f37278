"""`dsx plan sweep -o DIR` and `dsx plan batch -o DIR`: a directory of results kept to one run.

A sweep or batch writes its plans one by one as they finish, then (a sweep) sweep.csv and the
heat-map. Run again into the same directory, it left the last run's files beside its own: a
point with no plan this time kept the last run's plan, and an old sweep.png stayed where this
run drew none, both contradicting the new sweep.csv. So, as `dsx render -o DIR` does
(`dsx.commands.render_dir`, whose index this shares), a run records in DIR what it wrote
(`.dsx-sweep`, `.dsx-batch`), and when it is done removes the files the last run recorded that
it did not write again, if unchanged since. It never removes a file it did not write; it replaces
a regular file where one of its own goes, as `dsx plan solve -o` does; and anything else there (a
directory, a symbolic link, a device, a FIFO) is refused before any solve, as is an output file
that is one of the run's inputs. A run that stops early (an error, Ctrl-C) removes nothing and
records what it wrote beside what the last run left.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dsx.commands.render_dir import SHOWN, IndexKind, digest, file_digest, read_index, shown
from planner.errors import UserError
from planner.files import not_regular, refuse_overwriting_inputs, write_atomic

SWEEP_INDEX = IndexKind(
    ".dsx-sweep",
    "dsx-sweep-index",
    re.compile(r"[A-Za-z0-9_.=-]+\.json|sweep\.csv|sweep\.png"),  # `sweep.point_label` + ".json"
    "dsx plan sweep",
    "plans",
)
BATCH_INDEX = IndexKind(
    ".dsx-batch", "dsx-batch-index", re.compile(r"[^/]+\.json"), "dsx plan batch", "plans"
)


@dataclass
class ResultsDir:
    """An output directory claimed for one run (`claim`): `write` each file, `record` one another
    module wrote, then `finish` (or `stopped`, on the way out of a failed run)."""

    out_dir: Path
    index: IndexKind
    earlier: dict[str, str]
    """The last run's files (name -> digest) that are still as it wrote them: this run's to remove."""
    written: dict[str, str] = field(default_factory=dict)

    def write(self, name: str, text: str) -> None:
        """Write `name` (atomically; a failure is a `UserError` naming it) and record it."""
        write_atomic(self.out_dir / name, text)
        self.written[name] = digest(text.encode("utf-8"))

    def record(self, name: str) -> None:
        """Record `name`, written by another module (the heat-map), as this run's."""
        self.written[name] = file_digest(self.out_dir / name)

    def finish(self) -> list[Path]:
        """Remove the last run's files this one did not write again (if still unchanged) and
        record this run's; the paths removed."""
        removed = []
        for name, was in sorted(self.earlier.items()):
            path = self.out_dir / name
            if name in self.written or not _unchanged(path, was):
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                continue  # left, and recorded no more: the next run will not take it for its own
            removed.append(path)
        self._write_index(self.written)
        return removed

    def stopped(self) -> None:
        """On the way out of a run that failed or was stopped: record what it wrote beside the
        last run's files, so the next run may replace them all; remove nothing. Quiet: the
        reason the run stopped is what the user needs to see."""
        if self.written:
            with contextlib.suppress(UserError, OSError):
                self._write_index({**self.earlier, **self.written})

    def _write_index(self, files: dict[str, str]) -> None:
        record = {
            "kind": self.index.kind,
            "note": f"written by {self.index.writer}: the files it removes on its next run here "
            "where that run does not write them again",
            "files": dict(sorted(files.items())),
        }
        write_atomic(self.out_dir / self.index.name, json.dumps(record, indent=1) + "\n")


def _unchanged(path: Path, was: str) -> bool:
    try:
        return not_regular(path, follow_links=False) is None and path.exists() and file_digest(path) == was
    except OSError:
        return False


def claim(
    out_dir: Path,
    names: Sequence[str],
    index: IndexKind,
    inputs: Sequence[tuple[str, str | Path | None]],
    *,
    option: str = "-o",
) -> ResultsDir:
    """Refuse, before any solve, every way writing `names` into `out_dir` could fail or destroy
    what is not the run's: one of them is one of the run's `inputs`; one stands where anything
    but a regular file is (a sweep died at its third point on a directory named as that point's
    plan, losing the points after it); the index is not one dsx wrote. (The directory itself,
    and the names' lengths, the command checks first.)"""
    refuse_overwriting_inputs(
        out_dir, [out_dir / name for name in [*names, index.name]], inputs, option=option
    )
    if not out_dir.is_dir():
        return ResultsDir(out_dir, index, {})
    recorded, _ = read_index(out_dir, option=option, index=index)
    in_the_way = [
        f"{shown(out_dir, name)}: {odd}, where {index.writer} writes a file"
        for name in names
        if (odd := not_regular(out_dir / name, follow_links=False)) is not None
    ]
    if in_the_way:
        more = [f"... and {len(in_the_way) - SHOWN} more"] if len(in_the_way) > SHOWN else []
        raise UserError(
            f"{option} {out_dir}: holds what {index.writer} may not replace, where its files go",
            details=[
                *in_the_way[:SHOWN],
                *more,
                f"Fix: move or remove them, or choose another {option} directory",
            ],
        )
    earlier = {name: was for name, was in recorded.items() if _unchanged(out_dir / name, was)}
    return ResultsDir(out_dir, index, earlier)
