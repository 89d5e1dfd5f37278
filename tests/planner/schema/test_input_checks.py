"""Scenario inputs that would fail downstream are refused when the file is read."""

from __future__ import annotations

import copy

import pytest
import yaml

from infra.naming import DNS_LABEL_MAX, pool_name, tenant_namespace
from planner.errors import ScenarioError
from planner.files import parse_scenario
from planner.schema.consistency import SHOWN_PROBLEMS
from planner.schema.input_checks import KUBERNETES_NAME_MAX, owner_problem, short
from tests.conftest import EXAMPLE_SCENARIO

EXAMPLE = yaml.safe_load(EXAMPLE_SCENARIO.read_text())


def test_the_name_limit_is_the_one_infra_provisions_with():
    assert KUBERNETES_NAME_MAX == DNS_LABEL_MAX


def _with_ids(site: str, rack: str, tenant: str) -> dict:
    data = copy.deepcopy(EXAMPLE)
    data["sites"] = [next(s for s in data["sites"] if s["id"] == "batam")]
    data["rack_types"] = [data["rack_types"][0]]
    data["rack_types"][0]["id"] = rack
    data["sites"][0].update(id=site, rack_types=None)
    data["sites"][0]["existing_racks"] = {}
    data["tenants"] = [data["tenants"][0]]
    data["tenants"][0]["id"] = tenant
    data["tenants"][0].pop("allowed_jurisdictions", None)
    return data


@pytest.mark.parametrize(("site", "rack", "tenant"), [("s" * 31, "r" * 31, "t"), ("s" * 31, "r", "t" * 31)])
def test_ids_at_the_limit_are_accepted_and_make_names_infra_accepts(site, rack, tenant):
    scenario = parse_scenario(_with_ids(site, rack, tenant), "case.yaml")
    assert len(pool_name(scenario.sites[0].id, scenario.rack_types[0].id)) <= DNS_LABEL_MAX
    assert len(tenant_namespace(tenant, site, "tenant-site")) <= DNS_LABEL_MAX


@pytest.mark.parametrize(("site", "rack", "tenant", "named"), [
    ("s" * 32, "r" * 31, "t", "node pool name"),
    ("s" * 31, "r", "t" * 32, "namespace"),
])  # fmt: skip
def test_ids_one_character_over_the_limit_are_refused(site, rack, tenant, named):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(_with_ids(site, rack, tenant), "case.yaml")
    assert named in caught.value.render() and "64 characters" in caught.value.render()


@pytest.mark.parametrize(
    "owner",
    ["group:admins", "user:alice@example.com", "alice@example.com", "user:system:serviceaccount:ns:sa"],
)
def test_usable_owners_pass(owner):
    assert owner_problem(owner) is None


@pytest.mark.parametrize("owner", ["group:", "user:", "user:bad name!", "gruop:admins", "team:x", ":x"])
def test_unusable_owners_are_named(owner):
    assert owner_problem(owner)


def test_short_keeps_head_and_tail_of_a_long_id():
    assert short("abc") == "abc"
    shortened = short("a" * 30 + "z" * 30)
    assert (
        len(shortened) == 24
        and shortened.startswith("aaa")
        and shortened.endswith("zzz")
        and "…" in shortened
    )


def test_an_implausibly_large_amount_names_the_field_and_the_unit_to_check():
    data = copy.deepcopy(EXAMPLE)
    data["sites"][0]["power_cap_mw"] = 360e6  # watts written where MW are asked for
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "case.yaml")
    text = caught.value.render()
    assert "sites[batam].power_cap_mw: 3.6e+08 is larger" in text and "MW, not W" in text


def test_the_example_passes_every_input_check():
    parse_scenario(copy.deepcopy(EXAMPLE), "example")


def test_an_integer_beyond_a_float_s_range_is_refused_with_its_digits_counted():
    # pydantic takes a whole number from text (a `--set` value YAML would not read as one):
    # 401 digits could not be formatted as a float, and the check raised OverflowError.
    data = yaml.safe_load(EXAMPLE_SCENARIO.read_text())
    data["sites"][0]["gpu_cap"] = "1" + "0" * 400
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "huge.yaml")
    assert "gpu_cap: a 401-digit number is larger than any real AI factory needs" in info.value.render()


@pytest.mark.parametrize(
    ("where", "count"),
    [("owners", 5_000), ("unknown scenarios", 3_000)],
)
def test_thousands_of_bad_entries_show_the_first_and_count_the_rest(where, count):
    # A million bad owners once made a million messages (3.39 GB peak, 55.9 s) before anything was shown.
    data = copy.deepcopy(EXAMPLE)
    tenant = data["tenants"][0]
    if where == "owners":
        tenant["owners"] = [f"team:t{n}" for n in range(count)]
    else:
        tenant["credit_repayment_share_by_scenario"] = {f"nowhere-{n}": 0.5 for n in range(count)}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "many.yaml")
    details = caught.value.details
    assert len(details) == SHOWN_PROBLEMS + 1
    assert details[-1] == f"... and {count - SHOWN_PROBLEMS} more"
    assert all("Fix:" in line for line in details[:-1])


@pytest.mark.parametrize(
    ("field", "value"),
    [(("solver", "threads"), 100_000), (("contracts", "quota_term_periods"), 10**20)],
)
def test_a_count_no_machine_or_contract_needs_is_refused(field, value):
    # 100,000 solver threads ran past a minute on the bundled example before HiGHS began.
    data = copy.deepcopy(EXAMPLE)
    data.setdefault(field[0], {})[field[1]] = value
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "big.yaml")
    assert f"{'.'.join(field)}: Input should be less than or equal to" in caught.value.render()
