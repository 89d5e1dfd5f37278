"""The operator's settings read from its environment."""

from __future__ import annotations

import pytest

from operators.config import from_environment


@pytest.mark.parametrize(("value", "level"), [(None, "baseline"), ("restricted", "restricted")])
def test_pod_security_level_comes_from_the_environment(monkeypatch, value, level) -> None:
    if value is None:
        monkeypatch.delenv("DSX_POD_SECURITY", raising=False)
    else:
        monkeypatch.setenv("DSX_POD_SECURITY", value)
    assert from_environment().pod_security == level


@pytest.mark.parametrize("value", ["privileged", "Baseline", "none"])
def test_a_pod_security_level_below_baseline_or_unknown_stops_the_operator(monkeypatch, value) -> None:
    monkeypatch.setenv("DSX_POD_SECURITY", value)
    with pytest.raises(SystemExit, match="DSX_POD_SECURITY"):
        from_environment()


def test_ingress_namespaces_can_never_be_a_tenants(monkeypatch) -> None:
    monkeypatch.setenv("DSX_INGRESS_NAMESPACES", "traefik,prometheus")
    assert {"traefik", "prometheus", "monitoring", "kube-system"} <= from_environment().protected
