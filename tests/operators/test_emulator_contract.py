"""Fails loudly when a kmock upgrade changes the internals tests/support/emulator.py leans on."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import attrs
import kmock
from kmock._internal import apps, dicts, dsl, parsing, rendering

from operators.kube import Kube
from tests.support.emulator import DsxEmulator, EmulatorThread, _MatchingInConstantTime, _sees


def test_kmock_is_the_pinned_version() -> None:
    assert version("kmock") == "0.8", "tests/support/emulator.py is written against kmock 0.8 internals"


def test_internals_the_emulator_extends_still_exist() -> None:
    assert hasattr(kmock.KubernetesEmulator, "_handle")
    assert hasattr(kmock.KubernetesEmulator, "_serve_list")
    assert hasattr(dicts, "patch_dict")
    fields = set(attrs.fields_dict(rendering.Request))
    assert {"data", "action", "resource", "namespace", "name", "subresource", "params"} <= fields
    assert parsing.parse_path("/api/v1/namespaces/x").plural == "namespaces"  # patched by the support module
    assert parsing.parse_path("/api/v1/namespaces/x/pods").plural == "pods"
    assert issubclass(DsxEmulator, kmock.KubernetesEmulator)


def test_the_handler_the_emulator_replaces_still_asks_membership_the_way_sees_answers() -> None:
    """`_MatchingInConstantTime._handle` is kmock's `RawHandler._handle` with one test swapped."""
    source = inspect.getsource(apps.RawHandler._handle)
    assert "if request in payload._source and not payload._disabled.is_set():" in source
    assert DsxEmulator.__mro__.index(_MatchingInConstantTime) < DsxEmulator.__mro__.index(apps.RawHandler)


def test_sees_answers_as_kmocks_own_membership_for_every_request_and_reaction(
    emulator: EmulatorThread, kube: Kube
) -> None:
    em = emulator.emulator
    assert em is not None
    em["get /api/v1/namespaces/dsx-system"][:2] << 503  # a slice: asked kmock's own way
    em["get /api/v1/namespaces/absent"] << 404  # a plain filter: the constant-time way
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
    assert kube.get("Namespace", "dsx-system") is not None  # after the slice's two 503s
    assert kube.get("Namespace", "absent") is None
    kube.list("Namespace")
    kube.patch("Namespace", "a", {"metadata": {"labels": {"x": "y"}}})
    kube.delete("Namespace", "a")
    requests = list(em._requests)
    assert len(requests) >= 8
    chains = [payload._source for payload in em._payloads]
    assert any(type(c) is dsl.Slicer for c in chains) and any(type(c) is dsl.Filter for c in chains)
    answers = [[_sees(c, r) for c in chains] for r in requests]
    assert answers == [[r in c for c in chains] for r in requests]
    assert all(any(row) for row in answers)  # every request met some reaction
