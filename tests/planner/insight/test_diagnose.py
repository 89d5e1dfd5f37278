"""An infeasible scenario is diagnosed to the right site, quarter and limit."""

from __future__ import annotations

from planner.insight.diagnose import diagnose, iis_text
from tests.planner.insight.helpers import three_quarters


def _two_sites_one_overfull(data):
    beta = dict(data["sites"][0], id="beta", gpu_cap=150, existing_racks={"rack10": 20}, existing_mw=10.0)
    data["sites"].append(beta)


def test_existing_racks_above_the_gpu_cap_are_named_by_site_and_quarter():
    result = diagnose(three_quarters(_two_sites_one_overfull))
    assert not result.feasible
    assert {(c.site, c.period, c.limit) for c in result.conflicts} == {("beta", "2026Q1", "gpu_cap")}
    assert "200 GPUs" in result.conflicts[0].explanation and "gpu_cap" in result.conflicts[0].fix
    assert result.iis_constraints == ["gpu_cap[beta,0]"]
    assert "gpu_cap[beta,0]" in iis_text(result)


def test_a_feasible_scenario_has_no_conflicts():
    result = diagnose(three_quarters())
    assert result.feasible and not result.conflicts and result.status == "Optimal"
