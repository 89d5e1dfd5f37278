"""Fails loudly when a kmock upgrade changes the internals tests/support/emulator.py leans on."""

from __future__ import annotations

from importlib.metadata import version

import attrs
import kmock
from kmock._internal import dicts, parsing, rendering

from tests.support.emulator import DsxEmulator


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
