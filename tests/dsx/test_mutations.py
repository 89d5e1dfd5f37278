"""Property: whatever is wrong with a scenario or plan file, every command either succeeds or exits
2 or 3 with one message naming the file, the place in it and a fix; no traceback; nothing written
or changed.

Mutations of the bundled example and of a plan solved from it: a value replaced by a bad one or
scaled (0, 0.01, 0.5, 2 or 100 times), a key removed or misspelt, the text cut short or given invalid bytes, the file replaced by a list,
an empty file or a directory. Each is run through `dsx.cli.run`, as the console script runs it.
Examples are derandomised and few (a valid mutation costs a solve, ~1-2 s); set DSX_MUTATIONS to
run that many random ones instead, e.g. DSX_MUTATIONS=300 pytest tests/dsx/test_mutations.py -s.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLE_SCENARIO
from tests.dsx.harness import Outcome, dsx, tree

SCENARIO_EXAMPLES = int(os.environ.get("DSX_MUTATIONS", "24"))
PLAN_EXAMPLES = int(os.environ.get("DSX_MUTATIONS", "30"))
FIXED_EXAMPLES = "DSX_MUTATIONS" not in os.environ
BAD_VALUES: list[Any] = [
    None, -1, 0, -0.5, 1e300, math.inf, -math.inf, math.nan, "", "x" * 70, "Bad_Id!", "[/b]", True, False,
    [], {}, "NO", 2**70, "2027Q5",
]  # fmt: skip
FIELD_PATH = re.compile(r"[A-Za-z_]+(\[[^\]]*\])*\.[A-Za-z_]|line \d+|\w+\[[^\]]+\]|--\w")
COUNTS: Counter[str] = Counter()
EXAMPLE_DATA = yaml.safe_load(EXAMPLE_SCENARIO.read_text())


def leaves(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value (and to each mapping and list) in parsed YAML/JSON."""
    out = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += leaves(value, (*path, index))
    return out


def _parent(data: Any, path: tuple) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


@st.composite
def data_mutation(draw: st.DrawFn, data: Any) -> tuple[str, Any, tuple]:
    """(description, mutated data, the path changed): a value replaced by a bad one or scaled, a key removed, or a
    key misspelt."""
    data = copy.deepcopy(data)
    path = draw(st.sampled_from(leaves(data)))
    parent = _parent(data, path)
    kind = draw(st.sampled_from(["replace", "replace", "scale", "remove", "misspell"]))
    current = parent[path[-1]]
    if kind == "scale" and isinstance(current, int | float) and not isinstance(current, bool):
        factor = draw(st.sampled_from([0, 0.01, 0.5, 2, 100]))  # plausible values: often a valid file
        parent[path[-1]] = type(current)(current * factor)
        return f"{path} x {factor}", data, path
    if kind in ("replace", "scale") or (kind == "misspell" and not isinstance(path[-1], str)):
        value = draw(st.sampled_from(BAD_VALUES))
        parent[path[-1]] = value
        return f"{path} = {value!r}", data, path
    if kind == "remove":
        del parent[path[-1]]
        return f"del {path}", data, path
    parent[f"{path[-1]}x"] = parent.pop(path[-1])
    return f"misspell {path}", data, (*path[:-1], f"{path[-1]}x")


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> tuple[str, bytes | None, tuple]:
    """(description, bytes, ()); None for bytes means: the path is a directory."""
    kind = draw(st.sampled_from(["truncate", "bad-bytes", "empty", "list", "directory"]))
    if kind == "truncate":
        cut = draw(st.integers(min_value=1, max_value=len(text) * 4 // 5))
        return f"truncated at {cut}", text[:cut].encode(), ()
    if kind == "bad-bytes":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        return f"\\xff\\xfe at {at}", text[:at].encode() + b"\xff\xfe" + text[at:].encode(), ()
    return kind, {"empty": b"", "list": b"- a\n- b\n", "directory": None}[kind], ()


def write(path: Path, content: bytes | None) -> None:
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)


def check(
    outcome: Outcome,
    named_file: Path,
    changed: tuple,
    before: dict,
    root: Path,
    described: str,
    as_json: bool,
) -> None:
    """Success, or exit 2/3 with one message naming the file, a place in it (for a changed value:
    the field changed or one that holds it) and a fix, and no trace of the run on disk."""
    where = f"{described}\n{outcome.text}"
    assert "Traceback" not in outcome.text, where
    if outcome.code == 0:
        COUNTS["succeeded"] += 1
        return
    COUNTS[f"exit {outcome.code}"] += 1
    assert outcome.code in (2, 3), where
    if as_json:
        error = json.loads(outcome.stderr)["error"]
        text = "\n".join([error["message"], *error["details"]])
    else:
        assert outcome.stderr.count("error:") == 1, where
        text = outcome.stderr
    assert str(named_file) in text, where
    assert "Fix:" in text, where
    assert FIELD_PATH.search(text) or "is a directory" in text or "empty" in text, where
    keys = [str(k) for k in changed if isinstance(k, str)]
    if keys and outcome.code == 2:
        assert any(key in text for key in keys) or _named_by_consequence(text), where
    assert tree(root) == before, where


def _named_by_consequence(text: str) -> bool:
    """Changes whose first casualty is another field, which the message then names: it has the
    path of that field (e.g. a longer horizon leaves each demand series too short)."""
    return bool(re.search(r"\w+\[[^\]]+\]\.\w+|\w+\.\w+:", text))


@pytest.fixture(scope="module")
def example_plan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "dsx-2026.json"
    outcome = dsx("plan", "solve", EXAMPLE_SCENARIO, "-o", path, "--no-value-of-information")
    assert outcome.code == 0, outcome.text
    return path


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print(f"\nmutations: {sum(COUNTS.values())} runs, {dict(sorted(COUNTS.items()))}")


SCENARIO_COMMANDS = {
    "solve": lambda f, out: ["plan", "solve", f, "-o", out / "plan.json", "--no-value-of-information",
                             "--time-limit", "5", "--gap", "0.05"],
    "diagnose": lambda f, out: ["plan", "diagnose", f, "--iis-out", out / "iis.txt"],
    "sweep": lambda f, out: ["plan", "sweep", f, "--set", "terms.buyback_share=0.6", "-o", out / "sweep",
                             "--no-value-of-information"],
}  # fmt: skip


@settings(
    max_examples=SCENARIO_EXAMPLES,
    deadline=None,
    derandomize=FIXED_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.one_of(data_mutation(EXAMPLE_DATA), text_mutation(EXAMPLE_SCENARIO.read_text())),
    st.sampled_from(sorted(SCENARIO_COMMANDS)),
    st.booleans(),
)
def test_a_mutated_scenario_is_solved_or_refused_with_one_clear_message(mutation, command, as_json):
    described, content, changed = mutation
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "case.yaml"
        if isinstance(content, bytes | None):
            write(source, content)
        else:
            source.write_text(yaml.safe_dump(content, sort_keys=False))
        # Only the fast commands run on a scenario that may be valid; value-of-information (S + 3
        # solves) runs on text corruptions, which never leave a valid scenario.
        chosen = "value-of-information" if isinstance(content, bytes | None) and not as_json else command
        args = (
            ["plan", chosen, source]
            if chosen == "value-of-information"
            else SCENARIO_COMMANDS[chosen](source, root)
        )
        before = tree(root)
        outcome = dsx(*args, *(["--json"] if as_json else []))
        check(outcome, source, changed, before, root, f"{chosen} on {described}", as_json)


PLAN_COMMANDS = {
    "render": lambda f, out: ["render", f, "--site", "batam", "--period", "2027Q4", "-o", out / "manifests"],
    "render-stdout": lambda f, out: ["render", f, "--site", "sydney", "--period", "2026Q4", "--no-operator"],
    "stacks": lambda f, out: ["stacks", "write", f, "--dir", out / "stacks"],
    "compare": lambda f, out: ["plan", "compare", out / "good.json", f],
    "show": lambda f, out: ["plan", "show", f, "--site", "narvik"],
    "plot": lambda f, out: ["plan", "plot", f, "-o", out / "plots"],
}  # fmt: skip


@settings(
    max_examples=PLAN_EXAMPLES,
    deadline=None,
    derandomize=FIXED_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), command=st.sampled_from(sorted(PLAN_COMMANDS)), as_json=st.booleans())
def test_a_mutated_plan_is_used_or_refused_with_one_clear_message(example_plan, data, command, as_json):
    text = example_plan.read_text()
    plan_data = json.loads(text)
    described, content, changed = data.draw(st.one_of(data_mutation(plan_data), text_mutation(text)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copy(example_plan, root / "good.json")
        plan = root / "plan.json"
        if isinstance(content, bytes | None):
            write(plan, content)
        else:
            plan.write_text(json.dumps(content))
        before = tree(root)
        outcome = dsx(*PLAN_COMMANDS[command](plan, root), *(["--json"] if as_json else []))
        check(outcome, plan, changed, before, root, f"{command} on {described}", as_json)
