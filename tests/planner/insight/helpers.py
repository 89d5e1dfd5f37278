"""Small scenarios and solved plans shared by the insight tests (hand-checkable, solve in ms)."""

from __future__ import annotations

from typing import Any

from planner.pipeline import solve_scenario
from planner.schema.plan import Plan
from planner.schema.scenario import Scenario
from tests.planner.small_scenarios import tiny, uncertain


def stylised_data(buyback_price: float = 10.0) -> dict[str, Any]:
    """The boom/bust case of tests.planner.small_scenarios.uncertain as plain data.

    Per rack: capex US$300,000; boom (p=0.5) earns 10 x 2190 x 20 = US$438,000; in the bust the
    guarantor pays share x price x 21,900 GPU-hours. Expected value of one rack at price 10:
    -81,000 + 109,500 x share, so the cloud builds exactly when the share exceeds 0.74.
    """
    return uncertain(buyback_price=buyback_price).model_dump(mode="json")


def three_quarters(mutate=None) -> Scenario:
    """Three quarters of the tiny case with growing demand in two scenarios."""

    def change(data: dict[str, Any]) -> None:
        data["periods"]["count_quarters"] = 3
        data["rack_types"][0]["lifetime_periods"] = 3
        data["rack_types"][0]["capex_usd"] = 150_000.0
        data["tenants"][0]["demand_gpus"] = {"low": [20.0, 30.0, 40.0], "high": [40.0, 60.0, 80.0]}
        data["scenarios"] = [{"id": "low", "probability": 0.5}, {"id": "high", "probability": 0.5}]
        data["objective"] = {"perspective": "cloud", "cvar_alpha": 0.5, "cvar_weight": 0.0}
        if mutate is not None:
            mutate(data)

    return tiny(change)


def solved(scenario: Scenario) -> Plan:
    return solve_scenario(scenario)
