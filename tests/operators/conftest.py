"""Fixtures for the operator's lifecycle tests: an emulator per test, a client, the operator."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from operators.kube import Kube
from tests.support.emulator import EmulatorThread, running_operator

EXAMPLES = Path(__file__).resolve().parents[2] / "operators" / "manifests" / "examples"


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()))


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector as the API server evaluates it (matchLabels and matchExpressions)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        value, values = labels.get(e["key"]), e.get("values") or []
        ok = {
            "In": value is not None and value in values,
            "NotIn": value is None or value not in values,
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[e["operator"]]
        if not ok:
            return False
    return True


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float = 30.0,  # returns as soon as it holds; generous for a loaded CI machine
    what: str = "condition",
    state: Callable[[], Any] | None = None,
) -> Any:
    """Poll until `predicate` returns something truthy; the operator works asynchronously."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last state: {state()}" if state else ""
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{seen}")
        time.sleep(0.05)


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as em:
        yield em


@pytest.fixture
def kube(emulator: EmulatorThread) -> Kube:
    configuration = k8s.Configuration()
    configuration.host = emulator.url
    client = Kube(k8s.ApiClient(configuration))
    # The operator's own namespace, where Cluster API objects live, exists in a real cluster.
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dsx-system"}})
    return client


@pytest.fixture
def operator(emulator: EmulatorThread, kube: Kube) -> Iterator[Any]:
    # Stopping takes ~5 s: Kopf waits that long for watch streams the emulator keeps open.
    with running_operator(emulator.url) as runner:
        yield runner
    assert runner.exception is None, runner.output[-2000:]
