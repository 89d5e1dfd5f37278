"""Named overrides compose onto a base file; every error names the override, the path and a fix."""

from __future__ import annotations

import pytest
import yaml

from planner.errors import ScenarioError
from planner.insight.overrides import (
    apply_overrides,
    compose,
    load_case,
    load_overrides,
    parse_assignment,
    parse_path,
)
from tests.conftest import EXAMPLE_SCENARIO, REPO_ROOT

TERMS = REPO_ROOT / "examples" / "overrides" / "dsx-2026-terms.yaml"


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load(EXAMPLE_SCENARIO.read_text())


def test_paths_select_list_items_by_id():
    assert parse_path("sites[batam].power_cap_mw") == [("sites", "batam"), ("power_cap_mw", None)]


def test_override_changes_only_its_paths(base):
    scenario = compose(
        base, {"terms.buyback_share": 0.6, "sites[batam].power_cap_mw": 300}, case="c", source="o"
    )
    assert scenario.terms.buyback_share == 0.6
    assert scenario.site("batam").power_cap_mw == 300
    assert scenario.site("sydney").power_cap_mw == 100
    assert scenario.terms.revenue_share == base["terms"]["revenue_share"]
    assert base["terms"]["buyback_share"] == 0.8  # the base data is not changed


def test_bundled_cases_all_validate():
    cases = load_overrides(TERMS)
    assert {"low-buyback", "high-revenue-share", "guarantor-view"} <= set(cases)
    for case in cases:
        _, scenario = load_case(EXAMPLE_SCENARIO, TERMS, case)
        assert scenario.name == "dsx-2026"
    _, guarantor = load_case(EXAMPLE_SCENARIO, TERMS, "guarantor-view")
    assert guarantor.objective.perspective == "guarantor"


def test_unknown_list_item_names_override_path_and_suggestion(base):
    with pytest.raises(ScenarioError) as caught:
        apply_overrides(base, {"sites[batum].power_cap_mw": 1}, case="smaller", source="o.yaml")
    text = caught.value.render()
    assert "override 'smaller'" in text and "sites[batum].power_cap_mw" in text and "batam" in text


def test_unknown_section_is_named_with_a_fix(base):
    with pytest.raises(ScenarioError) as caught:
        apply_overrides(base, {"termz.buyback_share": 1}, case="typo", source="o.yaml")
    assert "did you mean 'terms'" in caught.value.render()


def test_misspelt_field_and_bad_value_are_caught_by_validation(base):
    with pytest.raises(ScenarioError) as caught:
        compose(base, {"terms.buyback_shar": 0.5}, case="typo", source="o.yaml")
    text = caught.value.render()
    assert "override 'typo'" in text and "terms.buyback_shar" in text and "Fix" in text
    with pytest.raises(ScenarioError) as caught:
        compose(base, {"terms.buyback_share": 1.5}, case="big", source="o.yaml")
    assert "terms.buyback_share" in caught.value.render() and "override 'big'" in caught.value.render()


def test_unknown_case_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="low-buyback"):
        load_case(EXAMPLE_SCENARIO, TERMS, "no-such-case")


def test_assignment_values_are_read_as_yaml():
    assert parse_assignment("terms.buyback_share=0.6,0.7") == ("terms.buyback_share", [0.6, 0.7])
    assert parse_assignment("objective.perspective=cloud,guarantor")[1] == ["cloud", "guarantor"]
    with pytest.raises(ScenarioError, match="PATH=V1"):
        parse_assignment("terms.buyback_share")


def test_an_assignment_nested_too_deeply_for_yaml_is_kept_as_text_for_the_schema_to_refuse():
    # PyYAML composes nested lists recursively: 5,000 brackets ran out of the stack with a
    # traceback; kept as text, the scenario's check then names the field.
    nested = "[" * 5000 + "]" * 5000
    assert parse_assignment(f"terms.buyback_share={nested}") == ("terms.buyback_share", [nested])


@pytest.mark.parametrize(
    "value",
    ["2026-13-01", "!!float abc", "!!bool foo", "0x" + "f" * 5000, "a\udcffb"],
    ids=["no-such-date", "float-tag-on-text", "bool-tag-on-text", "hex-past-the-digit-limit", "not-utf-8"],
)
def test_an_assignment_yaml_cannot_make_a_value_of_is_kept_as_text_for_the_schema_to_refuse(value: str):
    # PyYAML's constructor raised a ValueError or KeyError for these (a traceback from `--set`),
    # or made an integer too large for the scenario checks to print; libyaml cannot take a byte
    # that was not UTF-8 on the command line (a lone surrogate), which PyYAML's reader refuses.
    assert parse_assignment(f"periods.start_quarter={value}") == ("periods.start_quarter", [value])


def test_an_assignment_whose_aliases_nest_too_deeply_is_kept_as_text():
    # Block style needs no commas: a doubling chain of 4,600 lines nests 4,600 deep through its
    # aliases, which a deep copy of the overrides could not take (a traceback from `--set`).
    chain = "a0: &a0 [x]\n" + "".join(f"a{k}: &a{k}\n- *a{k - 1}\n- *a{k - 1}\n" for k in range(1, 4_600))
    assert parse_assignment(f"name={chain}") == ("name", [chain.strip()])


def test_an_assignment_with_values_within_themselves_is_kept_as_text():
    # Lists within themselves, linked so that a walk from the last finds them shallow and a deep
    # copy from the first ran 1,200 deep (a RecursionError from `--set`).
    value = (
        "a1: &A1\n- &B1\n  - *A1\n"
        + "".join(f"a{k}: &A{k}\n- *B{k - 1}\n- &B{k}\n  - *A{k}\n" for k in range(2, 600))
        + "y:\n"
        + "".join(f"- *A{k}\n" for k in range(599, 0, -1))
    )
    assert parse_assignment(f"name={value}") == ("name", [value.strip()])


@pytest.mark.parametrize(
    ("given", "values"),
    [
        ("tenants[nordic].allowed_jurisdictions=[SE,FI]", [["SE", "FI"]]),
        ("tenants[nordic].allowed_jurisdictions=[SE,FI],[DK]", [["SE", "FI"], ["DK"]]),
        ("sites[batam].existing_racks={a: 1, b: 2},{}", [{"a": 1, "b": 2}, {}]),
        ('name="a,b",x', ["a,b", "x"]),
        ("name='it''s, here',y", ["it's, here", "y"]),
        ("name=it's,y", ["it's", "y"]),
    ],
    ids=["list", "two-lists", "mappings", "double-quoted", "single-quoted", "apostrophe"],
)
def test_an_assignment_splits_values_only_at_commas_outside_lists_mappings_and_quotes(given, values):
    # '[NO,SE]' became two points, '[NO' and 'SE]'.
    assert parse_assignment(given)[1] == values


def test_an_assignment_giving_a_key_twice_is_refused():
    with pytest.raises(ScenarioError, match="gives the key 'a' twice"):
        parse_assignment("sites[batam].existing_racks={a: 1, a: 2}")


def test_a_path_into_a_section_the_base_file_leaves_out_is_set(base):
    # "'solver' has no field 'extra'", though solver.extra is a field (of raw HiGHS options).
    data = {key: value for key, value in base.items() if key != "solver"}
    scenario = compose(data, {"solver.extra.threads": 1}, case="--set", source="b.yaml")
    assert scenario.solver.extra == {"threads": 1}
    with pytest.raises(ScenarioError, match=r"'solver' has no field 'extraa'; did you mean 'extra'"):
        apply_overrides(base, {"solver.extraa.threads": 1}, case="c", source="o.yaml")


@pytest.mark.parametrize(
    ("text", "named"),
    [("a: {null: 1}\n", "the path null is not a field path"), ("null: {name: x}\n", "the case name null")],
    ids=["null-path", "null-case"],
)
def test_an_overrides_key_yaml_reads_as_null_is_refused_naming_it_null(tmp_path, text, named):
    # {null: 1} became the path "None".
    path = tmp_path / "o.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=named):
        load_overrides(path)
