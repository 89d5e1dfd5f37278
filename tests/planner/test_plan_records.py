"""`read_plan` refuses a plan whose derived records (summary rows, outcomes, risk and party
figures) are missing or disagree with its decisions: readers trust them as they are, and an edited
one made `plot` fail with a traceback and `compare` report racks that had not changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planner.errors import PlanFileError
from planner.files import plan_problems, read_plan, write_plan
from planner.schema.plan import Plan
from tests.planner.insight.helpers import solved, three_quarters


@pytest.fixture(scope="module")
def plan() -> Plan:
    return solved(three_quarters())


def _edited(plan: Plan, path: Path, edit) -> Path:
    write_plan(plan, path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def _first(data: dict[str, Any], collection: str, **changes: Any) -> None:
    data[collection][0].update(changes)


def _later_rows(data: dict[str, Any]) -> None:
    data["site_periods"] = data["site_periods"][:1]


EDITS = [
    pytest.param(_later_rows, "site_periods: no row for alpha in 2026Q2 (and 1 more)", id="rows-missing"),
    pytest.param(
        lambda d: _first(d, "site_periods", gpus_installed=999_999),
        "site_periods[alpha 2026Q1].gpus_installed: 999,999, where its racks_by_type hold",
        id="gpus-not-racks-times-gpus-per-rack",
    ),
    pytest.param(
        lambda d: _first(d, "site_periods", it_load_mw=99.0),
        "site_periods[alpha 2026Q1].it_load_mw: 99, where its racks need",
        id="load-not-the-racks",
    ),
    pytest.param(
        lambda d: _first(d, "site_periods", available_mw=-5.0),
        "site_periods[alpha 2026Q1].available_mw is -5 MW: power is never negative",
        id="negative-mw",
    ),
    pytest.param(
        lambda d: _first(d, "site_periods", expected_utilisation=7.5),
        "site_periods[alpha 2026Q1].expected_utilisation: 7.5 (750.0%) is not within 0 and 1",
        id="utilisation-750-percent",
    ),
    pytest.param(
        lambda d: d["power"].pop(0), "power: no record for alpha in 2026Q1", id="power-record-missing"
    ),
    pytest.param(
        lambda d: d.update(outcomes=[]),
        "outcomes: no outcome for scenario 'low' and 1 more",
        id="no-outcomes",
    ),
    pytest.param(
        lambda d: _first(d, "outcomes", probability=0.9),
        "outcomes[low].probability: 0.9, where scenario_probabilities gives 0.5",
        id="outcome-probability",
    ),
    pytest.param(
        lambda d: _first(d, "outcomes", served_gpu_hours=1.0),
        "outcomes[low].served_gpu_hours: 1, where its served records add up to",
        id="outcome-served-not-the-records",
    ),
    pytest.param(
        lambda d: _first(d, "outcomes", syndicate_value_usd=1e9),
        "outcomes[low].syndicate_value_usd: 1,000,000,000.00, where the cloud's and the guarantor's",
        id="syndicate-not-cloud-plus-guarantor",
    ),
    pytest.param(
        lambda d: d["risk"].update(expected_value_usd=1e15),
        "risk.expected_value_usd: 1,000,000,000,000,000.00, where the outcomes' expected",
        id="expected-value",
    ),
    pytest.param(
        lambda d: d["risk"].update(cvar_usd=None),
        "risk.cvar_usd: none with cvar_alpha 0.5; a plan has both or neither",
        id="cvar-missing",
    ),
    pytest.param(
        lambda d: d["risk"].update(cvar_usd=d["risk"]["cvar_usd"] + 1e6),
        "risk.cvar_usd:",
        id="cvar-not-the-tail",
    ),
    pytest.param(
        lambda d: d.pop("parties"), "parties: cloud, guarantor, syndicate are missing", id="no-parties"
    ),
    pytest.param(
        lambda d: d["parties"][0].update(expected_value_usd=1e9),
        "parties[cloud].expected_value_usd: 1,000,000,000.00",
        id="party-figures",
    ),
    pytest.param(
        lambda d: d.update(hours_per_period=1e-300),
        "hours_per_period: 1e-300 is not a quarter's 2,190 hours",
        id="hours",
    ),
    pytest.param(
        lambda d: d.update(periods=["2026Q1", "2026Q3", "2026Q2"]),
        "periods[1]: 2026Q3 follows 2026Q1; a plan's quarters are consecutive, in time order",
        id="quarters-out-of-order",
    ),
]


@pytest.mark.parametrize(("edit", "named"), EDITS)
def test_a_plan_whose_derived_records_disagree_with_its_decisions_is_refused(tmp_path, plan, edit, named):
    path = _edited(plan, tmp_path / "plan.json", edit)
    with pytest.raises(PlanFileError) as caught:
        read_plan(path)
    text = caught.value.render()
    assert str(path) in text and "does not hold together" in text
    assert named in text, text
    assert "Fix: re-solve the scenario" in text


def test_a_plan_with_its_rows_in_another_order_is_still_read(tmp_path, plan):
    # Order is no fault: readers index rows by site and quarter.
    path = _edited(plan, tmp_path / "plan.json", lambda d: d["site_periods"].reverse())
    assert read_plan(path).site_periods == list(reversed(plan.site_periods))


@pytest.mark.parametrize(
    "mutate",
    [
        None,
        lambda d: d["objective"].update(perspective="guarantor"),
        lambda d: d["objective"].update(perspective="syndicate", cvar_alpha=None, cvar_weight=0.0),
        lambda d: d["objective"].update(cvar_alpha=0.9, cvar_weight=1.0),
    ],
    ids=["cloud", "guarantor", "syndicate-no-cvar", "all-cvar"],
)
def test_every_plan_the_solver_writes_holds_together(mutate):
    assert plan_problems(solved(three_quarters(mutate))) == []
