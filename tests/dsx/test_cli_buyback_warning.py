"""`dsx plan show` of a plan before schema 1.5 warns that its buyback is the per-site rule's.

The hand case of tests/planner/test_buyback_matching.py as session 26's dsx wrote it (schema
1.4): its buyback is US$0 by the per-site rule, US$54,750 by the matching rule this dsx bills (no
discounting; each party's expected value moves by as much). A 1.5 plan bills the matching rule
and records no comparison, so `solve` never warns.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from planner.files import parse_scenario, read_plan
from planner.verify import verify_plan
from tests.dsx.harness import dsx
from tests.planner.test_buyback_matching import OLD_PLAN
from tests.planner.two_sites import two_sites_data

WARNING = "warning: this plan (schema 1.4) bills buyback by the per-site rule"


def test_show_of_a_1_4_plan_warns_with_the_figures():
    plan = read_plan(OLD_PLAN)
    cloud = next(f for f in plan.parties if f.party == "cloud").expected_value_usd
    guarantor = next(f for f in plan.parties if f.party == "guarantor").expected_value_usd
    shown = dsx("plan", "show", OLD_PLAN)
    assert shown.code == 0, shown.text
    text = " ".join(shown.stderr.split())
    assert text.count(WARNING) == 1, shown.stderr
    for figure in (
        "its expected buyback is US$ 0 (undiscounted; US$ 0 discounted)",
        "By the matching rule this dsx bills, each refused hour placed once on one site's unsold hour, "
        "it is US$ 54,750 (undiscounted; US$ 54,750 discounted)",
        f"the cloud's expected value would be US$ {cloud + 54_750:,.0f} (+54,750)",
        f"the guarantor's US$ {guarantor - 54_750:,.0f} (-54,750)",
        'docs/model.md, "Buyback"). Fix: solve the scenario again',
    ):
        assert figure in text, (figure, shown.stderr)
    as_json = dsx("plan", "show", OLD_PLAN, "--json")
    assert as_json.code == 0 and WARNING in " ".join(as_json.stderr.split())
    assert '"warnings": [' in as_json.stdout and "54,750" in as_json.stdout


def test_a_solved_plan_bills_the_matching_rule_and_neither_command_warns(tmp_path: Path):
    source = tmp_path / "two-sites.yaml"
    source.write_text(yaml.safe_dump(two_sites_data(one_site_each=True)))
    out = tmp_path / "plan.json"
    solved = dsx("plan", "solve", source, "-o", out, "--no-value-of-information")
    assert solved.code == 0, solved.text
    assert read_plan(out).schema_version == "1.5"
    assert "buyback" not in solved.stderr, solved.stderr
    assert "buyback" not in dsx("plan", "show", out).stderr
    assert json.loads(dsx("plan", "show", out, "--json").stdout)["buyback_matching"] is None


def test_what_the_verifier_said_of_a_1_4_plan_reaches_the_user(tmp_path: Path):
    # The verifier checks a 1.4 plan by its per-site rule and says so in a note, with the matching
    # rule's figure; `show` prints the plan's recorded notes (review, session 26).
    scenario = parse_scenario(two_sites_data(), "two-sites")
    plan = read_plan(OLD_PLAN)
    found = verify_plan(scenario, plan)
    assert found.passed and len(found.notes) == 1
    data = json.loads(OLD_PLAN.read_text())
    data["verification"] = json.loads(found.model_dump_json())
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data))
    shown = dsx("plan", "show", older, "--json")
    assert shown.code == 0, shown.text
    assert json.loads(shown.stdout)["verification"]["notes"] == found.notes
    text = " ".join(dsx("plan", "show", older).stderr.split())
    assert f"Verification could not check everything: {' '.join(found.notes[0].split())}" in text
    assert "by the matching rule this dsx bills (schema 1.5" in text
