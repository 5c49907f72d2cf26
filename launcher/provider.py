"""The cloud provider interface: all the launcher asks of EC2.

Shaped like Karpenter's ``CloudProvider`` (Create, Delete, Get, List, GetInstanceTypes) so
that the planner and the lifecycle controllers never import aioboto3 and can be tested
against any implementation. The AWS implementation lives in ``launcher/aws/``.
"""

from __future__ import annotations

import builtins
from typing import Protocol

from launcher.model import Instance, InstanceType, LaunchRequest


class CloudProvider(Protocol):
    async def create(self, request: LaunchRequest) -> Instance:
        """Launch one instance for a NodeClaim (CreateFleet). Raises ``LaunchError`` subclasses."""
        ...

    async def delete(self, instance_id: str) -> None:
        """Terminate an instance; terminating one that is already gone is not an error."""
        ...

    async def get(self, instance_id: str) -> Instance | None:
        """The instance, or None when EC2 no longer knows it."""
        ...

    async def list(self) -> list[Instance]:
        """Every instance this cluster's jitnode launched (by tag), in any state but terminated."""
        ...

    async def instance_types(self) -> builtins.list[InstanceType]:
        """The catalogue: every usable instance type with allocatable, offerings and prices."""
        ...
