"""Reports ``jitnode.io/do-not-disrupt`` values that are ignored (the shell of ``donotdisrupt``).

An annotation the launcher does not understand protects nothing (Karpenter's rule), which a user
must hear about: each bad value is logged once and recorded as a Warning Event
``InvalidDoNotDisruptAnnotation`` on its Pod or Node, once per object and value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from launcher.disruption.donotdisrupt import INVALID_EVENT, annotation, node_protection, pod_protection
from shared.events import WARNING, EventRecorder, object_reference
from shared.logs import get_logger

log = get_logger("launcher.disruption.optouts")

Obj = Mapping[str, Any]


class OptOutReporter:
    def __init__(self, events: EventRecorder) -> None:
        self._events = events
        self._reported: set[tuple[str, str]] = set()  # (uid or name, value)

    async def report(self, nodes: Iterable[Obj], pods: Iterable[Obj], now: datetime) -> None:
        """Report every ignored value among ``nodes`` and ``pods`` not reported before."""
        seen: set[tuple[str, str]] = set()
        for kind, objs in (("Node", nodes), ("Pod", pods)):
            for obj in objs:
                value = annotation(obj)
                if value is None:
                    continue
                meta = obj.get("metadata") or {}
                key = (str(meta.get("uid") or meta.get("name")), value)
                seen.add(key)
                if key in self._reported:
                    continue
                protection = node_protection(obj) if kind == "Node" else pod_protection(obj, now)
                if protection.problem is None:
                    continue
                self._reported.add(key)
                name = f"{meta.get('namespace')}/{meta.get('name')}" if kind == "Pod" else meta.get("name")
                log.warning(
                    "do-not-disrupt annotation ignored", kind=kind, name=name, problem=protection.problem
                )
                try:
                    await self._events.record(
                        object_reference(obj, kind), WARNING, INVALID_EVENT, protection.problem
                    )
                except Exception as error:
                    log.warning("event not recorded", kind=kind, name=name, error=str(error))
        self._reported &= seen  # forget objects gone or values changed
