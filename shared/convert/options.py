"""Choices a conversion needs that Karpenter kept outside its manifests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvertOptions:
    """The node IAM identity for node classes that name none.

    Karpenter v1alpha5 took the instance profile from its global ``aws.defaultInstanceProfile``
    setting when an AWSNodeTemplate had none; jitnode's EC2NodeClass must name a ``role`` or an
    ``instanceProfile``. At most one of the two may be given.
    """

    role: str | None = None
    instance_profile: str | None = None

    def __post_init__(self) -> None:
        if self.role is not None and self.instance_profile is not None:
            raise ValueError("give a default role or a default instance profile, not both")
