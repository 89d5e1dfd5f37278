"""Walk-away floors (`participation.floors: walk_away`), on a case solved by hand.

The tiny base case (tests/planner/small_scenarios.py: one quarter, h = 2190, racks of 10 GPUs at
US$100,000 for their one quarter, free power, no opex) with two tenants at US$10 per GPU-hour:
acme, 30 GPUs paid in cash, and nova, 20 GPUs paid wholly with the guarantor's token credits, of
which half are repaid. Terms: revenue share 10%, hardware margin 10%, no buyback.

Per GPU-hour served the cloud keeps 0.9 x 10 = 9; the guarantor gets 1 (revenue share) from
acme's hours and 1 - 0.5 x 10 = -4 from nova's. Per rack the cloud pays 100,000 and the guarantor
earns its margin, 10,000. A full rack is 21,900 GPU-hours; acme fills 3 racks (65,700 hours).

No deal: no revenue share, no credits (nova's credit-funded demand goes), the margin stays. The
cloud builds 3 racks for acme: 3 x (219,000 - 100,000) = 357,000, its walk-away value; the
guarantor's is its margin on them, 30,000.

The guarantor's plan, default floors (each party >= 0): acme's 3 racks and then racks the cloud
pays for, while the cloud stays >= 0. Five racks (two idle) leave the cloud 91,300 and the
guarantor 115,700; a sixth needs 8,700 / 9 = 966.67 of nova's hours to keep the cloud at 0, and
gives the guarantor 60,000 + 65,700 - 4 x 966.67 = 121,833.33; a seventh needs 12,077.8 hours and
gives 87,388.9. So: 6 racks, the cloud at US$ 0, far below its 357,000 (the audit's finding).

The guarantor's plan, walk-away floors (cloud >= 357,000, guarantor >= 30,000): 3 racks make the
cloud at most 291,300; 4 racks and all of acme need nova's hours n with 9 (65,700 + n) - 400,000
>= 357,000, n >= 18,411.11, leaving the guarantor 105,700 - 4n = 32,055.56; 5 racks need n >=
29,522.2 and leave the guarantor -2,388.9. So: 4 racks, the cloud at exactly its walk-away value,
the guarantor 2,055.56 over its own.

With half the repayment (nova's hour costs the guarantor 1 - 0.7 x 10 = -6), 4 racks leave the
guarantor 105,700 - 6 x 18,411.11 = -4,766.67: no plan beats walking away. The elastic model's
least total shortfall is there too (each of nova's hours takes 9 off the cloud's shortfall and
adds 6 to the guarantor's), the guarantor short by 30,000 + 4,766.67 = 34,766.67.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyomo.environ as pyo
import pytest
import yaml

from planner import value_of_information
from planner.errors import NoPlanError, PlanFileError, ScenarioError
from planner.files import parse_scenario, read_plan
from planner.pipeline import solve_scenario
from planner.schema.plan import PLAN_SCHEMA_VERSION
from planner.solve.interfaces import solve_model
from planner.value_of_information import EEV_INFEASIBLE, compute
from planner.verify import verify_plan
from planner.walk_away import no_deal_scenario, solve_no_deal, with_floors
from tests.dsx.harness import dsx
from tests.planner.small_scenarios import tiny

CLOUD_WALK_AWAY_USD = 357_000.0
GUARANTOR_WALK_AWAY_USD = 30_000.0
NOVA_HOURS_AT_FLOOR = (357_000.0 + 400_000.0 - 9 * 65_700.0) / 9  # 18,411.11


def credit_deal(
    *,
    floors: str | None = None,
    repayment: float = 0.5,
    perspective: str = "guarantor",
    guarantor_floor: float | None = None,
) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["tenants"] = [
            {"id": "acme", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"only": [30.0]}},
            {
                "id": "nova",
                "price_usd_per_gpu_hour": 10.0,
                "demand_gpus": {"only": [20.0]},
                "token_credit_share": 1.0,
                "credit_repayment_share": repayment,
            },
        ]
        data["terms"].update(revenue_share=0.1, guarantor_hardware_margin=0.1)
        data["objective"] = {"perspective": perspective}
        if floors is not None:
            data["participation"] = {"floors": floors}
        if guarantor_floor is not None:
            data.setdefault("participation", {})["guarantor"] = {"min_expected_value_usd": guarantor_floor}

    return tiny(change)


def parties(plan) -> dict[str, Any]:
    return {f.party: f for f in plan.parties}


def racks(plan) -> int:
    return sum(r.racks_built for r in plan.racks)


def test_the_no_deal_scenario_drops_the_guarantee_and_the_credit_funded_demand():
    alone = no_deal_scenario(credit_deal(floors="walk_away"))
    assert alone.terms.buyback_share == 0.0
    assert alone.terms.buyback_price_usd_per_gpu_hour == 0.0
    assert alone.terms.revenue_share == 0.0
    assert alone.terms.guarantor_hardware_margin == 0.1  # the vendor still sells the racks
    assert alone.tenant("acme").demand_gpus == {"only": [30.0]}
    assert alone.tenant("nova").demand_gpus == {"only": [0.0]}
    assert alone.tenant("nova").token_credit_share == 0.0
    assert alone.objective.perspective == "cloud"
    assert alone.participation.floors == "given"
    assert alone.participation.cloud.min_expected_value_usd is None
    assert alone.participation.guarantor.min_expected_value_usd is None


def test_default_floors_let_the_guarantors_plan_hold_the_cloud_below_its_walk_away_value():
    plan = solve_scenario(credit_deal())
    figures = parties(plan)
    assert racks(plan) == 6
    assert figures["cloud"].expected_value_usd == pytest.approx(0.0, abs=1.0)
    assert figures["guarantor"].expected_value_usd == pytest.approx(60_000 + 65_700 - 4 * 8_700 / 9, abs=1.0)
    assert figures["cloud"].expected_value_usd < CLOUD_WALK_AWAY_USD  # the audit's finding
    assert plan.walk_away is None
    assert figures["cloud"].walk_away_value_usd is None


def test_walk_away_floors_give_the_cloud_what_it_makes_alone():
    plan = solve_scenario(credit_deal(floors="walk_away"))
    figures = parties(plan)
    assert plan.walk_away is not None
    assert plan.walk_away.cloud_value_usd == pytest.approx(CLOUD_WALK_AWAY_USD, abs=1.0)
    assert plan.walk_away.guarantor_value_usd == pytest.approx(GUARANTOR_WALK_AWAY_USD, abs=1.0)
    assert plan.walk_away.racks_built == 3
    assert figures["cloud"].walk_away_value_usd == pytest.approx(CLOUD_WALK_AWAY_USD, abs=1.0)
    assert figures["guarantor"].walk_away_value_usd == pytest.approx(GUARANTOR_WALK_AWAY_USD, abs=1.0)
    assert figures["syndicate"].walk_away_value_usd is None
    # The given floors are 0, so the floors are the walk-away values.
    assert figures["cloud"].min_expected_value_usd == pytest.approx(CLOUD_WALK_AWAY_USD, abs=1.0)
    assert figures["guarantor"].min_expected_value_usd == pytest.approx(GUARANTOR_WALK_AWAY_USD, abs=1.0)
    assert racks(plan) == 4
    assert figures["cloud"].expected_value_usd == pytest.approx(CLOUD_WALK_AWAY_USD, abs=1.0)
    assert figures["guarantor"].expected_value_usd == pytest.approx(
        105_700 - 4 * NOVA_HOURS_AT_FLOOR, abs=1.0
    )
    served_nova = sum(r.served_gpu_hours for r in plan.served if r.tenant == "nova")
    assert served_nova == pytest.approx(NOVA_HOURS_AT_FLOOR, abs=1e-2)
    assert plan.verification.passed
    assert plan.scenario_hash == credit_deal(floors="walk_away").content_hash()


def test_a_given_floor_above_the_walk_away_value_stays():
    # The cloud's plan with the guarantor's given floor 31,000 over its walk-away 30,000: 4 racks
    # and all of acme, and as many of nova's hours n as leave the guarantor 31,000: 105,700 - 4n =
    # 31,000, n = 18,675; the cloud 9 x (65,700 + 18,675) - 400,000 = 359,375 (>= 357,000). Five
    # racks leave the cloud at most 281,875 with the guarantor at 31,000; three, 291,300.
    plan = solve_scenario(credit_deal(floors="walk_away", perspective="cloud", guarantor_floor=31_000.0))
    figures = parties(plan)
    assert figures["guarantor"].min_expected_value_usd == pytest.approx(31_000.0)
    assert figures["guarantor"].walk_away_value_usd == pytest.approx(GUARANTOR_WALK_AWAY_USD, abs=1.0)
    assert figures["cloud"].min_expected_value_usd == pytest.approx(CLOUD_WALK_AWAY_USD, abs=1.0)
    assert racks(plan) == 4
    assert figures["guarantor"].expected_value_usd == pytest.approx(31_000.0, abs=1.0)
    assert figures["cloud"].expected_value_usd == pytest.approx(359_375.0, abs=1.0)


def test_a_deal_that_cannot_beat_walking_away_says_which_party_and_by_how_much():
    with pytest.raises(NoPlanError) as caught:
        solve_scenario(credit_deal(floors="walk_away", repayment=0.3))
    error = caught.value
    assert "the deal cannot beat walking away" in error.message
    text = "\n".join(error.details)
    # The wording of `pipeline.unmet_requirements` since 9f4b7e6 (this test kept the one before it).
    assert (
        "participation.guarantor.min_expected_value_usd: the closest plan falls short of it by US$34,767"
        in text
    )
    assert "participation.cloud.min_expected_value_usd:" not in text
    assert "walk-away value, US$357,000" in text
    assert "walk-away value, US$30,000" in text
    assert "Fix:" in error.details[-1]


def test_the_verifier_checks_the_floors_the_plan_records(tmp_path: Path):
    scenario = credit_deal(floors="walk_away")
    plan = solve_scenario(scenario)
    # A floor lowered below the walk-away value the plan records.
    lowered = [
        f.model_copy(update={"min_expected_value_usd": 0.0}) if f.party == "cloud" else f
        for f in plan.parties
    ]
    found = verify_plan(scenario, plan.model_copy(update={"parties": lowered}))
    assert not found.passed
    assert any("parties cloud min_expected_value_usd (walk-away floor)" in v for v in found.violations)
    # A walk-away value raised above what the plan gives the cloud (both places, consistently).
    assert plan.walk_away is not None
    raised_record = plan.walk_away.model_copy(update={"cloud_value_usd": 400_000.0})
    raised = [
        f.model_copy(update={"walk_away_value_usd": 400_000.0, "min_expected_value_usd": 400_000.0})
        if f.party == "cloud"
        else f
        for f in plan.parties
    ]
    found = verify_plan(scenario, plan.model_copy(update={"parties": raised, "walk_away": raised_record}))
    assert any("below its walk-away floor of US$400,000" in v for v in found.violations)
    # No record at all.
    found = verify_plan(scenario, plan.model_copy(update={"walk_away": None}))
    assert any("records no no-deal plan" in v for v in found.violations)
    # A given-floors scenario's plan recording walk-away values.
    given = credit_deal()
    given_plan = solve_scenario(given)
    found = verify_plan(given, given_plan.model_copy(update={"walk_away": plan.walk_away}))
    assert any("records walk-away values" in v for v in found.violations)
    # The plan file round-trips.
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    again = read_plan(path)
    assert again.walk_away == plan.walk_away
    assert json.loads(path.read_text())["schema_version"] == PLAN_SCHEMA_VERSION == "1.5"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("walkaway", "participation.floors: Input should be 'given' or 'walk_away'"),
        (True, "participation.floors"),
        (0, "participation.floors"),
    ],
)
def test_a_bad_floors_value_is_a_clear_schema_error(value: object, says: str):
    def change(data: dict[str, Any]) -> None:
        data["participation"] = {"floors": value}

    with pytest.raises(ScenarioError) as caught:
        tiny(change)
    assert says in "\n".join(caught.value.details)


def test_the_default_leaves_the_scenario_hash_as_before():
    # The hash plans record: a scenario that does not set floors hashes as it did before the field.
    def given(data: dict[str, Any]) -> None:
        data["participation"] = {"floors": "given"}

    assert tiny(given).content_hash() == tiny().content_hash()
    assert tiny().content_hash() == "sha256:45c4b64dc6d3e3397419f762cab7e7759192a9139b08fa83f49d996a98a3bf8d"


def test_value_of_information_solves_the_recourse_problem_with_the_walk_away_floors():
    # The cloud's view with at most 4 racks (so the expected-value plan's build, 4 racks, meets the
    # floors and EEV exists). Default floors: 4 racks serving everything, the cloud 9 x 87,600 -
    # 400,000 = 388,400 (the guarantor 105,700 - 4 x 21,900 = 18,100 >= 0). Walk-away floors (the
    # guarantor >= 30,000): nova's hours n <= (105,700 - 30,000) / 4 = 18,925, the cloud
    # 9 x (65,700 + 18,925) - 400,000 = 361,625.
    def capped(floors: str | None):
        scenario = credit_deal(floors=floors, perspective="cloud")
        site = scenario.sites[0].model_copy(update={"max_racks_built_per_period": 4})
        return scenario.model_copy(update={"sites": [site]})

    walk_away = compute(capped("walk_away"))
    assert walk_away.rp_usd == pytest.approx(361_625.0, abs=1.0)
    assert walk_away.eev_usd == pytest.approx(361_625.0, abs=1.0)
    # One certain scenario: foresight adds nothing. Wait-and-see keeps the walk-away floors, so WS
    # is RP; dropping them, as it did, gave 388,400 and an "EVPI" of 26,775, the floors' cost.
    assert walk_away.ws_usd == pytest.approx(361_625.0, abs=1.0)
    assert walk_away.evpi_usd == pytest.approx(0.0, abs=1.0)
    assert compute(capped(None)).rp_usd == pytest.approx(388_400.0, abs=1.0)


def test_a_plan_file_whose_walk_away_values_disagree_with_its_record_is_refused(tmp_path: Path):
    plan = solve_scenario(credit_deal(floors="walk_away"))
    data = json.loads(plan.model_dump_json())
    for party in data["parties"]:
        if party["party"] == "cloud":
            party["walk_away_value_usd"] = 1.0  # the table would show a surplus of US$ 357,000
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError) as caught:
        read_plan(path)
    assert (
        "parties[cloud].walk_away_value_usd: 1.00, where the plan's walk_away says 357,000.00"
        in "\n".join(caught.value.details)
    )
    # A 1.2 plan (no walk-away fields) still reads, as not computed.
    data = json.loads(solve_scenario(credit_deal()).model_dump_json())
    data["schema_version"] = "1.2"
    del data["walk_away"]
    for party in data["parties"]:
        del party["walk_away_value_usd"]
    path.write_text(json.dumps(data))
    old = read_plan(path)
    assert old.walk_away is None and all(f.walk_away_value_usd is None for f in old.parties)


def test_the_cloud_takes_alone_no_more_risk_than_its_cvar_floor_allows():
    # One tenant, US$20 per GPU-hour, 10 GPUs in a boom or none in a bust (even odds); a rack of
    # 10 GPUs costs US$100,000 and earns 438,000 in the boom. Alone the cloud's best expected
    # value is one rack, 0.5 x 438,000 - 100,000 = 119,000, but its value in the bust (the worst
    # half: CVaR at 0.5) is -100,000. With the cloud's CVaR floor at 0 it builds nothing alone.
    def boom_bust(cvar_floor: float | None):
        def change(data: dict[str, Any]) -> None:
            data["tenants"][0]["price_usd_per_gpu_hour"] = 20.0
            data["tenants"][0]["demand_gpus"] = {"boom": [10.0], "bust": [0.0]}
            data["scenarios"] = [{"id": "boom", "probability": 0.5}, {"id": "bust", "probability": 0.5}]
            data["participation"] = {
                "floors": "walk_away",
                "cvar_alpha": 0.5,
                "cloud": {"min_cvar_usd": cvar_floor},
            }

        return tiny(change)

    assert solve_no_deal(boom_bust(None)).record.cloud_value_usd == pytest.approx(119_000.0, abs=1.0)
    assert no_deal_scenario(boom_bust(0.0)).participation.cloud.min_cvar_usd == 0.0
    held = solve_no_deal(boom_bust(0.0))
    assert held.record.cloud_value_usd == pytest.approx(0.0, abs=1.0)
    assert held.record.racks_built == 0


def eev_breaks_the_cloud_floor() -> Any:
    """Boom or bust (a tenant wants 10 GPUs at US$40 or none, equally likely; a 10-GPU rack costs
    US$300,000) with the cloud's CVaR at 0.5 (its bust value) given a floor of -US$100,000.
    RP builds nothing (a rack leaves the bust at -300,000): 0. WS: the boom builds its rack
    (876,000 - 300,000), the bust nothing; the cloud's CVaR across them is 0, so the floor holds:
    WS = 288,000 = EVPI. The EV problem (5 GPUs, one certain value: 438,000 - 300,000 >= the
    floor) builds the rack, which no serving keeps above the floor in the bust: no EEV."""

    def change(data: dict[str, Any]) -> None:
        data["rack_types"][0]["capex_usd"] = 300_000.0
        data["tenants"][0]["price_usd_per_gpu_hour"] = 40.0
        data["tenants"][0]["demand_gpus"] = {"boom": [10.0], "bust": [0.0]}
        data["scenarios"] = [{"id": "boom", "probability": 0.5}, {"id": "bust", "probability": 0.5}]
        data["participation"] = {"cvar_alpha": 0.5, "cloud": {"min_cvar_usd": -100_000.0}}

    return tiny(change)


EVPI_BOOM_USD = 0.5 * (10 * 2190 * 40 - 300_000)  # 288,000


def test_a_plan_whose_expected_value_build_cannot_meet_the_floors_says_why_vss_is_missing():
    plan = solve_scenario(eev_breaks_the_cloud_floor(), value_of_information=True)
    assert plan.risk.vss_usd is None
    assert EEV_INFEASIBLE in (plan.risk.value_of_information_note or "")
    # EVPI needs only the wait-and-see solves, so the missing EEV does not cost it.
    assert plan.risk.evpi_usd == pytest.approx(EVPI_BOOM_USD, abs=1.0)
    assert (plan.risk.value_of_information_note or "").startswith("VSS not computed: ")
    assert "EVPI not computed" not in (plan.risk.value_of_information_note or "")


def test_value_of_information_reports_evpi_where_the_expected_value_build_leaves_vss_undefined():
    figures = compute(eev_breaks_the_cloud_floor())
    assert figures.rp_usd == pytest.approx(0.0, abs=1.0)
    assert figures.ws_usd == pytest.approx(EVPI_BOOM_USD, abs=1.0)
    assert figures.evpi_usd == pytest.approx(EVPI_BOOM_USD, abs=1.0)
    assert figures.eev_usd is None and figures.vss_usd is None
    assert figures.evpi_note is None
    assert figures.vss_note is not None and EEV_INFEASIBLE in figures.vss_note
    shown = figures.to_dict()
    assert shown["evpi_computed"] is True and shown["vss_computed"] is False
    assert shown["vss_usd"] is None and EEV_INFEASIBLE in shown["vss_note"]


def test_the_cli_says_which_figure_was_computed(tmp_path: Path):
    source = tmp_path / "deal.yaml"
    source.write_text(yaml.safe_dump(eev_breaks_the_cloud_floor().model_dump(mode="json")))
    result = dsx("plan", "value-of-information", source, "--json")
    assert result.code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["evpi_usd"] == pytest.approx(EVPI_BOOM_USD, abs=1.0)
    assert shown["vss_usd"] is None and shown["vss_computed"] is False
    result = dsx("plan", "value-of-information", source)
    assert result.code == 0, result.stderr
    assert "not computed" in result.stdout
    assert "VSS not computed" in " ".join(result.stderr.split())
    # The plan `dsx plan solve` writes, its summary and its table.
    out = tmp_path / "plan.json"
    result = dsx("plan", "solve", source, "-o", out, "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["evpi_computed"] is True and summary["vss_computed"] is False
    assert summary["value_of_information_computed"] is False
    assert read_plan(out).risk.evpi_usd == pytest.approx(EVPI_BOOM_USD, abs=1.0)
    result = dsx("plan", "solve", source, "-o", tmp_path / "again.json")
    assert result.code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "EVPI: perfect foresight is worth" in text and "VSS not computed" in text


def two_acme_scenarios(**objective: Any) -> Any:
    """The cloud's view of the credit deal with at most 4 racks and acme's demand 30 GPUs (hi) or
    10 (lo), even odds; nova 20 in both.

    No deal (10 per hour to the cloud): a rack serving acme in both scenarios earns 219,000, each
    further rack only in hi, 0.5 x 219,000 = 109,500, for 100,000: 3 racks, the cloud's walk-away
    value 119,000 + 2 x 9,500 = 138,000, the guarantor's 30,000.

    RP (one build, and one quota per tenant, h = 2190 hours a GPU): quotas a + n <= 10 x racks,
    acme served 0.5 min(a, 30) + 0.5 min(a, 10) GPUs on average, nova n. Per GPU of quota the
    cloud gets 9h x 0.5 = 9,855 from acme (above 10) and 9h = 19,710 from nova, the guarantor
    1,095 and -4h = -8,760. 3 racks: the guarantor 30,000 + h (0.5a + 5) - 4h (30 - a) >= 30,000
    needs a >= 25.56, leaving nova 4.44 and the cloud 9h x 22.22 - 300,000 = 138,000: both at
    their floors. 4 racks (a = 30, n <= 6.14) leave the cloud 115,250, below its floor.

    WS with the floors on expected value (builds per scenario): hi 3 racks and lo 1, all of acme,
    give the cloud 0.5 (591,300 - 300,000) + 0.5 (197,100 - 100,000) = 194,200 and the guarantor
    63,800. A further rack in either scenario with v of nova's hours adds 0.5 (9v - 100,000) to
    the cloud and 0.5 (10,000 - 4v) to the guarantor, who must keep 30,000: v = 19,400, the cloud
    231,500 (two racks: 192,750). EVPI = 231,500 - 138,000 = 93,500.

    Floors asked in each scenario alone: lo has no plan (with acme at 10 GPUs, each nova GPU-hour
    costs the guarantor 4 and brings the cloud 9: the cloud cannot reach 138,000 with the
    guarantor at 30,000). Floors dropped: hi 388,400 (4 racks full) and lo 291,300 (3 racks
    full), WS 339,850, EVPI 201,850."""

    def change(data: dict[str, Any]) -> None:
        data["sites"][0]["max_racks_built_per_period"] = 4
        data["tenants"] = [
            {"id": "acme", "price_usd_per_gpu_hour": 10.0, "demand_gpus": {"hi": [30.0], "lo": [10.0]}},
            {
                "id": "nova",
                "price_usd_per_gpu_hour": 10.0,
                "demand_gpus": {"hi": [20.0], "lo": [20.0]},
                "token_credit_share": 1.0,
                "credit_repayment_share": 0.5,
            },
        ]
        data["scenarios"] = [{"id": "hi", "probability": 0.5}, {"id": "lo", "probability": 0.5}]
        data["terms"].update(revenue_share=0.1, guarantor_hardware_margin=0.1)
        data["objective"] = {"perspective": "cloud", **objective}
        data["participation"] = {"floors": "walk_away"}

    return tiny(change)


def test_wait_and_see_keeps_the_walk_away_floors_on_expected_value_across_foreseen_builds():
    scenario = two_acme_scenarios()
    held = solve_no_deal(scenario)
    assert held.record.cloud_value_usd == pytest.approx(138_000.0, abs=1.0)
    assert held.record.guarantor_value_usd == pytest.approx(30_000.0, abs=1.0)
    figures = compute(scenario)
    assert figures.rp_usd == pytest.approx(138_000.0, abs=1.0)
    assert figures.ws_usd == pytest.approx(231_500.0, abs=1.0)
    assert figures.evpi_usd == pytest.approx(93_500.0, abs=1.0)
    assert sum(figures.wait_and_see_by_scenario_usd.values()) / 2 == pytest.approx(231_500.0, abs=1.0)
    # The foresight plan meets the guarantor's floor in expectation, not in each scenario.
    parent, blocks = value_of_information._foresight_model(with_floors(scenario, held))
    solve_model(parent, scenario.solver, value_of_information.FORESIGHT_INTERFACE)
    guarantor = [pyo.value(m.party_value["guarantor", s]) * 1e6 for s, m in blocks.items()]
    assert sum(guarantor) / 2 == pytest.approx(30_000.0, abs=1.0)
    # The floors asked of each foreseen scenario alone (another deal): lo has no plan.
    alone = value_of_information._foresight_scenario(with_floors(scenario, held), "lo")
    assert alone.participation.cloud.min_expected_value_usd == pytest.approx(138_000.0, abs=1.0)
    failed = value_of_information._value_task(alone, None, None)
    assert isinstance(failed, value_of_information._Failed) and "Infeasible" in failed.message
    # Each figure is the plan's: dsx plan solve records the same EVPI.
    plan = solve_scenario(scenario, value_of_information=True)
    assert plan.risk.evpi_usd == pytest.approx(93_500.0, abs=1.0)


@pytest.mark.parametrize(
    "objective", [{"cvar_weight": 0.5, "cvar_alpha": 0.5}, {"cvar_weight": 0.0}], ids=["cvar", "expected"]
)
def test_wait_and_see_with_the_floors_is_never_below_the_plan(objective: dict[str, Any]):
    # RP is the foresight model with one build for all scenarios, so WS >= RP, CVaR in the
    # objective (the worst half: lo) or not; with the cloud's CVaR floor too (kept in both).
    def with_cvar_floor(data: dict[str, Any]) -> None:
        data["participation"] = {"floors": "walk_away", "cvar_alpha": 0.5, "cloud": {"min_cvar_usd": 0.0}}

    scenario = two_acme_scenarios(**objective)
    data = scenario.model_dump(mode="json")
    with_cvar_floor(data)
    for case in (scenario, parse_scenario(data, "cvar floor")):
        figures = compute(case)
        assert figures.ws_usd is not None and figures.evpi_usd is not None
        assert figures.ws_usd >= figures.rp_usd - figures.tolerance_usd
        # The CVaR of the foreseen values is the LP's: the objective applied to them is WS.
        assert figures.ws_usd == pytest.approx(
            value_of_information._objective_of(case, figures.wait_and_see_by_scenario_usd), abs=1.0
        )
