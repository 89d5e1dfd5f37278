"""The commands' `--json` output: what a JSON reader can parse."""

from __future__ import annotations

import json
import math
from typing import Any

import typer


def finite_or_null(node: Any) -> Any:
    """Infinite and NaN numbers as null, as a plan file writes them: json.dumps printed
    `Infinity`, which is not JSON, for the gap of a plan worth nothing against its bound."""
    if isinstance(node, float) and not math.isfinite(node):
        return None
    if isinstance(node, dict):
        return {key: finite_or_null(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [finite_or_null(value) for value in node]
    return node


def echo_json(data: Any) -> None:
    """Print `data` as JSON (indented; paths and other objects as their text)."""
    typer.echo(json.dumps(finite_or_null(data), indent=1, default=str, allow_nan=False))
