"""The verifier checks a walk-away record itself (planner/verify/no_deal.py).

The hand case is tests/planner/test_walk_away.py's credit deal: with no deal the cloud builds 3
racks for acme's 30 cash GPUs (nova's demand, all credit-funded, goes), 3 x (219,000 - 100,000) =
US$357,000, and the guarantor's walk-away value is its 10% margin on them, US$30,000. A plan file
whose record lies in any way the floors depend on must fail verification, the message naming the
field; a 1.3 plan (no decisions in its record) verifies as before, with a note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planner.errors import PlanFileError
from planner.files import read_plan
from planner.pipeline import solve_scenario
from planner.schema.plan import NoDealQuota, NoDealRacks, Plan, WalkAway
from planner.verify import verify_plan
from planner.verify.data import scenario_arrays
from planner.verify.no_deal import CVAR_FLOOR_DROPPED_NOTE, NOT_RECORDED_NOTE, RULES, best_serving
from tests.planner.small_scenarios import H, tiny
from tests.planner.test_walk_away import CLOUD_WALK_AWAY_USD, GUARANTOR_WALK_AWAY_USD, credit_deal

RULES_SAY = f"{RULES}: "


@pytest.fixture(scope="module")
def deal() -> tuple[Any, Plan]:
    scenario = credit_deal(floors="walk_away")
    return scenario, solve_scenario(scenario)


def edited(tmp_path: Path, plan: Plan, change: Any, name: str = "edited.json") -> Plan:
    """The plan written, its JSON changed by `change(data)`, read back as a plan file."""
    data = json.loads(plan.model_dump_json())
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return read_plan(path)


def lie_about(party: str, value: float):
    """A consistent lie: the record's value, the party's walk-away value and its floor all edited
    alike, so only a check of the record itself can tell."""

    def change(data: dict[str, Any]) -> None:
        data["walk_away"][f"{party}_value_usd"] = value
        for figures in data["parties"]:
            if figures["party"] == party:
                figures["walk_away_value_usd"] = value
                figures["min_expected_value_usd"] = value

    return change


def violations(scenario: Any, plan: Plan) -> list[str]:
    found = verify_plan(scenario, plan)
    assert not found.passed
    return found.violations


def test_the_record_holds_the_no_deal_first_stage_and_verifies(deal):
    _, plan = deal
    record = plan.walk_away
    assert record is not None
    assert record.cloud_value_usd == pytest.approx(CLOUD_WALK_AWAY_USD, abs=1.0)
    assert record.guarantor_value_usd == pytest.approx(GUARANTOR_WALK_AWAY_USD, abs=1.0)
    assert record.racks == [NoDealRacks(site="alpha", rack_type="rack10", period="2026Q1", racks_built=3)]
    assert record.power == []  # the site's 10 MW are energised already
    assert record.quotas is not None and len(record.quotas) == 1
    assert (record.quotas[0].tenant, record.quotas[0].quota_gpus) == ("acme", pytest.approx(30.0))
    assert plan.verification.passed and plan.verification.notes == []


def test_a_record_written_by_hand_is_checked_by_the_verifiers_own_arithmetic(deal):
    # The hand values and decisions, not the planner's: 3 racks, acme's 30 GPUs, no blocks.
    scenario, plan = deal
    by_hand = WalkAway(
        cloud_value_usd=357_000.0,
        guarantor_value_usd=30_000.0,
        racks_built=3,
        status="Optimal",
        cloud_bound_usd=357_000.0,
        racks=[NoDealRacks(site="alpha", rack_type="rack10", period="2026Q1", racks_built=3)],
        power=[],
        quotas=[
            NoDealQuota(tenant="acme", site="alpha", rack_type="rack10", period="2026Q1", quota_gpus=30.0)
        ],
    )
    assert verify_plan(scenario, plan.model_copy(update={"walk_away": by_hand})).passed
    # US$2 above the hand value: beyond the verifier's US$1 money tolerance.
    found = violations(
        scenario,
        plan.model_copy(update={"walk_away": by_hand.model_copy(update={"cloud_value_usd": 357_002.0})}),
    )
    assert any(v.startswith("walk_away.cloud_value_usd: the record says US$357,002.00") for v in found)


@pytest.mark.parametrize(
    ("party", "value", "says"),
    [
        (
            "cloud",
            300_000.0,
            "walk_away.cloud_value_usd: the record says US$300,000.00, but its decisions (racks, power, "
            "quotas) yield the cloud US$357,000.00 (difference -57,000.00)",
        ),
        (
            "guarantor",
            20_000.0,
            "walk_away.guarantor_value_usd: the record says US$20,000.00, but its decisions (racks, power, "
            "quotas) yield the guarantor US$30,000.00 (difference -10,000.00)",
        ),
    ],
)
def test_an_edited_walk_away_value_fails_though_the_floors_agree_with_it(
    deal, tmp_path: Path, party: str, value: float, says: str
):
    # The lie the closing note of session 25 found passing: lower floors, consistent everywhere.
    scenario, plan = deal
    found = violations(scenario, edited(tmp_path, plan, lie_about(party, value)))
    assert found[0] == says
    # The cloud's lowered value is also further below HiGHS's bound than the gap the record says
    # it reached (`_check_gap`).
    assert [v.split(":")[0] for v in found[1:]] == (["walk_away.reached_gap"] if party == "cloud" else [])


def test_a_value_above_what_its_racks_yield_fails(deal, tmp_path: Path):
    scenario, plan = deal

    def fewer_racks(data: dict[str, Any]) -> None:
        # 2 racks and 20 GPUs of quota: 20 x 2190 x 10 - 200,000 = 238,000 to the cloud, 20,000 margin.
        data["walk_away"]["racks"][0]["racks_built"] = 2
        data["walk_away"]["quotas"][0]["quota_gpus"] = 20.0

    found = violations(scenario, edited(tmp_path, plan, fewer_racks))
    assert "walk_away.racks_built: the record says 3 racks, its racks list 2" in found
    assert any(
        v.startswith(
            "walk_away.cloud_value_usd: the record says US$357,000.00, but its decisions (racks, "
            "power, quotas) yield the cloud US$238,000.00"
        )
        for v in found
    )
    assert any(v.startswith("walk_away.guarantor_value_usd:") and "US$20,000.00" in v for v in found)
    # Quotas cut below the racks: 20 of the 30 GPUs sold, 438,000 - 300,000 = 138,000.
    found = violations(
        scenario, edited(tmp_path, plan, lambda d: d["walk_away"]["quotas"][0].update(quota_gpus=20.0))
    )
    assert found == [
        "walk_away.cloud_value_usd: the record says US$357,000.00, but its decisions (racks, power, quotas) "
        "yield the cloud US$138,000.00 (difference 219,000.00)"
    ]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda d: d["walk_away"]["racks"][0].update(racks_built=200),
            [
                "gpu_cap alpha 2026Q1: 2,000 GPUs installed but the cap is 1,000",
                "build_rate alpha 2026Q1: 200 racks built but at most 100 may be built per quarter",
                "power_fits alpha 2026Q1: racks need 20.0 MW but 10.0 MW is available",
            ],
        ),
        (
            lambda d: d["walk_away"]["quotas"][0].update(quota_gpus=40.0),
            ["quota_fits alpha/rack10 2026Q1: tenant quotas total 40.0 GPUs but the pool has 30 GPUs"],
        ),
        (
            lambda d: d["walk_away"]["power"].append(
                {"site": "alpha", "period": "2026Q1", "blocks_ordered": 9}
            ),
            [
                "power_cap alpha 2026Q1: 19.0 MW energised but the cap is 10.0 MW",
                "block_rate alpha 2026Q1: 9 power blocks ordered but at most 5 may be ordered per quarter",
            ],
        ),
        (
            lambda d: d["walk_away"]["racks"][0].update(site="omega"),
            ["racks omega/rack10 2026Q1: unknown site, rack type or quarter"],
        ),
        (
            lambda d: d["walk_away"]["racks"].append(dict(d["walk_away"]["racks"][0])),
            ["racks alpha/rack10 2026Q1: listed more than once"],
        ),
    ],
)
def test_decisions_the_no_deal_rules_refuse_fail(deal, tmp_path: Path, change: Any, says: list[str]):
    scenario, plan = deal
    found = violations(scenario, edited(tmp_path, plan, change))
    for message in says:
        assert any(v.startswith(RULES_SAY + message) for v in found), (message, found)


def test_a_bound_below_the_recorded_value_fails(deal, tmp_path: Path):
    scenario, plan = deal
    found = violations(
        scenario, edited(tmp_path, plan, lambda d: d["walk_away"].update(cloud_bound_usd=300_000.0))
    )
    assert found == [
        "walk_away.cloud_bound_usd: HiGHS's bound US$300,000.00 is below the cloud's recorded value "
        "US$357,000.00: no plan makes more than its bound"
    ]


def _do_nothing(bound: float | None):
    """The do-nothing no-deal plan (no racks, no quotas, both values 0), told consistently in the
    record and the floors, beside the real plan's bound and "reached its gap"."""

    def change(data: dict[str, Any]) -> None:
        data["walk_away"].update(
            racks=[], power=[], quotas=[], racks_built=0, cloud_value_usd=0.0, guarantor_value_usd=0.0
        )
        data["walk_away"]["cloud_bound_usd"] = bound
        for figures in data["parties"]:
            if figures["party"] in ("cloud", "guarantor"):
                figures["walk_away_value_usd"] = 0.0
                figures["min_expected_value_usd"] = 0.0

    return change


def test_a_worse_no_deal_plan_whose_bound_says_it_missed_its_gap_fails(deal, tmp_path: Path):
    # Found by this session's review: it passed, and both floors fell to 0.
    scenario, plan = deal
    assert plan.walk_away is not None and plan.walk_away.gap_reached
    found = violations(scenario, edited(tmp_path, plan, _do_nothing(357_000.0)))
    assert found == [
        "walk_away.reached_gap: the record says the no-deal plan reached its gap of "
        f"{plan.walk_away.mip_rel_gap:g}, but HiGHS's bound US$357,000.00 is US$357,000.00 above the "
        "cloud's value US$0.00 (a gap of 0.357 as HiGHS measures it, on at least US$ 1 M)"
    ]
    found = violations(scenario, edited(tmp_path, plan, _do_nothing(None), "null.json"))
    assert found[0].startswith(
        "walk_away.cloud_bound_usd: null, but the record says the no-deal plan reached its gap"
    )


def test_text_in_a_record_id_is_refused_when_the_plan_is_read(deal, tmp_path: Path):
    _, plan = deal
    with pytest.raises(PlanFileError) as caught:
        edited(tmp_path, plan, lambda d: d["walk_away"]["quotas"][0].update(period="2026Q1\x1b[31m"))
    assert "walk_away.quotas[0].period: should be a quarter label such as 2026Q3 (got '2026Q1\\x1b[31m')" in (
        "\n".join(caught.value.details)
    )


def test_an_old_1_3_plan_verifies_as_before_with_a_note(deal, tmp_path: Path):
    scenario, plan = deal

    def as_1_3(data: dict[str, Any]) -> None:
        data["schema_version"] = "1.3"
        for field in ("racks", "power", "quotas"):
            del data["walk_away"][field]
        del data["verification"]["notes"]

    old = edited(tmp_path, plan, as_1_3)
    assert old.schema_version == "1.3" and old.walk_away is not None and not old.walk_away.has_decisions
    found = verify_plan(scenario, old)
    assert found.passed
    assert found.notes == [NOT_RECORDED_NOTE]
    # A 1.3 record's lie is checked against its own bound and gap (it reached a gap of 0, and
    # 300,000 is 57,000 below the bound); its decisions are not recorded, so no more than that.
    lied = edited(tmp_path, old, lie_about("cloud", 300_000.0), "lied.json")
    found = verify_plan(scenario, lied)
    assert not found.passed and [v.split(":")[0] for v in found.violations] == ["walk_away.reached_gap"]
    assert found.notes == [NOT_RECORDED_NOTE]
    unbounded = edited(tmp_path, lied, lambda d: d["walk_away"].update(reached_gap=False), "short.json")
    found = verify_plan(scenario, unbounded)
    assert found.passed and found.notes == [NOT_RECORDED_NOTE]


def test_serving_fills_the_most_profitable_pool_first_and_none_at_a_loss():
    # Three sites of one rack type (10 GPUs, 0.1 MW, PUE 1): energy per GPU-hour is the power
    # price x 0.01 MWh, so at US$10 a GPU-hour acme earns 10 at alpha (free power), 5 at beta
    # (US$500/MWh) and -5 at gamma (US$1,500/MWh). Quotas: 10 GPUs at alpha, 20 at beta, 10 at
    # gamma; demand 25 GPUs then 40.
    def three_sites(data: dict[str, Any]) -> None:
        base = data["sites"][0]
        data["sites"] = [
            {**base, "id": "alpha"},
            {**base, "id": "beta", "power_price_usd_per_mwh": 500.0},
            {**base, "id": "gamma", "power_price_usd_per_mwh": 1500.0},
        ]
        data["tenants"][0]["demand_gpus"] = {"low": [25.0], "high": [40.0]}
        data["scenarios"] = [{"id": "low", "probability": 0.5}, {"id": "high", "probability": 0.5}]

    data = scenario_arrays(tiny(three_sites))
    quota = np.array([10.0, 20.0, 10.0]).reshape(1, 3, 1, 1)  # [K, I, R, T]
    served, unserved = best_serving(data, quota)
    got = {
        (data.sites[i], data.cases[s]): x
        for i, s, x in zip(served.i, served.s, served.gpu_hours, strict=True)
    }
    assert got == {
        ("alpha", "low"): pytest.approx(10 * H),
        ("beta", "low"): pytest.approx(15 * H),
        ("alpha", "high"): pytest.approx(10 * H),
        ("beta", "high"): pytest.approx(20 * H),
    }
    assert unserved[0, 0].tolist() == pytest.approx([0.0, 10 * H])  # gamma's quota idle: it loses 5 an hour


def boom_bust_with_cvar_floor() -> Any:
    """tests/planner/test_walk_away.py's boom-and-bust case with the cloud's CVaR floor at 0: one
    rack alone earns 0.5 x 438,000 - 100,000 = 119,000 expected but -100,000 in the bust (CVaR at
    0.5), so the no-deal plan keeping the floor builds nothing."""

    def change(data: dict[str, Any]) -> None:
        data["tenants"][0]["price_usd_per_gpu_hour"] = 20.0
        data["tenants"][0]["demand_gpus"] = {"boom": [10.0], "bust": [0.0]}
        data["scenarios"] = [{"id": "boom", "probability": 0.5}, {"id": "bust", "probability": 0.5}]
        data["participation"] = {"floors": "walk_away", "cvar_alpha": 0.5, "cloud": {"min_cvar_usd": 0.0}}

    return tiny(change)


def test_a_no_deal_plan_that_breaks_the_cloud_cvar_floor_it_keeps_fails_and_a_dropped_floor_is_noted():
    scenario = boom_bust_with_cvar_floor()
    plan = solve_scenario(scenario)
    assert plan.walk_away is not None and plan.walk_away.racks == []
    one_rack = plan.walk_away.model_copy(
        update={
            "cloud_value_usd": 119_000.0,
            "racks_built": 1,
            "cloud_bound_usd": 119_000.0,
            "racks": [NoDealRacks(site="alpha", rack_type="rack10", period="2026Q1", racks_built=1)],
            "quotas": [
                NoDealQuota(tenant="acme", site="alpha", rack_type="rack10", period="2026Q1", quota_gpus=10.0)
            ],
        }
    )
    # The floors as the record would make them, so only the CVaR floor's check can tell.
    parties = [
        f.model_copy(update={"walk_away_value_usd": 119_000.0, "min_expected_value_usd": 119_000.0})
        if f.party == "cloud"
        else f
        for f in plan.parties
    ]
    found = verify_plan(scenario, plan.model_copy(update={"walk_away": one_rack, "parties": parties}))
    says = (
        "walk_away (the no-deal plan) participation.cloud.min_cvar_usd: its decisions give the cloud a CVaR "
        "(alpha 0.5) of -US$100,000, below its floor of US$0, which the no-deal plan keeps"
    )
    assert says in found.violations
    dropped = one_rack.model_copy(update={"cloud_cvar_floor_dropped": True})
    found = verify_plan(scenario, plan.model_copy(update={"walk_away": dropped, "parties": parties}))
    assert says not in found.violations
    assert found.notes == [CVAR_FLOOR_DROPPED_NOTE]
