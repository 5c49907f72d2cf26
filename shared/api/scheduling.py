"""The node template pieces NodePools, NodeClaims and AMI statuses share: requirements and taints.

Parsed item by item so each bad entry is reported at its own path, then handed to
``shared.requirements`` and ``shared.taints`` for the semantics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared import labels as well_known
from shared.api._fields import Checker, join
from shared.requirements import Requirement
from shared.taints import Taint

OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_REQUIREMENTS: Final = 100
# Labels jitnode sets itself on every node; a NodePool may not claim them.
RESTRICTED_LABELS: Final = frozenset({well_known.NODEPOOL, well_known.NODECLAIM, well_known.HOSTNAME})
REQUIREMENT_KEYS: Final = frozenset({"key", "operator", "values", "minValues"})
TAINT_KEYS: Final = frozenset({"key", "value", "effect", "timeAdded"})


def parse_requirements(
    spec: Mapping[str, Any], check: Checker, path: str, *, restrict_keys: bool = True
) -> tuple[Requirement, ...]:
    """``requirements``: node selector requirements with Karpenter's optional ``minValues``.

    A NodePool may not constrain the labels jitnode sets (``restrict_keys``); a NodeClaim, which
    jitnode writes, carries them.
    """
    out: list[Requirement] = []
    for item_path, raw in check.objects(spec, "requirements", path, max_items=MAX_REQUIREMENTS):
        check.keys(raw, item_path, REQUIREMENT_KEYS)
        key = raw.get("key")
        if restrict_keys and isinstance(key, str) and key in RESTRICTED_LABELS:
            check.error(join(item_path, "key"), f"label {key!r} is set by jitnode and may not be used here")
            continue
        if check.string(raw, "operator", item_path, required=True, enum=OPERATORS) is None:
            continue
        requirement = check.run(lambda r=raw, p=item_path: Requirement.from_api(r, p), None)  # type: ignore[misc]
        if requirement is not None:
            out.append(requirement)
    return tuple(out)


def parse_taint_list(spec: Mapping[str, Any], key: str, check: Checker, path: str) -> tuple[Taint, ...]:
    out: list[Taint] = []
    for item_path, raw in check.objects(spec, key, path):
        check.keys(raw, item_path, TAINT_KEYS)
        taint = check.run(lambda r=raw, p=item_path: Taint.from_api(r, p), None)  # type: ignore[misc]
        if taint is not None:
            out.append(taint)
    return tuple(out)
