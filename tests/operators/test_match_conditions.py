"""The webhook's `matchConditions` (Kubernetes ≥ 1.28), evaluated offline with cel-python: the test
API server (v1.20) drops the field. With no replica answering, an UPDATE the webhook is not sent
passes: it must be one that cannot change where the pod may run, and a label patch or a finalizer
removal must be one of them (else pods stick in Terminating during an outage). Also the
ValidatingAdmissionPolicy docs/operator.md gives sites to hold the operator to its caBundle."""

from __future__ import annotations

import copy
from typing import Any

import celpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.api import GPU_RESOURCE, POOL_LABEL
from operators.bundle import operator_bundle
from operators.decisions.placement import _placement

BASE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "acme-a", "labels": {"app": "x"}, "finalizers": ["x/y"]},
    "spec": {"containers": [{"name": "m", "image": "x", "resources": {}}], "nodeName": "n1"},
}


def _programs() -> list[tuple[str, Any]]:
    config = next(d for d in operator_bundle() if d["kind"] == "ValidatingWebhookConfiguration")
    env = celpy.Environment()
    found = []
    for hook in config["webhooks"]:
        conditions = hook.get("matchConditions") or []
        assert conditions, f"{hook['name']} has no matchConditions"
        for condition in conditions:
            found.append((hook["name"], env.program(env.compile(condition["expression"]))))
    return found


PROGRAMS = _programs()


CALLED, SKIPPED, IN_ERROR = "called", "skipped", "in error"


def outcome(operation: str, new: dict[str, Any], old: dict[str, Any] | None) -> str:
    """What the API server does with the request: calls the webhooks (every condition true), lets
    it pass unjudged (a condition false), or, for a condition in error, refuses it under
    failurePolicy Fail (admissionregistration v1 MatchCondition) — never what a request the
    webhooks should see may meet."""
    activation = {
        "request": celpy.json_to_cel({"operation": operation, "namespace": "acme-a"}),
        "object": celpy.json_to_cel(new),
        "oldObject": celpy.json_to_cel(old),
    }
    results = {}
    for name, program in PROGRAMS:
        try:
            results[name] = CALLED if bool(program.evaluate(activation)) else SKIPPED
        except celpy.CELEvalError:
            results[name] = IN_ERROR
    assert len(set(results.values())) == 1, results  # both webhooks alike
    return next(iter(results.values()))


def sent(operation: str, new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Whether the request reaches the webhooks or is refused (not passed unjudged); a condition
    in error fails the test: on a CREATE it would refuse every tenant pod."""
    result = outcome(operation, new, old)
    assert result != IN_ERROR, f"a match condition fails to evaluate on {operation}"
    return result == CALLED


def changed(**edit: Any) -> dict[str, Any]:
    pod = copy.deepcopy(BASE)
    for field, value in edit.items():
        if value is None:
            pod["spec"].pop(field, None)
        else:
            pod["spec"][field] = value
    return pod


def test_a_create_is_always_sent() -> None:
    # oldObject is null on a CREATE: a condition reading it unguarded is in error, and under
    # failurePolicy Fail every tenant pod would be refused
    assert outcome("CREATE", BASE, None) == CALLED


def test_an_update_of_labels_annotations_or_finalizers_is_not_sent() -> None:
    new = copy.deepcopy(BASE)
    new["metadata"]["labels"]["app"] = "y"
    new["metadata"]["annotations"] = {"a": "b"}
    new["metadata"]["finalizers"] = []
    new["metadata"]["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    assert not sent("UPDATE", new, BASE)


@pytest.mark.parametrize(
    "edit",
    [
        {"nodeSelector": {POOL_LABEL: "other"}},
        {"tolerations": [{"operator": "Exists"}]},
        {"tolerations": [{"key": "node.cluster.x-k8s.io/uninitialized", "operator": "Exists"}]},
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": POOL_LABEL, "operator": "Exists"}]}
                        ]
                    }
                }
            }
        },
        {"nodeName": "n2"},
        {"nodeName": None},
        {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]},
        {"containers": [{"name": "m", "image": "x", "resources": {"limits": {GPU_RESOURCE: "8"}}}]},
        {"initContainers": [{"name": "i", "image": "x", "resources": {"requests": {GPU_RESOURCE: "1"}}}]},
    ],
    ids=[
        "selector",
        "wildcard",
        "new-node",
        "affinity",
        "node-name",
        "node-name-gone",
        "gates",
        "gpus",
        "init-gpus",
    ],
)
def test_every_placement_change_is_sent(edit: dict[str, Any]) -> None:
    new = changed(**edit)
    assert _placement(new) != _placement(BASE) or edit.get("nodeName", 1) != 1
    assert sent("UPDATE", new, BASE)
    assert sent("UPDATE", BASE, new)  # and its undoing


def test_an_update_the_webhook_ignores_for_lack_of_an_old_object_is_still_sent() -> None:
    """The API server gives an UPDATE its oldObject; a missing one is not taken as unchanged."""
    assert sent("UPDATE", BASE, {"metadata": {}, "spec": {}})


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(["", "a", POOL_LABEL, GPU_RESOURCE, "8"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["key", "operator", "values", "limits", GPU_RESOURCE, POOL_LABEL]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "nodeSelector",
        "affinity",
        "tolerations",
        "nodeName",
        "schedulingGates",
        "containers",
        "initContainers",
        "resources",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    edits=st.dictionaries(FIELDS, JSON, min_size=1, max_size=3),
    labels=st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"])),
)
def test_any_update_changing_what_the_webhook_judges_is_sent(
    edits: dict[str, Any], labels: dict[str, str]
) -> None:
    """Whatever a hostile UPDATE writes into the fields the webhook reads, if the webhook would
    see a placement change, the API server calls it."""
    new = changed(**{k: v for k, v in edits.items() if v is not None})
    new["metadata"]["labels"] = labels
    try:
        differs = _placement(new) != _placement(BASE)
    except (AttributeError, TypeError, ValueError):
        differs = True  # the webhook would refuse what it cannot read: it must be sent
    if differs:
        # called, or (for a spec no API server would hold, e.g. a list as nodeName) refused by a
        # condition in error: never passed unjudged
        assert outcome("UPDATE", new, BASE) != SKIPPED


# -- the ValidatingAdmissionPolicy docs/operator.md gives sites (Kubernetes >= 1.30) -------------
def _documented_policy() -> dict[str, Any]:
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[2] / "docs" / "operator.md").read_text()
    block = re.search(
        r"```yaml\n(apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n.*?)```",
        text,
        re.S,
    )
    assert block, "docs/operator.md gives the policy's text"
    policy, binding = [d for d in yaml.safe_load_all(block.group(1)) if d]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    return policy


POLICY = _documented_policy()
OPERATOR = "system:serviceaccount:dsx-system:dsx-operator"


def policy_allows(new: dict[str, Any], old: dict[str, Any], user: str = OPERATOR) -> bool:
    """The policy's decision on an UPDATE of the configuration: True unless it denies."""
    env = celpy.Environment()
    request = celpy.json_to_cel({"operation": "UPDATE", "userInfo": {"username": user}})
    activation: dict[str, Any] = {
        "request": request,
        "object": celpy.json_to_cel(new),
        "oldObject": celpy.json_to_cel(old),
    }
    for condition in POLICY["spec"]["matchConditions"]:
        if not env.program(env.compile(condition["expression"])).evaluate(activation):
            return True  # the policy does not apply
    variables = {}
    for variable in POLICY["spec"]["variables"]:
        variables[variable["name"]] = env.program(env.compile(variable["expression"])).evaluate(activation)
    activation["variables"] = celpy.celtypes.MapType(
        {celpy.celtypes.StringType(k): v for k, v in variables.items()}
    )
    return all(
        bool(env.program(env.compile(v["expression"])).evaluate(activation))
        for v in POLICY["spec"]["validations"]
    )


def _stored_configuration() -> dict[str, Any]:
    """The shipped configuration as the API server stores it (defaults filled in)."""
    config = copy.deepcopy(
        next(d for d in operator_bundle() if d["kind"] == "ValidatingWebhookConfiguration")
    )
    for hook in config["webhooks"]:
        hook.setdefault("objectSelector", {})
        hook["clientConfig"]["caBundle"] = "b2xk"
    return config


def _edit(change: Any) -> dict[str, Any]:
    config = _stored_configuration()
    change(config)
    return config


def _set(hook: int, path: tuple[str, ...], value: Any) -> Any:
    def change(config: dict[str, Any]) -> None:
        target = config["webhooks"][hook]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def test_the_documented_policy_lets_the_operator_change_its_ca_bundle_and_labels_only() -> None:
    old = _stored_configuration()
    assert policy_allows(_edit(_set(0, ("clientConfig", "caBundle"), "bmV3")), old)
    assert policy_allows(_edit(lambda c: c["metadata"].update(labels={"x": "y"})), old)
    assert policy_allows(old, old)


@pytest.mark.parametrize(
    "change",
    [
        _set(
            0,
            ("rules",),
            [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["secrets"],
                    "scope": "*",
                }
            ],
        ),
        _set(1, ("clientConfig",), {"url": "https://attacker.example/x", "caBundle": "b2xk"}),
        _set(0, ("clientConfig", "service", "name"), "elsewhere"),
        _set(0, ("failurePolicy",), "Ignore"),
        _set(1, ("namespaceSelector",), {"matchLabels": {"nothing": "selected"}}),
        _set(0, ("objectSelector",), {"matchLabels": {"skip": "me"}}),
        _set(0, ("matchConditions",), [{"name": "never", "expression": "false"}]),
        _set(0, ("timeoutSeconds",), 1),
        _set(0, ("name",), "renamed.dsx.ai"),
        lambda c: c["webhooks"][0].pop("matchConditions"),
        lambda c: c["webhooks"].append(copy.deepcopy(c["webhooks"][0]) | {"name": "more.dsx.ai"}),
        lambda c: c["webhooks"].pop(),
    ],
    ids=[
        "rules-on-secrets",
        "url",
        "service",
        "ignore",
        "namespaces",
        "objects",
        "conditions",
        "timeout",
        "rename",
        "conditions-gone",
        "added",
        "removed",
    ],
)
def test_the_documented_policy_denies_the_operator_any_other_change(change: Any) -> None:
    old = _stored_configuration()
    assert not policy_allows(_edit(change), old)
    # an administrator is not held by it
    assert policy_allows(_edit(change), old, user="kubernetes-admin")
