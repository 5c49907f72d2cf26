"""Every AWS partition: where the Pricing API answers, and the IAM policy's partition-neutral ARNs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.aws.session import AWSSettings, partition_of, pricing_region

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("region", "partition", "pricing"),
    [
        ("us-east-1", "aws", "us-east-1"),
        ("eu-west-2", "aws", "us-east-1"),
        ("ap-southeast-5", "aws", "us-east-1"),
        ("cn-north-1", "aws-cn", "cn-northwest-1"),
        ("cn-northwest-1", "aws-cn", "cn-northwest-1"),
        ("us-gov-west-1", "aws-us-gov", None),
        ("us-iso-east-1", "aws-iso", None),
        ("us-isob-east-1", "aws-iso-b", None),
    ],
)
def test_partition_and_pricing_region(region: str, partition: str, pricing: str | None) -> None:
    assert partition_of(region) == partition
    assert pricing_region(region) == pricing
    kwargs = AWSSettings(region=region).client_kwargs("pricing")
    assert kwargs["region_name"] == (pricing or region)
    assert AWSSettings(region=region).client_kwargs("ec2")["region_name"] == region


def test_iam_policy_names_no_partition() -> None:
    text = (REPO / "manifests" / "aws" / "launcher-iam-policy.json").read_text()
    json.loads(text)  # well-formed before substitution: the placeholders sit inside strings
    assert "arn:aws:" not in text, "a literal partition breaks aws-cn and aws-us-gov"
    cloudformation = (REPO / "manifests" / "aws" / "cloudformation.yaml").read_text()
    assert "arn:aws:" not in cloudformation
