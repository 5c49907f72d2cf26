"""The end-to-end fixture most scenarios start from: jitnode on the local cluster with the seed's pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack, StackSettings


@pytest.fixture
async def stack(moto_server: MotoEC2) -> AsyncIterator[JitnodeStack]:
    """The stack running, with the seed's EC2NodeClass and NodePool applied (converted, as the demo does)."""
    async with JitnodeStack(StackSettings(), ec2=moto_server) as running:
        await running.apply_seed()
        yield running
