"""Which EC2 instances leaked: tagged as ours, but no NodeClaim accounts for them.

The launcher creates a NodeClaim before it calls EC2, so an instance without a claim is one
whose claim was deleted while the instance survived (a crash during termination, a manual
delete). A grace period covers the time between a claim's creation and the launcher's cache
seeing it, so a fresh launch is never mistaken for a leak.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from launcher.model import Instance
from shared import labels


def leaked_instances(
    instances: Iterable[Instance],
    claim_names: Collection[str],
    claimed_instance_ids: Collection[str],
    now: datetime,
    grace: timedelta,
) -> list[Instance]:
    """Instances no claim names (by tag or by recorded id) that are older than ``grace``."""
    leaked = []
    for instance in instances:
        if instance.state == "terminated" or instance.id in claimed_instance_ids:
            continue
        if instance.tags.get(labels.TAG_NODECLAIM) in claim_names:
            continue
        if now - instance.launch_time < grace:
            continue
        leaked.append(instance)
    return sorted(leaked, key=lambda i: i.id)
