"""The CRDs' CEL rules compile on the oldest supported server and fit the API server's cost budgets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.apiserver.cel import (
    STATIC_ESTIMATED_COST_LIMIT,
    STATIC_ESTIMATED_CRD_COST_LIMIT,
    compile_schema,
)
from localcluster.apiserver.cel.rules import cost_factor
from localcluster.apiserver.crdvalidation import crd_rule_problems
from shared.compat import MIN_KUBERNETES_MINOR

CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"
FILES = sorted(p.name for p in CRDS.glob("*.yaml"))
ROOT = "spec.validation.openAPIV3Schema"

# The rule and schema as they were when a 1.35 server refused the EC2NodeClass CRD with
# "estimated rule cost exceeds budget by factor of 3.1x": volumeSize had no maxLength.
OLD_EBS_RULE = (
    "!has(self.volumeSize) || (quantity(self.volumeSize).compareTo(quantity('1Gi')) >= 0 "
    "&& quantity(self.volumeSize).compareTo(quantity('64Ti')) <= 0)"
)


def old_ebs_schema(max_length: int | None = None) -> dict[str, Any]:
    size: dict[str, Any] = {
        "type": "string",
        "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$",
    }
    if max_length is not None:
        size["maxLength"] = max_length
    ebs = {
        "type": "object",
        "properties": {"volumeSize": size},
        "x-kubernetes-validations": [
            {"message": "volumeSize must be between 1Gi and 64Ti", "rule": OLD_EBS_RULE}
        ],
    }
    mappings = {"type": "array", "maxItems": 50, "items": {"type": "object", "properties": {"ebs": ebs}}}
    spec = {"type": "object", "properties": {"blockDeviceMappings": mappings}}
    return {"type": "object", "properties": {"spec": spec}}


def crd(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((CRDS / name).read_text()) if d]
    return dict(docs[0])


def schema(name: str) -> dict[str, Any]:
    result: dict[str, Any] = crd(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def test_minimum_is_a_supported_eks_version() -> None:
    assert 32 <= MIN_KUBERNETES_MINOR <= 36


@pytest.mark.parametrize("name", FILES)
def test_every_rule_compiles_and_fits_on_the_minimum_version(name: str) -> None:
    assert crd_rule_problems(crd(name)) == []
    compiled = compile_schema(schema(name), ROOT, MIN_KUBERNETES_MINOR)
    assert compiled.causes == []
    rules = [r for group in compiled.rules.values() for r in group]
    assert rules, "every CRD here has rules"
    for rule in rules:
        assert rule.total_cost <= STATIC_ESTIMATED_COST_LIMIT, rule.rule["rule"]
    assert compiled.total_cost <= STATIC_ESTIMATED_CRD_COST_LIMIT


@pytest.mark.parametrize(("server_minor", "compiles"), [(27, False), (28, False), (29, True), (32, True)])
def test_quantity_rules_need_a_1_29_server(server_minor: int, compiles: bool) -> None:
    compiled = compile_schema(schema("jitnode.io_ec2nodeclasses.yaml"), ROOT, server_minor)
    messages = [m for _, m in compiled.causes]
    if compiles:
        assert messages == []
        return
    (path, message), *_ = compiled.causes
    assert path == (
        f"{ROOT}.properties[spec].properties[blockDeviceMappings].items.properties[ebs]"
        ".x-kubernetes-validations[0].rule"
    )
    assert (
        "compilation failed: ERROR: <input>:1:35: undeclared reference to 'quantity' (in container '')"
        in message
    )


def test_undeclared_functions_and_fields_are_refused() -> None:
    node: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
    node["x-kubernetes-validations"] = [
        {"rule": "nosuch(self.a)"},
        {"rule": "self.b == 'x'"},
        {"rule": "self.a"},
        {"rule": "self.a.matches('^x$') && self.a.startsWith('x') && size(self.a) < 3 && self.a in ['x']"},
    ]
    causes = compile_schema(node, "", MIN_KUBERNETES_MINOR).causes
    assert [path for path, _ in causes] == [f".x-kubernetes-validations[{i}].rule" for i in range(3)]
    assert "undeclared reference to 'nosuch' (in container '')" in causes[0][1]
    assert "undefined field 'b'" in causes[1][1]
    assert causes[2][1].endswith("cel expression must evaluate to a bool")


def test_the_old_ebs_rule_exceeds_the_budget_and_max_length_fixes_it() -> None:
    old = compile_schema(old_ebs_schema(), ROOT, 35)
    (path, message), *_ = old.causes
    assert path.endswith("properties[ebs].x-kubernetes-validations[0].rule")
    assert message.startswith(
        "Forbidden: estimated rule cost exceeds budget by factor of 3.1x (try simplifying"
    )
    (rule,) = next(iter(old.rules.values()))
    assert rule.total_cost == 50 * rule.cost
    fixed = compile_schema(old_ebs_schema(max_length=20), ROOT, 35)
    assert fixed.causes == []
    (cheap,) = next(iter(fixed.rules.values()))
    assert cheap.total_cost < STATIC_ESTIMATED_COST_LIMIT // 1000


def test_the_shipped_ebs_rule_is_bounded() -> None:
    bdm = schema("jitnode.io_ec2nodeclasses.yaml")["properties"]["spec"]["properties"]["blockDeviceMappings"]
    assert "maxLength" in bdm["items"]["properties"]["ebs"]["properties"]["volumeSize"]
    assert bdm["maxItems"] <= 50


def test_the_crd_total_is_checked() -> None:
    node = copy.deepcopy(old_ebs_schema())
    rules = node["properties"]["spec"]["properties"]["blockDeviceMappings"]["items"]["properties"]["ebs"]
    rules["x-kubernetes-validations"] = rules["x-kubernetes-validations"] * 5
    causes = compile_schema(node, ROOT, 35).causes
    assert causes[-1][0] == ROOT
    assert causes[-1][1].startswith(
        "Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema "
        "exceeds budget"
    )
    assert sum("contributed to estimated rule cost total" in m for _, m in causes) == 4


def test_cost_factor_is_printed_as_the_api_server_prints_it() -> None:
    assert cost_factor(31_457_900, 10_000_000) == "3.1x"
    assert cost_factor(12_000_000, 10_000_000) == "1.200000x"
    assert cost_factor(2_000_000_000, 10_000_000) == "more than 100x"
