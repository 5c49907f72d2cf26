"""The launcher's IAM policy holds exactly the AWS actions ``launcher/aws/`` calls, scoped by tags.

Calls are found statically: every attribute name (``ec2.create_fleet(...)``) and paginator name
(``get_paginator("describe_instances")``) in ``launcher/aws/*.py`` that is an operation of one of
the services the launcher opens (botocore's own models, snake_cased with ``xform_name``) becomes
``service:OperationName``. Actions AWS authorizes without a call of that name (CreateFleet with a
launch template needs RunInstances, tag-on-create needs CreateTags...) are listed in IMPLIED.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import yaml
from botocore import xform_name

from launcher.aws.session import SERVICES

REPO = Path(__file__).resolve().parents[2]
AWS_DIR = REPO / "launcher" / "aws"
POLICY = REPO / "manifests" / "aws" / "launcher-iam-policy.json"
CLOUDFORMATION = REPO / "manifests" / "aws" / "cloudformation.yaml"
# Tools an operator runs by hand (with their own credentials), and test doubles.
NOT_IN_THE_LAUNCHER = {"testing.py", "refresh_pricing_table.py"}
CLUSTER_TAG = "jitnode.io/cluster"
# IAM action prefixes differ from botocore service names for none of ours; keep it explicit.
IAM_PREFIX = {"ec2": "ec2", "ssm": "ssm", "iam": "iam", "pricing": "pricing", "sqs": "sqs"}

IMPLIED: dict[str, str] = {
    "ec2:RunInstances": "CreateFleet authorizes each launch as RunInstances on the template's resources",
    "ec2:CreateTags": "tag-on-create in CreateFleet/CreateLaunchTemplate TagSpecifications",
    "iam:PassRole": "the launch template's instance profile passes the node role to EC2",
    "iam:TagInstanceProfile": "CreateInstanceProfile with Tags",
}


@cache
def operations() -> dict[str, dict[str, str]]:
    """snake_case method -> IAM action, per service."""
    session = botocore.session.get_session()
    out: dict[str, dict[str, str]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        out[service] = {xform_name(op): f"{IAM_PREFIX[service]}:{op}" for op in model.operation_names}
    return out


def called_actions() -> dict[str, set[str]]:
    """IAM action -> where it is called."""
    found: dict[str, set[str]] = {}
    for path in sorted(AWS_DIR.glob("*.py")):
        if path.name in NOT_IN_THE_LAUNCHER:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[tuple[str, str]] = []
            if isinstance(node, ast.Attribute):
                names.append((node.attr, ast.unparse(node.value)))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_paginator"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.append((str(node.args[0].value), ast.unparse(node.func.value)))
            for name, receiver in names:
                services = [s for s in SERVICES if name in operations()[s]]
                if len(services) > 1:  # e.g. a name two services share: the receiver says which
                    services = [s for s in services if s in receiver]
                for service in services:
                    action = operations()[service][name]
                    found.setdefault(action, set()).add(f"{path.name}:{getattr(node, 'lineno', 0)}")
    return found


def policy_actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        out.update([actions] if isinstance(actions, str) else actions)
    return out


def statements_for(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if action in policy_actions([s])]


def test_analysis_finds_known_calls() -> None:
    called = called_actions()
    for action in (
        "ec2:CreateFleet",
        "ec2:DescribeInstances",
        "ec2:TerminateInstances",
        "pricing:GetProducts",
    ):
        assert action in called, action


def test_policy_grants_every_called_action() -> None:
    granted = policy_actions(json.loads(POLICY.read_text())["Statement"])
    missing = {a: sorted(w) for a, w in called_actions().items() if a not in granted}
    assert not missing, f"launcher/aws calls actions the policy lacks: {missing}"


def test_policy_grants_nothing_unused() -> None:
    granted = policy_actions(json.loads(POLICY.read_text())["Statement"])
    unused = granted - set(called_actions()) - set(IMPLIED)
    assert not unused, f"policy grants actions launcher/aws never calls: {sorted(unused)}"
    assert not any("*" in a for a in granted), "no wildcard actions"


def test_destructive_actions_are_scoped_to_the_clusters_resources() -> None:
    policy = json.loads(POLICY.read_text())
    for action in ("ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"):
        for statement in statements_for(policy, action):
            condition = statement["Condition"]["StringEquals"]
            assert condition[f"aws:ResourceTag/{CLUSTER_TAG}"] == "${CLUSTER_NAME}", action
            assert statement["Resource"] != "*"
    for action in ("iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile"):
        for statement in statements_for(policy, action):
            assert f"aws:ResourceTag/{CLUSTER_TAG}" in statement["Condition"]["StringEquals"]


def test_creation_requires_the_cluster_tag() -> None:
    policy = json.loads(POLICY.read_text())
    for action in ("ec2:CreateFleet", "ec2:RunInstances", "ec2:CreateLaunchTemplate", "ec2:CreateTags"):
        created = [
            s
            for s in statements_for(policy, action)
            if any(r.split(":")[-1].startswith(("instance/", "fleet/")) for r in _resources(s))
        ]
        assert created, action
        for statement in created:
            assert (
                statement["Condition"]["StringEquals"][f"aws:RequestTag/{CLUSTER_TAG}"] == "${CLUSTER_NAME}"
            )
    (tagging,) = statements_for(policy, "ec2:CreateTags")
    assert set(tagging["Condition"]["StringEquals"]["ec2:CreateAction"]) <= {
        "CreateFleet",
        "CreateLaunchTemplate",
        "RunInstances",
    }


def test_pass_role_is_limited_to_the_node_role_and_ec2() -> None:
    (statement,) = statements_for(json.loads(POLICY.read_text()), "iam:PassRole")
    assert statement["Resource"].endswith(":role/${NODE_ROLE_NAME}")
    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement["Resource"]
    return [resources] if isinstance(resources, str) else list(resources)


def _cfn_to_placeholders(value: Any) -> Any:
    """The CloudFormation policy with Fn::Sub turned back into the JSON file's placeholders."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            text = str(value["Fn::Sub"])
            for cfn, placeholder in (
                ("JitnodeNodeRole-${ClusterName}", "${NODE_ROLE_NAME}"),
                ("${AWS::Partition}", "${AWS_PARTITION}"),
                ("${AWS::Region}", "${AWS_REGION}"),
                ("${AWS::AccountId}", "${AWS_ACCOUNT_ID}"),
                ("${ClusterName}", "${CLUSTER_NAME}"),
            ):
                text = text.replace(cfn, placeholder)
            return text
        return {k: _cfn_to_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cfn_to_placeholders(v) for v in value]
    return value


def test_cloudformation_matches_the_json_policy_and_defines_the_node_role() -> None:
    template = yaml.safe_load(CLOUDFORMATION.read_text())
    resources = template["Resources"]
    policy = resources["JitnodeLauncherPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert _cfn_to_placeholders(policy["Properties"]["PolicyDocument"]) == json.loads(POLICY.read_text())
    role = resources["JitnodeNodeRole"]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["Properties"]["RoleName"] == {"Fn::Sub": "JitnodeNodeRole-${ClusterName}"}
    assert resources["JitnodeNodeInstanceProfile"]["Properties"]["Roles"] == [{"Ref": "JitnodeNodeRole"}]
    assert "ClusterName" in template["Parameters"]


def test_interruption_queue_rules_and_permissions() -> None:
    """The queue, a rule per event kind the launcher reads (docs/interruption.md) targeting it, a
    queue policy letting EventBridge send, and the launcher's SQS rights scoped to that queue."""
    called = called_actions()
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl"):
        assert action in called, action
    policy = json.loads(POLICY.read_text())
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl"):
        for statement in statements_for(policy, action):
            assert _resources(statement) == [
                "arn:${AWS_PARTITION}:sqs:${AWS_REGION}:${AWS_ACCOUNT_ID}:jitnode-${CLUSTER_NAME}"
            ]
    resources = yaml.safe_load(CLOUDFORMATION.read_text())["Resources"]
    queue = resources["JitnodeInterruptionQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["QueueName"] == {"Fn::Sub": "jitnode-${ClusterName}"}
    queue_arn = {"Fn::GetAtt": ["JitnodeInterruptionQueue", "Arn"]}
    queue_policy = resources["JitnodeInterruptionQueuePolicy"]["Properties"]
    assert queue_policy["Queues"] == [{"Ref": "JitnodeInterruptionQueue"}]
    (send,) = [s for s in queue_policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert send["Action"] == "sqs:SendMessage"
    assert "events.amazonaws.com" in send["Principal"]["Service"]
    assert send["Resource"] == queue_arn
    rules = {
        tuple(r["Properties"]["EventPattern"]["detail-type"]): r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
    }
    assert set(rules) == {
        ("EC2 Spot Instance Interruption Warning",),
        ("EC2 Instance Rebalance Recommendation",),
        ("AWS Health Event",),
        ("EC2 Instance State-change Notification",),
    }
    for rule in rules.values():
        assert [t["Arn"] for t in rule["Targets"]] == [queue_arn]
    states = rules[("EC2 Instance State-change Notification",)]["EventPattern"]["detail"]["state"]
    assert set(states) == {"stopping", "stopped", "shutting-down", "terminated"}
    health = rules[("AWS Health Event",)]["EventPattern"]
    assert health["source"] == ["aws.health"]
    assert health["detail"] == {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]}
