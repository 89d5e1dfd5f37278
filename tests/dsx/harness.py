"""Run `dsx` command lines in-process as the console script does, and see what they left behind."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from dsx import cli


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def dsx(*args: str | Path) -> Outcome:
    """`dsx ARGS` through `cli.run` (what `main` exits with); any exception escaping is a bug."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.run([str(a) for a in args])
    return Outcome(code, out.getvalue(), err.getvalue())


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and modification time: equal snapshots mean nothing
    was written, created or changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            stat = path.lstat()
            out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return out


def assert_one_clear_error(outcome: Outcome, *, code: int = 2, names: tuple[str, ...] = ()) -> None:
    """Exit `code`, one `error:` message with a `Fix:`, naming each of `names`, and no traceback."""
    assert outcome.code == code, outcome.text
    assert "Traceback" not in outcome.text
    assert outcome.stderr.count("error:") == 1, outcome.stderr
    assert "Fix:" in outcome.stderr, outcome.stderr
    for name in names:
        assert name in outcome.stderr, (name, outcome.stderr)
